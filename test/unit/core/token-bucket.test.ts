import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../services/core/token-bucket.js';

const takes = (b: TokenBucket, now: number, n: number) =>
  Array.from({ length: n }, () => b.take(now)).filter(Boolean).length;

describe('TokenBucket', () => {
  it('starts full: a burst of `burst` takes, then refuses', () => {
    const b = new TokenBucket(10, 5, 0);
    expect(takes(b, 0, 8)).toBe(5);
  });

  it('refills at `rate` per second, capped at `burst`', () => {
    const b = new TokenBucket(10, 5, 0);
    takes(b, 0, 5);
    expect(takes(b, 300, 10)).toBe(3);
    expect(takes(b, 100_300, 10)).toBe(5);
  });

  it('a clock going backwards adds nothing', () => {
    const b = new TokenBucket(10, 2, 1000);
    takes(b, 1000, 2);
    expect(b.take(0)).toBe(false);
    expect(b.take(50)).toBe(false);
    expect(b.take(150)).toBe(true);
  });
});
