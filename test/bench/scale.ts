/**
 * `npm run bench:scale` (issue 17): boots `shallot up` in its default mode
 * (worker threads, one per core) at each size and prints, per size: time to
 * usable, RSS total and per relay, idle CPU, the launcher's open file
 * descriptors against its soft limit, the consensus's Running relay
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
 *
 * Under load and faults (opt-in, after the idle window, until the end of
 * the sample; HELP below says what each option does): --load runs `shallot
 * load` to the onion service and to the exit target, --faults kills some
 * relays, pauses others and stops (then starts) others for a few voting
 * intervals with `shallot fault`; the report adds load and circuit success, the Running count of
 * each consensus against the size minus the relays down, how long faulted
 * relays took to be dropped and resumed ones to be listed again, and any
 * never-faulted relay that lost Running (scale-faults.ts judges,
 * scale-load.ts runs the tools).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { type Snapshot, scrape as scrapeMetrics } from '../../services/loadgen/scrape.js';
import { socksConnect } from '../../services/loadgen/socks-client.js';
import { fetchConsensus } from '../../services/net/dir-client.js';
import { NODE_PROCESS_ENV, NODE_PROCESS_HEAP_FLAGS } from '../../services/runtime/heap-flags.js';
import { MAX_FAULT_SECONDS } from '../../services/testnet/fault.js';
import { parseOpenFileLimit } from '../../services/testnet/fd-budget.js';
import type { NetworkState } from '../../services/testnet/state.js';
import { processCpuSeconds, processOpenFds, processRssMiB } from './proc-stat.js';
import { benchResultsPath, REPO_ROOT } from './results-file.js';
import {
  allowedFailureShare,
  type CircuitOutcomes,
  type ConsensusSample,
  circuitOutcomes,
  type FaultOutcome,
  faultOutcomes,
  graceIntervals,
  HOPS,
  judgeSamples,
  type PlannedFault,
  phaseProblems,
  planFaults,
  type SampleVerdict,
} from './scale-faults.js';
import { faultWindows, injectFault, type LoadSummary, type RunningLoad, startLoad } from './scale-load.js';

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
const withLoad = args.includes('--load');
const withFaults = args.includes('--faults');
const loadSettings = {
  concurrency: num('load-concurrency', 4),
  rate: num('load-rate', 2),
  size: arg('load-size') ?? '100k',
};
const faultShareArg = num('fault-share', 0.01);
const pauseIntervals = num('pause-intervals', 3);
/** Keep each size's data dir (shallot.log, the load runs' JSON) even when it passed. */
const keepData = args.includes('--keep-data');

const HELP = `npm run bench:scale -- [options]   (node dist/test/bench/scale.js [options])

Boots shallot up (worker threads) at each size and reports time to usable,
RSS, idle CPU, open file descriptors (idle, at most, and the soft limit every
node shares), the consensus's Running relays every voting interval, vote
and consensus compute time, then 20 onion + 20 exit fetches with digests
checked. JSON to bench-results/scale-<time>.json; a failed size keeps its
data dir (shallot.log, and with --load each run's JSON and output).

  --sizes=100,300,1000,2000   relays per run
  --idle=60                   seconds of idle CPU, at the start of the sample
  --sample=300                seconds of consensus sampling
  --fetch-bytes=1048576       size of each of the 40 final fetches
  --workers=N                 shallot up --workers (default: one per core)
  --voting-interval=S         shallot up --voting-interval (default: its own)
  --log-level=warn            shallot up --log-level (info: failed re-tests)
  --keep-data                 keep every size's data dir, not only failed ones'

Under load and faults (from the end of the idle window to the end of the sample):
  --load                      shallot load to the onion service and to the exit
                              target at once, a new circuit per request, bodies
                              checked against /sha256 (its default)
  --load-rate=2               requests started per second, per target
  --load-concurrency=4        requests in flight at most, per target
  --load-size=100k            payload per request
  --faults                    one voting interval in, shallot fault kills a third
                              of --fault-share of the relays (down to the end),
                              pauses a third (links held) and stops a third (its
                              clean stop), both for --pause-intervals voting
                              intervals, then resumed / started again; sampling
                              then runs on (bounded) until those are Running again
                              and a consensus is out ${graceIntervals()} intervals after the last
  --fault-share=0.01          share of relays faulted (at least 2), spread evenly
  --pause-intervals=3         how long paused and stopped relays stay so

With --faults a size fails when a relay never faulted loses Running, a
consensus off the expected count (size minus relays down) once no fault
started or healed within ${graceIntervals()} voting intervals, a paused or stopped relay
that was dropped and not listed again, a killed one never dropped, or load failing
beyond the faulted relays' share (1 - (1 - f)^hops, hops 3 exit, 6 onion).
`;
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(HELP);
  process.exit(0);
}

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
  /**
   * The launcher's open file descriptors (every node's sockets: relays and
   * authorities share its one table) at the idle measurement and at most
   * over the sample, against its soft RLIMIT_NOFILE: past it, dials and
   * accepts fail with EMFILE.
   */
  fds?: { idle?: number; max: number; limit: number };
  /** With --load / --faults: what happened under them. */
  phase?: PhaseResult;
  error?: string;
}

