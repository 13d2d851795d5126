// Issue 13, `shallot load` fails loudly: the CLI (`node
// dist/services/testnet/main.js load`) against a process-per-node network
// (3 authorities, 6 relays, an onion service of 2 instances). A dead target
// (a closed port behind the exit) exits 1 with backoff in its timeline and
// without spinning; a counted run stops once --min-success is out of reach;
// an onion run's HTML report has the additions (network header, histogram,
// CDF, throughput, onion connect phases from the client's metrics, intro
// spread over the intro points only, the instances). Needs `npm run build`.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadResult } from '../../services/loadgen/result.js';
import { scrape, sumOf } from '../../services/loadgen/scrape.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { type CommandRun, runCommand } from '../helpers/run-command.js';
import { upProcessNetwork } from '../helpers/testnet.js';

const RELAYS = 6;
const INSTANCES = 2;
const INTRO_POINTS = 2;
let dataDir: string;
let net: RunningNetwork;

/** `shallot load ...` as a user runs it; killed after `limitMs`. */
function load(args: string[], limitMs: number): Promise<CommandRun> {
  return runCommand(process.execPath, ['dist/services/testnet/main.js', 'load', ...args], {
    timeoutMs: limitMs,
  });
}

const lastLine = (s: string) => s.trimEnd().split('\n').at(-1) ?? '';
const readJson = async (f: string) => JSON.parse(await readFile(f, 'utf8')) as LoadResult;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-load-loud-'));
  net = await upProcessNetwork({
    relays: RELAYS,
    exits: 2,
    onionServices: 1,
    instances: INSTANCES,
    introPoints: INTRO_POINTS,
    handshake: 'ntor-v3',
    bootstrapTimeout: 120,
    dataDir,
    logLevel: 'info',
  });
}, 180_000);

