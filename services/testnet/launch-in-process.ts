/**
 * `shallot up` in one process (the default): authorities, relays, the
 * client with its SOCKS port and HTTP tunnel, the exit target and the onion
 * services all run in this process, logging to `<data-dir>/shallot.log`,
 * with one ops server for the whole network's metrics.
 */

import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { ShallotClient } from '../client/client.js';
import { startHttpTunnelServer } from '../client/http-tunnel.js';
import type { ProxyServer } from '../client/proxy-server.js';
import { createRegistry } from '../metrics/metrics.js';
import { type OpsServer, serveOps } from '../metrics/server.js';
import { readClientAuthKeys } from '../net/client-auth-files.js';
import { createLogger, type Logger, type LogLevel } from '../net/log.js';
import { clientAuthFor, type RunningNetwork, shapingFor, type UpOptions } from './launch.js';
import { LocalNetwork } from './network.js';
import { type OnionServicesHandle, startOnionServices } from './onion.js';
import type { ProgressSink } from './progress.js';
import { type NetworkState, type NodeEntry, writeState, writeTargets } from './state.js';
import { startWebTarget, type WebTarget } from './web.js';

function fileLogger(dataDir: string, level: LogLevel): { logger: Logger; stream: WriteStream; file: string } {
  const file = path.join(dataDir, 'shallot.log');
  const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  return { logger: createLogger('shallot', level, (l) => stream.write(`${l}\n`)), stream, file };
}

export async function upInProcess(o: UpOptions, progress: ProgressSink): Promise<RunningNetwork> {
  const { logger, stream, file: logFile } = fileLogger(o.dataDir, o.logLevel);
  // node/role label the metrics themselves; network comes from the file_sd targets.
  const registry = createRegistry({ node: 'shallot', role: 'launcher' });
  let net: LocalNetwork | null = null;
  let client: ShallotClient | null = null;
  let tunnel: ProxyServer | null = null;
  let web: WebTarget | null = null;
  let ops: OpsServer | null = null;
  let onion: OnionServicesHandle | null = null;
  const stop = async () => {
    await onion?.stop();
    await tunnel?.close();
    await client?.stop();
    await net?.stop();
    await web?.close();
    await ops?.close();
    await new Promise<void>((r) => stream.end(r));
  };
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
    ops = await serveOps({
      host: '127.0.0.1',
      port: await net.ports.take(),
      registry,
      health: () => ({ ok: true, ready: client?.dir !== null }),
    });
    const auth = await clientAuthFor(o);
    client = new ShallotClient(
      { logger: logger.child('client'), registry },
      {
        authorities: net.endpoints,
        socksHost: '127.0.0.1',
        socksPort: await net.ports.take(o.socksPort),
        ...(auth ? { clientAuthKeys: await readClientAuthKeys(auth.clientDir) } : {}),
        circuits: {
          tls: o.tls,
          dataDir: o.dataDir,
          handshake: o.handshake,
          vanguardsLite: o.vanguardsLite,
          shaping: shapingFor(o, 'client'),
          ...(o.maxCircuitDirtiness ? { maxDirtinessMs: o.maxCircuitDirtiness * 1000 } : {}),
        },
      },
    );
    await client.start();
    const running = client;
    if (o.httpTunnelPort !== undefined)
      tunnel = await startHttpTunnelServer(
        { host: '127.0.0.1', port: await net.ports.take(o.httpTunnelPort) },
        (req) => running.connect(req),
        { registry },
      );
    // Exits refuse streams back into the network (core/relay-pivot.ts).
    net.rejectReentry([
      { host: '127.0.0.1', port: ops.port },
      { host: '127.0.0.1', port: client.socksPort },
      ...(tunnel ? [{ host: '127.0.0.1', port: tunnel.port }] : []),
    ]);
    progress.line('bootstrapping: client fetching the consensus');
    await client.ready(o.bootstrapTimeout * 1000);
    web = await startWebTarget('127.0.0.1', await net.ports.take());
    onion = await startOnionServices(
      { logger, registry },
      {
        count: o.onionServices,
        instances: o.instances,
        introPoints: o.introPoints,
        dataDir: o.dataDir,
        authorities: net.endpoints,
        tls: o.tls,
        handshake: o.handshake,
        vanguardsLite: o.vanguardsLite,
        ...(auth ? { authorizedClientsDirs: auth.serviceDirs } : {}),
      },
      (text) => progress.line(text),
    );
    progress.done();
    const nodes: NodeEntry[] = [
      { name: 'shallot', role: 'launcher', metrics: `127.0.0.1:${ops.port}`, pid: process.pid },
    ];
    const state: NetworkState = {
      version: 1,
      startedAt: new Date().toISOString(),
      pid: process.pid,
      mode: 'one-process',
      authorities: net.endpoints,
      socks: `127.0.0.1:${client.socksPort}`,
      ...(tunnel ? { httpTunnel: tunnel.address } : {}),
      web: `127.0.0.1:${web.port}`,
      onionServices: onion.services,
      nodes,
      targetsFile: await writeTargets(o.dataDir, nodes, 'local'),
    };
    await writeState(o.dataDir, state);
    logger.info('network ready', { log: logFile });
    return { state, stop };
  } catch (e) {
    progress.done();
    await stop();
    throw e;
  }
}