interface PhaseResult {
  /** Seconds from the start of sampling to the start of load and faults. */
  startSec: number;
  endSec: number;
  load: LoadSummary[];
  /** The failure share each load run may have (allowedFailureShare), by target. */
  allowedFailureShare: Record<string, number>;
  /** Circuit builds on the launcher's thread (client and onion services) over the phase. */
  circuits?: CircuitOutcomes;
  cpuPercentOfCore: number;
  rssMiB: number;
  planned: PlannedFault[];
  pauseSec: number;
  injectErrors: string[];
  /** Consensus fetches that failed during the phase. */
  consensusFetchFailures: number;
  faults: FaultOutcome[];
  /** After a fault starts or heals, how long a consensus may still disagree with it. */
  graceSec: number;
  /** Each distinct consensus sampled in the phase. */
  consensuses: SampleVerdict[];
  healthyLost: string[];
  problems: string[];
}

/** The load and fault phase while it runs (--load / --faults). */
interface Phase {
  startMs: number;
  cpu0: number;
  circuits0: Snapshot;
  samples: ConsensusSample[];
  fetchFailures: number;
  loads: { target: 'onion' | 'web'; run: RunningLoad }[];
  loadEndMs: number;
  planned: PlannedFault[];
  pauseSec: number;
  /** When each fault was injected (the CLI returned). */
  injectedAt: Map<string, number>;
  injectErrors: string[];
  faultsDone: Promise<void>;
  /** Sampling may run past --sample until then, for resumed relays to be listed again. */
  relistDeadlineMs: number;
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

/** The soft open-file limit of `pid` (0 when unlimited), as `shallot up` reads its own (fd-budget.ts). */
function fdLimitOf(pid: number): number {
  return parseOpenFileLimit(readFileSync(`/proc/${pid}/limits`, 'utf8')) ?? 0;
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
  // As the shallot command starts (its shebang): the same heap flags and
  // malloc arenas (runtime/heap-flags.ts), so the RSS is what users get.
  const child = spawn(
    process.execPath,
    [
      ...NODE_PROCESS_HEAP_FLAGS,
      join(REPO_ROOT, 'dist/services/testnet/main.js'),
      'up',
      ...['--relays', String(relays), '--exits', String(exits), '--workers', String(workers)],
      ...['--data-dir', dataDir, '--base-port', '0'],
      ...(votingIntervalArg ? ['--voting-interval', votingIntervalArg] : []),
      ...['--socks-port', '29050', '--http-tunnel-port', '29080', '--bootstrap-timeout', '3600'],
      '--log-level',
      logLevel,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...NODE_PROCESS_ENV } },
  );
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, out: () => out };
}

const cli = () => join(REPO_ROOT, 'dist/services/testnet/main.js');
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const launcherMetrics = (state: NetworkState) =>
  state.nodes.filter((n) => n.role === 'launcher' && n.metrics).map((n) => `http://${n.metrics}/metrics`);

/**
 * Starts load (both targets at once, until `sampleEndMs`) and, one voting
 * interval later so the load has a baseline, the faults one by one.
 */
