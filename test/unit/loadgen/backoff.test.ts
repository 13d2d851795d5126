// Backoff after consecutive failures: the doubling schedule with its cap,
// one probe at a time during a streak, pauses merged and cut short by a
// success, and reset on success.
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs } from '../../../services/loadgen/backoff.js';

describe('backoffDelayMs', () => {
  it('doubles from the base per consecutive failure up to the cap; none without failures or with cap 0', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((k) => backoffDelayMs(k, 100, 5000))).toEqual([
      0, 100, 200, 400, 800, 1600, 3200, 5000,
    ]);
    expect(backoffDelayMs(5000, 100, 5000)).toBe(5000);
    expect(backoffDelayMs(3, 100, 0)).toBe(0);
  });
});

describe('Backoff', () => {
  it('lets requests start freely until a failure, then one probe after each pause', () => {
    const b = new Backoff(100, 5000);
    expect(b.waitMs(0)).toBe(0);
    expect(b.ended(false, 1000)).toBe(100);
    expect(b.waitMs(1050)).toBe(50);
    expect(b.waitMs(1100)).toBe(0);
    b.started();
    // While the probe runs nobody else starts.
    expect(b.waitMs(1200)).toBe(Number.POSITIVE_INFINITY);
    expect(b.ended(false, 1300)).toBe(200);
    expect(b.waitMs(1300)).toBe(200);
    expect(b.pauses).toEqual([
      { startMs: 1000, endMs: 1100 },
      { startMs: 1300, endMs: 1500 },
    ]);
  });

  it('merges the failures of requests already in flight into one pause', () => {
    const b = new Backoff(100, 5000);
    b.ended(false, 1000); // 100 ms: until 1100
    b.ended(false, 1010); // 200 ms: until 1210
    b.ended(false, 1020); // 400 ms: until 1420
    expect(b.failures).toBe(3);
    expect(b.pauses).toEqual([{ startMs: 1000, endMs: 1420 }]);
  });

  it('resets on success and ends the pause there', () => {
    const b = new Backoff(100, 5000);
    b.ended(false, 1000);
    b.ended(false, 1000); // until 1200
    b.ended(true, 1050); // a request from before the streak succeeded
    expect(b.failures).toBe(0);
    expect(b.waitMs(1060)).toBe(0);
    expect(b.pauses).toEqual([{ startMs: 1000, endMs: 1050 }]);
    expect(b.ended(false, 2000)).toBe(100);
  });

  it('cap 0 turns it all off', () => {
    const off = new Backoff(100, 0);
    off.ended(false, 0);
    off.started();
    expect(off.waitMs(0)).toBe(0);
    expect(off.pauses).toEqual([]);
  });
});
