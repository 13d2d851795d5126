// Bandwidth weights (dir-spec §3.8.3): C tor's v10 cases, class totals
// starting at 1 KB/s (dirvote.c), BadExit as non-exit, the sum and range
// constraints, and the weights a real C tor testnet consensus published
// (test/vectors/ctor/consensus-microdesc.txt).
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMdConsensus } from '../../../../services/core/ctor/md-consensus.js';
import { BW_WEIGHT_SCALE, computeBandwidthWeights } from '../../../../services/core/dir/bw-weights.js';

/** Each class total starts at 1 KB/s (C tor G = M = E = D = 1): relays of N - 1000 give totals N. */
const K = 1000;

describe('bandwidth weights (dir-spec §3.8.3, C tor v10)', () => {
  /** One relay per class whose class total (with C tor's initial 1 KB/s) is the given KB/s. */
  const relays = (G: number, M: number, E: number, D: number) => [
    { flags: ['Guard', 'Running'], bandwidth: G * K - K },
    { flags: ['Running'], bandwidth: M * K - K },
    { flags: ['Exit', 'Running'], bandwidth: E * K - K },
    { flags: ['Exit', 'Guard', 'Running'], bandwidth: D * K - K },
  ];
  const pick = (w: Record<string, number>) => [w.Wgg, w.Wgd, w.Wmg, w.Wme, w.Wmd, w.Wee, w.Wed];

  const cases: { comment: string; gmed: [number, number, number, number]; w: number[] }[] = [
    // T=1000: Wee = 10000*900/1200, Wmg = 10000*300/1200, D split in thirds.
    {
      comment: 'case 1, neither scarce',
      gmed: [400, 100, 400, 100],
      w: [7500, 3333, 2500, 2500, 3333, 7500, 3333],
    },
    // E scarce, S+D < T/3: Wee=Wed=1, Wmg = 10000*(G-M)/(2G).
    { comment: 'case 3a, E scarce', gmed: [1000, 100, 10, 10], w: [5500, 0, 4500, 0, 0, 10000, 10000] },
    // G scarce, E >= M: Wme = 10000*(E-M)/(2E).
    { comment: 'case 3a, G scarce', gmed: [10, 100, 1000, 10], w: [10000, 10000, 0, 4500, 0, 5500, 0] },
    // R+D < S with G scarcer: all of D to guards.
    { comment: 'case 2a, G scarce', gmed: [10, 1000, 20, 5], w: [10000, 10000, 0, 0, 0, 10000, 0] },
    { comment: 'case 2a, E scarce', gmed: [20, 1000, 10, 5], w: [10000, 0, 0, 0, 0, 10000, 10000] },
  ];
  for (const [i, c] of cases.entries()) {
    it(`(${i}) ${c.comment}`, () => {
      const w = computeBandwidthWeights(relays(...c.gmed));
      expect(pick(w)).toEqual(c.w);
      // C tor's derived weights.
      expect([w.Wgm, w.Wem, w.Weg, w.Wmm, w.Wbd]).toEqual([w.Wgg, w.Wee, w.Wed, BW_WEIGHT_SCALE, w.Wmd]);
      expect(Object.keys(w)).toHaveLength(19);
    });
  }

  it('weighs an all Guard+Exit testnet as C tor does: the weights a C tor consensus published', () => {
    const text = readFileSync(
      new URL('../../../vectors/ctor/consensus-microdesc.txt', import.meta.url),
      'utf8',
    );
    const c = parseMdConsensus(text);
    // Every relay of that network is Guard+Exit: G, M and E hold only C tor's initial 1 KB/s.
    expect(c.relays.every((r) => r.flags.includes('Guard') && r.flags.includes('Exit'))).toBe(true);
    const w = computeBandwidthWeights(
      c.relays.map((r) => ({ flags: r.flags, bandwidth: (r.bandwidth ?? 0) * K })),
    );
    expect(Object.keys(c.bandwidthWeights)).toHaveLength(19);
    expect(w).toEqual(c.bandwidthWeights);
  });

  it('counts Running relays only; an empty network still gets the initial totals', () => {
    const running = computeBandwidthWeights(relays(400, 100, 400, 100));
    const notRunning = computeBandwidthWeights(
      relays(400, 100, 400, 100).map((r) => ({ ...r, flags: r.flags.filter((f) => f !== 'Running') })),
    );
    expect(notRunning).toEqual(computeBandwidthWeights([]));
    expect(notRunning).not.toEqual(running);
    // G = M = E = D = 1 (T = 4): both scarce (3E < T), R + D >= S: case 2b1, Wgg = Wee = 1,
    // Wed = (D - 2E + 4G - 2M) / 3D = 1/3, Wmd = Wgd = (1 - Wed) / 2.
    expect(pick(computeBandwidthWeights([]))).toEqual([10000, 3333, 0, 0, 3333, 10000, 3333]);
  });

  it('BadExit relays count as non-exits', () => {
    const w1 = computeBandwidthWeights(relays(400, 100, 400, 100));
    const withBad = [
      ...relays(400, 1, 400, 100),
      { flags: ['BadExit', 'Exit', 'Running'], bandwidth: 99 * K },
    ];
    // The BadExit relay's 100 lands in M, giving the same totals as relays(400, 100, 400, 100).
    expect(computeBandwidthWeights(withBad)).toEqual(w1);
    expect(w1.Wee).toBe(7500);
  });

  it('whenever weights are published they satisfy the sum and range constraints', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10 ** 6 }), { minLength: 4, maxLength: 4 }),
        ([G, M, E, D]) => {
          const w = computeBandwidthWeights(relays(G!, M!, E!, D!));
          if (Object.keys(w).length === 0) return;
          const s = BW_WEIGHT_SCALE;
          for (const v of pick(w)) {
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(s);
          }
          expect(Math.abs(w.Wgg! + w.Wmg! - s)).toBeLessThanOrEqual(10);
          expect(Math.abs(w.Wee! + w.Wme! - s)).toBeLessThanOrEqual(10);
          expect(Math.abs(w.Wgd! + w.Wmd! + w.Wed! - s)).toBeLessThanOrEqual(10);
        },
      ),
      { numRuns: 500 },
    );
  });
});
