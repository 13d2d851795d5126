/**
 * Data-path throughput of a whole `shallot up` network (issue 16): 3
 * authorities, 10 relays (4 exits) and an onion service with its built-in
 * backend, in one process (the default) or as a process per node. Through
 * the network's SOCKS port it times HTTP GETs of /bytes/<n> (from
 * services/onion-service/builtin-http.ts) from the exit target and from the
 * onion service: one stream at a time, then 8 streams at once; and it reads
 * the CPU time all processes spent on each path.
 *
 * Every body is hashed as it arrives and checked against builtinSha256, so
 * a figure never describes a download that lost or changed a byte.
 *
 * The default mode is `shallot up`'s: worker threads, one per core
 * (launch-workers.ts), started as users start it, the CLI in a process of
 * its own, so this reader does not share the launcher's thread with the
 * client, exit target and onion service (in-process it did, and read a
 * quarter of the rate). Its CPU seconds per MiB are the launcher's (every
 * thread) plus this process's; with
 * --process-per-node the node processes from state.json (/proc/<pid>/stat)
 * plus this one (launcher, exit target, reader). This process's own share
 * is in each row's `benchProcessSecondsPerMiB`: in the default mode the
 * reader alone (a SHA-256 of the body and the socket reads), which a count
 * of the nodes alone, like C tor's, leaves out.
 *
 * Flow control: the single-stream exit row also says what share of the
 * download time the exit's stream sender spent unable to send, by what held
 * it (its stream window, the circuit window, a congested link), from the
 * relays' shallot_relay_stream_send_blocked_seconds_total. A share near 1
 * means the window, not CPU, sets the rate (issue 16).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { httpGet } from '../../services/loadgen/http-get.js';
import {
  counterDeltaBy,
  metricsUrlsFromTargets,
  type Snapshot,
  scrape,
} from '../../services/loadgen/scrape.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { NODE_PROCESS_ENV, NODE_PROCESS_HEAP_FLAGS } from '../../services/runtime/heap-flags.js';
import type { NetworkState } from '../../services/testnet/state.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { socksConnect } from '../helpers/socks-client.js';
import { upReadmeNetwork } from '../helpers/testnet.js';
import { collectOutput, smallUpArgs, waitUpReady } from '../helpers/up-cli.js';
import { type BenchResult, fromLatencies } from './harness.js';
import { processCpuSeconds } from './proc-stat.js';

const MiB = 1024 * 1024;

export interface ThroughputOptions {
  processPerNode: boolean;
  /** Worker threads when not per node (default: one per core, as `shallot up`). */
  workers?: number;
  /** Bytes of one single-stream download through an exit; the onion path gets half (as in issue 16). */
  singleBytes: number;
  /** Single-stream downloads per path; the row shows their median. */
  singleRuns: number;
  /** Bytes per stream of the 8-stream runs (the onion path gets half). */
  parallelBytes: number;
}

const PARALLEL = 8;

/** CPU seconds of every process of the run (`all`), and of this one alone (`self`). */
function cpuSecondsOf(net: RunningNetwork): { all: number; self: number } {
  const usage = process.cpuUsage();
  const self = (usage.user + usage.system) / 1e6;
  let all = self;
  // Each process once: worker threads' entries carry the launcher's pid.
  const pids = new Set([net.state.pid, ...net.state.nodes.map((n) => n.pid)]);
  for (const pid of pids) if (pid !== undefined && pid !== process.pid) all += processCpuSeconds(pid);
  return { all, self };
}

