/**
 * `shallot up --workers N` (the default, N = one per core): the nodes are
 * spread over worker threads so the one-command network uses every core.
 * Each authority gets a worker of its own (`auth<i>`), so neither relay load
 * (the 300-relay failure of issue 17) nor another authority's vote
 * computation (the 2,000-relay one: three authorities on one thread timed
 * out each other's vote and signature POSTs, dir-spec §3.4) delays its
 * HTTP answers and reachability probes; the relays are dealt round-robin
 * over N - 1 more (at least one: `worker<w>`). As separate `tor` processes
 * would, the authorities then vote in parallel on a multi-core host.
 * The client, HTTP tunnel, exit target and onion services
 * run on the launcher's thread. Every log line comes back over the
 * worker's MessagePort into `<data-dir>/shallot.log`; each worker serves its
 * own /metrics, listed in state.json and the Prometheus targets. Threads die
 * with the launcher's process, so no node outlives it.
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { toHex } from '../core/bytes.js';
import { ed25519PublicFromSeed } from '../core/crypto.js';
import type { HostPort } from '../core/relay-pivot.js';
import { createRegistry } from '../metrics/metrics.js';
import { type AuthorityEndpoint, fetchConsensus } from '../net/dir-client.js';
import { AUTHORITY_YOUNG_GENERATION_MB, floorWorkerOldSpace } from '../runtime/heap-flags.js';
import { loadOrCreateKeys } from '../runtime/key-store.js';
import type { FaultTarget } from './fault.js';
import type { RunningNetwork, UpOptions } from './launch.js';
import { LauncherThread, openLauncherLog } from './launcher-thread.js';
import type { LauncherMessage, NodeWorkerData, RelayWorkerData, WorkerMessage } from './node-worker.js';
import { PortAllocator } from './ports.js';
import type { ProgressSink } from './progress.js';
import type { NodeEntry } from './state.js';
import { workerNodeTarget } from './thread-targets.js';

const self = fileURLToPath(import.meta.url);
// Worker threads run compiled JavaScript: from dist/ normally, and from the
// build output when this module itself runs from source (tests).
const workerEntry = self.endsWith('.ts')
  ? path.resolve(path.dirname(self), '../../dist/services/testnet/node-worker.js')
  : path.join(path.dirname(self), 'node-worker.js');

/**
 * How the relays are dealt: relay i goes to relay worker i mod n (n = workers - 1,
 * at least 1). The authorities' threads (one each) are not counted in N.
 */
export function dealRelays(relays: number, workers: number): number[][] {
  const n = Math.max(1, workers - 1);
  const out: number[][] = Array.from({ length: Math.min(n, relays) }, () => []);
  for (let i = 0; i < relays; i++) out[i % out.length]?.push(i);
  return out;
}

/** An authority's thread carries no relay traffic: a smaller nursery (runtime/heap-flags.ts); relays keep V8's. */
export function resourceLimitsFor(kind: NodeWorkerData['kind']): ResourceLimits {
  return kind === 'authorities' ? { maxYoungGenerationSizeMb: AUTHORITY_YOUNG_GENERATION_MB } : {};
}

interface Running {
  worker: Worker;
  exited: Promise<void>;
  failed: Error | null;
}

