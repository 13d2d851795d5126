// The load report's arithmetic, checked against hand-computed values,
// numpy's default percentile and Prometheus' histogram_quantile.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketDelta,
  coefficientOfVariation,
  histogramQuantile,
  percentile,
  spread,
  summarize,
} from '../../../services/loadgen/stats.js';

describe('percentile', () => {
  // numpy.percentile(x, p) (linear interpolation) gives these.
  const cases: [number[], number, number][] = [
    [[1, 2, 3, 4], 50, 2.5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9.1],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99, 9.91],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0, 1],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100, 10],
    [[7], 99, 7],
    [[10, 20], 25, 12.5],
  ];
  for (const [xs, p, want] of cases) {
    it(`p${p} of [${xs.join(',')}] is ${want}`, () => {
      expect(percentile(xs, p)).toBeCloseTo(want, 9);
    });
  }

  it('is null for no values and rejects p outside 0..100', () => {
    expect(percentile([], 50)).toBeNull();
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it('lies within [min, max] and never decreases as p grows', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 50 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (xs, a, b) => {
          const s = [...xs].sort((x, y) => x - y);
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const pl = percentile(s, lo)!;
          const ph = percentile(s, hi)!;
          expect(pl).toBeGreaterThanOrEqual(s[0]!);
          expect(ph).toBeLessThanOrEqual(s[s.length - 1]!);
          expect(ph).toBeGreaterThanOrEqual(pl - 1e-9 * Math.max(1, Math.abs(pl)));
        },
      ),
    );
  });
});

describe('summarize', () => {
  it('sorts, ignores non-finite values and reports count, mean and percentiles', () => {
    const s = summarize([5, 1, 4, 2, 3, Number.NaN, Number.POSITIVE_INFINITY]);
    expect(s).toEqual({
      count: 5,
      min: 1,
      mean: 3,
      p50: 3,
      p90: 4.6,
      p99: expect.any(Number),
      p999: expect.any(Number),
      max: 5,
    });
    expect(s.p99).toBeCloseTo(4.96, 9);
    expect(s.p999).toBeCloseTo(4.996, 9);
  });

  it('gives nulls for no observations', () => {
    expect(summarize([])).toEqual({
      count: 0,
      min: null,
      mean: null,
      p50: null,
      p90: null,
      p99: null,
      p999: null,
      max: null,
    });
  });
});

describe('coefficient of variation', () => {
  it('is 0 for equal values, stddev/mean otherwise, null without a mean', () => {
    expect(coefficientOfVariation([2, 2, 2, 2])).toBe(0);
    expect(coefficientOfVariation([1, 3])).toBeCloseTo(0.5, 12);
    expect(coefficientOfVariation([])).toBeNull();
    expect(coefficientOfVariation([0, 0])).toBeNull();
  });
});

describe('spread', () => {
  it('is even when every relay has the same count', () => {
    const s = spread({ a: 5, b: 5, c: 5, d: 5 });
    expect(s.total).toBe(20);
    expect(s.perRelay).toEqual({ a: 0.25, b: 0.25, c: 0.25, d: 0.25 });
    expect(s.maxOverMean).toBe(1);
    expect(s.cv).toBe(0);
  });

  it('counts known relays with no events (one of four busy: max/mean 4, CV sqrt 3)', () => {
    const s = spread({ a: 10 }, ['a', 'b', 'c', 'd']);
    expect(s.relays).toBe(4);
    expect(s.counts).toEqual({ a: 10, b: 0, c: 0, d: 0 });
    expect(s.perRelay).toEqual({ a: 1, b: 0, c: 0, d: 0 });
    expect(s.maxOverMean).toBe(4);
    expect(s.cv).toBeCloseTo(Math.sqrt(3), 12);
  });

  it('adds relays only seen in counts and clamps negative deltas (counter reset) to 0', () => {
    const s = spread({ x: 3, y: -2 }, ['w']);
    expect(Object.keys(s.counts)).toEqual(['w', 'x', 'y']);
    expect(s.counts.y).toBe(0);
    expect(s.total).toBe(3);
  });

  it('has no ratio or CV without events', () => {
    const s = spread({}, ['a', 'b']);
    expect(s.perRelay).toEqual({ a: 0, b: 0 });
    expect(s.maxOverMean).toBeNull();
    expect(s.cv).toBeNull();
  });

  it('shares sum to 1 whenever there are events', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.nat(1000)), (counts) => {
        const s = spread(counts);
        const sum = Object.values(s.perRelay).reduce((a, b) => a + b, 0);
        if (s.total > 0) {
          expect(sum).toBeCloseTo(1, 9);
          expect(s.maxOverMean!).toBeGreaterThanOrEqual(1 - 1e-12);
          expect(s.maxOverMean!).toBeLessThanOrEqual(s.relays + 1e-9);
        } else expect(sum).toBe(0);
      }),
    );
  });
});

describe('histogramQuantile (as Prometheus histogram_quantile)', () => {
  const buckets = [
    { le: 1, count: 5 },
    { le: 2, count: 10 },
    { le: 4, count: 20 },
    { le: Number.POSITIVE_INFINITY, count: 20 },
  ];
  it('interpolates inside the bucket holding the rank', () => {
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(1, 12);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(2, 12);
    expect(histogramQuantile(0.75, buckets)).toBeCloseTo(3, 12);
    expect(histogramQuantile(0.1, buckets)).toBeCloseTo(0.4, 12);
  });

  it('accepts buckets in any order', () => {
    expect(histogramQuantile(0.75, [...buckets].reverse())).toBeCloseTo(3, 12);
  });

  it('answers a rank in the +Inf bucket with the largest finite bound', () => {
    const b = [
      { le: 1, count: 5 },
      { le: Number.POSITIVE_INFINITY, count: 10 },
    ];
    expect(histogramQuantile(0.9, b)).toBe(1);
  });

  it('skips empty leading buckets and is null for an empty histogram', () => {
    const b = [
      { le: 0.1, count: 0 },
      { le: 0.2, count: 0 },
      { le: 0.4, count: 4 },
      { le: Number.POSITIVE_INFINITY, count: 4 },
    ];
    expect(histogramQuantile(0.5, b)).toBeCloseTo(0.3, 12);
    expect(histogramQuantile(0.5, [{ le: Number.POSITIVE_INFINITY, count: 0 }])).toBeNull();
    expect(histogramQuantile(0.5, [])).toBeNull();
    expect(() => histogramQuantile(1.5, b)).toThrow(RangeError);
  });

  it('bucketDelta subtracts bucket by bucket (missing before counts as 0)', () => {
    const before = [
      { le: 1, count: 2 },
      { le: Number.POSITIVE_INFINITY, count: 3 },
    ];
    const after = [
      { le: 1, count: 5 },
      { le: 2, count: 7 },
      { le: Number.POSITIVE_INFINITY, count: 9 },
    ];
    expect(bucketDelta(before, after)).toEqual([
      { le: 1, count: 3 },
      { le: 2, count: 7 },
      { le: Number.POSITIVE_INFINITY, count: 6 },
    ]);
  });
});
