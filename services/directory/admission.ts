/**
 * Who an authority lists, apart from flags (dir-spec §3.4.2; C tor
 * dirserv.c / voteflags.c): its own uptime history of each relay, and the
 * per-address cap on relays (AuthDirMaxServersPerAddr).
 *
 * Overview:
 * - `RunHistory` records each reachability test (reachability.ts) and
 *   answers "reachable now?" and "up for how long?" from what this
 *   authority saw, not from the descriptor (C tor rephist.c keeps the same
 *   history for MTBF/WFU). A relay never seen up is not reachable; one seen
 *   up and then only timing out is forgiven for a grace period (a loaded
 *   host), one that refused or answered with another identity is down.
 * - `omitAsSybil` (C tor get_possible_sybil_list): of the relays sharing an
 *   address, only the `max` best are listed (best = higher credible
 *   bandwidth, then longer uptime, then lower identity); 0 = no limit. On an
 *   authority's own address `maxOnAuthority` are (C tor exempts its
 *   authorities' addresses up to AuthDirMaxServersPerAuthAddr).
 *
 * Not in this module: the probing itself (reachability.ts), flag thresholds
 * (core/dir/flags.ts assignFlags), storing descriptors (authority.ts).
 */
import type { ProbeResult } from './reachability.js';

/** C tor's AuthDirMaxServersPerAddr default. */
export const DEFAULT_MAX_SERVERS_PER_ADDR = 2;
/** C tor's AuthDirMaxServersPerAuthAddr default. */
export const DEFAULT_MAX_SERVERS_PER_AUTH_ADDR = 5;

/**
 * The testnet flag thresholds (seconds of uptime the authority observed),
 * the authority's default and what `shallot up` passes: Guard after one vote delay, small so a
 * 5 s-interval testnet bootstraps in a round or two. Stable and HSDir at
 * once, as C tor's TestingTorNetwork (MinUptimeHidServDirectoryV2 0): an
 * HSDir set that grows a round after bootstrap moves the onion services'
 * descriptors under their clients' feet.
 */
export function testnetMinUptime(votingIntervalSec: number): {
  stable: number;
  guard: number;
  hsdir: number;
} {
  return { stable: 0, guard: Math.ceil(votingIntervalSec / 5), hsdir: 0 };
}

interface Run {
  /** Start of the current unbroken run of successful tests. */
  since: number;
  lastUp: number;
}

export class RunHistory {
  private readonly runs = new Map<string, Run>();

  observe(id: string, result: ProbeResult, nowMs: number): void {
    const run = this.runs.get(id);
    if (result === 'up') {
      if (run) run.lastUp = nowMs;
      else this.runs.set(id, { since: nowMs, lastUp: nowMs });
    } else if (result !== 'timeout') {
      // A definite failure ends the run (C tor: a failed reachability test marks it down).
      this.runs.delete(id);
    }
  }

  /** Up at the last test, or only timed out since, within `graceMs` of the last success. */
  reachable(id: string, nowMs: number, graceMs: number): boolean {
    const run = this.runs.get(id);
    return run !== undefined && nowMs - run.lastUp <= graceMs;
  }

  /** Seconds of the current run (0 if none). */
  uptimeSec(id: string, nowMs: number): number {
    const run = this.runs.get(id);
    return run ? Math.max(0, Math.floor((nowMs - run.since) / 1000)) : 0;
  }

  forget(id: string): void {
    this.runs.delete(id);
  }
}

export interface SybilCandidate {
  id: string;
  address: string;
  /** Credible bandwidth (measured, or the capped claim). */
  bandwidth: number;
  uptimeSec: number;
}

export interface AuthorityAddresses {
  /** Relays allowed on an authority's address (0 = no limit). */
  maxOnAuthority: number;
  addresses: ReadonlySet<string>;
}

/**
 * Ids beyond the first `max` per address (C tor get_possible_sybil_list;
 * `max` 0 = no limit at all), or beyond `auth.maxOnAuthority` on an
 * authority's address.
 */
export function omitAsSybil(
  relays: readonly SybilCandidate[],
  max: number,
  auth: AuthorityAddresses = { maxOnAuthority: 0, addresses: new Set() },
): Set<string> {
  const out = new Set<string>();
  if (max <= 0) return out;
  const onAuthority = auth.maxOnAuthority <= 0 ? Number.POSITIVE_INFINITY : auth.maxOnAuthority;
  const byAddr = new Map<string, SybilCandidate[]>();
  for (const r of relays) {
    const list = byAddr.get(r.address) ?? [];
    list.push(r);
    byAddr.set(r.address, list);
  }
  for (const [address, list] of byAddr) {
    const limit = auth.addresses.has(address) ? Math.max(max, onAuthority) : max;
    if (list.length <= limit) continue;
    list.sort(
      (a, b) =>
        b.bandwidth - a.bandwidth || b.uptimeSec - a.uptimeSec || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    for (const r of list.slice(limit)) out.add(r.id);
  }
  return out;
}
