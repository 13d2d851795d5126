/**
 * One worker thread of `shallot up --workers N` (launch-workers.ts): runs
 * either one directory authority (each has a thread of its own) or a share
 * of the relays, dealt round-robin by the launcher with their ports in
 * workerData. Nodes talk to each other over ws/wss on 127.0.0.1 as
 * separate processes would (tor-spec §2 links), so nothing but logs,
 * progress, stop and faults (the link-fault table, a relay's or an
 * authority's stop, kill or start: fault.ts) crosses the MessagePort.
 * Each worker serves its own /metrics (runtime/ops-server.ts) on a port the
 * launcher chose and lists in state.json.
 */

import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { HandshakeName } from '../core/create-handshake.js';
import { DEFAULT_TESTNET_EXIT_POLICY, REJECT_ALL } from '../core/exit-policy.js';
import type { HostPort } from '../core/relay-pivot.js';
import { testnetMinUptime } from '../directory/admission.js';
import { DirectoryAuthority } from '../directory/authority.js';
import { createRegistry } from '../metrics/metrics.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import { applyLinkFaults, type LinkFaultTable } from '../net/link-faults.js';
import { loadOrCreateKeys } from '../runtime/key-store.js';
import { createLogger, type LogLevel } from '../runtime/log.js';
import { serveOps } from '../runtime/ops-server.js';
import { type ShapingOptions, shapingFor } from './launch.js';
import { NodeSlot } from './node-slot.js';
import { RelaySlot } from './relay-slot.js';

export interface WorkerCommon {
  /** Worker name, the metrics' node label and the logger's name ("workerN"). */
  name: string;
  dataDir: string;
  logLevel: LogLevel;
  opsPort: number;
  endpoints: AuthorityEndpoint[];
}

export interface AuthorityWorkerData extends WorkerCommon {
  kind: 'authorities';
  /** Index into endpoints of each authority this worker runs (launch-workers.ts gives each its own). */
  indices: number[];
  votingIntervalSec: number;
  handshake: HandshakeName;
  params: Record<string, number>;
  /** Network model file (launch.ts shapingFor): each authority's location, as relays'. */
  shaping: ShapingOptions;
}

export interface RelayWorkerData extends WorkerCommon {
  kind: 'relays';
  relays: { index: number; port: number; exit: boolean }[];
  tls: boolean;
  keyRotationMs: number;
  /** Ports exits refuse (C tor's re-entry rule, core/relay-pivot.ts): every ops, SOCKS and tunnel port. */
  reentryReject: HostPort[];
  /** Network model file and BandwidthRate/Burst (launch.ts shapingFor). */
  shaping: ShapingOptions;
}

export type NodeWorkerData = AuthorityWorkerData | RelayWorkerData;

/** What a worker posts to the launcher. */
export type WorkerMessage =
  | { type: 'log'; line: string }
  | { type: 'started'; done: number }
  | { type: 'ready' }
  | { type: 'stopped' }
  | { type: 'error'; message: string }
  | { type: 'node-fault-done'; id: number; error?: string };

/** What a node fault does to one of the worker's relays or authorities (relay-slot.ts, node-slot.ts). */
export type NodeFaultOp = 'stop' | 'kill' | 'start';

/** What the launcher posts to a worker. */
export type LauncherMessage =
  | { type: 'stop' }
  /** The whole link-fault table (net/link-faults.ts), after each change. */
  | { type: 'link-faults'; table: LinkFaultTable }
  | { type: 'node-fault'; id: number; op: NodeFaultOp; node: string };

const keyFile = (dataDir: string, dir: string) => path.join(dataDir, dir, 'keys.json');