async function startPhase(
  dataDir: string,
  state: NetworkState,
  pid: number,
  relays: number,
  intervalSec: number,
  sampleEndMs: number,
): Promise<Phase> {
  const startMs = Date.now();
  const planned = withFaults ? planFaults(relays, faultShareArg) : [];
  const pauseSec = Math.round(pauseIntervals * intervalSec);
  const durationSec = Math.max(Math.round(intervalSec), Math.round((sampleEndMs - startMs) / 1000));
  const p: Phase = {
    startMs,
    cpu0: processCpuSeconds(pid),
    circuits0: await scrapeMetrics(launcherMetrics(state), 10_000),
    samples: [],
    fetchFailures: 0,
    loads: withLoad
      ? (['onion', 'web'] as const).map((target) => ({
          target,
          run: startLoad(cli(), dataDir, target, { ...loadSettings, durationSec }),
        }))
      : [],
    loadEndMs: startMs + durationSec * 1000,
    planned,
    pauseSec,
    injectedAt: new Map(),
    injectErrors: [],
    faultsDone: Promise.resolve(),
    relistDeadlineMs: 0,
  };
  if (planned.length > 0) {
    const faultsAt = startMs + intervalSec * 1000;
    p.relistDeadlineMs = faultsAt + (pauseSec + (graceIntervals() + 1) * intervalSec) * 1000 + 30_000;
    p.faultsDone = (async () => {
      await sleep(faultsAt - Date.now());
      for (const f of planned) {
        // A killed relay stays down to the end of the run (it would start again, same keys, when the fault heals).
        const sec = f.kind === 'kill' ? MAX_FAULT_SECONDS : pauseSec;
        await injectFault(cli(), dataDir, f, sec).then(
          () => p.injectedAt.set(f.target, Date.now()),
          (e: Error) => p.injectErrors.push(`${f.kind} ${f.target}: ${e.message}`),
        );
      }
    })();
    log(
      `  load and faults from ${((startMs - sampleEndMs) / 1000 + sampleSec).toFixed(0)} s: ` +
        `${withLoad ? `shallot load onion + web for ${durationSec} s (${loadSettings.rate}/s, ${loadSettings.concurrency} in flight, ${loadSettings.size} each)` : 'no load'}; ` +
        `in ${intervalSec} s kill ${planned.filter((f) => f.kind === 'kill').length}, pause ${planned.filter((f) => f.kind === 'pause').length} ` +
        `and stop ${planned.filter((f) => f.kind === 'stop').length} for ${pauseSec} s: ` +
        planned.map((f) => `${f.kind} ${f.target}`).join(', '),
    );
  } else log(`  load from here: shallot load onion + web for ${durationSec} s`);
  return p;
}

/**
 * Whether to sample on past --sample (bounded by relistDeadlineMs): until
 * every fault is in, every paused or stopped relay is Running again after
 * it healed, and one consensus came out `graceIntervals()` after the last
 * fault started or healed, so the count is checked once all is settled.
 */
function awaitingSettled(p: Phase, intervalSec: number): boolean {
  if (p.planned.length === 0 || Date.now() >= p.relistDeadlineMs) return false;
  const last = p.samples[p.samples.length - 1];
  if (!last) return true;
  let lastEvent = 0;
  for (const f of p.planned) {
    const at = p.injectedAt.get(f.target);
    if (at === undefined) {
      if (p.injectErrors.some((e) => e.includes(` ${f.target}:`))) continue;
      return true; // not injected yet
    }
    const healAt = f.kind === 'kill' ? at : at + p.pauseSec * 1000;
    lastEvent = Math.max(lastEvent, healAt);
    if (f.kind !== 'kill' && (last.validAfterMs < healAt || !last.running.has(f.target))) return true;
  }
  return last.validAfterMs < lastEvent + graceIntervals() * intervalSec * 1000;
}

