/**
 * The HSDir hash ring (rend-spec-v3 §2.2.3; C tor hs_common.c
 * hs_get_responsible_hsdirs, arti tor-netdir hsdir_ring.rs).
 *
 *   hs_index(r)  = H("store-at-idx" | A' | INT_8(r) | INT_8(len) | INT_8(tp))
 *   hsdir_index  = H("node-idx" | ed25519_id | SRV | INT_8(tp) | INT_8(len))
 *   disaster SRV = H("shared-random-disaster" | INT_8(len) | INT_8(tp))
 *
 * Note the different orders of tp and len. `len` is the period length in
 * minutes. For each replica the walk starts at the first relay whose index
 * is >= hs_index, goes forward around the ring, and skips relays already
 * chosen for an earlier replica, until `spread` new ones are taken or the
 * ring is exhausted.
 *
 * Who is on the ring (`hsDirRingMembers`) is one rule for the service that
 * uploads and the client that fetches: if they differ, a client can look
 * for a descriptor where none was stored.
 */
import { compareBytes, int8, toHex, utf8 } from './bytes.js';
import { sha3_256 } from './crypto.js';
import { InvalidError } from './errors.js';

export const HSDIR_N_REPLICAS = 2;
export const HSDIR_SPREAD_STORE = 4;
export const HSDIR_SPREAD_FETCH = 3;

function check32(what: string, b: Uint8Array): void {
  if (b.length !== 32) throw new InvalidError(what, `expected 32 bytes, got ${b.length}`);
}

export function hsIndex(
  blindedPub: Uint8Array,
  replica: number | bigint,
  tp: bigint,
  len: bigint,
): Uint8Array {
  check32('blinded key', blindedPub);
  return sha3_256(utf8('store-at-idx'), blindedPub, int8(replica), int8(len), int8(tp));
}

export function hsdirIndex(edId: Uint8Array, srv: Uint8Array, tp: bigint, len: bigint): Uint8Array {
  check32('ed25519 identity', edId);
  check32('shared random value', srv);
  return sha3_256(utf8('node-idx'), edId, srv, int8(tp), int8(len));
}

/** The SRV to use when the consensus has none (rend-spec-v3 §2.2.3.1). */
export function disasterSrv(tp: bigint, len: bigint): Uint8Array {
  return sha3_256(utf8('shared-random-disaster'), int8(len), int8(tp));
}

/**
 * The ring's members: rend-spec-v3 §2.2.3's "each node listed in the
 * current consensus with the HSDir flag", as C tor's hs_get_responsible_hsdirs
 * takes every routerstatus with is_hs_dir and arti's ring every relay with it.
 * Neither asks for Valid, so neither does this; Running is implied, since
 * a consensus lists only relays a majority votes Running (dir-spec §3.8.1).
 * C tor also needs HSDir=2 (protover); every Shallot relay speaks it.
 */
export function hsDirRingMembers<T extends { identity: Uint8Array; flags: readonly string[] }>(
  relays: readonly T[],
): { id: Uint8Array; node: T }[] {
  return relays.filter((r) => r.flags.includes('HSDir')).map((node) => ({ id: node.identity, node }));
}

export interface RingEntry<T> {
  index: Uint8Array;
  node: T;
}

/** The ring: one entry per distinct identity, sorted by hsdir_index. */
export function buildHsDirRing<T extends { id: Uint8Array }>(
  nodes: readonly T[],
  srv: Uint8Array,
  tp: bigint,
  len: bigint,
): RingEntry<T>[] {
  const seen = new Set<string>();
  const ring: RingEntry<T>[] = [];
  for (const node of nodes) {
    const key = toHex(node.id);
    if (seen.has(key)) continue;
    seen.add(key);
    ring.push({ index: hsdirIndex(node.id, srv, tp, len), node });
  }
  return ring.sort((a, b) => compareBytes(a.index, b.index));
}

/** First ring position whose index is >= `target` (0 when none is: the ring wraps). */
function firstAtOrAfter<T>(ring: readonly RingEntry<T>[], target: Uint8Array): number {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(ring[mid]!.index, target) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo === ring.length ? 0 : lo;
}

/** Walks a prebuilt ring (see buildHsDirRing) for every replica. */
export function walkHsDirRing<T>(
  ring: readonly RingEntry<T>[],
  blindedPub: Uint8Array,
  tp: bigint,
  len: bigint,
  opts: { replicas?: number; spread?: number } = {},
): T[] {
  const replicas = opts.replicas ?? HSDIR_N_REPLICAS;
  const spread = opts.spread ?? HSDIR_SPREAD_STORE;
  const chosen = new Set<number>();
  const out: T[] = [];
  if (ring.length === 0) return out;
  for (let r = 1; r <= replicas; r++) {
    const start = firstAtOrAfter(ring, hsIndex(blindedPub, r, tp, len));
    let i = start;
    let added = 0;
    while (added < spread) {
      if (!chosen.has(i)) {
        chosen.add(i);
        out.push(ring[i]!.node);
        added++;
      }
      i = (i + 1) % ring.length;
      if (i === start) break;
    }
  }
  return out;
}

/** The HSDirs a service uploads its descriptor to for period `tp` (up to replicas x spread). */
export function responsibleHsDirs<T extends { id: Uint8Array }>(
  nodes: readonly T[],
  blindedPub: Uint8Array,
  srv: Uint8Array,
  tp: bigint,
  len: bigint,
  opts: { replicas?: number; spread?: number } = {},
): T[] {
  return walkHsDirRing(buildHsDirRing(nodes, srv, tp, len), blindedPub, tp, len, opts);
}

/** The HSDirs a client may fetch from (spread 3); the client picks one at random. */
export function fetchHsDirs<T extends { id: Uint8Array }>(
  nodes: readonly T[],
  blindedPub: Uint8Array,
  srv: Uint8Array,
  tp: bigint,
  len: bigint,
  opts: { replicas?: number; spread?: number } = {},
): T[] {
  return responsibleHsDirs(nodes, blindedPub, srv, tp, len, { spread: HSDIR_SPREAD_FETCH, ...opts });
}
