/**
 * The pure parts of reaching an onion service as a client (rend-spec-v3
 * §2.1-2.2, §3.2, §6): the address a SOCKS request names, the
 * time period, blinded key and subcredential for the current consensus,
 * which HSDirs may hold the descriptor, which rendezvous point to use and
 * which consensus relay an introduction point is.
 *
 * Design notes:
 * - Which SRV (rend-spec-v3 §2.2.4.1, C tor `node_set_hsdir_index`): the
 *   client always fetches for the current time period, with the SRV that
 *   was current when that period began: the consensus's current SRV between
 *   the start of a time period and the next SRV run, its previous SRV
 *   between a new SRV and the next time period. A missing value falls back
 *   to the disaster SRV of the fetch period (`hs_get_{current,previous}_srv`).
 *   Services store their first descriptor under exactly this pair, so a
 *   service and a client with the same consensus agree on the ring.
 * - The rendezvous point is drawn afresh for each rendezvous, weighted by
 *   bandwidth as a middle among Running, Valid, Stable relays (C tor
 *   `pick_rendezvous_node` with CRN_NEED_UPTIME). Nothing is remembered
 *   between draws, so no relay becomes a favourite.
 *
 * Everything here takes the consensus and an Rng as parameters: no I/O,
 * no clock.
 */
import { toHex } from '../core/bytes.js';
import type { Rng } from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { SharedRandValue } from '../core/dir/header.js';
import { ShallotError } from '../core/errors.js';
import { blindIdentity, hsSubcredential } from '../core/hs-keys.js';
import {
  inPeriodBetweenTpAndSrv,
  type TimePeriodParams,
  timePeriodNum,
  timePeriodParams,
  timePeriodStart,
} from '../core/hs-time.js';
import { disasterSrv, fetchHsDirs, hsDirRingMembers } from '../core/hsdir-ring.js';
import { type LinkSpecifier, linkTarget } from '../core/link-specifiers.js';
import { decodeOnionAddress } from '../core/onion-address.js';
import { type PathRelay, positionWeight } from '../core/path.js';
import { weightedChoice } from '../core/random.js';
import { ConnectError } from './connect.js';
import { relayLegacyId } from './netdir.js';

/**
 * The identity key A named by a `.onion` host. Any decoding failure
 * (length, base32, version, checksum, torsion) is a `bad_address`
 * ConnectError (SOCKS 0xF6), as C tor's `parse_extended_hostname` failure
 * becomes SOCKS5_HS_BAD_ADDRESS.
 */
export function onionIdentityFor(host: string): Uint8Array {
  try {
    return decodeOnionAddress(host);
  } catch (e) {
    const reason = e instanceof ShallotError ? String(e.context.reason ?? 'format') : 'format';
    throw new ConnectError('bad_address', `invalid onion address (${reason})`);
  }
}

/** The canonical "<56 chars>.onion" label of a host (lower case, subdomains dropped): the cache key. */
export function onionLabel(host: string): string {
  let h = host.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.endsWith('.onion')) h = h.slice(0, -'.onion'.length);
  return `${h.slice(h.lastIndexOf('.') + 1)}.onion`;
}

/** What a client derives for one service under one consensus. */
export interface OnionPeriodKeys {
  /** Time period number and length (minutes), as they go into INT_8 fields. */
  tp: bigint;
  len: bigint;
  /** A' for `tp`. */
  blindedPub: Uint8Array;
  subcredential: Uint8Array;
  /** The SRV the client's HSDir ring uses. */
  srv: Uint8Array;
  /** When period `tp` ends (ms): cached descriptors for it are no use after. */
  periodEndMs: number;
}

/**
 * The time period a client falls back to when the current one's descriptor
 * is not found (rend-spec-v3 §2.2.1: services publish for the current and
 * the next period): between a new time period and the next SRV run, the
 * previous period with the previous SRV (the descriptor the service made
 * current before the change); after the SRV run, the next period with the
 * current SRV (the service's "next" descriptor, for clients already past
 * the change). Each with the disaster SRV when the value is missing.
 */
export function otherPeriodKeys(identityPub: Uint8Array, consensus: Consensus): OnionPeriodKeys {
  const p = timePeriodParams({ testnet: true, votingIntervalSec: consensus.votingIntervalSec });
  const n = timePeriodNum(consensus.validAfterMs, p);
  const early = inPeriodBetweenTpAndSrv(consensus.validAfterMs, p);
  return periodKeys(
    identityPub,
    p,
    early ? n - 1 : n + 1,
    early ? consensus.sharedRandPrevious : consensus.sharedRandCurrent,
  );
}