async function finishPhase(
  p: Phase,
  dataDir: string,
  state: NetworkState,
  pid: number,
  relays: number,
  intervalSec: number,
  sampleStartMs: number,
): Promise<PhaseResult> {
  await p.faultsDone;
  // Each run ends on its own at --duration plus the requests in flight (--timeout 60); past that, stop it.
  const loads = await Promise.all(
    p.loads.map(async ({ run }) => {
      const late = setTimeout(() => run.stop(30_000), Math.max(0, p.loadEndMs - Date.now()) + 90_000);
      const res = await run.done;
      clearTimeout(late);
      return res;
    }),
  );
  const endMs = Date.now();
  const circuits1 = await scrapeMetrics(launcherMetrics(state), 10_000);
  const windows = p.planned.length > 0 ? await faultWindows(dataDir) : [];
  const seen = new Set<number>();
  const distinct = p.samples.filter((c) => !seen.has(c.validAfterMs) && seen.add(c.validAfterMs));
  const graceSec = graceIntervals() * intervalSec;
  const consensuses = judgeSamples(relays, windows, distinct, graceSec * 1000, p.startMs);
  const faults = faultOutcomes(windows, distinct, p.startMs);
  const allowed: Record<string, number> = {
    onion: allowedFailureShare(windows.length, relays, HOPS.onion),
    web: allowedFailureShare(windows.length, relays, HOPS.exit),
  };
  const problems = [
    ...p.injectErrors,
    ...(p.fetchFailures > 0 ? [`${p.fetchFailures} consensus fetches failed`] : []),
    ...phaseProblems({
      samples: consensuses,
      outcomes: faults,
      load: loads.map((l) => ({ ...l, allowedShare: allowed[l.target] ?? 0 })),
    }),
  ];
  return {
    startSec: (p.startMs - sampleStartMs) / 1000,
    endSec: (endMs - sampleStartMs) / 1000,
    load: loads,
    allowedFailureShare: allowed,
    circuits: circuitOutcomes(p.circuits0, circuits1),
    cpuPercentOfCore: (100 * (processCpuSeconds(pid) - p.cpu0)) / ((endMs - p.startMs) / 1000),
    rssMiB: processRssMiB(pid),
    planned: p.planned,
    pauseSec: p.pauseSec,
    injectErrors: p.injectErrors,
    consensusFetchFailures: p.fetchFailures,
    faults,
    graceSec,
    consensuses,
    healthyLost: [...new Set(consensuses.flatMap((c) => c.healthyMissing))],
    problems,
  };
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
  let fdTimer: NodeJS.Timeout | undefined;
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
    const fds = { max: processOpenFds(pid), limit: fdLimitOf(pid) };
    r.fds = fds;
    // Every 2 s, so a short peak under load is seen.
    fdTimer = setInterval(() => {
      fds.max = Math.max(fds.max, processOpenFds(pid));
    }, 2000);
    const cpu0 = processCpuSeconds(pid);
    const sampleStart = Date.now();
    let lastValidAfter = 0;
    let idleMeasured = false;
    let votingInterval = Number(votingIntervalArg ?? 10);
    let phase: Phase | undefined;
    const sampleEnd = sampleStart + sampleSec * 1000;
    while (Date.now() < sampleEnd || (phase !== undefined && awaitingSettled(phase, votingInterval))) {
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
      if (phase && c)
        phase.samples.push({
          atMs: Date.now(),
          validAfterMs: va,
          running: new Set(
            c.consensus.relays.filter((x) => x.flags.includes('Running')).map((x) => x.nickname),
          ),
        });
      else if (phase) phase.fetchFailures++;
      const m = await scrape(authMetrics);
      if (m.vote !== undefined) r.voteSec.push(m.vote);
      if (m.consensus !== undefined) r.consensusSec.push(m.consensus);
      r.notRunning.push(m.notRunning);
      if (!idleMeasured && Date.now() - sampleStart >= idleSec * 1000) {
        const wall = (Date.now() - sampleStart) / 1000;
        r.idleCpuPercentOfCore = (100 * (processCpuSeconds(pid) - cpu0)) / wall;
        r.rssMiB = processRssMiB(pid);
        r.rssPerRelayMiB = r.rssMiB / relays;
        if (r.fds) r.fds.idle = processOpenFds(pid);
        const workers = await Promise.all(
          state.nodes.filter((n) => n.role === 'worker').map((n) => workerMemory(n.name, n.metrics ?? '')),
        );
        const inHeaps = workers.reduce((a, w) => a + w.heapTotalMiB + w.externalMiB, 0);
        r.memory = { workers, restMiB: r.rssMiB - inHeaps };
        const intervals = wall / votingInterval;
        r.uploadsPerRelayPerInterval = (m.uploads - uploads0) / 3 / relays / intervals;
        idleMeasured = true;
        if (withLoad || withFaults)
          phase = await startPhase(dataDir, state, pid, relays, votingInterval, sampleEnd);
      }
      // Under faults, twice an interval, so no consensus between two samples goes unseen.
      await sleep((phase ? votingInterval / 2 : votingInterval) * 1000);
    }
    if (phase) r.phase = await finishPhase(phase, dataDir, state, pid, relays, votingInterval, sampleStart);
    r.consensusMin = Math.min(...r.consensusRunning);
    r.voteSecMax = Math.max(0, ...r.voteSec);
    r.consensusSecMax = Math.max(0, ...r.consensusSec);
    // Under faults the faulted relays leave on purpose: only a relay never faulted counts as a drop.
    r.consensusDropped = r.phase
      ? r.phase.healthyLost.length > 0 || r.phase.consensusFetchFailures > 0
      : r.consensusMin < relays;
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
    clearInterval(fdTimer);
    const running = child.exitCode === null && child.signalCode === null;
    const exited = running ? new Promise<void>((res) => child.once('exit', () => res())) : Promise.resolve();
    if (running) child.kill('SIGINT');
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(force);
    // A failed size keeps its data dir (shallot.log) for a look at why.
    const failed = sizeFailed(r);
    if (failed || keepData) log(`${relays} relays ${failed ? 'failed' : 'done'}; logs kept in ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  }
  return r;
}

const sizeFailed = (r: SizeResult): boolean =>
  !!r.error || !!r.consensusDropped || r.onionOk < 20 || r.exitOk < 20 || (r.phase?.problems.length ?? 0) > 0;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const fmt = (v: number | null | undefined, d = 1) => (v === undefined || v === null ? '-' : v.toFixed(d));

const names = (xs: readonly string[]) =>
  xs.length > 8 ? `${xs.slice(0, 8).join(', ')} +${xs.length - 8}` : xs.join(', ');

function printPhase(p: PhaseResult): void {
  log(`  under load and faults, from ${fmt(p.startSec, 0)} s to ${fmt(p.endSec, 0)} s of the sample:`);
  for (const l of p.load) {
    const reasons = Object.entries(l.failuresByReason)
      .map(([k, v]) => `${k} x${v}`)
      .join(', ');
    log(
      `    load ${l.target}: ${l.requests} requests, ${l.ok} ok, ${l.failed} failed ` +
        `(${fmt((100 * l.failed) / Math.max(1, l.requests))} %, the faults explain up to ${fmt(100 * (p.allowedFailureShare[l.target] ?? 0))} %), ` +
        `${fmt(l.requestsPerSec, 2)} req/s, ${fmt(l.bytesPerSec / 1024, 0)} KiB/s; connect p50/p99 ${fmt(l.connectP50Ms, 0)}/${fmt(l.connectP99Ms, 0)} ms, ` +
        `whole request ${fmt(l.ttlbP50Ms, 0)}/${fmt(l.ttlbP99Ms, 0)} ms${reasons ? `; failures: ${reasons}` : ''}${l.error ? `; ${l.error}` : ''}`,
    );
  }
  const c = p.circuits;
  if (c)
    log(
      `    circuits (client and onion services): ${c.success} built, ${c.failure} failed` +
        ` (${c.ratio === null ? '-' : fmt(100 * c.ratio)} % success)` +
        `${
          Object.keys(c.failuresByReason).length
            ? `; by reason ${Object.entries(c.failuresByReason)
                .map(([k, v]) => `${k} x${v}`)
                .join(', ')}`
            : ''
        }`,
    );
  log(`    launcher CPU ${fmt(p.cpuPercentOfCore)} % of a core, RSS ${fmt(p.rssMiB, 0)} MiB at the end`);
  for (const f of p.faults)
    log(
      `    ${f.kind} ${f.target} at ${fmt(f.startSec, 0)} s${f.heldSec === null ? ' (down to the end)' : ` for ${fmt(f.heldSec, 0)} s`}: ` +
        `${f.droppedAfterSec === null ? 'never dropped from Running' : `dropped ${fmt(f.droppedAfterSec, 0)} s after`}` +
        `${f.heldSec === null || f.droppedAfterSec === null ? '' : f.relistedAfterSec === null ? ', not seen Running again' : `, Running again ${fmt(f.relistedAfterSec, 0)} s after it resumed`}`,
    );
  for (const v of p.consensuses) {
    const extra = [
      v.downListed.length ? `down yet Running: ${names(v.downListed)}` : '',
      v.healedMissing.length ? `resumed, not yet Running: ${names(v.healedMissing)}` : '',
      v.healthyMissing.length ? `NEVER FAULTED, NOT RUNNING: ${names(v.healthyMissing)}` : '',
    ].filter(Boolean);
    log(
      `    consensus at ${fmt(v.validAfterSec, 0)} s: Running ${v.running}, expected ${v.expected} (${v.down} down)` +
        `${v.settled ? '' : ` (within ${fmt(p.graceSec, 0)} s of a fault)`}${extra.length ? `; ${extra.join('; ')}` : ''}`,
    );
  }
  log(`    relays never faulted that lost Running: ${p.healthyLost.length ? names(p.healthyLost) : 'none'}`);
  log(`    ${p.problems.length ? `PROBLEMS: ${p.problems.join('; ')}` : 'load and faults: OK'}`);
}

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
    if (r.fds)
      log(
        `  open fds: ${r.fds.idle ?? '-'} idle, ${r.fds.max} at most, of a soft limit of ${r.fds.limit}` +
          `${r.fds.max >= r.fds.limit * 0.9 ? ' (NEAR THE LIMIT: dials and accepts fail with EMFILE past it)' : ''}`,
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
    if (r.phase) printPhase(r.phase);
  }
  const file = benchResultsPath('scale');
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
      ...(withLoad ? { load: loadSettings } : {}),
      ...(withFaults ? { faults: { share: faultShareArg, pauseIntervals } } : {}),
    },
    results,
  };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  log(`JSON: ${file}`);
  const bad = results.some(sizeFailed);
  process.exitCode = bad ? 1 : 0;
}

void main();
