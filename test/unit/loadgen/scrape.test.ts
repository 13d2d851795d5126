// Reading /metrics text and comparing snapshots: the numbers behind the
// report's circuit-build quantiles and per-relay rendezvous spread.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePromText, seriesKey } from '../../../services/loadgen/prom-text.js';
import {
  counterDeltaBy,
  histogramDelta,
  labelValues,
  metricsUrlsFromFileSd,
  normalizeMetricsUrl,
  ScrapeConfigError,
  scrape,
  snapshotOf,
  sumOf,
} from '../../../services/loadgen/scrape.js';
import { histogramQuantile } from '../../../services/loadgen/stats.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { type OpsServer, serveOps } from '../../../services/runtime/ops-server.js';

describe('parsePromText', () => {
  it('reads names, labels (with escapes), values and special floats; skips comments and junk', () => {
    const text = [
      '# HELP x_total help text',
      '# TYPE x_total counter',
      'x_total{relay="r1",event="joined"} 3',
      'x_total{relay="we\\"ird\\\\name\\n",event="joined"} 4 1700000000000',
      'plain 1.5e3',
      'h_bucket{le="+Inf"} +Inf',
      'nan_metric NaN',
      'broken{relay="unterminated} 1',
      'novalue{a="b"}',
      '{nolabelname} 3',
      '',
    ].join('\n');
    const s = parsePromText(text);
    expect(s).toHaveLength(5);
    expect(s[0]).toEqual({ name: 'x_total', labels: { relay: 'r1', event: 'joined' }, value: 3 });
    expect(s[1]!.labels.relay).toBe('we"ird\\name\n');
    expect(s[1]!.value).toBe(4);
    expect(s[2]).toEqual({ name: 'plain', labels: {}, value: 1500 });
    expect(s[3]!.value).toBe(Number.POSITIVE_INFINITY);
    expect(s[4]!.value).toBeNaN();
  });

  it('reads what prom-client writes for the metrics the report uses', async () => {
    const reg = new Registry();
    const m = metricsFor(reg);
    m.relay.rendezvous.labels({ relay: 'relay0', event: 'joined' }).inc(7);
    m.client.circuitBuild.labels({ purpose: 'exit' }).observe(0.02);
    const samples = parsePromText(await reg.metrics());
    const joined = samples.find((x) => x.name === 'shallot_relay_rendezvous_total');
    expect(joined).toEqual({
      name: 'shallot_relay_rendezvous_total',
      labels: { relay: 'relay0', event: 'joined' },
      value: 7,
    });
    const inf = samples.find(
      (x) => x.name === 'shallot_circuit_build_seconds_bucket' && x.labels.le === '+Inf',
    );
    expect(inf?.value).toBe(1);
  });

  it('series keys ignore label order', () => {
    expect(seriesKey({ name: 'a', labels: { x: '1', y: '2' } })).toBe(
      seriesKey({ name: 'a', labels: { y: '2', x: '1' } }),
    );
  });
});

describe('file_sd targets', () => {
  it('turns target groups into /metrics URLs, honouring __scheme__ and __metrics_path__', () => {
    const doc = JSON.stringify([
      { targets: ['127.0.0.1:9101', '127.0.0.1:9102'], labels: { role: 'relay' } },
      { targets: ['localhost:9200'], labels: { __metrics_path__: 'm', __scheme__: 'https' } },
      { targets: [] },
    ]);
    expect(metricsUrlsFromFileSd(doc)).toEqual([
      'http://127.0.0.1:9101/metrics',
      'http://127.0.0.1:9102/metrics',
      'https://localhost:9200/m',
    ]);
  });

  it('rejects what is not file_sd', () => {
    expect(() => metricsUrlsFromFileSd('nope')).toThrow(ScrapeConfigError);
    expect(() => metricsUrlsFromFileSd('{}')).toThrow(ScrapeConfigError);
    expect(() => metricsUrlsFromFileSd('[{"labels":{}}]')).toThrow(ScrapeConfigError);
    expect(() => metricsUrlsFromFileSd('[{"targets":["http://x:1/metrics"]}]')).toThrow(ScrapeConfigError);
    expect(() => metricsUrlsFromFileSd('[{"targets":[5]}]')).toThrow(ScrapeConfigError);
  });

  it('normalizes host:port and URLs', () => {
    expect(normalizeMetricsUrl('127.0.0.1:9100')).toBe('http://127.0.0.1:9100/metrics');
    expect(normalizeMetricsUrl('http://h:1/custom')).toBe('http://h:1/custom');
    expect(normalizeMetricsUrl('http://h:1')).toBe('http://h:1/metrics');
    expect(() => normalizeMetricsUrl('http://[bad')).toThrow(ScrapeConfigError);
  });
});

