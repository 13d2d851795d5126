// services/core/random.ts: unbiased integers, fractions, shuffles and
// weighted choices over an injected byte source (moved here from path.test.ts
// and onion-params.test.ts when the three implementations became one).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Rng } from '../../../services/core/crypto.js';
import { InvalidError } from '../../../services/core/errors.js';
import {
  shuffled,
  uniformBigInt,
  uniformFraction,
  uniformInt,
  weightedChoice,
} from '../../../services/core/random.js';
import { seededRng } from '../../helpers/seeded-rng.js';

/** An Rng that hands out exactly these bytes, in order. */
function scripted(bytes: number[]): Rng {
  return (n) => {
    if (bytes.length < n) throw new Error('script exhausted');
    return new Uint8Array(bytes.splice(0, n));
  };
}

describe('uniformBigInt / uniformInt', () => {
  it('rejects out-of-range draws instead of reducing them', () => {
    const bytes = [3, 3, 2];
    expect(uniformBigInt(3n, scripted(bytes))).toBe(2n); // 3 is masked-in-range but >= bound: redrawn
    expect(bytes).toEqual([]);
  });

  it('uniformInt redraws too: 255 % 6 would have been 3, a modulo-biased pick', () => {
    // bound 6 needs 3 bits: 0xff & 7 = 7 >= 6 is redrawn, 0x04 & 7 = 4 is taken.
    expect(uniformInt(6, scripted([0xff, 0x04]))).toBe(4);
  });

  it('stays in range for any bound', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 1n << 80n }), fc.integer(), (bound, seed) => {
        const v = uniformBigInt(bound, seededRng(seed));
        expect(v >= 0n && v < bound).toBe(true);
      }),
    );
  });

  it('refuses empty, negative and unsafe bounds', () => {
    const rng = seededRng(1);
    expect(() => uniformBigInt(0n, rng)).toThrow(InvalidError);
    expect(() => uniformInt(-1, rng)).toThrow(InvalidError);
    expect(() => uniformInt(1.5, rng)).toThrow(InvalidError);
    expect(() => uniformInt(2 ** 60, rng)).toThrow(InvalidError);
  });

  it('is even over a small bound (60k seeded draws)', () => {
    const rng = seededRng(42);
    const counts = new Array<number>(6).fill(0);
    const N = 60_000;
    for (let i = 0; i < N; i++) counts[uniformInt(6, rng)]!++;
    const p = 1 / 6;
    for (const c of counts) expect(Math.abs(c / N - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
  });
});

describe('uniformFraction', () => {
  it('is in [0, 1) at both ends of the byte range', () => {
    expect(uniformFraction(scripted(new Array(7).fill(0)))).toBe(0);
    // 56 one-bits masked to 53: the largest value, just below 1.
    expect(uniformFraction(scripted(new Array(7).fill(0xff)))).toBe(1 - 2 ** -53);
  });

  it('replays from a seed and spreads over the interval', () => {
    const a = Array.from(
      { length: 1000 },
      (
        (rng) => () =>
          uniformFraction(rng)
      )(seededRng(5)),
    );
    const b = Array.from(
      { length: 1000 },
      (
        (rng) => () =>
          uniformFraction(rng)
      )(seededRng(5)),
    );
    expect(a).toEqual(b);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = a.reduce((x, y) => x + y, 0) / a.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });
});

describe('shuffled', () => {
  it('is a permutation, leaves its input alone and uses the rng', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 30 }), fc.integer(), (xs, seed) => {
        const before = [...xs];
        const out = shuffled(xs, seededRng(seed));
        expect(xs).toEqual(before);
        expect([...out].sort((a, b) => a - b)).toEqual([...xs].sort((a, b) => a - b));
      }),
    );
    const xs = Array.from({ length: 10 }, (_, i) => i);
    const orders = new Set(Array.from({ length: 20 }, (_, i) => shuffled(xs, seededRng(i)).join(',')));
    expect(orders.size).toBeGreaterThan(15);
  });

  it('puts every element in every position about equally often (3 elements, 60k shuffles)', () => {
    const rng = seededRng(11);
    const N = 60_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const k = shuffled(['a', 'b', 'c'], rng).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    const p = 1 / 6;
    for (const c of counts.values())
      expect(Math.abs(c / N - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N));
  });
});

describe('weightedChoice', () => {
  it('returns undefined for no items, never picks a zero weight, falls back to uniform when all are zero', () => {
    const rng = seededRng(1);
    expect(weightedChoice([], () => 1, rng)).toBeUndefined();
    for (let i = 0; i < 200; i++)
      expect(weightedChoice(['a', 'b', 'c'], (x) => (x === 'b' ? 1 : 0), rng)).toBe('b');
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(weightedChoice(['a', 'b', 'c'], () => 0, rng)!);
    expect(seen.size).toBe(3);
  });

  it('draws proportionally to weight (20k draws, seeded)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 2, maxLength: 6 }),
        fc.integer(),
        (ws, seed) => {
          const total = ws.reduce((a, b) => a + b, 0);
          fc.pre(total > 0);
          const rng = seededRng(seed);
          const items = ws.map((_, i) => i);
          const counts = new Array<number>(ws.length).fill(0);
          const N = 20_000;
          for (let i = 0; i < N; i++) counts[weightedChoice(items, (j) => ws[j]!, rng)!]!++;
          ws.forEach((w, i) => {
            const p = w / total;
            // 5 standard deviations plus a little slack.
            expect(Math.abs(counts[i]! / N - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / N) + 0.002);
          });
        },
      ),
      { numRuns: 20 },
    );
  });
});
