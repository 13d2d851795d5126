/**
 * The onion service's defences around INTRODUCE2 (rend-spec-v3 §3.3; C tor
 * hs_cell.c hs_cell_parse_introduce2, hs_circuit.c hs_circ_handle_introduce2,
 * hs_service.c intro_point_should_expire, replaycache.c).
 *
 * Overview:
 * - `ReplayCache`: a set of digests whose entries expire by age only (C tor's
 *   replaycache: `replaycache_add_test_and_elapsed`), never evicted by count,
 *   so no amount of other traffic can push an entry out early. An intro
 *   point's cache has horizon 0, as C tor's `replaycache_new(0, 0)`: its
 *   entries live as long as the intro point, which itself ends by age
 *   (hs_intro_*_lifetime) or count (hs_intro_*_introduce2).
 * - `IntroBudget`: how many INTRODUCE2 cells an introduction point answers
 *   and how long it lives before the service rotates it, drawn per intro
 *   point from the consensus params hs_intro_min_introduce2 /
 *   hs_intro_max_introduce2 (C tor default 16384..32768) and
 *   hs_intro_min_lifetime / hs_intro_max_lifetime (default 18..24 h).
 * - `introReplayKey`: what the per-intro-point cache is keyed by: the digest
 *   of the ENCRYPTED section (CLIENT_PK | ENCRYPTED_DATA | MAC), as C tor
 *   keys it, since the header outside it is malleable.
 *
 * Design notes (the order the service applies them, cheapest and
 * unforgeable first):
 * 1. Parse and MAC (`openIntroduce2`): junk (bad format, wrong auth key, bad
 *    MAC) is counted and dropped and never reaches a cache. Deliberate
 *    deviation: C tor tests the replay cache before the MAC, so junk enters
 *    it; that cache then grows with junk until the intro point expires.
 * 2. The intro point's replay cache: a replayed cell is dropped.
 * 3. The budget: every cell that entered the cache counts, so a cache holds
 *    at most hs_intro_max_introduce2 entries and is never flushed; the intro
 *    point is replaced once its count is reached (and its cache goes with
 *    its keys: a cell for a retired intro point cannot verify any more).
 *    C tor counts after the cookie check; counting before keeps the bound.
 * 4. The service-wide rendezvous-cookie cache (C tor
 *    replay_cache_rend_cookie, REND_REPLAY_TIME_INTERVAL = 5 min): a second
 *    INTRODUCE2 naming a cookie already used is dropped, so a client (or a
 *    replaying intro point) cannot make the service build two rendezvous
 *    circuits to one cookie.
 *
 * Not in this module: the hs-ntor math and cell codecs (core/hs-cells.ts),
 * applying them, the rate limit and rendezvous (introduce-handler.ts).
 */

import { concat, toHex } from '../core/bytes.js';
import { boundedParam } from '../core/consensus-param.js';
import { type Rng, randomBytes, sha3_256 } from '../core/crypto.js';
import type { Introduce1 } from '../core/hs-cells.js';
import { uniformInt } from '../core/random.js';

/** C tor hs_service.h INTRO_POINT_MIN_LIFETIME_INTRODUCTIONS / MAX_… (consensus defaults). */
export const INTRO_MIN_INTRODUCE2 = 16_384;
export const INTRO_MAX_INTRODUCE2 = 32_768;
/** C tor INTRO_POINT_LIFETIME_MIN_SECONDS / MAX_SECONDS: 18 h and 24 h. */
export const INTRO_MIN_LIFETIME_SEC = 18 * 3600;
export const INTRO_MAX_LIFETIME_SEC = 24 * 3600;
/** C tor REND_REPLAY_TIME_INTERVAL: how long a used rendezvous cookie is remembered. */
export const REND_REPLAY_TIME_INTERVAL_MS = 5 * 60_000;
const INT32_MAX = 2 ** 31 - 1;

export interface IntroLimits {
  minIntroduce2: number;
  maxIntroduce2: number;
  minLifetimeMs: number;
  maxLifetimeMs: number;
}

/** The intro-point limits the consensus sets (C tor get_intro_point_{min,max}_{introduce2,lifetime}). */
export function introLimitsFromParams(params: Readonly<Record<string, number>> | undefined): IntroLimits {
  return {
    minIntroduce2: boundedParam(params ?? {}, 'hs_intro_min_introduce2', INTRO_MIN_INTRODUCE2, 0, INT32_MAX),
    maxIntroduce2: boundedParam(params ?? {}, 'hs_intro_max_introduce2', INTRO_MAX_INTRODUCE2, 0, INT32_MAX),
    minLifetimeMs:
      boundedParam(params ?? {}, 'hs_intro_min_lifetime', INTRO_MIN_LIFETIME_SEC, 0, INT32_MAX) * 1000,
    maxLifetimeMs:
      boundedParam(params ?? {}, 'hs_intro_max_lifetime', INTRO_MAX_LIFETIME_SEC, 0, INT32_MAX) * 1000,
  };
}

/** A uniform integer in [lo, hi]; hi < lo reads as lo (C tor treats it as a BUG and launches no intro point). */
function uniform(lo: number, hi: number, rng: Rng): number {
  if (hi <= lo) return lo;
  return lo + uniformInt(hi - lo + 1, rng);
}

/** One intro point's budget: introductions left and the time it retires. */
export class IntroBudget {
  readonly maxIntroduce2: number;
  readonly expiresAt: number;
  private count = 0;

  constructor(limits: IntroLimits, nowMs: number, rng: Rng = randomBytes) {
    // At least one introduction, or a param of 0 would rotate intro points forever.
    this.maxIntroduce2 = Math.max(1, uniform(limits.minIntroduce2, limits.maxIntroduce2, rng));
    this.expiresAt = nowMs + uniform(limits.minLifetimeMs, limits.maxLifetimeMs, rng);
  }

  get introductions(): number {
    return this.count;
  }

  /** Counts one introduction; true when the budget is now spent. */
  spend(): boolean {
    this.count++;
    return this.exhausted;
  }

  get exhausted(): boolean {
    return this.count >= this.maxIntroduce2;
  }

  expired(nowMs: number): boolean {
    return nowMs >= this.expiresAt;
  }
}

/**
 * Digests seen within the last `horizonMs`, or for the cache's whole life
 * with horizon 0 (C tor replaycache_t). Entries are never refreshed, so
 * insertion order is age order and the scrub stops at the first young
 * entry; nothing but age removes an entry.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly horizonMs = 0) {}

  get size(): number {
    return this.seen.size;
  }

  /** null if `key` is new (it is added), else the ms since it was first seen. */
  addTestAndElapsed(key: string, nowMs: number): number | null {
    this.scrub(nowMs);
    const at = this.seen.get(key);
    if (at !== undefined) return nowMs - at;
    this.seen.set(key, nowMs);
    return null;
  }

  private scrub(nowMs: number): void {
    if (this.horizonMs === 0) return;
    for (const [k, at] of this.seen) {
      if (nowMs - at < this.horizonMs) return;
      this.seen.delete(k);
    }
  }
}

/** The per-intro-point cache key: digest of CLIENT_PK | ENCRYPTED_DATA | MAC. */
export function introReplayKey(cell: Introduce1): string {
  return toHex(sha3_256(concat(cell.X, cell.encrypted, cell.mac)));
}
