/**
 * The per-client DoS defences of a relay (C tor dos.c, tor(1) "DENIAL OF
 * SERVICE MITIGATION OPTIONS"): connection limits and circuit creation.
 *
 * Overview: every inbound connection from a client (a peer that did not
 * authenticate as a relay listed in the consensus) is counted against its
 * client key. Connections: at most `DoSConnectionMaxConcurrentCount` open
 * at once, and a connect-rate bucket (`DoSConnectionConnectRate`/`Burst`);
 * a key that empties it is marked for `DoSConnectionConnectDefenseTimePeriod`
 * and its new connections are closed (defence type 2). Circuits: a bucket of
 * `DoSCircuitCreationBurst` refilled at `DoSCircuitCreationRate` per second,
 * charged by every CREATE2 once the key has at least
 * `DoSCircuitCreationMinConnections` connections open; a key that empties it
 * is marked for `DoSCircuitCreationDefenseTimePeriod` (plus up to half of it
 * at random, as C tor's `cc_mark_client`), and its CREATE2 cells get DESTROY
 * RESOURCELIMIT (defence type 2).
 *
 * Design notes:
 * - The client key is the peer's address, as in C tor — except for the
 *   address the relay itself advertises: on a testnet on one machine every
 *   node shares 127.0.0.1, so a connection from our own address counts as
 *   its own client (keyed by connection), and honest nodes are never
 *   throttled as one. In a cluster every pod has its own address and C
 *   tor's per-address rules hold as they are.
 * - Relays are exempt, as C tor exempts known relays' addresses: here by the
 *   identity they authenticated in the link handshake and the consensus
 *   listing it, which also holds on a shared loopback address.
 * - Enabled by default: C tor's compiled-in defaults leave both off until
 *   the consensus turns them on, and the live network's consensus does (and
 *   lowers DoSConnectionMaxConcurrentCount to 50); a testnet has no
 *   directory operators, so Shallot starts with the live network's values.
 *   The consensus params (Tor's names) override them network-wide.
 * - A per-address key outlives its connections (its connect-rate bucket
 *   must, or connecting and closing in turn would never empty it) until
 *   `sweep` finds it idle for IDLE_FORGET_MS with no mark in force (C tor
 *   frees the entry with its geoip record); a per-connection key goes with
 *   its connection. Memory follows the number of recent clients.
 *
 * Not in this module: sockets and cells (relay.ts), stream creation
 * (stream-dos.ts), the onionskin queue (onionskin-queue.ts).
 */
import { boundedParam } from '../core/consensus-param.js';
import { randomBytes } from '../core/crypto.js';
import { uniformFraction } from '../core/random.js';
import { TokenBucket } from '../core/token-bucket.js';

export interface ClientDosParams {
  circuitEnabled: boolean;
  circuitMinConnections: number;
  /** Circuits per second (bucket refill). */
  circuitRate: number;
  circuitBurst: number;
  /** 1: none (count only), 2: refuse CREATE2 with DESTROY RESOURCELIMIT. */
  circuitDefenseType: 1 | 2;
  circuitDefenseTimeMs: number;
  connEnabled: boolean;
  connMaxConcurrent: number;
  /** Connections per second (bucket refill). */
  connRate: number;
  connBurst: number;
  /** 1: none (count only), 2: close the connection. */
  connDefenseType: 1 | 2;
  connDefenseTimeMs: number;
}

/** The live Tor network's consensus values (C tor's compiled-in defaults where it sets none). */
export const CLIENT_DOS_DEFAULTS: ClientDosParams = {
  circuitEnabled: true,
  circuitMinConnections: 3,
  circuitRate: 3,
  circuitBurst: 90,
  circuitDefenseType: 2,
  circuitDefenseTimeMs: 3_600_000,
  connEnabled: true,
  connMaxConcurrent: 50,
  connRate: 20,
  connBurst: 40,
  connDefenseType: 2,
  connDefenseTimeMs: 24 * 3_600_000,
};

/** The defences' parameters from consensus params (Tor's names and bounds). */
export function clientDosParams(params: Record<string, number>): ClientDosParams {
  const d = CLIENT_DOS_DEFAULTS;
  const max = 2 ** 31 - 1;
  const p = (name: string, fallback: number, min: number, hi = max) =>
    boundedParam(params, name, fallback, min, hi);
  return {
    circuitEnabled: p('DoSCircuitCreationEnabled', 1, 0, 1) === 1,
    circuitMinConnections: p('DoSCircuitCreationMinConnections', d.circuitMinConnections, 0),
    circuitRate: p('DoSCircuitCreationRate', d.circuitRate, 1),
    circuitBurst: p('DoSCircuitCreationBurst', d.circuitBurst, 1),
    circuitDefenseType: p('DoSCircuitCreationDefenseType', d.circuitDefenseType, 1, 2) as 1 | 2,
    circuitDefenseTimeMs: p('DoSCircuitCreationDefenseTimePeriod', d.circuitDefenseTimeMs / 1000, 0) * 1000,
    connEnabled: p('DoSConnectionEnabled', 1, 0, 1) === 1,
    connMaxConcurrent: p('DoSConnectionMaxConcurrentCount', d.connMaxConcurrent, 1),
    connRate: p('DoSConnectionConnectRate', d.connRate, 1),
    connBurst: p('DoSConnectionConnectBurst', d.connBurst, 1),
    connDefenseType: p('DoSConnectionDefenseType', d.connDefenseType, 1, 2) as 1 | 2,
    connDefenseTimeMs: p('DoSConnectionConnectDefenseTimePeriod', d.connDefenseTimeMs / 1000, 10) * 1000,
  };
}

