// `shallot up`'s defaults that grow with the network (services/testnet/launch.ts):
// the voting interval (the authorities' work per round grows with the relays)
// and the bootstrap deadline (relays start one after another).
import { describe, expect, it } from 'vitest';
import { defaultBootstrapTimeout, defaultVotingInterval } from '../../../services/testnet/launch.js';

describe('shallot up defaults by network size', () => {
  it('votes every 10 s up to 500 relays, then 1 s more per 50 relays', () => {
    expect([3, 10, 100, 500].map(defaultVotingInterval)).toEqual([10, 10, 10, 10]);
    expect([501, 1000, 2000, 5000].map(defaultVotingInterval)).toEqual([11, 20, 40, 100]);
    // Within --voting-interval's own range (5-3600) at --relays' maximum.
    expect(defaultVotingInterval(5000)).toBeLessThanOrEqual(3600);
  });

  it('waits 180 s for bootstrap up to 500 relays, then 0.6 s more per relay', () => {
    expect([3, 500].map(defaultBootstrapTimeout)).toEqual([180, 180]);
    expect(defaultBootstrapTimeout(1000)).toBe(480);
    expect(defaultBootstrapTimeout(5000)).toBe(2880);
    expect(defaultBootstrapTimeout(5000)).toBeLessThanOrEqual(3600);
  });
});
