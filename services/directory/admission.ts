/**
 * Who an authority lists, apart from flags (dir-spec §3.4.2; C tor
 * dirserv.c / voteflags.c): its own uptime history of each relay, and the
 * per-address cap on relays (AuthDirMaxServersPerAddr).
 *
 * Overview:
 * - `RunHistory` records each reachability test (reachability.ts) and
 *   answers "reachable now?" and "up for how long?" from what this
 *   authority saw, not from the descriptor (C tor rephist.c keeps the same
 *   history for MTBF/WFU). A relay never seen up is not reachable. A listed
 *   relay loses Running only after FAILED_ROUNDS_TO_DROP failed re-tests in
 *   trusted rounds, or when its last success is REACHABLE_TIMEOUT_MS old.
 *   Fail-safe: a round in which most re-tests failed says more about this
 *   authority (a starved event loop, a paused process, its own network)
 *   than about the relays, so its failures are not recorded at all
 *   (`observeRound`); its successes are (a handshake that completed is
 *   proof). An overloaded authority therefore cannot delist the network.
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

/**
 * C tor (reachability.h REACHABLE_TIMEOUT): Running only if found reachable
 * within the last 45 minutes. Kept as the backstop for rounds that are
 * never trusted; the round count below is what acts on a testnet.
 */
export const REACHABLE_TIMEOUT_MS = 45 * 60_000;
/**
 * Failed re-tests (in trusted rounds, consecutive) before a listed relay
 * loses Running. C tor tests each relay once per REACHABILITY_TEST_CYCLE_PERIOD
 * (128 x 10 s, about 21 minutes) and keeps Running for REACHABLE_TIMEOUT
 * (45 minutes) after the last success, so a relay is dropped after missing
 * two test cycles; our authorities re-test every relay once per voting
 * interval, so the same rule is two failed rounds, not 45 minutes.
 */
export const FAILED_ROUNDS_TO_DROP = 2;

interface Run {
  /** Start of the current unbroken run of successful tests. */
  since: number;
  lastUp: number;
  /** Trusted rounds in a row whose re-test failed. */
  failedRounds: number;
}

/** What one round of re-tests meant (observeRound). */
export interface RoundVerdict {
  trusted: boolean;
  tested: number;
  failed: number;
  /** Relays that lost their run (FAILED_ROUNDS_TO_DROP reached) in this round. */
  dropped: string[];
}

export class RunHistory {
  private readonly runs = new Map<string, Run>();

  /**
   * One test outside a round (the admission test of a new descriptor): a
   * success starts or extends the run; a failure alone changes nothing (C
   * tor dirserv_orconn_tls_done only ever moves last_reachable forward).
   */
  observe(id: string, result: ProbeResult, nowMs: number): void {
    if (result !== 'up') return;
    const run = this.runs.get(id);
    if (run) {
      run.lastUp = nowMs;
      run.failedRounds = 0;
    } else this.runs.set(id, { since: nowMs, lastUp: nowMs, failedRounds: 0 });
  }

  /**
   * The re-tests of every listed relay before a vote. Successes always
   * count. Failures count only if the round is trusted: at most half of
   * its tests failed (more than half failing is taken as this authority's
   * own trouble, and none of the failures is recorded).
   */
  observeRound(results: ReadonlyMap<string, ProbeResult>, nowMs: number): RoundVerdict {
    let failed = 0;
    for (const r of results.values()) if (r !== 'up') failed++;
    const trusted = failed * 2 <= results.size;
    const dropped: string[] = [];
    for (const [id, result] of results) {
      if (result === 'up') {
        this.observe(id, result, nowMs);
        continue;
      }
      const run = this.runs.get(id);
      if (!trusted || !run) continue;
      run.failedRounds++;
      if (run.failedRounds >= FAILED_ROUNDS_TO_DROP) {
        this.runs.delete(id);
        dropped.push(id);
      }
    }
    return { trusted, tested: results.size, failed, dropped };
  }

  /** Seen up, fewer than FAILED_ROUNDS_TO_DROP trusted failures since, last success within REACHABLE_TIMEOUT_MS. */
  reachable(id: string, nowMs: number): boolean {
    const run = this.runs.get(id);
    return run !== undefined && nowMs - run.lastUp <= REACHABLE_TIMEOUT_MS;
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
