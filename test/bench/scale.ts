/**
 * `npm run bench:scale` (issue 17): boots `shallot up` in its default mode
 * (worker threads, one per core) at each size and prints, per size: time to
 * usable, RSS total and per relay, idle CPU, the consensus's Running relay
 * count sampled every voting interval (it must never drop below the size),
 * how long after valid-after each new consensus was served (the live cost
 * of voting), each authority's vote and consensus computation time (the
 * shallot_dir_round_compute_seconds gauge, read every sample), descriptor
 * uploads per relay per voting interval while idle (the authorities'
 * shallot_dir_descriptors_total), and 20 onion + 20 exit fetches through
 * the SOCKS port with every digest checked. JSON to
 * bench-results/scale-<timestamp>.json.
 *
 * Options: --sizes=100,300,1000,2000  --idle=60 (seconds of idle CPU)
 * --sample=300 (seconds of consensus sampling, idle CPU taken in its first
 * --idle seconds)  --fetch-bytes=1048576  --workers=N (default one per core)
 * --voting-interval (default: shallot up's, 10 s growing past 500 relays).
 * A quick run: --sizes=100 --idle=10 --sample=20.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { socksConnect } from '../../services/loadgen/socks-client.js';
import { fetchConsensus } from '../../services/net/dir-client.js';
import type { NetworkState } from '../../services/testnet/state.js';

const args = process.argv.slice(2);
const arg = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const num = (name: string, fallback: number) => {
  const v = Number(arg(name));
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const sizes = (arg('sizes') ?? '100,300,1000,2000').split(',').map(Number);
const idleSec = num('idle', 60);
const sampleSec = Math.max(num('sample', 300), idleSec);
const fetchBytes = num('fetch-bytes', 1 << 20);
const workers = num('workers', os.availableParallelism());
/** Unset: `shallot up`'s default, which grows with the relays (testnet/launch.ts defaultVotingInterval). */
const votingIntervalArg = arg('voting-interval');
/** `shallot up`'s --log-level (default warn); info logs each authority's failed re-tests (issue 17). */
const logLevel = arg('log-level') ?? 'warn';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.split('/').includes('dist') ? '../../..' : '../..');
const TICK = 100; // /proc/<pid>/stat clock ticks per second (USER_HZ on Linux)

interface SizeResult {
  relays: number;
  exits: number;
  workers: number;
  usableSec?: number;
  rssMiB?: number;
  rssPerRelayMiB?: number;
  idleCpuPercentOfCore?: number;
  /** Running relays in each sampled consensus. */
  consensusRunning: number[];
  consensusMin?: number;
  consensusDropped?: boolean;
  /** Seconds from valid-after until an authority served that consensus, per new consensus. */
  consensusLagSec: number[];
  /** The slowest authority's vote and consensus computation, seconds, per sample. */
  voteSec: number[];
  consensusSec: number[];
  voteSecMax?: number;
  consensusSecMax?: number;
  votingIntervalSec?: number;
  /** Per sample, each authority's relays its latest vote did not call Running, by reason ("auth0 unreachable" -> n). */
  notRunning: Record<string, number>[];
  /** Per sample, nicknames the consensus lists without Running (at most 30). */
  consensusNotRunning: string[][];
  /** Descriptor uploads each authority received per relay per voting interval, over the idle window. */
  uploadsPerRelayPerInterval?: number;
  /**
   * Where the launcher's RSS goes, at the idle measurement: each worker's V8
   * heap (committed and live) and external memory (Buffers and other
   * off-heap memory V8 is told about), from its /metrics; the rest of the RSS
   * is native (OpenSSL, Node's TLS buffers, malloc arenas) and the binary.
   */
  memory?: { workers: WorkerMemory[]; restMiB: number };
  onionOk: number;
  exitOk: number;
  fetchFailures: string[];
  error?: string;
}

interface WorkerMemory {
  name: string;
  heapTotalMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
}

