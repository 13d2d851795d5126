/**
 * Which time periods an onion service publishes for, with which SRV, and
 * to which HSDirs (rend-spec-v3 §2.2.3, §2.2.4.2; C tor hs_service.c
 * build_descriptors_for_new_service and nodelist.c node_set_hsdir_index).
 *
 * The service keeps two descriptors. Between an SRV run's start and the
 * next time period (00:00-12:00 live) they are for the current and next
 * period; between a new period and the next SRV run (12:00-00:00) for the
 * previous and current one. The first is placed on the ring with the
 * consensus's previous SRV, the second with its current SRV, so the
 * descriptor for period n is always placed with the SRV made in the run
 * that contains n's start, which is exactly the SRV a client uses when it
 * fetches for period n (`clientFetchPeriod`). An SRV missing from the
 * consensus is replaced by the disaster SRV of the period it is used with.
 *
 * "Now" is the consensus valid-after time, never the local clock, so that
 * every party holding the same consensus computes the same rings; the ring's
 * members are the client's too (core/hsdir-ring.ts hsDirRingMembers).
 */
import type { Consensus } from '../core/dir/consensus.js';
import { inPeriodBetweenTpAndSrv, type TimePeriodParams, timePeriodNum } from '../core/hs-time.js';
import { disasterSrv, fetchHsDirs, hsDirRingMembers, responsibleHsDirs } from '../core/hsdir-ring.js';

export interface PeriodSrv {
  tp: number;
  srv: Uint8Array;
  /** Which of the consensus SRVs (or the disaster SRV) it came from, for logs. */
  source: 'current' | 'previous' | 'disaster';
}

function srvFor(
  consensus: Consensus,
  which: 'current' | 'previous',
  tp: number,
  p: TimePeriodParams,
): PeriodSrv {
  const v = which === 'current' ? consensus.sharedRandCurrent : consensus.sharedRandPrevious;
  if (v && v.value.length === 32) return { tp, srv: v.value, source: which };
  return { tp, srv: disasterSrv(BigInt(tp), BigInt(p.lengthMinutes)), source: 'disaster' };
}

/** The service's two descriptors: [first (previous SRV), second (current SRV)]. */
export function serviceDescriptorPeriods(consensus: Consensus, p: TimePeriodParams): [PeriodSrv, PeriodSrv] {
  const va = consensus.validAfterMs;
  const tp = timePeriodNum(va, p);
  const [first, second] = inPeriodBetweenTpAndSrv(va, p) ? [tp - 1, tp] : [tp, tp + 1];
  return [srvFor(consensus, 'previous', first, p), srvFor(consensus, 'current', second, p)];
}

/** What a client fetches with: the current period and the SRV made at its start. */
export function clientFetchPeriod(consensus: Consensus, p: TimePeriodParams): PeriodSrv {
  const va = consensus.validAfterMs;
  const tp = timePeriodNum(va, p);
  return srvFor(consensus, inPeriodBetweenTpAndSrv(va, p) ? 'current' : 'previous', tp, p);
}

/**
 * The HSDirs a descriptor for `period` goes to: spread_store per replica on
 * the ring a client fetches from (the same members, hsDirRingMembers).
 */
export function uploadHsDirs<T extends { identity: Uint8Array; flags: readonly string[] }>(
  relays: readonly T[],
  blindedPub: Uint8Array,
  period: PeriodSrv,
  p: TimePeriodParams,
): T[] {
  return onRing(responsibleHsDirs, relays, blindedPub, period, p);
}

/**
 * The HSDirs a client holding the same consensus asks for `period`'s
 * descriptor: spread_fetch per replica on the same ring (rend-spec-v3
 * §2.2.3), a subset of `uploadHsDirs`.
 */
export function fetchHsDirsFor<T extends { identity: Uint8Array; flags: readonly string[] }>(
  relays: readonly T[],
  blindedPub: Uint8Array,
  period: PeriodSrv,
  p: TimePeriodParams,
): T[] {
  return onRing(fetchHsDirs, relays, blindedPub, period, p);
}

/** `select`'s HSDirs for `period` on the ring of `relays` (rend-spec-v3 §2.2.3). */
function onRing<T extends { identity: Uint8Array; flags: readonly string[] }>(
  select: typeof responsibleHsDirs,
  relays: readonly T[],
  blindedPub: Uint8Array,
  period: PeriodSrv,
  p: TimePeriodParams,
): T[] {
  const ring = hsDirRingMembers(relays);
  return select(ring, blindedPub, period.srv, BigInt(period.tp), BigInt(p.lengthMinutes)).map((e) => e.node);
}
