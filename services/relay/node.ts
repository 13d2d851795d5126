/**
 * A relay as a network node: the `Relay` forwarding machine plus what makes
 * it part of a network — descriptor publishing, a consensus cache served
 * over BEGIN_DIR, and (services/relay/onion-roles.ts) the onion-service
 * roles. The local launcher and `main.ts` both build relays through here.
 */
import type { Registry } from 'prom-client';
import { utf8 } from '../core/bytes.js';
import { ctEqual } from '../core/crypto.js';
import { type NodeKeys, rotateOnionKey } from '../core/node-keys.js';
import type { RelayMessage } from '../core/relay-cell.js';
import type { ExtendTarget, HostPort } from '../core/relay-pivot.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { recordNetworkModel } from '../metrics/model-series.js';
import { type AuthorityEndpoint, CONSENSUS_PATH } from '../net/dir-client.js';
import type { DirRequest, DirResponse } from '../net/dir-http.js';
import type { OrCircuit } from '../net/or-circuit.js';
import { writeKeyFile } from '../runtime/key-store.js';
import type { Logger } from '../runtime/log.js';
import { type Resolver, systemResolver } from './exit.js';
import { KeyFileWatcher, KeyReloadError } from './key-watch.js';
import { NetworkView } from './network-view.js';
import { DescriptorPublisher } from './publisher.js';
import { Relay } from './relay.js';
import type { RelayOptions } from './relay-options.js';

/** The relay's own options (relay.ts), and what publishing and key rotation need. */
export interface RelayNodeOptions
  extends Pick<
    RelayOptions,
    'nickname' | 'host' | 'port' | 'tls' | 'keys' | 'exitPolicy' | 'limits' | 'shaping'
  > {
  authorities: AuthorityEndpoint[];
  bandwidth?: number;
  hsdir?: boolean;
  republishMs?: number;
  /** Rotate the ntor onion key this often (0/undefined: never); old keys work for one more period. */
  keyRotationMs?: number;
  /** Where the keys persist (0600), so rotations survive restarts. */
  keyFile?: string;
  /**
   * A key file rotated from outside (the operator's Secret, or the key file
   * itself) to poll; new onion keys are taken without a restart (key-watch.ts).
   */
  keyWatch?: { file: string; intervalMs?: number };
  /**
   * Ports exits must not reach besides those the consensus and the
   * authority list name: the network's ops ports and the client's SOCKS
   * port (`--reentry-reject`, core/relay-pivot.ts).
   */
  reentryReject?: HostPort[];
}

/**
 * The descriptor's bandwidth: the configured capacity (standing in for C
 * tor's observed bandwidth, which an idle testnet relay never builds up),
 * capped by BandwidthRate as C tor's router_get_advertised_bandwidth takes
 * min(bandwidthrate, bandwidthcapacity); the authorities then weight it.
 */
export function advertisedBandwidth(opts: Pick<RelayNodeOptions, 'bandwidth' | 'shaping'>): number {
  return Math.min(opts.bandwidth ?? 1_000_000, opts.shaping?.limiter?.rate ?? Number.POSITIVE_INFINITY);
}

/** Extra BEGIN_DIR routes (the HSDir role adds /tor/hs/3/...). */
export type DirRoute = (req: DirRequest, circ: OrCircuit) => Promise<DirResponse | null> | DirResponse | null;

/** Extra relay-message handlers (onion-roles.ts); true means handled. */
export type RelayHandler = (circ: OrCircuit, streamId: number, msg: RelayMessage) => boolean;

export class RelayNode {
  readonly relay: Relay;
  readonly publisher: DescriptorPublisher;
  /** The consensus as the EXTEND2 and re-entry checks see it. */
  readonly view: NetworkView;
  private readonly routes: DirRoute[] = [];
  private rotationTimer: NodeJS.Timeout | null = null;
  private ageTimer: NodeJS.Timeout | null = null;
  private watcher: KeyFileWatcher | null = null;
  private keys: NodeKeys;
  private readonly m: Metrics['relay'];
  private readonly model: Metrics['model'];
  private readonly logger: Logger;
  private readonly handlers: RelayHandler[] = [];