export async function upWorkers(o: UpOptions, progress: ProgressSink): Promise<RunningNetwork> {
  const log = openLauncherLog(o.dataDir, o.logLevel);
  const { logger, write } = log;
  const registry = createRegistry({ node: 'shallot', role: 'launcher' });
  const thread = new LauncherThread(o, log, registry, progress);
  const ports = new PortAllocator(o.basePort);
  const workers: Running[] = [];
  const stop = () => thread.stop(async () => void (await Promise.all(workers.map((w) => stopWorker(w)))));
  try {
    const endpoints: AuthorityEndpoint[] = [];
    for (let i = 0; i < o.authorities; i++) {
      const keys = await loadOrCreateKeys(path.join(o.dataDir, `authority${i}`, 'keys.json'));
      endpoints.push({
        identity: toHex(ed25519PublicFromSeed(keys.identitySeed)),
        url: `http://127.0.0.1:${await ports.take()}`,
      });
    }
    const deal = dealRelays(o.relays, o.workers ?? 1);
    // Every port exits must refuse (C tor's re-entry rule, core/relay-pivot.ts)
    // is taken before any relay starts: the consensus cannot name them.
    const opsPort = await ports.take();
    const workerOps: number[] = [];
    for (let i = 0; i < endpoints.length + deal.length; i++) workerOps.push(await ports.take());
    const socksPort = await ports.take(o.socksPort);
    const tunnelPort = o.httpTunnelPort === undefined ? null : await ports.take(o.httpTunnelPort);
    // The fault-control endpoint too: token-guarded, but no circuit should reach it.
    const controlPort = await ports.take();
    const reentryReject: HostPort[] = [
      opsPort,
      controlPort,
      ...workerOps,
      socksPort,
      ...(tunnelPort ? [tunnelPort] : []),
    ].map((port) => ({ host: '127.0.0.1', port }));
    const nodes: NodeEntry[] = [
      { name: 'shallot', role: 'launcher', metrics: `127.0.0.1:${opsPort}`, pid: process.pid },
    ];
    const common = { dataDir: o.dataDir, logLevel: o.logLevel, endpoints };
    const start = (d: NodeWorkerData, onStarted: (done: number) => void) => {
      const r = spawnWorker(d, write, onStarted);
      workers.push(r);
      nodes.push({ name: d.name, role: 'worker', metrics: `127.0.0.1:${d.opsPort}`, pid: process.pid });
      return r;
    };
    let authsStarted = 0;
    const authWorkers = endpoints.map((_, i) =>
      start(
        {
          kind: 'authorities',
          name: `auth${i}`,
          opsPort: workerOps[i] as number,
          indices: [i],
          votingIntervalSec: o.votingInterval,
          handshake: o.handshake,
          params: o.consensusParams ?? {},
          shaping: { networkModel: o.networkModel },
          ...common,
        },
        () => progress.update({ stage: 'authorities', done: ++authsStarted, total: o.authorities }),
      ),
    );
    await Promise.all(authWorkers.map(waitReady));
    const started = deal.map(() => 0);
    const relayWorkers = [];
    for (const [w, indices] of deal.entries()) {
      const relays: RelayWorkerData['relays'] = [];
      // With --base-port 0 a relay binds port 0 itself: a port chosen here and
      // bound minutes later (1,000 relays start one by one) was taken in the
      // meantime by an outgoing connection's ephemeral port (EADDRINUSE).
      for (const index of indices)
        relays.push({ index, port: o.basePort === 0 ? 0 : await ports.take(), exit: index < o.exits });
      const d: RelayWorkerData = {
        kind: 'relays',
        name: `worker${w}`,
        opsPort: workerOps[endpoints.length + w] as number,
        relays,
        tls: o.tls,
        keyRotationMs: o.keyRotation * 60_000,
        reentryReject,
        shaping: {
          networkModel: o.networkModel,
          bandwidthRate: o.bandwidthRate,
          bandwidthBurst: o.bandwidthBurst,
        },
        ...common,
      };
      relayWorkers.push(
        start(d, (done) => {
          started[w] = done;
          progress.update({ stage: 'relays', done: started.reduce((a, b) => a + b, 0), total: o.relays });
        }),
      );
    }
    await Promise.all(relayWorkers.map(waitReady));
    await waitForConsensus(endpoints, o, workers, progress);
    await thread.start(endpoints, {
      ops: async () => opsPort,
      socks: async () => socksPort,
      tunnel: async () => tunnelPort,
      next: () => ports.take(),
    });
    // Faults on demand (fault.ts): each relay and authority through the worker that runs it.
    const targets = new Map<string, FaultTarget>();
    for (let i = 0; i < o.authorities; i++)
      targets.set(`auth${i}`, workerNodeTarget((authWorkers[i] as Running).worker, `auth${i}`));
    for (const [w, indices] of deal.entries())
      for (const i of indices)
        targets.set(`relay${i}`, workerNodeTarget((relayWorkers[w] as Running).worker, `relay${i}`));
    await thread.serveFaults(
      targets,
      (table) => {
        for (const r of workers)
          r.worker.postMessage({ type: 'link-faults', table } satisfies LauncherMessage);
      },
      controlPort,
    );
    const state = await thread.writeState('workers', endpoints, nodes);
    logger.info('network ready', { log: log.file, workers: workers.length });
    return { state, stop };
  } catch (e) {
    progress.done();
    await stop();
    throw e;
  }
}

