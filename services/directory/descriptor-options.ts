/**
 * What the authority's descriptor store (descriptors.ts) is configured
 * with, and how it refuses a descriptor (dir-spec §3.2: an authority
 * answers an upload it will not store with an HTTP error): the limits on
 * unverified descriptors and their reachability tests, the flag thresholds,
 * C tor's AuthDirMaxServersPerAddr and AuthDirMaxServersPerAuthAddr.
 */
import { ShallotError } from '../core/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from '../runtime/log.js';

/**
 * Descriptors awaiting their reachability test. Not a C tor option (C tor
 * stores any descriptor and tests later); sized so `shallot up` with 1000
 * relays starting at once is admitted without retries.
 */
export const DEFAULT_MAX_UNVERIFIED_DESCRIPTORS = 1024;
/**
 * Tests of a new descriptor that time out before it is dropped: a loaded
 * authority's timeouts are its own (issue 17); a refused connection or the
 * wrong identity drops it at once.
 */
export const ADMISSION_TESTS = 3;
export type DescriptorRefusal =
  | 'invalid'
  | 'not-newer'
  | 'too-many-relays'
  | 'unverified-full'
  | 'address-taken'
  | 'unreachable'
  | 'wrong-identity';

/** A relay descriptor this authority will not store (or dropped after its reachability test). */
export class DescriptorRefusedError extends ShallotError {
  constructor(
    readonly reason: DescriptorRefusal,
    message: string,
    /** HTTP status: 503 when it may succeed later. */
    readonly status = 400,
  ) {
    super('ERR_DESCRIPTOR_REFUSED', message, { reason });
  }
}

/** The authority options that decide what is stored and voted (see AuthorityOptions). */
export interface DescriptorOptions {
  votingIntervalSec: number;
  /** TestingTorNetwork flag thresholds (assignFlags). */
  testnet: boolean;
  /** Lowercase hex ids to mark BadExit. */
  badExits?: string[];
  /** Future publication times accepted (Tor ROUTER_ALLOW_SKEW: 12 h). */
  descriptorSkewMs?: number;
  /** Oldest publication time accepted and voted Running (Tor: 24 h). */
  descriptorMaxAgeMs?: number;
  /** C tor AuthDirMaxServersPerAddr: relays listed per address, 0 = no limit (default 2, C tor's). */
  maxServersPerAddr?: number;
  /** C tor AuthDirMaxServersPerAuthAddr: relays listed on an authority's address (default 5, C tor's). */
  maxServersPerAuthAddr?: number;
  /** Unverified descriptors stored at once (default DEFAULT_MAX_UNVERIFIED_DESCRIPTORS). */
  maxUnverifiedDescriptors?: number;
  /** Measure reachable relays (reachability.ts) and vote Measured= (default: with probeReachability). */
  measureBandwidth?: boolean;
  /**
   * Testnet flag thresholds: seconds this authority has seen a relay
   * reachable before it votes Stable, Guard, HSDir (default
   * testnetMinUptime: Guard after a vote delay, Stable and HSDir at once as
   * C tor's TestingTorNetwork). Live rules (testnet false) ignore this.
   */
  minUptimeSec?: { stable: number; guard: number; hsdir: number };
}

export interface DescriptorStoreContext {
  log: Logger;
  metrics: Metrics['directory'];
  /** Metric label. */
  name: string;
  now: () => number;
  opts: DescriptorOptions;
  intervalMs: number;
  /** Hosts of every authority (AuthDirMaxServersPerAuthAddr applies there). */
  authorityAddresses: ReadonlySet<string>;
}