/** The SRV a client uses to fetch for period `tp` (see the module notes). */
export function clientFetchSrv(consensus: Consensus, tp: bigint, len: bigint): Uint8Array {
  const p = timePeriodParams({ testnet: true, votingIntervalSec: consensus.votingIntervalSec });
  return fetchSrv(consensus, p)?.value ?? disasterSrv(tp, len);
}

/** Time period, blinded key, subcredential and SRV for `identityPub` under `consensus`. */
export function onionPeriodKeys(identityPub: Uint8Array, consensus: Consensus): OnionPeriodKeys {
  const p = timePeriodParams({ testnet: true, votingIntervalSec: consensus.votingIntervalSec });
  return periodKeys(identityPub, p, timePeriodNum(consensus.validAfterMs, p), fetchSrv(consensus, p));
}

/** The consensus SRV for the current period: the current one once past the SRV boundary, else the previous. */
function fetchSrv(consensus: Consensus, p: TimePeriodParams): SharedRandValue | undefined {
  return inPeriodBetweenTpAndSrv(consensus.validAfterMs, p)
    ? consensus.sharedRandCurrent
    : consensus.sharedRandPrevious;
}

/** The keys of period `n`; with no SRV in the consensus, the disaster SRV (rend-spec-v3 §2.3.1). */
function periodKeys(
  identityPub: Uint8Array,
  p: TimePeriodParams,
  n: number,
  srv: SharedRandValue | undefined,
): OnionPeriodKeys {
  const tp = BigInt(n);
  const len = BigInt(p.lengthMinutes);
  const blindedPub = blindIdentity(identityPub, tp, len);
  return {
    tp,
    len,
    blindedPub,
    subcredential: hsSubcredential(identityPub, blindedPub),
    srv: srv?.value ?? disasterSrv(tp, len),
    periodEndMs: timePeriodStart(n + 1, p),
  };
}

/**
 * The HSDirs a client may fetch the descriptor from (spread 3 per replica),
 * in the order the ring lists them; the caller tries them in random order.
 */
export function hsDirsToFetch<T extends PathRelay>(relays: readonly T[], keys: OnionPeriodKeys): T[] {
  const ring = hsDirRingMembers(relays);
  return fetchHsDirs(ring, keys.blindedPub, keys.srv, keys.tp, keys.len).map((e) => e.node);
}

/** Relays that may serve as a rendezvous point. */
export function rendezvousCandidates<T extends PathRelay>(relays: readonly T[]): T[] {
  return relays.filter(
    (r) => r.flags.includes('Running') && r.flags.includes('Valid') && r.flags.includes('Stable'),
  );
}

/**
 * A rendezvous point: a fresh bandwidth-weighted (middle position) draw
 * among Running, Valid, Stable relays, skipping `exclude` (hex identities)
 * when anything else is left. Undefined when no relay qualifies.
 */
export function chooseRendezvousPoint<T extends PathRelay>(
  relays: readonly T[],
  weights: Record<string, number>,
  rng: Rng,
  exclude: ReadonlySet<string> = new Set(),
): T | undefined {
  const all = rendezvousCandidates(relays);
  const allowed = all.filter((r) => !exclude.has(toHex(r.identity)));
  const pool = allowed.length > 0 ? allowed : all;
  return weightedChoice(pool, (r) => positionWeight(r, 'middle', weights), rng);
}

/**
 * The consensus relay an introduction point's link specifiers name: by
 * Ed25519 identity, else by legacy id (a C tor relay's RSA one, else
 * derived from the Ed25519 id). Undefined when the relay
 * is not in the consensus; the client then skips that intro point.
 */
export function findIntroRelay<T extends PathRelay & { legacyId?: Uint8Array }>(
  relays: readonly T[],
  specs: readonly LinkSpecifier[],
): T | undefined {
  const { ed25519, legacyId } = linkTarget(specs);
  if (ed25519) {
    const hex = toHex(ed25519);
    const hit = relays.find((r) => toHex(r.identity) === hex);
    if (hit) return hit;
  }
  if (!legacyId) return undefined;
  const hex = toHex(legacyId);
  return relays.find((r) => toHex(relayLegacyId(r)) === hex);
}
