// What issue 13 added to the load report: the verdict line, the network's
// settings, p99.9, latency histogram and CDF, throughput over the whole run
// (a stall at the end included), each failure's duration and the backoff
// pauses on the timeline, onion connect phases, intro points and instances.
import { describe, expect, it } from 'vitest';
import { cdfSvg, failureTimelineSvg, histogramSvg, throughputSvg } from '../../../services/loadgen/charts.js';
import { resolveLoadOptions } from '../../../services/loadgen/options.js';
import { renderTable, verdict } from '../../../services/loadgen/report.js';
import { renderHtml } from '../../../services/loadgen/report-html.js';
import { type BuildInput, buildResult, type RequestRecord } from '../../../services/loadgen/result.js';
import { distribution, spread, summarize } from '../../../services/loadgen/stats.js';

const ONION = `${'e'.repeat(56)}.onion`;

/** 40 requests in the first 4 s (every 5th fails after 2 s), then nothing for a 30 s stall. */
const records: RequestRecord[] = Array.from({ length: 40 }, (_, i) => {
  const startMs = i * 100;
  if (i % 5 === 4)
    return { i, size: 10, startMs, endMs: startMs + 2000, ok: false, reason: 'connect_timeout', bytes: 0 };
  const ttlb = 20 + i;
  return {
    i,
    size: 10,
    startMs,
    endMs: startMs + ttlb,
    ok: true,
    connectMs: 10 + i / 2,
    ttfbMs: 15 + i / 2,
    ttlbMs: ttlb,
    bytes: 10,
  };
});
const q = (p50: number, mean: number) => ({
  count: 32,
  p50,
  p90: p50 * 2,
  p99: p50 * 3,
  p999: p50 * 3.1,
  mean,
});

const input: BuildInput = {
  options: resolveLoadOptions({ target: ONION, count: 40, size: '10' }),
  target: { host: ONION, port: 80, onion: true },
  relayMetricsUrls: [],
  records,
  startedAt: new Date('2026-01-01T00:00:00.000Z'),
  finishedAt: new Date('2026-01-01T00:00:36.000Z'),
  interrupted: false,
  stoppedEarly: null,
  checksums: {},
  circuitBuild: null,
  clientOnionConnect: q(40, 45),
  onionConnectPhases: {
    descriptor: q(5, 6),
    introduction: q(20, 22),
    rendezvous: q(10, 12),
    stream: q(4, 5),
  },
  clientRendezvousChosen: null,
  clientRelayUse: null,
  rendezvousSpread: spread({ r0: 16, r1: 16 }, ['r0', 'r1', 'r2', 'r3']),
  introSpread: spread({ r0: 20, r1: 12 }, ['r0', 'r1', 'r2']),
  instanceSpread: {
    service: 'web',
    introPoints: { a: 3, b: 3 },
    introductions: null,
    rendezvous: null,
    notes: [
      'shallot_hs_intro_requests_total has no service_instance label: load per instance is not measured',
    ],
  },
  network: {
    relays: 7,
    mode: 'process-per-node',
    handshakes: { 'ntor-v3': 120 },
    version: '0.1.0',
    onionService: { name: 'web', instances: 2 },
  },
  backoff: { baseMs: 100, maxMs: 5000, pauses: [{ startMs: 2400, endMs: 2500 }] },
  warnings: [],
};
const result = buildResult(input);
const html = renderHtml(result);

/** The HTML of the first <svg class="cls"> element. */
function svgOf(cls: string, doc = html): string {
  const start = doc.indexOf(`<svg class="${cls}"`);
  expect(start).toBeGreaterThanOrEqual(0);
  return doc.slice(start, doc.indexOf('</svg>', start) + 6);
}

/** The x-axis tick labels of an SVG chart (numbers under the axis). */
function xTicks(svg: string): number[] {
  return [...svg.matchAll(/text-anchor="middle" font-size="11">([\d.]+)</g)].map((m) => Number(m[1]));
}

describe('the verdict', () => {
  it('fails below --min-success with the ratio, the commonest reasons, backoff and an early stop', () => {
    expect(result.successRatio).toBe(0.8);
    const v = verdict(result);
    expect(v.ok).toBe(false);
    expect(v.line).toBe(
      'FAIL: success ratio 80.0% (32/40) is below --min-success 99.0%; failures: connect_timeout x8; backed off 0.1 s',
    );
    const early = verdict(buildResult({ ...input, stoppedEarly: 'no way' }));
    expect(early.line).toMatch(/; stopped early \(no way\)$/);
    const pass = verdict(buildResult({ ...input, records: records.filter((r) => r.ok) }));
    expect(pass).toEqual({ ok: true, line: 'PASS: success ratio 100.0% (32/32), --min-success 99.0%' });
    expect(html).toContain(`<p id="verdict" class="fail"><b>${v.line}</b></p>`);
  });
});

