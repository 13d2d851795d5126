// The result builder and its writers: JSON fields, the terminal table and
// a self-contained HTML report (no scripts, nothing fetched, values escaped).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeHtml, niceStep } from '../../../services/loadgen/charts.js';
import { resolveLoadOptions } from '../../../services/loadgen/options.js';
import { renderTable, writeJsonReport } from '../../../services/loadgen/report.js';
import {
  latencyScatterSvg,
  renderHtml,
  shareBarsSvg,
  writeHtmlReport,
} from '../../../services/loadgen/report-html.js';
import { buildResult, type RequestRecord, subsample, timelineOf } from '../../../services/loadgen/result.js';
import { spread } from '../../../services/loadgen/stats.js';
import { expectResultFields } from '../../helpers/load-report.js';

const records: RequestRecord[] = [
  {
    i: 0,
    size: 1024,
    startMs: 0,
    endMs: 300,
    ok: true,
    connectMs: 100,
    ttfbMs: 200,
    ttlbMs: 300,
    bytes: 1024,
  },
  {
    i: 1,
    size: 1024,
    startMs: 10,
    endMs: 1500,
    ok: true,
    connectMs: 300,
    ttfbMs: 400,
    ttlbMs: 1490,
    bytes: 1024,
  },
  {
    i: 2,
    size: 2048,
    startMs: 1100,
    endMs: 1200,
    ok: false,
    reason: 'socks_f0_onion_desc_not_found',
    bytes: 0,
  },
  {
    i: 3,
    size: 2048,
    startMs: 1300,
    endMs: 2500,
    ok: false,
    reason: 'checksum_mismatch',
    connectMs: 200,
    bytes: 2048,
  },
  {
    i: 4,
    size: 2048,
    startMs: 1400,
    endMs: 2100,
    ok: false,
    reason: 'socks_f0_onion_desc_not_found',
    bytes: 0,
  },
];

const options = resolveLoadOptions({
  target: `${'b'.repeat(56)}.onion`,
  count: 5,
  size: '1k,2k',
  newCircuit: true,
});
const result = buildResult({
  options,
  target: { host: `${'b'.repeat(56)}.onion`, port: 80, onion: true },
  relayMetricsUrls: ['http://127.0.0.1:9/metrics'],
  records,
  startedAt: new Date('2025-01-01T00:00:00.000Z'),
  finishedAt: new Date('2025-01-01T00:00:02.500Z'),
  interrupted: false,
  checksums: { '1024': 'ab'.repeat(32), '2048': null },
  stoppedEarly: null,
  circuitBuild: {
    count: 4,
    p50: 20,
    p90: 40,
    p99: 49,
    p999: 49.9,
    mean: 25,
    byPurpose: { rend: { count: 4, p50: 20, p90: 40, p99: 49, p999: 49.9, mean: 25 } },
  },
  clientOnionConnect: null,
  onionConnectPhases: null,
  clientRendezvousChosen: spread({ relay0: 2 }, ['relay0', 'relay1']),
  clientRelayUse: { exit: spread({ exit0: 3, exit1: 1 }) },
  rendezvousSpread: spread({ relay0: 3, '<relay&1>': 1 }, ['relay0', '<relay&1>', 'relay2']),
  introSpread: spread({}, ['relay0']),
  instanceSpread: null,
  network: { relays: 5, mode: 'one-process', handshakes: { ntor: 12 }, version: '0.1.0', onionService: null },
  backoff: { baseMs: 100, maxMs: 5000, pauses: [{ startMs: 1200, endMs: 1300 }] },
  warnings: ['no checksum for 2048 bytes'],
});