function spawnWorker(
  d: NodeWorkerData,
  write: (line: string) => void,
  onStarted: (n: number) => void,
): Running {
  // Relay traffic without a full collection every ~80 ms (runtime/heap-flags.ts).
  floorWorkerOldSpace();
  const worker = new Worker(workerEntry, {
    workerData: d,
    name: d.name,
    resourceLimits: resourceLimitsFor(d.kind),
  });
  const r: Running = { worker, exited: new Promise((res) => worker.once('exit', () => res())), failed: null };
  worker.on('message', (m: WorkerMessage) => {
    if (m.type === 'log') write(m.line);
    else if (m.type === 'started') onStarted(m.done);
    else if (m.type === 'error') r.failed = new Error(`${d.name}: ${m.message}`);
  });
  worker.on('error', (e) => {
    r.failed = new Error(`${d.name}: ${e.message}`);
  });
  void r.exited.then(() => {
    r.failed ??= new Error(`${d.name} exited`);
  });
  return r;
}

/** Resolves once the worker has started all its nodes; rejects when it fails first. */
function waitReady(r: Running): Promise<void> {
  return new Promise((resolve, reject) => {
    if (r.failed) return reject(r.failed);
    const onMessage = (m: WorkerMessage) => {
      if (m.type === 'ready') done(null);
      else if (m.type === 'error') done(new Error(m.message));
    };
    const onExit = () => done(r.failed ?? new Error('worker exited during start'));
    const done = (e: Error | null) => {
      r.worker.off('message', onMessage);
      r.worker.off('exit', onExit);
      if (e) reject(e);
      else resolve();
    };
    r.worker.on('message', onMessage);
    r.worker.once('exit', onExit);
  });
}

/** Asks the worker to stop its nodes cleanly, then ends the thread (after 8 s at most, as the process launcher's SIGKILL). */
async function stopWorker(r: Running): Promise<void> {
  if (r.failed) {
    await r.worker.terminate();
    return;
  }
  const stopped = new Promise<void>((resolve) => {
    r.worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'stopped') resolve();
    });
    void r.exited.then(resolve);
  });
  r.worker.postMessage({ type: 'stop' } satisfies LauncherMessage);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([stopped, new Promise<void>((res) => (timer = setTimeout(res, 8_000)))]);
  clearTimeout(timer);
  await r.worker.terminate();
}

/** Polls the authorities until a consensus lists every relay with Guard (a client needs guards). */
async function waitForConsensus(
  endpoints: AuthorityEndpoint[],
  o: UpOptions,
  workers: Running[],
  progress: ProgressSink,
): Promise<void> {
  const deadline = Date.now() + o.bootstrapTimeout * 1000;
  for (;;) {
    const listed = await fetchConsensus(endpoints, { nowMs: Date.now(), timeoutMs: 5_000 }).then(
      (r) => r.consensus.relays.filter((x) => x.flags.includes('Guard')).length,
      () => 0,
    );
    progress.update({ stage: 'consensus', done: listed, total: o.relays });
    if (listed >= o.relays) return;
    const failed = workers.find((w) => w.failed);
    if (failed?.failed) throw failed.failed;
    if (Date.now() > deadline)
      throw new Error(`consensus lists ${listed} of ${o.relays} relays after ${o.bootstrapTimeout} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