afterAll(async () => {
  await net?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('shallot load against a dead target', () => {
  it('exits 1 with backoff in its timeline, a few requests a second at most, and says why last', async () => {
    const dead = await ephemeralPort(); // nothing listens: the exit's connect is refused
    const out = path.join(dataDir, 'dead.json');
    const html = path.join(dataDir, 'dead.html');
    const r = await load(
      [
        `127.0.0.1:${dead}`,
        ...['--data-dir', dataDir, '--duration', '8', '--concurrency', '4', '--no-verify'],
        ...['--progress', 'lines', '--progress-interval', '1', '--out', out, '--html', html],
      ],
      60_000,
    );
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(
      /^FAIL: success ratio 0\.0% \(0\/\d+\) is below --min-success 99\.0%; failures: socks_\w+ x\d+; backed off [\d.]+ s$/,
    );
    const j = await readJson(out);
    expect(j.counts.ok).toBe(0);
    // 4 at once, then one probe after 0.8 s, 1.6 s, 3.2 s, 5 s: not hundreds a second.
    expect(j.counts.requests).toBeGreaterThanOrEqual(5);
    expect(j.counts.requests).toBeLessThanOrEqual(12);
    expect(j.elapsedSec).toBeGreaterThanOrEqual(7.5);
    expect(j.backoff.pauses.length).toBeGreaterThanOrEqual(2);
    expect(j.backoff.totalMs).toBeGreaterThan(4000);
    expect(j.timeline.filter((t) => t.backoffMs > 0).length).toBeGreaterThanOrEqual(4);
    expect(j.samples.some((s) => (s.backoffMs ?? 0) > 700)).toBe(true);
    expect(r.stdout).toMatch(/ backoff \d+\.\d s/); // the progress lines show the pause
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<svg class="failure-timeline"');
    expect(page.match(/<rect class="failure"/g)?.length).toBe(j.counts.requests);
    expect(page).toMatch(/<title>backoff [\d.]+-[\d.]+ s \(/);
  }, 90_000);

  it('stops a counted run as soon as --min-success is out of reach', async () => {
    const dead = await ephemeralPort();
    const r = await load(
      [`127.0.0.1:${dead}`, '--data-dir', dataDir, '--no-verify', '--progress', 'none'],
      60_000,
    );
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(
      /^FAIL: .*; stopped early \(\d+ of 100 requests failed: the success ratio can no longer reach --min-success 0\.99\)$/,
    );
    expect(r.ms).toBeLessThan(30_000);
  }, 90_000);
});

describe('shallot load against the onion service', () => {
  let j: LoadResult;
  let page: string;

  beforeAll(async () => {
    const out = path.join(dataDir, 'onion.json');
    const html = path.join(dataDir, 'onion.html');
    // A new circuit per request: every request fetches nothing (cached), introduces and rendezvouses.
    const r = await load(
      [
        'onion',
        ...['--data-dir', dataDir, '--count', '40', '--concurrency', '4', '--new-circuit', '--size', '4k'],
        ...['--min-success', '0.9', '--progress', 'none', '--out', out, '--html', html],
      ],
      150_000,
    );
    if (r.code !== 0) throw new Error(`load exited ${r.code}: ${r.stderr.slice(-2000)}`);
    expect(lastLine(r.stdout)).toMatch(/^PASS: success ratio/);
    j = await readJson(out);
    page = await readFile(html, 'utf8');
  }, 180_000);

  it("heads the report with the network's settings", () => {
    expect(j.network).toMatchObject({
      relays: RELAYS,
      mode: 'process-per-node',
      onionService: { instances: 2 },
    });
    expect(j.network.handshakes?.['ntor-v3']).toBeGreaterThan(0);
    expect(page).toContain('<td>mode</td><td>process-per-node</td>');
    expect(page).toContain(`<td>relays</td><td>${RELAYS}</td>`);
  });

  it('splits the onion connect into descriptor, introduction, rendezvous and stream from the client', async () => {
    const p = j.onionConnectPhases ?? {};
    // Every request introduces, rendezvouses and opens its stream.
    for (const k of ['introduction', 'rendezvous', 'stream'])
      expect(p[k]?.count ?? 0, k).toBeGreaterThanOrEqual(j.counts.ok);
    expect(p.introduction!.mean!).toBeGreaterThan(0);
    // The descriptor was fetched before the run (by the checksum preflight) and cached since:
    // the client observed that fetch, the run none.
    expect(p.descriptor).toBeUndefined();
    const client = net.state.nodes.find((n) => n.role === 'client')!;
    const now = await scrape([`http://${client.metrics}/metrics`]);
    expect(
      sumOf(now, 'shallot_onion_connect_phase_seconds_count', { phase: 'descriptor' }),
    ).toBeGreaterThanOrEqual(1);
    const phases = page.slice(page.indexOf('<h2 id="phases">'), page.indexOf('<h2 id="failures">'));
    for (const k of ['introduction', 'rendezvous', 'stream']) expect(phases).toContain(`<td>${k}</td>`);
    expect(phases).toContain('<tr><td>descriptor</td><td>not observed during the run (cached)</td>');
    expect(phases).toContain('<svg class="phases"');
  });

  it('spreads introductions over the intro points only, and shows each instance', () => {
    const s = j.introSpread!;
    expect(s.total).toBeGreaterThanOrEqual(j.counts.ok);
    // Intro points of both instances (old ones may linger), far fewer than the relays.
    expect(s.relays).toBeGreaterThanOrEqual(INTRO_POINTS);
    expect(s.relays).toBeLessThan(RELAYS);
    expect(page).toContain(`<h2>Introduction load per intro point</h2>\n<p>${s.relays} intro points`);
    const inst = j.instanceSpread!;
    expect(Object.keys(inst.introPoints).sort()).toEqual(['0', '1']);
    // Per-instance load needs service_instance on the service's counters; when missing, the report says so.
    if (inst.introductions) expect(inst.introductions.total).toBeGreaterThanOrEqual(j.counts.ok);
    else expect(inst.notes.join()).toMatch(/no service_instance label/);
    expect(page).toContain('<h2 id="instances">');
  });

  it('draws the distribution and throughput over the whole run', () => {
    expect(j.latency.ttlb.p999).not.toBeNull();
    for (const cls of ['histogram', 'cdf', 'throughput', 'scatter'])
      expect(page).toContain(`<svg class="${cls}"`);
    expect(j.distribution.ttlb.bins.reduce((sum, b) => sum + b.count, 0)).toBe(j.counts.ok);
    expect(j.timeline.length).toBe(Math.max(1, Math.ceil(j.elapsedSec)));
  });
});
