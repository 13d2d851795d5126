// launch-workers.ts dealRelays: relays dealt round-robin over the workers
// (the authorities' threads, one each, come on top), none twice, none
// missing, no idle worker.
import { describe, expect, it } from 'vitest';
import { dealRelays } from '../../../services/testnet/launch-workers.js';

describe('dealRelays', () => {
  it('2 workers (one per core on this host) put every relay in one relay worker', () => {
    expect(dealRelays(5, 2)).toEqual([[0, 1, 2, 3, 4]]);
  });

  it('deals round-robin over workers - 1', () => {
    expect(dealRelays(7, 4)).toEqual([
      [0, 3, 6],
      [1, 4],
      [2, 5],
    ]);
  });

  it('starts no relay worker with nothing to run', () => {
    expect(dealRelays(3, 16)).toEqual([[0], [1], [2]]);
  });

  it('1,000 relays over 8 workers: each relay once, shares within one of each other', () => {
    const deal = dealRelays(1000, 8);
    expect(deal).toHaveLength(7);
    expect(
      deal
        .flat()
        .sort((a, b) => a - b)
        .every((v, i) => v === i),
    ).toBe(true);
    const sizes = deal.map((d) => d.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect(deal.flat()).toHaveLength(1000);
  });
});
