/**
 * What both thread launchers (launch-in-process.ts, launch-workers.ts) run
 * on the launcher's own thread once the relays are listed: the ops server,
 * the client with its SOCKS port and HTTP tunnel, the exit target and the
 * onion services, the fault-control endpoint, and the state.json that
 * names them. Also the launcher's log file, `<data-dir>/shallot.log`.
 *
 * Not in this module: the authorities and relays (network.ts in one
 * thread, node-worker.ts in workers) and how each launcher picks its ports.
 */

import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { ShallotClient } from '../client/client.js';
import { startHttpTunnelServer } from '../client/http-tunnel.js';
import type { ProxyServer } from '../client/proxy-server.js';
import type { HostPort } from '../core/relay-pivot.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import { applyLinkFaults, type LinkFaultTable } from '../net/link-faults.js';
import { readClientAuthKeys } from '../runtime/client-auth-files.js';
import { createLogger, type Logger, type LogLevel } from '../runtime/log.js';
import { type OpsServer, serveOps } from '../runtime/ops-server.js';
import { FaultInjector, type FaultTarget } from './fault.js';
import { type ControlServer, serveFaultControl } from './fault-control.js';
import { clientAuthFor, onionShapingFor, shapingFor, type UpOptions } from './launch.js';
import { type OnionServicesHandle, startOnionServices } from './onion.js';
import type { ProgressSink } from './progress.js';
import { type NetworkState, type NodeEntry, writeState, writeTargets } from './state.js';
import { slotTarget } from './thread-targets.js';
import { startWebTarget, type WebTarget } from './web.js';

export interface LauncherLog {
  logger: Logger;
  /** Appends one line as it is (worker threads' lines come formatted). */
  write: (line: string) => void;
  file: string;
  stream: WriteStream;
}

/** `<data-dir>/shallot.log`, readable by the owner only. */
export function openLauncherLog(dataDir: string, level: LogLevel): LauncherLog {
  const file = path.join(dataDir, 'shallot.log');
  const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  const write = (l: string) => stream.write(`${l}\n`);
  return { logger: createLogger('shallot', level, write), write, file, stream };
}

/** Where the launcher's own listeners go; each is asked for in this order, when it starts. */
export interface LauncherPorts {
  ops(): Promise<number>;
  socks(): Promise<number>;
  /** null: no HTTP tunnel. */
  tunnel(): Promise<number | null>;
  /** Any free port (the exit target's). */
  next(): Promise<number>;
}

interface Started {
  ops: OpsServer;
  client: ShallotClient;
  tunnel: ProxyServer | null;
  web: WebTarget;
  onion: OnionServicesHandle;
}

/** The launcher thread's nodes; `stop` stops whichever of them started. */
export class LauncherThread {
  private ops: OpsServer | null = null;
  private client: ShallotClient | null = null;
  private tunnel: ProxyServer | null = null;
  private web: WebTarget | null = null;
  private onion: OnionServicesHandle | null = null;
  private faults: { injector: FaultInjector; control: ControlServer } | null = null;

  constructor(
    private readonly o: UpOptions,
    private readonly log: LauncherLog,
    private readonly registry: Registry,
    private readonly progress: ProgressSink,
  ) {}