async function run(d: NodeWorkerData): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('node-worker.ts runs only as a worker thread');
  const post = (m: WorkerMessage) => port.postMessage(m);
  // One log file for the network (shallot.log), written by the launcher.
  const logger = createLogger(d.name, d.logLevel, (line) => post({ type: 'log', line }));
  const registry = createRegistry({ node: d.name, role: d.kind === 'authorities' ? 'authority' : 'relay' });
  const authorities: NodeSlot<DirectoryAuthority>[] = [];
  const relays: RelaySlot[] = [];
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.allSettled(relays.map((r) => r.stop()));
      await Promise.allSettled(authorities.map((a) => a.stop()));
      await ops.close();
    })();
    return stopping;
  };
  port.on('message', (m: LauncherMessage) => {
    switch (m.type) {
      case 'stop':
        void stop().then(() => post({ type: 'stopped' }));
        break;
      case 'link-faults':
        applyLinkFaults(m.table);
        break;
      case 'node-fault': {
        const slot = [...relays, ...authorities].find((r) => r.nickname === m.node);
        const done = (error?: string) =>
          post({ type: 'node-fault-done', id: m.id, ...(error ? { error } : {}) });
        if (!slot) done(`no node ${m.node} in ${d.name}`);
        else
          void slot[m.op]().then(
            () => done(),
            (e: Error) => done(e.message),
          );
        break;
      }
      default: {
        const never: never = m;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  });
  const ops = await serveOps({
    host: '127.0.0.1',
    port: d.opsPort,
    registry,
    health: () => ({ ok: true, ready: true, nodes: authorities.length + relays.length }),
  });
  if (d.kind === 'authorities') {
    for (const i of d.indices) {
      const file = keyFile(d.dataDir, `authority${i}`);
      // Read once: the model does not change while the network runs.
      const shaping = shapingFor(d.shaping, `auth${i}`);
      // Built again from its key file on each start after a stop or kill (node-slot.ts).
      const make = async () =>
        new DirectoryAuthority(
          { logger: logger.child(`auth${i}`), registry },
          {
            identitySeed: (await loadOrCreateKeys(file)).identitySeed,
            host: '127.0.0.1',
            port: Number(new URL(d.endpoints[i]?.url ?? '').port),
            peers: d.endpoints,
            votingIntervalSec: d.votingIntervalSec,
            testnet: true,
            // As network.ts (the one-process launcher): a stopped relay leaves the next consensus.
            probeReachability: true,
            // Every relay shares 127.0.0.1 (C tor TestingTorNetwork: AuthDirMaxServersPerAddr 0).
            maxServersPerAddr: 0,
            minUptimeSec: testnetMinUptime(d.votingIntervalSec),
            handshake: d.handshake,
            params: d.params,
            name: `auth${i}`,
            shaping,
          },
        );
      const a = new NodeSlot(`auth${i}`, make);
      await a.start();
      authorities.push(a);
      post({ type: 'started', done: authorities.length });
    }
  } else {
    for (const r of d.relays) {
      const file = keyFile(d.dataDir, `relay${r.index}`);
      const slot = new RelaySlot(
        { logger: logger.child(`relay${r.index}`), registry },
        {
          nickname: `relay${r.index}`,
          host: '127.0.0.1',
          port: r.port,
          tls: d.tls,
          keys: await loadOrCreateKeys(file),
          exitPolicy: r.exit ? DEFAULT_TESTNET_EXIT_POLICY : REJECT_ALL,
          authorities: d.endpoints,
          bandwidth: 1_000_000,
          ...(d.keyRotationMs ? { keyRotationMs: d.keyRotationMs } : {}),
          keyFile: file,
          shaping: shapingFor(d.shaping, `relay${r.index}`),
        },
        true,
      );
      slot.rejectReentry(d.reentryReject);
      await slot.start();
      relays.push(slot);
      post({ type: 'started', done: relays.length });
    }
  }
  post({ type: 'ready' });
}

run(workerData as NodeWorkerData).catch((e: Error) => {
  parentPort?.postMessage({ type: 'error', message: e.stack ?? e.message } satisfies WorkerMessage);
});