/** One worker's V8 heap and external memory from its /metrics (prom-client's default Node metrics). */
async function workerMemory(name: string, hostPort: string): Promise<WorkerMemory> {
  const text = await fetch(`http://${hostPort}/metrics`, { signal: AbortSignal.timeout(10_000) })
    .then((res) => res.text())
    .catch(() => '');
  const get = (metric: string) => {
    const m = new RegExp(`^shallot_${metric}\\{[^}]*\\} (\\S+)`, 'm').exec(text);
    return Number(m?.[1] ?? 0) / 2 ** 20;
  };
  return {
    name,
    heapTotalMiB: get('nodejs_heap_size_total_bytes'),
    heapUsedMiB: get('nodejs_heap_size_used_bytes'),
    externalMiB: get('nodejs_external_memory_bytes'),
  };
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / TICK; // utime, stime (fields 14, 15)
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

/** GET through the SOCKS port, the whole body (HTTP/1.1, Connection: close). */
async function socksGet(socks: string, host: string, port: number, pathname: string): Promise<Buffer> {
  const [proxyHost, proxyPort] = socks.split(':');
  const c = await socksConnect({
    proxyHost: proxyHost ?? '127.0.0.1',
    proxyPort: Number(proxyPort),
    host,
    port,
    signal: AbortSignal.timeout(120_000),
  });
  const chunks: Buffer[] = [];
  const done = new Promise<void>((res, rej) => {
    c.socket.on('data', (d: Buffer) => chunks.push(d));
    c.socket.once('end', () => res());
    c.socket.once('error', rej);
  });
  c.socket.resume();
  c.socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  await done;
  const all = Buffer.concat(chunks);
  const at = all.indexOf('\r\n\r\n');
  const head = all.subarray(0, at).toString();
  if (at < 0 || !/^HTTP\/1\.[01] 200/.test(head)) throw new Error(`bad response: ${head.slice(0, 60)}`);
  return all.subarray(at + 4);
}

async function fetchChecked(socks: string, host: string, port: number): Promise<void> {
  const body = await socksGet(socks, host, port, `/bytes/${fetchBytes}`);
  const want = (await socksGet(socks, host, port, `/sha256/${fetchBytes}`)).toString().trim();
  const got = createHash('sha256').update(body).digest('hex');
  if (body.length !== fetchBytes || got !== want)
    throw new Error(`digest mismatch (${body.length} bytes, ${got.slice(0, 12)} vs ${want.slice(0, 12)})`);
}

/**
 * The authorities' workers' metrics (one worker each, named auth<i>): the
 * slowest authority's latest vote and consensus computation (seconds) and
 * descriptor uploads received so far (all authorities). Nothing from a
 * failed scrape.
 */
interface Scraped {
  vote?: number;
  consensus?: number;
  uploads: number;
  /** shallot_dir_vote_relays_not_running by "authority reason". */
  notRunning: Record<string, number>;
}

async function scrape(hostPorts: string[]): Promise<Scraped> {
  const out: Scraped = { uploads: 0, notRunning: {} };
  const texts = await Promise.all(
    hostPorts.map((hostPort) =>
      fetch(`http://${hostPort}/metrics`, { signal: AbortSignal.timeout(10_000) })
        .then((res) => res.text())
        .catch(() => ''),
    ),
  );
  const text = texts.join('\n');
  for (const line of text.split('\n')) {
    const step = /^shallot_dir_round_compute_seconds\{[^}]*step="(vote|consensus)"[^}]*\} (\S+)/.exec(line);
    if (step) out[step[1] as 'vote' | 'consensus'] = Math.max(out[step[1] as 'vote'] ?? 0, Number(step[2]));
    const up = /^shallot_dir_descriptors_total\{[^}]*\} (\S+)/.exec(line);
    if (up) out.uploads += Number(up[1]);
    const nr =
      /^shallot_dir_vote_relays_not_running\{(?=[^}]*authority="([^"]*)")(?=[^}]*reason="([^"]*)")[^}]*\} (\S+)/.exec(
        line,
      );
    if (nr) out.notRunning[`${nr[1]} ${nr[2]}`] = Number(nr[3]);
  }
  return out;
}

