/**
 * A whole Shallot network in one process on 127.0.0.1: directory
 * authorities, relays (some exits; guards and HSDirs by the consensus's
 * testnet rules) and the wiring between them. `shallot up` and the
 * integration tests both start networks through here.
 *
 * Keys live under `dataDir` (0600 files) so a second start with the same
 * directory keeps every identity; without a data dir they live in memory.
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import { toHex } from '../core/bytes.js';
import type { HandshakeName } from '../core/create-handshake.js';
import { ed25519PublicFromSeed } from '../core/crypto.js';
import { decodeSignedConsensus } from '../core/dir/consensus.js';
import { DEFAULT_TESTNET_EXIT_POLICY, REJECT_ALL } from '../core/exit-policy.js';
import { generateNodeKeys, type NodeKeys } from '../core/node-keys.js';
import type { HostPort } from '../core/relay-pivot.js';
import { testnetMinUptime } from '../directory/admission.js';
import { DirectoryAuthority } from '../directory/authority.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import type { LinkShaping } from '../net/link-delay.js';
import type { RelayNode } from '../relay/node.js';
import type { OnionRoles } from '../relay/onion-roles.js';
import { loadOrCreateKeys } from '../runtime/key-store.js';
import type { Logger } from '../runtime/log.js';
import { NodeSlot } from './node-slot.js';
import { PortAllocator } from './ports.js';
import { RelaySlot } from './relay-slot.js';

export interface NetworkSpec {
  authorities: number;
  relays: number;
  /** How many relays exit (to 127.0.0.0/8 only); the rest are middle-only. */
  exits: number;
  votingIntervalSec: number;
  tls: boolean;
  host: string;
  /** First port to try; 0 lets the kernel choose. */
  basePort: number;
  dataDir?: string;
  /** Advertised relay bandwidth, bytes/s. */
  bandwidth?: number;
  /** How often relays republish their descriptors. */
  republishMs?: number;
  /** How often relays rotate their onion keys (0: never). */
  keyRotationMs?: number;
  /** Give relays the onion-service roles (intro point, rendezvous point, HSDir); default true. */
  onionRoles?: boolean;
  /** The network's circuit handshake, for the authorities' bandwidth scanner (default ntor). */
  handshake?: HandshakeName;
  /** Consensus params the authorities vote (dir-spec "params"). */
  params?: Record<string, number>;
  /** Each relay's and authority's (`authN`) network-model latency and bandwidth limit (net/link-delay.ts), by name. */
  shaping?: (nickname: string) => LinkShaping | null;
}

export interface NetworkComponents {
  logger: Logger;
  registry: Registry;
}

export type BootstrapStage = 'authorities' | 'relays' | 'descriptors' | 'consensus';

export interface BootstrapProgress {
  stage: BootstrapStage;
  done: number;
  total: number;
}

export class LocalNetwork {
  /** Each relay as a fault target (stop, kill, start again: relay-slot.ts). */
  readonly slots: RelaySlot[] = [];

  private constructor(
    readonly spec: NetworkSpec,
    /** Each authority as a fault target (stop, kill, start again: node-slot.ts). */
    readonly authoritySlots: NodeSlot<DirectoryAuthority>[],
    readonly endpoints: AuthorityEndpoint[],
    readonly ports: PortAllocator,
    private readonly logger: Logger,
  ) {}

