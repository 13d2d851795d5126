/**
 * A relay as a network node: the `Relay` forwarding machine plus what makes
 * it part of a network — descriptor publishing, a consensus cache served
 * over BEGIN_DIR, and (services/relay/onion-roles.ts) the onion-service
 * roles. The local launcher and `main.ts` both build relays through here.
 */
import type { Registry } from 'prom-client';
import { utf8 } from '../core/bytes.js';
import type { ExitPolicy } from '../core/exit-policy.js';
import type { NodeKeys } from '../core/node-keys.js';
import type { RelayMessage } from '../core/relay-cell.js';
import { type AuthorityEndpoint, CONSENSUS_PATH } from '../directory/dir-client.js';
import type { DirRequest, DirResponse } from '../net/dir-http.js';
import type { Logger } from '../net/log.js';
import type { OrCircuit } from '../net/or-circuit.js';
import { DescriptorPublisher } from './publisher.js';
import { Relay } from './relay.js';

export interface RelayNodeOptions {
  nickname: string;
  host: string;
  port: number;
  tls: boolean;
  keys: NodeKeys;
  exitPolicy: ExitPolicy;
  authorities: AuthorityEndpoint[];
  bandwidth?: number;
  hsdir?: boolean;
  republishMs?: number;
}

/** Extra BEGIN_DIR routes (the HSDir role adds /tor/hs/3/...). */
export type DirRoute = (req: DirRequest, circ: OrCircuit) => Promise<DirResponse | null> | DirResponse | null;

/** Extra relay-message handlers (onion-roles.ts); true means handled. */
export type RelayHandler = (circ: OrCircuit, streamId: number, msg: RelayMessage) => boolean;

export class RelayNode {
  readonly relay: Relay;
  readonly publisher: DescriptorPublisher;
  private readonly routes: DirRoute[] = [];
  private readonly handlers: RelayHandler[] = [];

  constructor(
    readonly components: { logger: Logger; registry: Registry },
    readonly opts: RelayNodeOptions,
  ) {
    const c = components;
    this.relay = new Relay(
      {
        logger: c.logger,
        registry: c.registry,
        directory: (req, circ) => this.serveDir(req, circ),
        onionRoles: (circ, streamId, msg) => this.handlers.some((h) => h(circ, streamId, msg)),
      },
      {
        nickname: opts.nickname,
        host: opts.host,
        port: opts.port,
        tls: opts.tls,
        keys: opts.keys,
        exitPolicy: opts.exitPolicy,
      },
    );
    this.publisher = new DescriptorPublisher(
      this.relay,
      {
        authorities: opts.authorities,
        bandwidth: opts.bandwidth ?? 1_000_000,
        hsdir: opts.hsdir ?? true,
        ...(opts.republishMs !== undefined ? { republishMs: opts.republishMs } : {}),
      },
      c.logger,
    );
  }

  addDirRoute(route: DirRoute): void {
    this.routes.push(route);
  }

  addRelayHandler(handler: RelayHandler): void {
    this.handlers.push(handler);
  }

  async start(): Promise<void> {
    await this.relay.start();
    await this.publisher.start();
  }

  async stop(): Promise<void> {
    this.publisher.stop();
    await this.relay.stop();
  }

  private async serveDir(req: DirRequest, circ: OrCircuit): Promise<DirResponse> {
    if (req.method === 'GET' && req.path === CONSENSUS_PATH) {
      const raw = this.publisher.cachedConsensus;
      return raw ? { status: 200, body: raw } : { status: 404, body: utf8('no consensus cached yet\n') };
    }
    for (const route of this.routes) {
      const res = await route(req, circ);
      if (res) return res;
    }
    return { status: 404, body: utf8('not found\n') };
  }
}
