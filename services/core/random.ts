/**
 * Random choices over an injectable byte source: uniform integers, uniform
 * fractions, shuffles and bandwidth-weighted choices (path-spec §2.2 draws
 * "weighted by bandwidth"; C tor crypto_rand_int / crypto_rand_double,
 * smartlist_shuffle and choose_array_element_by_weight).
 *
 * Overview: every function takes the caller's `Rng` (core/crypto.ts), so a
 * test passes a seeded source and replays the same path, guard sample,
 * descriptor line order or republish time; services default to
 * `randomBytes` (the OS CSPRNG), as C tor draws from its crypto_rand.
 *
 * Not in this module: what is drawn from (path.ts positions and weights,
 * guards.ts, vanguards.ts), and the byte source itself (crypto.ts).
 *
 * Design notes:
 * - Integers come from rejection sampling over just enough bits for the
 *   bound, so there is no modulo bias whatever the bound (C tor
 *   crypto_rand_uint does the same with a 32-bit cutoff).
 * - Weights are scaled to integers summing to at most 2^62 before one
 *   integer draw, as C tor's `scale_array_elements_to_u64`, so the choice
 *   is exact rather than a float compared against running sums.
 */
import type { Rng } from './crypto.js';
import { InvalidError } from './errors.js';

/** Uniform integer in [0, bound): draws with the high bits masked off until one is below the bound. */
export function uniformBigInt(bound: bigint, rng: Rng): bigint {
  if (bound <= 0n) throw new InvalidError('uniform bound', 'must be positive');
  const bits = (bound - 1n).toString(2).length;
  const nBytes = Math.ceil(bits / 8);
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const b = rng(nBytes);
    let v = 0n;
    for (const x of b) v = (v << 8n) | BigInt(x);
    v &= mask;
    if (v < bound) return v;
  }
}

/** Uniform integer in [0, n) for a positive safe integer n. */
export function uniformInt(n: number, rng: Rng): number {
  if (!Number.isSafeInteger(n)) throw new InvalidError('uniform bound', 'must be a safe integer');
  return Number(uniformBigInt(BigInt(n), rng));
}

/** Uniform fraction in [0, 1), as C tor's crypto_rand_double, from 53 random bits: for jitter and backoff. */
export function uniformFraction(rng: Rng): number {
  return Number(uniformBigInt(1n << 53n, rng)) / 2 ** 53;
}

/** A shuffled copy of `items` (Fisher-Yates with unbiased draws). */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = uniformInt(i + 1, rng);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Total of scaled integer weights; 2^62 keeps the sum exact as a bigint and each term exact as a double. */
const WEIGHT_RESOLUTION = 2 ** 62;

/**
 * Pick one item with probability proportional to `weightFn(item)`
 * (non-negative, finite; others count as 0). If every weight is 0 the
 * choice is uniform (C tor and arti do the same). Returns undefined for no
 * items.
 */
export function weightedChoice<T>(
  items: readonly T[],
  weightFn: (item: T) => number,
  rng: Rng,
): T | undefined {
  if (items.length === 0) return undefined;
  const raw = items.map((it) => {
    const w = weightFn(it);
    return Number.isFinite(w) && w > 0 ? w : 0;
  });
  const total = raw.reduce((a, b) => a + b, 0);
  if (total === 0 || !Number.isFinite(total)) return items[uniformInt(items.length, rng)];
  const ints = raw.map((w) => BigInt(Math.floor((w / total) * WEIGHT_RESOLUTION)));
  const sum = ints.reduce((a, b) => a + b, 0n);
  if (sum === 0n) return items[uniformInt(items.length, rng)];
  let r = uniformBigInt(sum, rng);
  for (let i = 0; i < ints.length; i++) {
    const w = ints[i]!;
    if (r < w) return items[i];
    r -= w;
  }
  /* c8 ignore next */
  return items[items.length - 1];
}