function startUp(dataDir: string, relays: number, exits: number): { child: ChildProcess; out: () => string } {
  let out = '';
  const child = spawn(
    process.execPath,
    [
      join(root, 'dist/services/testnet/main.js'),
      'up',
      ...['--relays', String(relays), '--exits', String(exits), '--workers', String(workers)],
      ...['--data-dir', dataDir, '--base-port', '0'],
      ...(votingIntervalArg ? ['--voting-interval', votingIntervalArg] : []),
      ...['--socks-port', '29050', '--http-tunnel-port', '29080', '--bootstrap-timeout', '3600'],
      '--log-level',
      logLevel,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, out: () => out };
}

async function runSize(relays: number): Promise<SizeResult> {
  const exits = Math.max(3, Math.round(relays / 10));
  const r: SizeResult = {
    relays,
    exits,
    workers,
    consensusRunning: [],
    consensusLagSec: [],
    voteSec: [],
    consensusSec: [],
    notRunning: [],
    consensusNotRunning: [],
    onionOk: 0,
    exitOk: 0,
    fetchFailures: [],
  };
  const dataDir = await mkdtemp(join(os.tmpdir(), `shallot-scale-${relays}-`));
  const t0 = Date.now();
  const { child, out } = startUp(dataDir, relays, exits);
  const pid = child.pid ?? 0;
  try {
    await new Promise<void>((res, rej) => {
      const onData = () => out().includes('Press Ctrl-C to stop.') && res();
      child.stdout?.on('data', onData);
      child.once('exit', (code) => rej(new Error(`shallot up exited (${code}): ${out().slice(-600)}`)));
    });
    r.usableSec = (Date.now() - t0) / 1000;
    const state = JSON.parse(await readFile(join(dataDir, 'state.json'), 'utf8')) as NetworkState;
    log(`${relays} relays: usable in ${r.usableSec.toFixed(1)} s; sampling ${sampleSec} s`);
    const authMetrics = state.nodes.filter((n) => /^auth\d+$/.test(n.name)).map((n) => n.metrics ?? '');
    const uploads0 = (await scrape(authMetrics)).uploads;
    const cpu0 = cpuSeconds(pid);
    const sampleStart = Date.now();
    let lastValidAfter = 0;
    let idleMeasured = false;
    let votingInterval = Number(votingIntervalArg ?? 10);
    while (Date.now() - sampleStart < sampleSec * 1000) {
      const c = await fetchConsensus(state.authorities, { nowMs: Date.now(), timeoutMs: 10_000 }).catch(
        () => null,
      );
      const running = c ? c.consensus.relays.filter((x) => x.flags.includes('Running')).length : 0;
      r.consensusRunning.push(running);
      r.consensusNotRunning.push(
        (c?.consensus.relays ?? [])
          .filter((x) => !x.flags.includes('Running'))
          .slice(0, 30)
          .map((x) => x.nickname),
      );
      const va = c?.consensus.validAfterMs ?? 0;
      // Sample once per voting interval, the network's (fresh-until minus valid-after).
      if (c) votingInterval = (c.consensus.freshUntilMs - c.consensus.validAfterMs) / 1000;
      r.votingIntervalSec = votingInterval;
      if (va > lastValidAfter && lastValidAfter > 0) r.consensusLagSec.push((Date.now() - va) / 1000);
      lastValidAfter = Math.max(lastValidAfter, va);
      const m = await scrape(authMetrics);
      if (m.vote !== undefined) r.voteSec.push(m.vote);
      if (m.consensus !== undefined) r.consensusSec.push(m.consensus);
      r.notRunning.push(m.notRunning);
      if (!idleMeasured && Date.now() - sampleStart >= idleSec * 1000) {
        const wall = (Date.now() - sampleStart) / 1000;
        r.idleCpuPercentOfCore = (100 * (cpuSeconds(pid) - cpu0)) / wall;
        r.rssMiB = rssMiB(pid);
        r.rssPerRelayMiB = r.rssMiB / relays;
        const workers = await Promise.all(
          state.nodes.filter((n) => n.role === 'worker').map((n) => workerMemory(n.name, n.metrics ?? '')),
        );
        const inHeaps = workers.reduce((a, w) => a + w.heapTotalMiB + w.externalMiB, 0);
        r.memory = { workers, restMiB: r.rssMiB - inHeaps };
        const intervals = wall / votingInterval;
        r.uploadsPerRelayPerInterval = (m.uploads - uploads0) / 3 / relays / intervals;
        idleMeasured = true;
      }
      await new Promise((res) => setTimeout(res, votingInterval * 1000));
    }
    r.consensusMin = Math.min(...r.consensusRunning);
    r.voteSecMax = Math.max(0, ...r.voteSec);
    r.consensusSecMax = Math.max(0, ...r.consensusSec);
    r.consensusDropped = r.consensusMin < relays;
    const [webHost, webPort] = (state.web ?? '').split(':');
    const onion = state.onionServices[0]?.address ?? '';
    for (let i = 0; i < 20; i++) {
      await fetchChecked(state.socks, webHost ?? '', Number(webPort)).then(
        () => r.exitOk++,
        (e: Error) => r.fetchFailures.push(`exit: ${e.message}`),
      );
      await fetchChecked(state.socks, onion, 80).then(
        () => r.onionOk++,
        (e: Error) => r.fetchFailures.push(`onion: ${e.message}`),
      );
    }
  } catch (e) {
    r.error = (e as Error).message;
  } finally {
    const running = child.exitCode === null && child.signalCode === null;
    const exited = running ? new Promise<void>((res) => child.once('exit', () => res())) : Promise.resolve();
    if (running) child.kill('SIGINT');
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(force);
    // A failed size keeps its data dir (shallot.log) for a look at why.
    const failed = r.error || r.consensusDropped || r.onionOk < 20 || r.exitOk < 20;
    if (failed) log(`${relays} relays failed; logs kept in ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  }
  return r;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const fmt = (v: number | undefined, d = 1) => (v === undefined ? '-' : v.toFixed(d));

async function main(): Promise<void> {
  const results: SizeResult[] = [];
  for (const n of sizes) {
    const r = await runSize(n);
    results.push(r);
    log(
      `relays ${n}: usable ${fmt(r.usableSec)} s, RSS ${fmt(r.rssMiB, 0)} MiB (${fmt(r.rssPerRelayMiB, 2)}/relay), ` +
        `idle CPU ${fmt(r.idleCpuPercentOfCore)} % of a core, consensus Running min ${r.consensusMin ?? '-'} of ${n}` +
        ` over ${r.consensusRunning.length} samples${r.consensusDropped ? ' (DROPPED)' : ''}, ` +
        `consensus served ${fmt(Math.max(0, ...r.consensusLagSec))} s after valid-after at worst, ` +
        `vote ${fmt(r.voteSecMax, 3)} s, consensus ${fmt(r.consensusSecMax, 3)} s to compute at worst, ` +
        `${fmt(r.uploadsPerRelayPerInterval, 3)} uploads/relay/interval idle, ` +
        `fetches onion ${r.onionOk}/20 exit ${r.exitOk}/20${r.error ? `; error: ${r.error}` : ''}`,
    );
    if (r.memory)
      log(
        `  memory: ${r.memory.workers
          .map(
            (w) =>
              `${w.name} heap ${fmt(w.heapTotalMiB, 0)} MiB (${fmt(w.heapUsedMiB, 0)} live) + external ${fmt(w.externalMiB, 0)} MiB`,
          )
          .join('; ')}; the rest (main thread's heap, native, binary) ${fmt(r.memory.restMiB, 0)} MiB`,
      );
  }
  const dir = join(root, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const report = {
    at: new Date().toISOString(),
    machine: { cores: os.availableParallelism(), memGiB: os.totalmem() / 2 ** 30, node: process.version },
    options: {
      sizes,
      idleSec,
      sampleSec,
      fetchBytes,
      workers,
      votingInterval: votingIntervalArg ?? 'default',
    },
    results,
  };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  log(`JSON: ${file}`);
  const bad = results.some((r) => r.error || r.consensusDropped || r.onionOk < 20 || r.exitOk < 20);
  process.exitCode = bad ? 1 : 0;
}

void main();