  static async start(
    c: NetworkComponents,
    spec: NetworkSpec,
    onProgress: (p: BootstrapProgress) => void = () => {},
  ): Promise<LocalNetwork> {
    const ports = new PortAllocator(spec.basePort, spec.host);
    const keyFile = (name: string) => (spec.dataDir ? path.join(spec.dataDir, name, 'keys.json') : undefined);
    const keysFor = async (name: string): Promise<NodeKeys> => {
      const file = keyFile(name);
      return file ? loadOrCreateKeys(file) : generateNodeKeys();
    };

    const authKeys: NodeKeys[] = [];
    const endpoints: AuthorityEndpoint[] = [];
    for (let i = 0; i < spec.authorities; i++) {
      const keys = await keysFor(`authority${i}`);
      authKeys.push(keys);
      const port = await ports.take();
      endpoints.push({
        identity: toHex(ed25519PublicFromSeed(keys.identitySeed)),
        url: `http://${spec.host}:${port}`,
      });
    }
    const authorities = authKeys.map(
      (keys, i) =>
        new NodeSlot(
          `auth${i}`,
          () =>
            new DirectoryAuthority(
              { logger: c.logger.child(`auth${i}`), registry: c.registry },
              {
                identitySeed: keys.identitySeed,
                host: spec.host,
                port: Number(new URL(endpoints[i]?.url ?? '').port),
                peers: endpoints,
                votingIntervalSec: spec.votingIntervalSec,
                testnet: true,
                // A relay that stopped drops out of the next consensus instead of
                // staying Running until its descriptor ages out (24 h).
                probeReachability: true,
                // Loopback: see up.ts (no per-address cap, small uptime thresholds).
                maxServersPerAddr: 0,
                minUptimeSec: testnetMinUptime(spec.votingIntervalSec),
                ...(spec.handshake ? { handshake: spec.handshake } : {}),
                ...(spec.params ? { params: spec.params } : {}),
                name: `auth${i}`,
                shaping: spec.shaping?.(`auth${i}`) ?? null,
              },
            ),
        ),
    );
    const net = new LocalNetwork(spec, authorities, endpoints, ports, c.logger);
    try {
      let up = 0;
      for (const a of authorities) {
        await a.start();
        onProgress({ stage: 'authorities', done: ++up, total: authorities.length });
      }
      for (let i = 0; i < spec.relays; i++) {
        const slot = new RelaySlot(
          { logger: c.logger.child(`relay${i}`), registry: c.registry },
          {
            nickname: `relay${i}`,
            host: spec.host,
            port: await ports.take(),
            tls: spec.tls,
            keys: await keysFor(`relay${i}`),
            exitPolicy: i < spec.exits ? DEFAULT_TESTNET_EXIT_POLICY : REJECT_ALL,
            authorities: endpoints,
            bandwidth: spec.bandwidth ?? 1_000_000,
            ...(spec.republishMs !== undefined ? { republishMs: spec.republishMs } : {}),
            ...(spec.keyRotationMs ? { keyRotationMs: spec.keyRotationMs } : {}),
            ...(keyFile(`relay${i}`) ? { keyFile: keyFile(`relay${i}`) } : {}),
            shaping: spec.shaping?.(`relay${i}`) ?? null,
          },
          spec.onionRoles !== false,
        );
        net.slots.push(slot);
        await slot.start();
        onProgress({ stage: 'relays', done: i + 1, total: spec.relays });
      }
      onProgress({
        stage: 'descriptors',
        done: net.relays.filter((r) => r.publisher.lastAccepted > spec.authorities / 2).length,
        total: spec.relays,
      });
    } catch (e) {
      await net.stop();
      throw e;
    }
    return net;
  }

  /**
   * Ports the exits must refuse that the consensus cannot name (the
   * launcher's ops port, the client's SOCKS port), known only after start.
   */
  rejectReentry(list: readonly HostPort[]): void {
    for (const s of this.slots) s.rejectReentry(list);
  }

  /** Onion roles attached from outside (tests), closed on stop. */
  private readonly attached: OnionRoles[] = [];

  /** Every running relay's onion roles. */
  get roles(): OnionRoles[] {
    return [...this.slots.flatMap((s) => (s.roles ? [s.roles] : [])), ...this.attached];
  }

  /** Roles a caller attached to one of the relays, to close with the network. */
  attachRoles(roles: OnionRoles): void {
    this.attached.push(roles);
  }

  /** The running authorities (one a fault keeps down is not among them). */
  get authorities(): DirectoryAuthority[] {
    return this.authoritySlots.flatMap((s) => (s.node ? [s.node] : []));
  }

  /** The running relays (a relay a fault keeps down is not among them). */
  get relays(): RelayNode[] {
    return this.slots.flatMap((s) => (s.node ? [s.node] : []));
  }

  /** The relays a client can use (listed with Guard) in the newest consensus any authority has published. */
  listedRelays(): number {
    let best = 0;
    for (const a of this.authorities) {
      const raw = a.latestConsensus;
      if (!raw) continue;
      try {
        // Relays a client can use: the first consensus after boot may list
        // relays before the authorities' uptime threshold gives them Guard,
        // and a client cannot build a circuit from it (SOCKS 0x01).
        const { relays } = decodeSignedConsensus(raw, 8 << 20).consensus;
        best = Math.max(best, relays.filter((r) => r.flags.includes('Guard')).length);
      } catch {
        // An authority's own document always decodes; ignore a torn read.
      }
    }
    return best;
  }

  /** Waits until a consensus lists at least `minRelays` relays. */
  async waitForConsensus(
    minRelays: number,
    timeoutMs: number,
    onProgress: (p: BootstrapProgress) => void = () => {},
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      const n = this.listedRelays();
      if (n !== last) {
        onProgress({ stage: 'consensus', done: n, total: minRelays });
        last = n;
      }
      if (n >= minRelays) return;
      if (Date.now() > deadline) {
        throw new Error(`consensus lists ${n} of ${minRelays} relays after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    for (const r of this.attached) r.close();
    await Promise.allSettled(this.slots.map((s) => s.stop()));
    await Promise.allSettled(this.authoritySlots.map((a) => a.stop()));
    this.logger.debug('network stopped');
  }
}