  constructor(
    /** `resolve` replaces the system resolver (tests count the exit's DNS queries with it). */
    readonly components: { logger: Logger; registry: Registry; resolve?: Resolver },
    readonly opts: RelayNodeOptions,
  ) {
    const c = components;
    this.keys = opts.keys;
    this.logger = c.logger;
    this.m = metricsFor(c.registry).relay;
    this.model = metricsFor(c.registry).model;
    this.relay = new Relay(
      {
        logger: c.logger,
        registry: c.registry,
        directory: (req, circ) => this.serveDir(req, circ),
        onionRoles: (circ, streamId, msg) => this.handlers.some((h) => h(circ, streamId, msg)),
        // A relay given no authorities (in-process tests; every process entry
        // requires a non-empty --authorities) has no consensus to check against.
        ...(opts.authorities.length > 0
          ? {
              checkExtend: (t: ExtendTarget) => this.view.checkExtend(t),
              listedRelay: (identity: Uint8Array) => this.view.listedAt(identity),
              isReentry: (addr: string, port: number) => this.view.isReentry(addr, port),
            }
          : {}),
        resolve: (host) => this.resolve(host),
        consensusParams: () => this.publisher.consensus?.params ?? {},
      },
      {
        nickname: opts.nickname,
        host: opts.host,
        port: opts.port,
        tls: opts.tls,
        keys: opts.keys,
        exitPolicy: opts.exitPolicy,
        ...(opts.limits ? { limits: opts.limits } : {}),
        ...(opts.shaping ? { shaping: opts.shaping } : {}),
      },
    );
    this.publisher = new DescriptorPublisher(
      this.relay,
      {
        authorities: opts.authorities,
        bandwidth: advertisedBandwidth(opts),
        hsdir: opts.hsdir ?? true,
        ...(opts.republishMs !== undefined ? { republishMs: opts.republishMs } : {}),
      },
      c.logger,
    );
    this.view = new NetworkView(this.publisher, {
      // C tor adds the trusted authorities' DirPorts to its re-entry set
      // (nodelist.c, dirlist_add_trusted_dir_addresses).
      reentryReject: [...opts.authorities.map(authorityDirPort), ...(opts.reentryReject ?? [])],
    });
  }

  /** Ports exits must not reach that became known after start (the in-process launcher's SOCKS and ops ports). */
  rejectReentry(list: readonly HostPort[]): void {
    this.view.rejectReentry(list);
  }

  /** The exit's DNS, counted (C tor's relay_exit_dns_query_total); exit.ts calls it only once the policy allows the port. */
  private async resolve(host: string): Promise<string> {
    const label = (outcome: string) => ({ relay: this.opts.nickname, outcome });
    try {
      const addr = await (this.components.resolve ?? systemResolver)(host);
      this.m.exitDnsQueries.labels(label('ok')).inc();
      return addr;
    } catch (e) {
      this.m.exitDnsQueries.labels(label('error')).inc();
      throw e;
    }
  }

  addDirRoute(route: DirRoute): void {
    this.routes.push(route);
  }

  addRelayHandler(handler: RelayHandler): void {
    this.handlers.push(handler);
  }

  async start(): Promise<void> {
    await this.relay.start();
    // Our own ORPort, before any consensus lists it.
    this.view.rejectReentry([{ host: this.opts.host, port: this.relay.port }]);
    await this.publisher.start();
    const every = this.opts.keyRotationMs ?? 0;
    if (every > 0) {
      this.rotationTimer = setInterval(() => void this.rotateOnionKey(), every);
      this.rotationTimer.unref();
    }
    // Counters appear at 0 so rate() sees the first rotation; ages grow between scrapes.
    this.m.keyRotations.labels({ relay: this.opts.nickname, key: 'onion' }).inc(0);
    this.updateKeyAges();
    this.updateShaping();
    this.recordLocation();
    this.ageTimer = setInterval(() => {
      this.updateKeyAges();
      this.updateShaping();
    }, 5_000);
    this.ageTimer.unref();
    const w = this.opts.keyWatch;
    if (w) {
      this.watcher = new KeyFileWatcher(
        w.file,
        {
          keys: (k) => this.reloadKeys(k).then(() => {}),
          error: (e) =>
            this.logger.warn('rotated key file not taken; keeping the keys we have', { error: e.message }),
        },
        w.intervalMs,
      );
      this.watcher.start();
    }
  }

