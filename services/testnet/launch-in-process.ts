/**
 * `shallot up` in one process (the default): authorities, relays, the
 * client with its SOCKS port and HTTP tunnel, the exit target and the onion
 * services all run in this process, logging to `<data-dir>/shallot.log`,
 * with one ops server for the whole network's metrics.
 */

import { createRegistry } from '../metrics/metrics.js';
import { type RunningNetwork, shapingFor, type UpOptions } from './launch.js';
import { LauncherThread, openLauncherLog } from './launcher-thread.js';
import { LocalNetwork } from './network.js';
import type { ProgressSink } from './progress.js';
import type { NodeEntry } from './state.js';
import { slotTarget } from './thread-targets.js';

export async function upInProcess(o: UpOptions, progress: ProgressSink): Promise<RunningNetwork> {
  const log = openLauncherLog(o.dataDir, o.logLevel);
  const { logger } = log;
  // node/role label the metrics themselves; network comes from the file_sd targets.
  const registry = createRegistry({ node: 'shallot', role: 'launcher' });
  const thread = new LauncherThread(o, log, registry, progress);
  let net: LocalNetwork | null = null;
  const stop = () => thread.stop(async () => net?.stop());
  try {
    net = await LocalNetwork.start(
      { logger, registry },
      {
        authorities: o.authorities,
        relays: o.relays,
        exits: o.exits,
        votingIntervalSec: o.votingInterval,
        tls: o.tls,
        host: '127.0.0.1',
        basePort: o.basePort,
        dataDir: o.dataDir,
        keyRotationMs: o.keyRotation * 60_000,
        onionRoles: true,
        handshake: o.handshake,
        params: o.consensusParams ?? {},
        shaping: (node) => shapingFor(o, node),
      },
      (p) => progress.update(p),
    );
    await net.waitForConsensus(o.relays, o.bootstrapTimeout * 1000, (p) => progress.update(p));
    const ports = net.ports;
    await thread.start(
      net.endpoints,
      {
        ops: () => ports.take(),
        socks: () => ports.take(o.socksPort),
        tunnel: async () => (o.httpTunnelPort === undefined ? null : ports.take(o.httpTunnelPort)),
        next: () => ports.take(),
      },
      // Exits refuse streams back into the network (core/relay-pivot.ts).
      (listening) => net?.rejectReentry(listening),
    );
    // Faults on demand (fault.ts): every relay and authority here is a slot on this thread.
    const controlPort = await ports.take();
    net.rejectReentry([{ host: '127.0.0.1', port: controlPort }]);
    await thread.serveFaults(
      new Map([...net.authoritySlots, ...net.slots].map((slot) => [slot.nickname, slotTarget(slot)])),
      () => {},
      controlPort,
    );
    const nodes: NodeEntry[] = [
      { name: 'shallot', role: 'launcher', metrics: `127.0.0.1:${thread.opsPort}`, pid: process.pid },
    ];
    const state = await thread.writeState('one-process', net.endpoints, nodes);
    logger.info('network ready', { log: log.file });
    return { state, stop };
  } catch (e) {
    progress.done();
    await stop();
    throw e;
  }
}
