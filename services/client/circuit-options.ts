/**
 * What the client's circuit manager is configured with (C tor's options of
 * the same names, defaults as C tor's), what a build asks for, and the
 * error of a client that has no consensus yet.
 */
import type { Registry } from 'prom-client';
import type { HandshakeName } from '../core/create-handshake.js';
import type { Rng } from '../core/crypto.js';
import { ShallotError } from '../core/errors.js';
import type { PathPurpose } from '../core/path.js';
import type { LinkShaping } from '../net/link-delay.js';
import type { Logger } from '../runtime/log.js';
import type { CircuitTarget } from './netdir.js';

export interface CircuitManagerOptions {
  /** Dial relays over wss (default) or plain ws. */
  tls: boolean;
  /** Dial raw TLS links (a C tor network, tor-spec §2) instead of WebSocket. */
  rawTls: boolean;
  /** Apply the /16 rule (off on loopback testnets, where every relay is 127/8). */
  enforceSubnets: boolean;
  /** Clean exit circuits kept ready. */
  prebuild: number;
  /** Tor's MaxCircuitDirtiness (default 10 min, as C tor). */
  maxDirtinessMs: number;
  /** Clean circuits are closed this long after they opened (default 1 h, C tor's upper predicted-port lifetime). */
  idleTimeoutMs: number;
  /** How often old circuits are looked for (default 1 s, as C tor's once-a-second check). */
  expiryCheckMs: number;
  /**
   * CREATE2 unanswered this long means the first hop stopped answering
   * (default 10 s, C tor's first stream timeout; C tor waits for the close
   * timeout, 60 s, which would leave a frozen guard in use for a minute).
   */
  firstHopTimeoutMs: number;
  /** C tor SocksTimeout (2 min): the latest a timed-out onion-service circuit is kept (`hs_extremely_old_cutoff`). */
  socksTimeoutMs: number;
  /** Paths tried before a request fails. */
  buildAttempts: number;
  /** Where guard state persists between runs (none: in memory). */
  dataDir?: string;
  /** The CREATE2/EXTEND2 handshake for every hop. */
  handshake: HandshakeName;
  /** Layer-2 vanguards for onion-service circuits (prop 333; Tor's default since 0.4.7). */
  vanguardsLite: boolean;
  /** The network model's latency on the client's links (net/link-delay.ts). */
  shaping?: LinkShaping | null;
}

export const DEFAULT_CIRCUIT_OPTIONS: CircuitManagerOptions = {
  tls: true,
  rawTls: false,
  enforceSubnets: false,
  prebuild: 2,
  maxDirtinessMs: 10 * 60_000,
  idleTimeoutMs: 60 * 60_000,
  expiryCheckMs: 1_000,
  firstHopTimeoutMs: 10_000,
  socksTimeoutMs: 120_000,
  buildAttempts: 3,
  handshake: 'ntor',
  vanguardsLite: false,
};

export interface CircuitManagerComponents {
  logger: Logger;
  registry: Registry;
  rng?: Rng;
  now?: () => number;
}

export interface BuildRequest {
  purpose: PathPurpose;
  /** Exit circuits: the destination port (and host, checked against exit policies). */
  exitPort?: number;
  exitHost?: string;
  /** Onion-service circuits: the relay the circuit must end at (listed or not). */
  lastHop?: CircuitTarget;
  /** Hops chosen before `lastHop` (default: 3 without lastHop, 2 with, 3 with vanguards-lite). */
  length?: number;
}

export class NoConsensusError extends ShallotError {
  constructor() {
    super('ERR_NO_CONSENSUS', 'no usable consensus yet');
  }
}