interface ClientStats {
  connections: number;
  connBucket: TokenBucket;
  connMarkedUntil: number;
  circuitBucket: TokenBucket;
  circuitMarkedUntil: number;
  lastSeen: number;
}

/** How long an address with no connection and no mark is remembered. */
export const IDLE_FORGET_MS = 10 * 60_000;

export type ConnVerdict = 'allow' | 'close-concurrent' | 'close-rate';
export type CircuitVerdict = 'allow' | 'refuse';

/** One client's connection as the defences see it: release() when it closes. */
export interface ClientConn {
  readonly key: string;
  release(): void;
}

export class ClientDos {
  private readonly clients = new Map<string, ClientStats>();
  private nextConnId = 0;

  constructor(
    /** The address this relay advertises: connections from it count one by one (see header). */
    private readonly ownAddress: string,
    private readonly now: () => number = Date.now,
    private readonly uniform: () => number = () => uniformFraction(randomBytes),
  ) {}

  /** Clients currently tracked (for the gauge and tests). */
  get trackedClients(): number {
    return this.clients.size;
  }

  /** The client key of a peer at `address` (see header: our own address is per connection). */
  keyFor(address: string): string {
    const a = address.replace(/^::ffff:/, '');
    return a === this.ownAddress ? `${a}#${this.nextConnId++}` : a;
  }

  /** A new inbound connection: count it, and say whether the connection defence lets it stay. */
  onConnection(address: string, p: ClientDosParams): { verdict: ConnVerdict; conn: ClientConn } {
    const now = this.now();
    const key = this.keyFor(address);
    const s = this.stats(key, p, now);
    s.connections++;
    let released = false;
    const conn: ClientConn = {
      key,
      release: () => {
        if (released) return;
        released = true;
        s.connections--;
        s.lastSeen = this.now();
        if (s.connections === 0 && key.includes('#')) this.clients.delete(key);
      },
    };
    if (!p.connEnabled || p.connDefenseType === 1) return { verdict: 'allow', conn };
    if (s.connections > p.connMaxConcurrent) return { verdict: 'close-concurrent', conn };
    if (now < s.connMarkedUntil) return { verdict: 'close-rate', conn };
    if (!s.connBucket.take(now)) {
      s.connMarkedUntil = now + p.connDefenseTimeMs;
      return { verdict: 'close-rate', conn };
    }
    return { verdict: 'allow', conn };
  }

  /** A CREATE2 from the client `key` (C tor's dos_cc_new_create_cell and dos_cc_get_defense_type). */
  onCreate(key: string, p: ClientDosParams): CircuitVerdict {
    const s = this.clients.get(key);
    if (!s || !p.circuitEnabled) return 'allow';
    const now = this.now();
    s.lastSeen = now;
    if (now < s.circuitMarkedUntil) return p.circuitDefenseType === 2 ? 'refuse' : 'allow';
    // C tor charges the bucket only once a client holds enough connections.
    if (s.connections < p.circuitMinConnections) return 'allow';
    if (s.circuitBucket.take(now)) return 'allow';
    s.circuitMarkedUntil =
      now + p.circuitDefenseTimeMs + Math.floor(this.uniform() * (p.circuitDefenseTimeMs / 2));
    return p.circuitDefenseType === 2 ? 'refuse' : 'allow';
  }

  private stats(key: string, p: ClientDosParams, now: number): ClientStats {
    let s = this.clients.get(key);
    if (!s) {
      s = {
        connections: 0,
        connBucket: new TokenBucket(p.connRate, p.connBurst, now),
        connMarkedUntil: 0,
        circuitBucket: new TokenBucket(p.circuitRate, p.circuitBurst, now),
        circuitMarkedUntil: 0,
        lastSeen: now,
      };
      this.clients.set(key, s);
    }
    return s;
  }

  /** Forgets addresses idle for IDLE_FORGET_MS with no connection and no mark in force. */
  sweep(): void {
    const now = this.now();
    for (const [key, s] of this.clients) {
      const marked = now < s.connMarkedUntil || now < s.circuitMarkedUntil;
      if (s.connections === 0 && !marked && now - s.lastSeen >= IDLE_FORGET_MS) this.clients.delete(key);
    }
  }
}