/** `shallot up` from dist/ as a child process (the network of upReadmeNetwork: 5 s voting, free ports, an onion service). */
async function upCli(dataDir: string, workers: number): Promise<RunningNetwork> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const cli = path.resolve(here, '../../services/testnet/main.js');
  const args = [...(await smallUpArgs(dataDir, 10, 4)), '--log-level', 'warn', '--workers', String(workers)];
  // With the heap flags and environment `npm start` and the `shallot` command's shebang give the launcher (runtime/heap-flags.ts).
  const child = spawn(process.execPath, [...NODE_PROCESS_HEAP_FLAGS, cli, 'up', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...NODE_PROCESS_ENV },
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const out = collectOutput(child);
  let state: NetworkState;
  try {
    state = await waitUpReady(child, out, dataDir, 180_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    state,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

export async function download(
  socksPort: number,
  host: string,
  port: number,
  bytes: number,
): Promise<number> {
  const socket = await socksConnect(socksPort, host, port, { timeoutMs: 60_000 });
  try {
    const t = performance.now();
    const res = await httpGet(socket, {
      host,
      path: `/bytes/${bytes}`,
      hash: true,
      signal: AbortSignal.timeout(600_000),
    });
    const ms = performance.now() - t;
    if (res.status !== 200 || res.bodyBytes !== bytes || res.sha256 !== builtinSha256(bytes)) {
      throw new Error(
        `download from ${host} corrupt: status ${res.status}, ${res.bodyBytes} of ${bytes} bytes`,
      );
    }
    return ms;
  } finally {
    socket.destroy();
  }
}

/**
 * The first download builds the circuit and warms the JIT. A network just
 * up may still refuse it (the first consensus can list no Guard yet, and an
 * onion descriptor can still be on its way), so it is retried for a minute.
 */
async function warmUp(fn: () => Promise<number>): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    try {
      await fn();
      return;
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

interface PathFigures {
  rows: BenchResult[];
  bytes: number;
  cpuSeconds: number;
  /** Of cpuSeconds, this process's: the reader (with --process-per-node also the launcher and exit target). */
  benchSeconds: number;
}

const BLOCKED = 'shallot_relay_stream_send_blocked_seconds_total';

/** Every node's metrics (the targets file lists each endpoint once, whatever the mode). */
async function scrapeAll(net: RunningNetwork): Promise<Snapshot> {
  const snap = await scrape(await metricsUrlsFromTargets(net.state.targetsFile));
  const failed = snap.errors[0];
  if (failed) throw new Error(`cannot scrape ${failed.url}: ${failed.error}`);
  return snap;
}

async function measurePath(
  net: RunningNetwork,
  label: string,
  host: string,
  port: number,
  singleBytes: number,
  o: ThroughputOptions,
  parallelBytes: number,
  blockedFigures: boolean,
): Promise<PathFigures> {
  const socksPort = Number(net.state.socks.split(':')[1]);
  await warmUp(() => download(socksPort, host, port, 1 * MiB));
  const cpu0 = cpuSecondsOf(net);
  const before = await scrapeAll(net);
  const singles: number[] = [];
  for (let i = 0; i < o.singleRuns; i++) singles.push(await download(socksPort, host, port, singleBytes));
  const blocked = counterDeltaBy(before, await scrapeAll(net), BLOCKED, 'reason');
  const t = performance.now();
  await Promise.all(Array.from({ length: PARALLEL }, () => download(socksPort, host, port, parallelBytes)));
  const parallelMs = performance.now() - t;
  const cpu1 = cpuSecondsOf(net);
  const single = fromLatencies(
    `single stream, ${label}, ${singleBytes / MiB} MiB`,
    'dl',
    singles,
    singleBytes,
  );
  // Only exit streams report waits (the onion service's streams are not a relay's).
  const singleSeconds = singles.reduce((a, b) => a + b, 0) / 1000;
  if (blockedFigures) {
    for (const reason of ['stream-window', 'circuit-window', 'link'])
      single.extra = {
        ...single.extra,
        [`senderBlocked:${reason}`]: Number(((blocked[reason] ?? 0) / singleSeconds).toFixed(3)),
      };
  }
  const total = PARALLEL * parallelBytes;
  const parallel = fromLatencies(
    `${PARALLEL} parallel streams, ${label}, ${PARALLEL} x ${parallelBytes / MiB} MiB`,
    'run',
    [parallelMs],
    total,
  );
  return {
    rows: [single, parallel],
    bytes: singleBytes * o.singleRuns + total,
    cpuSeconds: cpu1.all - cpu0.all,
    benchSeconds: cpu1.self - cpu0.self,
  };
}

export async function throughputBenches(o: ThroughputOptions): Promise<BenchResult[]> {
  const workers = o.workers ?? availableParallelism();
  const mode = o.processPerNode ? 'process-per-node' : `--workers ${workers}`;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-bench-tput-'));
  const net = o.processPerNode
    ? await upReadmeNetwork({
        dataDir,
        relays: 10,
        exits: 4,
        httpTunnelPort: undefined,
        processPerNode: true,
        bootstrapTimeout: 120,
      })
    : await upCli(dataDir, workers);
  try {
    const web = net.state.web;
    const onion = net.state.onionServices[0]?.address;
    if (!web || !onion) throw new Error('the network has no exit target or no onion service');
    const [webHost, webPort] = [
      web.slice(0, web.lastIndexOf(':')),
      Number(web.slice(web.lastIndexOf(':') + 1)),
    ];
    const exit = await measurePath(
      net,
      `exit (${mode})`,
      webHost,
      webPort,
      o.singleBytes,
      o,
      o.parallelBytes,
      true,
    );
    const hs = await measurePath(
      net,
      `onion (${mode})`,
      onion,
      80,
      o.singleBytes / 2,
      o,
      o.parallelBytes / 2,
      false,
    );
    const cpuRow = (name: string, f: PathFigures): BenchResult => ({
      name,
      unit: 's/MiB',
      perSecond: Number.NaN,
      ops: 1,
      seconds: f.cpuSeconds,
      extra: {
        cpuSecondsPerMiB: Number((f.cpuSeconds / (f.bytes / MiB)).toFixed(4)),
        benchProcessSecondsPerMiB: Number((f.benchSeconds / (f.bytes / MiB)).toFixed(4)),
        mib: f.bytes / MiB,
      },
    });
    return [
      ...exit.rows,
      ...hs.rows,
      cpuRow(`CPU seconds per MiB, all processes, exit path (${mode})`, exit),
      cpuRow(`CPU seconds per MiB, all processes, onion path (${mode})`, hs),
    ];
  } finally {
    await net.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
