/**
 * Computing a consensus from votes (dir-spec §3.8.1), which only
 * authorities do, and the shared-random reveals the votes carry (srv-spec
 * §3.1.2).
 *
 * Overview: `computeConsensus(votes, opts)` is deterministic in the set of
 * votes, so every authority holding the same votes computes the same
 * consensus and its signatures (consensus.ts) add up; `revealsFromVotes`
 * gives `computeSrv` (shared-random.ts) its input.
 *
 * Design notes: medians are C tor's low median (element (n-1)/2), and the
 * param and bandwidth rules are dirvote.c's (dirvote_compute_params,
 * MIN_VOTES_FOR_PARAM, the three-measurement rule, maxunmeasuredbw).
 *
 * Not in this module: the documents (vote.ts, consensus.ts), bandwidth
 * weights (bw-weights.ts), what an authority votes (flags.ts), the voting
 * schedule (services/directory).
 */
import { compareBytes, toHex } from '../bytes.js';
import { readHex } from '../canonical-json.js';
import { InvalidError } from '../errors.js';
import { BW_WEIGHT_SCALE, computeBandwidthWeights } from './bw-weights.js';
import type { Consensus } from './consensus.js';
import type { SharedRandValue } from './header.js';
import type { ConsensusRelay, VoteRelay } from './relay-entry.js';
import { verifyReveal } from './shared-random.js';
import type { Vote } from './vote.js';

/** Tor's MIN_VOTES_FOR_PARAM. */
const MIN_VOTES_FOR_PARAM = 3;
/** Measured bandwidth is used once this many authorities measured (C tor: > 2). */
const MIN_MEASUREMENTS = 3;
/**
 * C tor's DEFAULT_MAX_UNMEASURED_BW_KB (20), consensus param
 * `maxunmeasuredbw` (KB/s, as Tor's): once more than two authorities measure
 * bandwidth, relays none measured are clipped to this (dir-spec §3.8.1,
 * consensus method 17 on).
 */
export const DEFAULT_MAX_UNMEASURED_BW_KB = 20;

/**
 * The verified reveals in a set of votes: for each configured authority,
 * the commit and reveal it published itself, if the reveal opens the commit
 * (srv-spec §3.1.2). Input to `computeSrv`.
 */
export function revealsFromVotes(
  votes: readonly Vote[],
  authorityIds: readonly string[],
): { authorityId: Uint8Array; reveal: string }[] {
  const out = new Map<string, string>();
  for (const v of votes) {
    if (!authorityIds.includes(v.authority) || out.has(v.authority)) continue;
    const own = v.srCommits.find((c) => c.authorityId === v.authority);
    if (own?.reveal !== undefined && verifyReveal(own.commit, own.reveal)) out.set(v.authority, own.reveal);
  }
  return [...out].map(([id, reveal]) => ({ authorityId: readHex(id, 'authority id', 32), reveal }));
}

