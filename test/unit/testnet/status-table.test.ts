// status.ts relayTable: readable at thousands of relays (issue 17): every
// relay up to RELAY_LINES, above it relays per flag and the first half;
// --all lists them all.
import { describe, expect, it } from 'vitest';
import { RELAY_LINES, relayTable } from '../../../services/testnet/status.js';

const relays = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    nickname: `relay${i}`,
    address: '127.0.0.1',
    orPort: 7000 + i,
    bandwidth: 1000,
    flags: i % 10 === 0 ? ['Exit', 'Running', 'Valid'] : ['Running', 'Valid'],
    identity: new Uint8Array(32).fill(i % 256),
  }));

describe('relayTable', () => {
  it('lists every relay up to RELAY_LINES', () => {
    const t = relayTable(relays(RELAY_LINES));
    expect(t).toHaveLength(RELAY_LINES + 1);
    expect(t.at(-1)).toContain(`relay${RELAY_LINES - 1} `);
  });

  it('at 5,000 relays: counts per flag, the first half of RELAY_LINES, and how many more', () => {
    const t = relayTable(relays(5000));
    expect(t[0]).toBe('  relays per flag: Exit 500, Running 5000, Valid 5000');
    expect(t.length).toBeLessThanOrEqual(RELAY_LINES);
    expect(t.at(-1)).toBe(
      `  ... and ${5000 - RELAY_LINES / 2} more (shallot status --all lists every relay)`,
    );
  });

  it('--all lists all 5,000', () => {
    expect(relayTable(relays(5000), true)).toHaveLength(5001);
  });
});