  /**
   * Takes onion keys rotated outside this process (key-watch.ts): the
   * newest becomes the advertised one, the others keep answering CREATE2
   * until the writer drops them (tor-spec §5.1.4 grace period), and a new
   * current key is published at once, as C tor's rotate_onion_key asks
   * ("generate and upload a fresh routerinfo"). The identity cannot change
   * in place (links, descriptors and the consensus entry hang on it), so
   * other keys are refused. Resolves whether anything changed.
   */
  async reloadKeys(keys: NodeKeys): Promise<boolean> {
    if (!ctEqual(keys.identity, this.keys.identity)) {
      throw new KeyReloadError(
        'the key file holds another identity; a relay takes a new identity only by restarting',
      );
    }
    const pubs = (k: NodeKeys) => k.onionKeys.map((o) => Buffer.from(o.public).toString('hex')).join(',');
    if (pubs(keys) === pubs(this.keys)) return false;
    const rotated = !ctEqual(keys.onionKeys[0]!.public, this.keys.onionKeys[0]!.public);
    this.keys = keys;
    this.relay.setKeys(keys);
    if (this.opts.keyFile && this.opts.keyFile !== this.opts.keyWatch?.file) {
      // A container restart then starts from the rotated keys, not the ones copied at pod start.
      await writeKeyFile(this.opts.keyFile, keys);
    }
    if (rotated) this.m.keyRotations.labels({ relay: this.opts.nickname, key: 'onion' }).inc();
    this.updateKeyAges();
    this.logger.info('onion keys reloaded', { keys: keys.onionKeys.length, rotated });
    if (rotated) await this.publisher.publish();
    return true;
  }

  /**
   * tor-spec §5.1.4 onion-key rotation: a new current key, the previous one
   * still answering CREATE2 for a grace period (one rotation interval), then
   * a fresh descriptor so clients learn the new key.
   */
  async rotateOnionKey(): Promise<void> {
    const grace = this.opts.keyRotationMs ?? 0;
    this.keys = rotateOnionKey(this.keys, grace);
    this.relay.setKeys(this.keys);
    if (this.opts.keyFile) await writeKeyFile(this.opts.keyFile, this.keys);
    this.m.keyRotations.labels({ relay: this.opts.nickname, key: 'onion' }).inc();
    this.updateKeyAges();
    this.logger.info('onion key rotated', { keys: this.keys.onionKeys.length });
    await this.publisher.publish();
  }

  /** Configured, advertised and observed bandwidth as series, for the dashboards (issue 18). */
  private updateShaping(): void {
    const relay = this.opts.nickname;
    const s = this.opts.shaping;
    this.m.bandwidthAdvertised.labels({ relay }).set(advertisedBandwidth(this.opts));
    if (s?.limiter) {
      this.m.bandwidthRate.labels({ relay }).set(s.limiter.rate);
      this.m.bandwidthBurst.labels({ relay }).set(s.limiter.burst);
      this.m.bandwidthObserved.labels({ relay }).set(s.limiter.observed);
    }
  }

  /** The relay's location and the model itself, once: neither changes while it runs. */
  private recordLocation(): void {
    const s = this.opts.shaping;
    if (!s?.model || !s.location) return;
    this.m.location.labels({ relay: this.opts.nickname, location: s.location }).set(1);
    recordNetworkModel(this.model, s.model);
  }

  private updateKeyAges(): void {
    const now = Date.now();
    const onion = this.keys.onionKeys[0];
    this.m.keyAge
      .labels({ relay: this.opts.nickname, key: 'identity' })
      .set((now - this.keys.identityCreatedAt) / 1000);
    if (onion)
      this.m.keyAge.labels({ relay: this.opts.nickname, key: 'onion' }).set((now - onion.createdAt) / 1000);
  }

  async stop(): Promise<void> {
    if (this.rotationTimer) clearInterval(this.rotationTimer);
    if (this.ageTimer) clearInterval(this.ageTimer);
    await this.watcher?.stop();
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

/** An authority's DirPort from its URL (a hostname there matches nothing: exits check resolved addresses). */
function authorityDirPort(a: AuthorityEndpoint): HostPort {
  const u = new URL(a.url);
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
}