describe('the HTML report', () => {
  it("heads with the network's settings: relays, mode, handshake, version, instances", () => {
    const net = html.slice(html.indexOf('<h2 id="network">'), html.indexOf('<h2 id="run">'));
    for (const cell of [
      '<td>relays</td><td>7</td>',
      '<td>mode</td><td>process-per-node</td>',
      '<td>handshake</td><td>ntor-v3 (120 processed by relays)</td>',
      '<td>Shallot version</td><td>0.1.0</td>',
      '<td>onion service</td><td>web, 2 instance(s)</td>',
    ])
      expect(net).toContain(cell);
    expect(renderTable(result)).toContain(
      'network: relays 7, mode process-per-node, handshake ntor-v3 (120), Shallot 0.1.0, onion service web x2',
    );
  });

  it('has p99.9 in the latency table and a histogram and CDF marking p50/p90/p99/p99.9', () => {
    expect(html).toContain('<th>p99.9</th>');
    const ttlb = summarize(records.flatMap((r) => (r.ok ? [r.ttlbMs!] : [])));
    expect(result.latency.ttlb.p999).toBeCloseTo(ttlb.p999!, 9);
    const hist = svgOf('histogram');
    expect(hist.match(/<rect x=/g)).toHaveLength(40);
    const counted = [...hist.matchAll(/ ms: (\d+)<\/title><\/rect>/g)].reduce((s, m) => s + Number(m[1]), 0);
    expect(counted).toBe(32);
    for (const p of ['p50', 'p90', 'p99', 'p99.9']) expect(hist).toContain(`class="mark-${p}"`);
    expect(hist).toContain(`p99.9 ${ttlb.p999!.toFixed(1)} ms`);
    const cdf = svgOf('cdf');
    expect(cdf.match(/<polyline /g)).toHaveLength(3);
    expect(cdf.match(/<circle class="mark-p99.9"/g)).toHaveLength(3);
    // The CDF ends at 100 % at the slowest request.
    expect(result.distribution.ttlb.cdf.at(-1)).toEqual({ p: 100, ms: ttlb.max });
  });

  it('draws throughput over the whole run: the 30 s stall after the last request is on the axis', () => {
    expect(result.timeline).toHaveLength(36);
    const svg = svgOf('throughput');
    expect(Math.max(...xTicks(svg))).toBeGreaterThanOrEqual(36);
    const ok = [...svg.matchAll(/class="ok"[^>]*><title>[^:]+: (\d+) ok/g)].reduce(
      (s, m) => s + Number(m[1]),
      0,
    );
    const failed = [...svg.matchAll(/class="failed"[^>]*><title>[^:]+: (\d+) failed/g)].reduce(
      (s, m) => s + Number(m[1]),
      0,
    );
    expect([ok, failed]).toEqual([32, 8]);
    // The latency scatter's axis covers the stall too (it used to stop at the last request's start).
    expect(Math.max(...xTicks(svgOf('scatter')))).toBeGreaterThanOrEqual(36);
  });

  it("puts each failure's duration on the timeline, and the backoff pauses", () => {
    const svg = svgOf('failure-timeline');
    const bars = [
      ...svg.matchAll(
        /<rect class="failure"[^>]*><title>#(\d+) connect_timeout: [\d.]+-[\d.]+ s \(([\d.]+) ms\)/g,
      ),
    ];
    expect(bars.map((m) => Number(m[1]))).toEqual([4, 9, 14, 19, 24, 29, 34, 39]);
    expect(bars.every((m) => m[2] === '2000.0')).toBe(true);
    expect(svg).toContain('<title>backoff 2.4-2.5 s (100.0 ms)</title>');
    expect(svgOf('throughput')).toContain('<title>backoff 2.4-2.5 s');
    expect(html).toContain('<th>backoff (ms)</th>');
  });

  it('splits the onion connect into phases and spreads intro load over intro points and instances', () => {
    const phases = html.slice(html.indexOf('<h2 id="phases">'), html.indexOf('<h2 id="failures">'));
    for (const p of ['descriptor', 'introduction', 'rendezvous', 'stream'])
      expect(phases).toContain(`<td>${p}</td>`);
    expect(phases.indexOf('descriptor')).toBeLessThan(phases.indexOf('rendezvous'));
    expect(phases).toContain('introduction: mean 22.0 ms (49%)');
    expect(html).toContain('<h2>Introduction load per intro point</h2>\n<p>3 intro points, 32 events');
    const inst = html.slice(html.indexOf('<h2 id="instances">'));
    expect(inst).toContain('<tr><td>a</td><td>3</td><td>-</td><td>-</td></tr>');
    expect(inst).toContain('Not measured: shallot_hs_intro_requests_total has no service_instance label');
  });

  it('lists a phase the run did not observe (a cached descriptor) as such', () => {
    const { descriptor: _d, ...rest } = input.onionConnectPhases!;
    const cached = renderHtml(buildResult({ ...input, onionConnectPhases: rest }));
    expect(cached).toContain('<tr><td>descriptor</td><td>not observed during the run (cached)</td></tr>');
    expect(cached).toContain('<td>introduction</td><td>20.0</td>');
  });

  it('says what is not measured rather than drawing nothing', () => {
    const bare = renderHtml(buildResult({ ...input, onionConnectPhases: null, instanceSpread: null }));
    expect(bare).toContain('Not measured: pass --client-metrics (shallot_onion_connect_phase_seconds)');
    expect(bare).toContain(
      "Not measured: the targets file or --relay-metrics must include the onion service's /metrics",
    );
  });
});

describe('charts on their own', () => {
  it('empty inputs still make closed SVG documents', () => {
    expect(histogramSvg(distribution([]), summarize([]), 'x')).toMatch(/<\/svg>$/);
    expect(cdfSvg([{ label: 'x', color: '#000', d: distribution([]), s: summarize([]) }])).toMatch(
      /<\/svg>$/,
    );
    expect(throughputSvg([], 0, [])).toMatch(/<\/svg>$/);
    expect(failureTimelineSvg([], 0, [])).toMatch(/<\/svg>$/);
  });

  it('distribution: 40 equal bins from 0 to the slowest, every value counted once', () => {
    const d = distribution([1, 2, 3, 40]);
    expect(d.bins).toHaveLength(40);
    expect(d.bins.reduce((s, b) => s + b.count, 0)).toBe(4);
    expect(d.bins.at(-1)).toEqual({ fromMs: 39, toMs: 40, count: 1 });
    expect(d.cdf.find((c) => c.p === 50)?.ms).toBe(2.5);
  });
});
