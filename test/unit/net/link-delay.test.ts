import { describe, expect, it } from 'vitest';
import { BandwidthLimiter, peerFromHeaders } from '../../../services/net/link-delay.js';

describe('BandwidthLimiter', () => {
  it('observed bandwidth is the best whole 10 s average (C tor rep_hist), and the bucket makes readers wait', () => {
    let now = 0;
    const l = new BandwidthLimiter(100_000, 100_000, () => now);
    expect(l.observed).toBe(0);
    // 50 kB/s for 10 s, then 100 kB/s for 10 s, then idle.
    for (; now < 10_000; now += 1000) l.charge(50_000);
    for (; now < 20_000; now += 1000) l.charge(100_000);
    now = 30_000;
    l.charge(1);
    expect(l.observed).toBe(100_000);
    l.charge(250_000);
    expect(l.waitMs()).toBeCloseTo(1500, 0);
  });

  it('a window that ended in silence still counts: a busy relay that went idle reports what it carried', () => {
    let now = 0;
    const l = new BandwidthLimiter(1_000_000, 1_000_000, () => now);
    for (; now < 5_000; now += 500) l.charge(30_000); // 300 kB in the first window, then nothing
    now = 9_999;
    expect(l.observed).toBe(0); // the window is not whole yet
    now = 10_000;
    expect(l.observed).toBe(30_000);
    now = 60_000;
    expect(l.observed).toBe(30_000); // idle windows do not dilute the best
  });
});

describe('peerFromHeaders', () => {
  it('takes one short string per header and ignores the rest', () => {
    expect(peerFromHeaders({ 'x-shallot-node': 'relay1', 'x-shallot-location': 'eu' })).toEqual({
      node: 'relay1',
      location: 'eu',
    });
    expect(peerFromHeaders({ 'x-shallot-node': ['a', 'b'], 'x-shallot-location': 'x'.repeat(65) })).toEqual({
      node: null,
      location: null,
    });
    expect(peerFromHeaders({})).toEqual({ node: null, location: null });
  });
});
