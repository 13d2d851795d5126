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