/** The low median (C tor median_*: element (n-1)/2 of the sorted list). */
export function lowMedian(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export interface ConsensusOptions {
  /** Lowercase hex Ed25519 ids of all configured authorities. */
  authorityIds: readonly string[];
  /**
   * Defaults for consensus params no vote-majority sets. Every authority
   * in a testnet shares this configuration, so consensus stays identical.
   */
  params?: Record<string, number>;
  /**
   * Refuse votes from half of the configured authorities or fewer (C tor
   * dirvote_compute_consensuses: "We don't have enough votes to generate a
   * consensus"), as an authority's round does. Off for callers that combine
   * documents offline.
   */
  requireMajority?: boolean;
}

function majoritySrv(
  values: (SharedRandValue | undefined)[],
  nAuthorities: number,
): SharedRandValue | undefined {
  const counts = new Map<string, { v: SharedRandValue; n: number }>();
  for (const v of values) {
    if (!v) continue;
    const k = `${v.reveals}:${toHex(v.value)}`;
    const e = counts.get(k) ?? { v, n: 0 };
    e.n++;
    counts.set(k, e);
  }
  for (const { v, n } of counts.values()) if (n > nAuthorities / 2) return v;
  return undefined;
}

/**
 * Computes the consensus from the votes of configured authorities
 * (dir-spec §3.8.1), deterministically:
 * - a relay is listed if more than half of ALL configured authorities list it
 *   and the flag vote makes it Running (consensus method 4 on);
 * - its descriptor fields come from the most recently published entry
 *   (ties: the digest most voters list, then the largest digest);
 * - a flag is set if more than half of the voters that list the relay and
 *   know the flag set it; known-flags is the union;
 * - bandwidth: low-median of measured values if >= 3 authorities measured
 *   (all of them, when fewer are configured), else low-median of claimed
 *   values, marked unmeasured, and clipped to `maxunmeasuredbw` KB/s when
 *   as many votes carry measurements (C tor);
 * - times and voting interval: low-medians;
 * - params: low-median of a key's values if more than half of all
 *   authorities, or at least 3, voted on it;
 * - shared random values: the value more than half of all authorities hold.
 * Votes from unknown authorities are ignored; two votes by one author are refused.
 */
export function computeConsensus(votes: readonly Vote[], opts: ConsensusOptions): Consensus {
  const what = 'consensus';
  const authorities = [...new Set(opts.authorityIds)].sort();
  const n = authorities.length;
  if (n === 0) throw new InvalidError(what, 'no authorities configured');
  const used: Vote[] = [];
  for (const v of votes) {
    if (!authorities.includes(v.authority)) continue;
    if (used.some((u) => u.authority === v.authority))
      throw new InvalidError(what, 'two votes from one authority');
    used.push(v);
  }
  if (used.length === 0)
    throw new InvalidError(what, 'no votes from configured authorities', { reason: 'no-votes' });
  if (opts.requireMajority && used.length <= n / 2)
    throw new InvalidError(what, `too few votes: ${used.length} of ${n} authorities`, {
      reason: 'too-few-votes',
    });

  const knownFlags = [...new Set(used.flatMap((v) => v.knownFlags))].sort();

  // Params: dir-spec §3.8.1 / dirvote.c dirvote_compute_params.
  const params: Record<string, number> = { ...(opts.params ?? {}) };
  const keys = [...new Set(used.flatMap((v) => Object.keys(v.params)))].sort();
  for (const k of keys) {
    const vals = used.filter((v) => Object.hasOwn(v.params, k)).map((v) => v.params[k]!);
    if (vals.length > n / 2 || vals.length >= MIN_VOTES_FOR_PARAM) params[k] = lowMedian(vals);
  }

  // Relays, grouped by identity.
  const byId = new Map<string, { vote: Vote; relay: VoteRelay }[]>();
  for (const vote of used) {
    for (const relay of vote.relays) {
      const k = toHex(relay.identity);
      const list = byId.get(k) ?? [];
      // A vote listing one relay twice counts once.
      if (!list.some((e) => e.vote === vote)) list.push({ vote, relay });
      byId.set(k, list);
    }
  }
  // Deviation: a network of fewer than three authorities (a small testnet)
  // needs measurements from all of them, not three it cannot have.
  const minMeasured = Math.min(MIN_MEASUREMENTS, n);
  // C tor n_authorities_measuring_bandwidth: votes carrying any measurement.
  const measuring = used.filter((v) => v.relays.some((r) => r.measuredBandwidth !== undefined)).length;
  const maxUnmeasured = (params.maxunmeasuredbw ?? DEFAULT_MAX_UNMEASURED_BW_KB) * 1000;
  const relays: ConsensusRelay[] = [];
  for (const entries of byId.values()) {
    if (entries.length <= n / 2) continue;
    const digestVotes = (d: Uint8Array) =>
      entries.filter((e) => compareBytes(e.relay.descriptorDigest, d) === 0).length;
    const best = [...entries].sort(
      (a, b) =>
        b.relay.publishedMs - a.relay.publishedMs ||
        digestVotes(b.relay.descriptorDigest) - digestVotes(a.relay.descriptorDigest) ||
        compareBytes(b.relay.descriptorDigest, a.relay.descriptorDigest),
    )[0]!.relay;
    const flags = knownFlags.filter((f) => {
      const knowing = entries.filter((e) => e.vote.knownFlags.includes(f));
      return knowing.filter((e) => e.relay.flags.includes(f)).length > knowing.length / 2;
    });
    // dir-spec §3.8.1 (consensus method 4 on): relays a majority does not
    // call Running are left out of the consensus.
    if (!flags.includes('Running')) continue;
    const measured = entries.flatMap((e) =>
      e.relay.measuredBandwidth === undefined ? [] : [e.relay.measuredBandwidth],
    );
    const unmeasured = measured.length < minMeasured;
    const claimed = lowMedian(entries.map((e) => e.relay.bandwidth));
    const clipped = measuring >= minMeasured ? Math.min(claimed, Math.max(0, maxUnmeasured)) : claimed;
    const out: ConsensusRelay = {
      nickname: best.nickname,
      identity: best.identity,
      ntorOnionKey: best.ntorOnionKey,
      address: best.address,
      orPort: best.orPort,
      publishedMs: best.publishedMs,
      flags,
      bandwidth: unmeasured ? clipped : lowMedian(measured),
      exitPolicy: best.exitPolicy,
      family: best.family,
      descriptorDigest: best.descriptorDigest,
    };
    if (best.linkUrl !== undefined) out.linkUrl = best.linkUrl;
    if (best.dirPort !== undefined) out.dirPort = best.dirPort;
    if (unmeasured) out.unmeasured = true;
    relays.push(out);
  }
  relays.sort((a, b) => compareBytes(a.identity, b.identity));

  const c: Consensus = {
    validAfterMs: lowMedian(used.map((v) => v.validAfterMs)),
    freshUntilMs: lowMedian(used.map((v) => v.freshUntilMs)),
    validUntilMs: lowMedian(used.map((v) => v.validUntilMs)),
    votingIntervalSec: lowMedian(used.map((v) => v.votingIntervalSec)),
    knownFlags,
    params,
    relays,
    bandwidthWeights: computeBandwidthWeights(relays, params.bwweightscale ?? BW_WEIGHT_SCALE),
    authorities,
  };
  const cur = majoritySrv(
    used.map((v) => v.sharedRandCurrent),
    n,
  );
  const prev = majoritySrv(
    used.map((v) => v.sharedRandPrevious),
    n,
  );
  if (cur) c.sharedRandCurrent = cur;
  if (prev) c.sharedRandPrevious = prev;
  // Medians of independent fields could in theory cross; refuse rather than publish nonsense.
  if (!(c.validAfterMs < c.freshUntilMs && c.freshUntilMs <= c.validUntilMs)) {
    throw new InvalidError(what, 'voted times are inconsistent', { reason: 'bad-times' });
  }
  return c;
}