  /**
   * Starts them against these authorities. `listening` hears the ops, SOCKS
   * and tunnel ports as soon as they are bound, before the client bootstraps
   * (the in-process launcher's exits refuse them only then).
   */
  async start(
    endpoints: AuthorityEndpoint[],
    ports: LauncherPorts,
    listening?: (ports: HostPort[]) => void,
  ): Promise<void> {
    const { o, registry, progress } = this;
    const { logger } = this.log;
    this.ops = await serveOps({
      host: '127.0.0.1',
      port: await ports.ops(),
      registry,
      health: () => ({ ok: true, ready: this.client?.dir !== null }),
    });
    const auth = await clientAuthFor(o);
    const client = new ShallotClient(
      { logger: logger.child('client'), registry },
      {
        authorities: endpoints,
        socksHost: '127.0.0.1',
        socksPort: await ports.socks(),
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
    this.client = client;
    await client.start();
    const tunnelPort = await ports.tunnel();
    if (tunnelPort !== null)
      this.tunnel = await startHttpTunnelServer(
        { host: '127.0.0.1', port: tunnelPort },
        (req) => client.connect(req),
        { registry },
      );
    listening?.(
      [this.ops.port, client.socksPort, ...(this.tunnel ? [this.tunnel.port] : [])].map((port) => ({
        host: '127.0.0.1',
        port,
      })),
    );
    progress.line('bootstrapping: client fetching the consensus');
    await client.ready(o.bootstrapTimeout * 1000);
    this.web = await startWebTarget('127.0.0.1', await ports.next());
    this.onion = await startOnionServices(
      { logger, registry },
      {
        count: o.onionServices,
        instances: o.instances,
        introPoints: o.introPoints,
        dataDir: o.dataDir,
        authorities: endpoints,
        tls: o.tls,
        handshake: o.handshake,
        vanguardsLite: o.vanguardsLite,
        ...(auth ? { authorizedClientsDirs: auth.serviceDirs } : {}),
        shaping: (s, i) => onionShapingFor(o, s, i),
      },
      (text) => progress.line(text),
    );
    progress.done();
  }

  /**
   * Opens the fault-control endpoint (fault-control.ts) for these relays
   * and authorities, this thread's onion-service instances (`onion<s>-<i>`)
   * and the links of every named node; `links` sends the link-fault table
   * to the threads that run relays and authorities (this thread applies it
   * itself: the client's and the onion services' links are here). The fault
   * series go on this thread's registry, so the launcher's /metrics carries
   * them.
   */
  async serveFaults(
    nodes: ReadonlyMap<string, FaultTarget>,
    links: (t: LinkFaultTable) => void,
    port: number,
  ): Promise<void> {
    const targets = new Map(nodes);
    for (const slot of this.started().onion.instances) targets.set(slot.nickname, slotTarget(slot));
    const injector = new FaultInjector(
      {
        registry: this.registry,
        links: (t) => {
          applyLinkFaults(t);
          links(t);
        },
        linkNodes: [...targets.keys(), 'client'],
      },
      targets,
    );
    const control = await serveFaultControl({
      dataDir: this.o.dataDir,
      port,
      registry: this.registry,
      injector,
    });
    this.faults = { injector, control };
  }

  /** Writes state.json and the Prometheus targets for the started network. */
  async writeState(
    mode: NetworkState['mode'],
    authorities: AuthorityEndpoint[],
    nodes: NodeEntry[],
  ): Promise<NetworkState> {
    const { client, tunnel, web, onion } = this.started();
    const state: NetworkState = {
      version: 1,
      startedAt: new Date().toISOString(),
      pid: process.pid,
      mode,
      authorities,
      socks: `127.0.0.1:${client.socksPort}`,
      ...(tunnel ? { httpTunnel: tunnel.address } : {}),
      web: `127.0.0.1:${web.port}`,
      onionServices: onion.services,
      nodes,
      targetsFile: await writeTargets(this.o.dataDir, nodes, 'local'),
      ...(this.faults ? { control: this.faults.control.address } : {}),
    };
    await writeState(this.o.dataDir, state);
    return state;
  }

  /** The ops server's port (after `start`). */
  get opsPort(): number {
    return this.started().ops.port;
  }

  /**
   * Stops the onion services and the client, then `relays` (the network
   * behind them), then the exit target, the ops server and the log.
   */
  async stop(relays: () => Promise<void>): Promise<void> {
    await this.faults?.control.close();
    this.faults?.injector.close();
    await this.onion?.stop();
    await this.tunnel?.close();
    await this.client?.stop();
    await relays();
    await this.web?.close();
    await this.ops?.close();
    await new Promise<void>((r) => this.log.stream.end(r));
  }

  private started(): Started {
    const { ops, client, tunnel, web, onion } = this;
    if (!ops || !client || !web || !onion) throw new Error('launcher thread not started');
    return { ops, client, tunnel, web, onion };
  }
}
