/**
 * A directory authority's configuration: its options, and the voting
 * schedule and authority set they resolve to (dir-spec §1.4: voting
 * interval, vote delay, distribution delay).
 *
 * Design notes: every authority must be configured with the same set or
 * their consensus digests differ; the set is the configured peers plus this
 * authority, sorted. The delays default to a fifth of the interval (4 s each
 * for 20 s), and must leave time to publish: V + D < I.
 *
 * Not in this module: what the schedule does (authority.ts).
 */
import type { Registry } from 'prom-client';
import type { HandshakeName } from '../core/create-handshake.js';
import { ShallotError } from '../core/errors.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import type { LinkShaping } from '../net/link-delay.js';
import type { Logger } from '../runtime/log.js';
import type { DescriptorOptions } from './descriptor-options.js';

/** Reachability tests and measurements in flight at once. */
export const DEFAULT_PROBE_CONCURRENCY = 16;

export interface AuthorityComponents {
  logger: Logger;
  registry: Registry;
  /** Wall clock in ms; timers are real, this only moves the schedule's notion of now. */
  now?: () => number;
}

export interface AuthorityOptions extends DescriptorOptions {
  identitySeed: Uint8Array;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Every authority; this one may be included. */
  peers: AuthorityEndpoint[];
  /** Default: a fifth of the interval. */
  voteDelaySec?: number;
  /** Default: a fifth of the interval. */
  distDelaySec?: number;
  params?: Record<string, number>;
  /** Metric label; default the first 8 hex digits of the identity. */
  name?: string;
  /**
   * Test each relay by a link handshake to its address:orPort with its
   * identity checked (C tor's reachability test) and list only relays that
   * pass (descriptors.ts). Off by default: unit tests post descriptors of
   * relays that do not exist.
   */
  probeReachability?: boolean;
  /** Reachability tests and measurements in flight (default DEFAULT_PROBE_CONCURRENCY). */
  probeConcurrency?: number;
  /** Dial wss when a descriptor has no link URL (default true). */
  tls?: boolean;
  /** CREATE2 handshake of the scanner's one-hop circuits (default ntor; use the network's). */
  handshake?: HandshakeName;
  /**
   * Its reachability links' name and network-model location
   * (net/link-delay.ts): probes to relays cross the model's latency both
   * ways, and link faults (cut, slow, pause) find them by `shaping.node`,
   * which also names the DirPort for a pause (http.ts createDirServer).
   */
  shaping?: LinkShaping | null;
}

/** A configuration problem found at construction. */
export class AuthorityConfigError extends ShallotError {
  constructor(message: string) {
    super('ERR_AUTHORITY_CONFIG', message);
  }
}

export interface Timing {
  intervalMs: number;
  voteDelayMs: number;
  distDelayMs: number;
  /** A reachability test's budget: most of the vote delay, 0.5-3 s, so the vote is never late. */
  probeTimeoutMs: number;
}

/** The schedule's interval and delays in ms; throws AuthorityConfigError unless 0 < V, 0 < D, V + D < I. */
export function resolveTiming(opts: {
  votingIntervalSec: number;
  voteDelaySec?: number;
  distDelaySec?: number;
}): Timing {
  if (!Number.isSafeInteger(opts.votingIntervalSec) || opts.votingIntervalSec < 1) {
    throw new AuthorityConfigError('voting interval must be a positive whole number of seconds');
  }
  const intervalMs = opts.votingIntervalSec * 1000;
  const voteDelayMs = Math.round((opts.voteDelaySec ?? opts.votingIntervalSec / 5) * 1000);
  const distDelayMs = Math.round((opts.distDelaySec ?? opts.votingIntervalSec / 5) * 1000);
  if (voteDelayMs <= 0 || distDelayMs <= 0 || voteDelayMs + distDelayMs >= intervalMs) {
    throw new AuthorityConfigError('need 0 < vote delay, 0 < dist delay, vote delay + dist delay < interval');
  }
  const probeTimeoutMs = Math.max(500, Math.min(3000, voteDelayMs * 0.8));
  return { intervalMs, voteDelayMs, distDelayMs, probeTimeoutMs };
}

/**
 * The peers (every configured authority but this one) and the sorted set of
 * all authority ids; `selfListed` says whether the configuration named this
 * authority. Throws AuthorityConfigError on a malformed id.
 */
export function resolveAuthorities(
  configured: readonly AuthorityEndpoint[],
  selfId: string,
): { peers: AuthorityEndpoint[]; authorityIds: string[]; selfListed: boolean } {
  const byId = new Map<string, AuthorityEndpoint>();
  for (const p of configured) {
    if (!/^[0-9a-f]{64}$/.test(p.identity)) throw new AuthorityConfigError(`bad peer id ${p.identity}`);
    byId.set(p.identity, p);
  }
  return {
    peers: [...byId.values()].filter((p) => p.identity !== selfId),
    authorityIds: [...new Set([...byId.keys(), selfId])].sort(),
    selfListed: byId.has(selfId),
  };
}