describe('buildResult', () => {
  it('counts, ratio, failures by reason, throughput', () => {
    expect(result.counts).toEqual({ requests: 5, ok: 2, failed: 3, bytes: 1024 + 1024 + 2048 });
    expect(result.successRatio).toBeCloseTo(0.4, 12);
    expect(result.failuresByReason).toEqual({ socks_f0_onion_desc_not_found: 2, checksum_mismatch: 1 });
    expect(result.elapsedSec).toBe(2.5);
    expect(result.throughput.requestsPerSec).toBe(2);
    expect(result.config).toMatchObject({ targetKind: 'onion', targetPort: 80, newCircuit: true, count: 5 });
    expect(result.config).not.toHaveProperty('progress');
  });

  it('latency: connect from every opened stream, ttfb/ttlb from successes only', () => {
    expect(result.latency.connect).toMatchObject({ count: 3, p50: 200, min: 100, max: 300 });
    expect(result.latency.ttfb).toMatchObject({ count: 2, p50: 300 });
    expect(result.latency.ttlb).toMatchObject({ count: 2, p50: 895, max: 1490 });
    expect(result.latencyBySize['2048']!.ttlb.count).toBe(0);
    expect(result.latencyBySize['1024']!.ttlb.count).toBe(2);
  });

  it('per-second timeline: starts, completions and in-flight at each window end', () => {
    expect(result.timeline).toEqual([
      {
        t: 0,
        started: 2,
        ok: 1,
        failed: 0,
        inFlight: 1,
        bytes: 1024,
        backoffMs: 0,
        connectP50Ms: 100,
        ttlbP50Ms: 300,
      },
      {
        t: 1,
        started: 3,
        ok: 1,
        failed: 1,
        inFlight: 2,
        bytes: 1024,
        backoffMs: 100,
        connectP50Ms: 300,
        ttlbP50Ms: 1490,
      },
      {
        t: 2,
        started: 0,
        ok: 0,
        failed: 2,
        inFlight: 0,
        bytes: 2048,
        backoffMs: 0,
        connectP50Ms: 200,
        ttlbP50Ms: null,
      },
    ]);
    // A pause across a window edge is split between the windows.
    const split = timelineOf([], 3000, [{ startMs: 800, endMs: 2300 }]).map((t) => t.backoffMs);
    expect(split).toEqual([200, 1000, 300]);
    expect(timelineOf([], 0)).toHaveLength(1);
  });

  it('subsamples evenly past the cap', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    expect(subsample(xs, 10)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(subsample(xs, 200)).toHaveLength(100);
  });
});

describe('writers', () => {
  let dir = '';
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('writes JSON with every documented field (creating the directory)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shallot-load-'));
    const file = path.join(dir, 'nested', 'results.json');
    await writeJsonReport(file, result);
    const j = JSON.parse(await readFile(file, 'utf8'));
    expectResultFields(j, ['samples']);
    expect(Object.keys(j.latency)).toEqual(['connect', 'ttfb', 'ttlb']);
    expect(j.latency.ttlb).toHaveProperty('p99');
    expect(j.rendezvousSpread).toMatchObject({ perRelay: { relay0: 0.75, '<relay&1>': 0.25, relay2: 0 } });
    expect(j.rendezvousSpread.maxOverMean).toBeCloseTo(3 / (4 / 3), 12);
    expect(typeof j.rendezvousSpread.cv).toBe('number');
    expect(j.samples).toHaveLength(5);
  });

  it('writes a self-contained HTML report with two kinds of chart and escaped names', async () => {
    const file = path.join(dir, 'report.html');
    await writeHtmlReport(file, result);
    const html = await readFile(file, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|\bhref=|@import|url\(/i);
    // The only URL is the SVG namespace, which browsers never fetch.
    expect(html.match(/https?:\/\/[^"\s<]+/g)?.every((u) => u === 'http://www.w3.org/2000/svg')).toBe(true);
    expect(html).toContain('aria-label="latency over time"');
    expect(html).toContain('aria-label="share per relay"');
    expect(html).toContain('&lt;relay&amp;1&gt;');
    expect(html).not.toContain('<relay&1>');
    expect(html).toContain('socks_f0_onion_desc_not_found');
    expect(html).toContain('No events during the run.'); // intro spread had none
    expect(html).toBe(renderHtml(result));
  });

  it('scatter has a dot per latency value and a cross per failure', () => {
    const svg = latencyScatterSvg(records);
    expect(svg.match(/<circle /g)).toHaveLength(3 + 2 + 2);
    expect(svg.match(/<path /g)).toHaveLength(3);
    expect(latencyScatterSvg([])).toContain('</svg>');
  });

  it('bars: one per relay, widths proportional to share', () => {
    const svg = shareBarsSvg(spread({ a: 3, b: 1 }));
    const widths = [...svg.matchAll(/class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(widths).toHaveLength(2);
    expect(widths[0]! / widths[1]!).toBeCloseTo(3, 1);
  });

  it('terminal table: percentiles, client rows, failures, spread', () => {
    const t = renderTable(result);
    expect(t).toMatch(/onion connect\s+200\.0\s+280\.0\s+298\.0/);
    expect(t).toMatch(/circuit build \(client\)\s+20\.0\s+40\.0\s+49\.0/);
    expect(t).toContain('success 2/5 (40.0%)');
    expect(t).toMatch(/socks_f0_onion_desc_not_found\s+2/);
    expect(t).toMatch(/rendezvous spread \(relays, joined\): 3 relays, 4 events, max\/mean 2\.25, CV 0\.94/);
    expect(t).toContain('warning: no checksum for 2048 bytes');
    expect(t).toMatch(/circuits per relay as exit \(client\): 2 relays, 4 events, max\/mean 1\.50/);
    expect(renderHtml(result)).toContain('Circuits per relay as exit (client)');
  });

  it('helpers', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(niceStep(100)).toBe(20);
    expect(niceStep(7)).toBe(2);
    expect(niceStep(0)).toBe(1);
  });
});