describe('snapshot deltas', () => {
  const before = snapshotOf(
    parsePromText(
      [
        'shallot_relay_rendezvous_total{relay="relay0",event="joined"} 10',
        'shallot_relay_rendezvous_total{relay="relay0",event="established"} 99',
        'shallot_relay_cells_total{relay="relay3",direction="in"} 5',
        'shallot_circuit_build_seconds_bucket{purpose="exit",le="0.01"} 1',
        'shallot_circuit_build_seconds_bucket{purpose="exit",le="0.1"} 2',
        'shallot_circuit_build_seconds_bucket{purpose="exit",le="+Inf"} 2',
      ].join('\n'),
    ),
  );
  const after = snapshotOf(
    parsePromText(
      [
        'shallot_relay_rendezvous_total{relay="relay0",event="joined"} 14',
        'shallot_relay_rendezvous_total{relay="relay0",event="established"} 120',
        'shallot_relay_rendezvous_total{relay="relay1",event="joined"} 2',
        'shallot_relay_cells_total{relay="relay3",direction="in"} 50',
        'shallot_circuit_build_seconds_bucket{purpose="exit",le="0.01"} 1',
        'shallot_circuit_build_seconds_bucket{purpose="exit",le="0.1"} 6',
        'shallot_circuit_build_seconds_bucket{purpose="exit",le="+Inf"} 6',
        'shallot_circuit_build_seconds_bucket{purpose="rend",le="0.01"} 0',
        'shallot_circuit_build_seconds_bucket{purpose="rend",le="0.1"} 4',
        'shallot_circuit_build_seconds_bucket{purpose="rend",le="+Inf"} 4',
      ].join('\n'),
    ),
  );

  it('counter deltas by relay, filtered by event; series new since before count from 0', () => {
    expect(
      counterDeltaBy(before, after, 'shallot_relay_rendezvous_total', 'relay', { event: 'joined' }),
    ).toEqual({
      relay0: 4,
      relay1: 2,
    });
  });

  it('sums a metric over the series that carry the given labels', () => {
    const joinedAfter = counterDeltaBy(snapshotOf([]), after, 'shallot_relay_rendezvous_total', 'relay', {
      event: 'joined',
    });
    const expected = Object.values(joinedAfter).reduce((a, b) => a + b, 0);
    expect(expected).toBeGreaterThan(0);
    expect(sumOf(after, 'shallot_relay_rendezvous_total', { event: 'joined' })).toBe(expected);
    expect(sumOf(after, 'shallot_no_such_metric')).toBe(0);
  });

  it('knows every relay with any relay metric (relay3 had no rendezvous)', () => {
    expect(labelValues(after, 'shallot_relay_', 'relay')).toEqual(['relay0', 'relay1', 'relay3']);
  });

  it('histogram deltas merge label sets or pick one', () => {
    const all = histogramDelta(before, after, 'shallot_circuit_build_seconds');
    expect(all).toEqual([
      { le: 0.01, count: 0 },
      { le: 0.1, count: 8 },
      { le: Number.POSITIVE_INFINITY, count: 8 },
    ]);
    expect(histogramQuantile(0.5, all)).toBeCloseTo(0.055, 12);
    const rend = histogramDelta(before, after, 'shallot_circuit_build_seconds', { purpose: 'rend' });
    expect(rend.at(-1)).toEqual({ le: Number.POSITIVE_INFINITY, count: 4 });
  });
});

describe('scrape over HTTP', () => {
  let ops: OpsServer;
  let reg: Registry;
  beforeAll(async () => {
    reg = new Registry();
    metricsFor(reg).relay.intro.labels({ relay: 'relay2', event: 'introduce1' }).inc(3);
    ops = await serveOps({
      host: '127.0.0.1',
      port: 0,
      registry: reg,
      health: () => ({ ok: true, ready: true }),
    });
  });
  afterAll(() => ops.close());

  it('keeps one copy of a series served at two URLs and records unreachable URLs', async () => {
    const snap = await scrape([ops.url, ops.url, 'http://127.0.0.1:1/metrics'], 2000);
    const a = snapshotOf([]);
    expect(counterDeltaBy(a, snap, 'shallot_relay_intro_total', 'relay')).toEqual({ relay2: 3 });
    expect(snap.errors).toHaveLength(1);
    expect(snap.errors[0]!.url).toBe('http://127.0.0.1:1/metrics');
  });
});
