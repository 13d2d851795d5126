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

describe('TokenBucket.spend (bytes, C tor token_bucket_rw_dec)', () => {
  it('charges past zero and says how long until the balance is back to zero', () => {
    const b = new TokenBucket(1000, 500, 0);
    expect(b.spend(400, 0)).toBe(0);
    expect(b.spend(600, 0)).toBe(500);
    expect(b.waitMs(250)).toBe(250);
    expect(b.waitMs(500)).toBe(0);
    expect(b.spend(100, 10_000)).toBe(0);
  });

  it('over a long run passes at most burst + rate x time', () => {
    const b = new TokenBucket(1000, 500, 0);
    let t = 0;
    let sent = 0;
    while (t < 10_000) {
      t += b.spend(512, t);
      if (t < 10_000) sent += 512;
    }
    expect(sent).toBeLessThanOrEqual(500 + 1000 * 10 + 512);
    expect(sent).toBeGreaterThan(1000 * 9.5);
  });
});
