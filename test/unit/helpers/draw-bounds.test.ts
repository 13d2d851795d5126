// The chance bounds spread tests rely on, checked against closed forms.
import { describe, expect, it } from 'vitest';
import {
  binomialTail,
  distinctCountDistribution,
  leastDistinct,
  mostOfOne,
} from '../../helpers/draw-bounds.js';

describe('draw bounds', () => {
  it('distinct count: uniform draws match the occupancy formula', () => {
    // P(all k distinct in k draws) = k!/k^k; P(1 distinct) = k * (1/k)^n.
    const d = distinctCountDistribution([0.25, 0.25, 0.25, 0.25], 4);
    expect(d[4]).toBeCloseTo(24 / 256, 12);
    expect(d[1]).toBeCloseTo(4 / 256, 12);
    expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // 10 equal relays, 20 draws: P(5 or fewer distinct) = 2.29e-4 (occupancy numbers).
    const ten = distinctCountDistribution(new Array(10).fill(0.1), 20);
    expect(ten.slice(0, 6).reduce((a, b) => a + b, 0)).toBeCloseTo(2.29e-4, 6);
  });

  it('distinct count: an outcome that cannot be drawn is never counted', () => {
    const d = distinctCountDistribution([0.5, 0.5, 0], 10);
    expect(d[3]).toBe(0);
    expect(d[2]).toBeCloseTo(1 - 2 * 0.5 ** 10, 12);
  });

  it('leastDistinct and mostOfOne follow the weights', () => {
    const even = new Array(10).fill(1);
    expect(leastDistinct(even, 20, 2.3e-4)).toBe(6);
    expect(leastDistinct(even, 20, 2.2e-4)).toBe(5);
    // One relay with almost all the weight: one distinct relay is all honest draws promise.
    expect(leastDistinct([1000, 1, 1], 20, 1e-4)).toBe(1);
    expect(mostOfOne([1000, 1, 1], 20, 1e-4)).toBe(20);
    // Even weights: a tail bound well below the number of draws.
    const m = mostOfOne(even, 20, 1e-4);
    expect(m).toBeGreaterThan(2);
    expect(m).toBeLessThan(12);
    expect(10 * binomialTail(20, 0.1, m + 1)).toBeLessThanOrEqual(1e-4);
    expect(10 * binomialTail(20, 0.1, m)).toBeGreaterThan(1e-4);
  });

  it('binomial tail: closed forms', () => {
    expect(binomialTail(5, 0.5, 0)).toBeCloseTo(1, 12);
    expect(binomialTail(5, 0.5, 5)).toBeCloseTo(1 / 32, 12);
    expect(binomialTail(3, 0.2, 2)).toBeCloseTo(3 * 0.04 * 0.8 + 0.008, 12);
  });

  it('rejects weights that sum to nothing and too many outcomes', () => {
    expect(() => leastDistinct([0, 0], 5, 1e-4)).toThrow(RangeError);
    expect(() => distinctCountDistribution(new Array(21).fill(1 / 21), 3)).toThrow(RangeError);
  });
});
