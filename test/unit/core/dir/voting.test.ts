import { describe, expect, it } from 'vitest';
import { toHex } from '../../../../services/core/bytes.js';
import { consensusDigest } from '../../../../services/core/dir/consensus.js';
import { signRelayDescriptor } from '../../../../services/core/dir/descriptor.js';
import {
  credibleBandwidth,
  MAX_BELIEVABLE_BANDWIDTH,
  voteRelayFromDescriptor,
} from '../../../../services/core/dir/flags.js';
import { computeConsensus, DEFAULT_MAX_UNMEASURED_BW_KB } from '../../../../services/core/dir/voting.js';
import { InvalidError } from '../../../../services/core/errors.js';
import { AUTH, descriptor, hexOf, NOW, seedOf, vote, voteRelay } from '../../../helpers/dir-documents.js';

describe('computeConsensus', () => {
  const opts = { authorityIds: AUTH };

  it('lists a relay only if more than half of ALL authorities list it', () => {
    const votes = [
      vote(1, [voteRelay(10), voteRelay(11)]),
      vote(2, [voteRelay(10), voteRelay(12)]),
      vote(3, [voteRelay(10), voteRelay(11)]),
    ];
    const c = computeConsensus(votes, opts);
    expect(c.relays.map((r) => r.nickname).sort()).toEqual(['relay10', 'relay11']);
    // With 4 configured authorities, 2 listings are not a majority; missing votes count against.
    const four = computeConsensus(votes.slice(0, 2), { authorityIds: [...AUTH, hexOf(4)] });
    expect(four.relays).toEqual([]);
    const fourAll = computeConsensus(votes, { authorityIds: [...AUTH, hexOf(4)] });
    expect(fourAll.relays.map((r) => r.nickname)).toEqual(['relay10']);
    expect(c.authorities).toEqual([...AUTH].sort());
    expect(c.relays.map((r) => toHex(r.identity))).toEqual(c.relays.map((r) => toHex(r.identity)).sort());
  });

  it('with requireMajority, refuses votes from half of the authorities or fewer (C tor dirvote_compute_consensuses)', () => {
    const votes = [vote(1, [voteRelay(10)]), vote(2, [voteRelay(10)]), vote(3, [voteRelay(10)])];
    const reasonOf = (vs: typeof votes, ids: readonly string[]) => {
      try {
        computeConsensus(vs, { authorityIds: ids, requireMajority: true });
        return 'computed';
      } catch (e) {
        return e instanceof InvalidError ? e.context.reason : String(e);
      }
    };
    // One vote of three: without the rule it is a consensus listing no relay
    // (one listing is no majority of three), the same document from any lone
    // vote, so authorities that each held only their own signed it together
    // (issue 17, slow/authority-starvation).
    expect(computeConsensus(votes.slice(0, 1), opts).relays).toEqual([]);
    expect(reasonOf(votes.slice(0, 1), AUTH)).toBe('too-few-votes');
    expect(reasonOf(votes.slice(0, 2), AUTH)).toBe('computed');
    expect(reasonOf(votes, AUTH)).toBe('computed');
    // Exactly half is not more than half; a lone authority's own vote is.
    expect(reasonOf(votes.slice(0, 2), [...AUTH, hexOf(4)])).toBe('too-few-votes');
    expect(reasonOf(votes.slice(0, 1), AUTH.slice(0, 1))).toBe('computed');
    // Votes of unconfigured authorities do not count towards it.
    expect(reasonOf([votes[0]!, vote(5, [voteRelay(10)])], AUTH)).toBe('too-few-votes');
  });

  it('sets a flag when more than half of the voters that list the relay and know the flag agree', () => {
    const f = (flags: string[]) => voteRelay(10, { flags: flags.sort() });
    const votes = [
      vote(1, [f(['Running', 'Valid', 'Exit', 'HSDir'])]),
      vote(2, [f(['Running', 'Valid', 'Exit'])]),
      // Does not know HSDir: not counted for it.
      vote(3, [f(['Running', 'Valid'])], { knownFlags: ['Exit', 'Running', 'Valid'] }),
    ];
    const c = computeConsensus(votes, opts);
    // Exit: 2 of 3; HSDir: 1 of 2 knowing voters is not a majority.
    expect(c.relays[0]!.flags).toEqual(['Exit', 'Running', 'Valid']);
    const votes2 = [
      votes[0]!,
      vote(2, [f(['Running', 'Valid'])], { knownFlags: ['Running', 'Valid'] }),
      votes[2]!,
    ];
    // Exit: 1 of 2 knowing voters; HSDir: 1 of 1 knowing voter.
    expect(computeConsensus(votes2, opts).relays[0]!.flags).toEqual(['HSDir', 'Running', 'Valid']);
    expect(c.knownFlags).toEqual(['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid']);
  });

  it('bandwidth: low-median of measured if >= 3 measured, else of claimed and Unmeasured', () => {
    const claimed = [
      vote(1, [voteRelay(10, { bandwidth: 300 })]),
      vote(2, [voteRelay(10, { bandwidth: 100 })]),
      vote(3, [voteRelay(10, { bandwidth: 200 })]),
    ];
    const a = computeConsensus(claimed, opts).relays[0]!;
    expect(a.bandwidth).toBe(200);
    expect(a.unmeasured).toBe(true);
    // Two votes: the low median is the smaller.
    expect(computeConsensus(claimed.slice(0, 2), opts).relays[0]!.bandwidth).toBe(100);
    const measured = claimed.map((v, i) => ({
      ...v,
      relays: [{ ...v.relays[0]!, measuredBandwidth: [50, 70, 60][i]! }],
    }));
    const b = computeConsensus(measured, opts).relays[0]!;
    expect(b.bandwidth).toBe(60);
    expect(b.unmeasured).toBeUndefined();
  });

  it('clips unmeasured relays to maxunmeasuredbw once 3 votes carry measurements (C tor method 17)', () => {
    // Relay 10 is measured by all three; relay 11 (a liar claiming 1 TB/s) by none.
    const votes = [1, 2, 3].map((a) =>
      vote(a, [
        voteRelay(10, { bandwidth: 500_000, measuredBandwidth: 400_000 }),
        voteRelay(11, { bandwidth: 1e12 }),
      ]),
    );
    const c = computeConsensus(votes, opts);
    const [m, liar] = c.relays;
    expect(m!.bandwidth).toBe(400_000);
    // DEFAULT_MAX_UNMEASURED_BW_KB = 20 KB/s.
    expect(liar!.bandwidth).toBe(DEFAULT_MAX_UNMEASURED_BW_KB * 1000);
    expect(liar!.unmeasured).toBe(true);
    // The param overrides the default (Tor's name and unit, KB/s).
    const p = computeConsensus(votes, { ...opts, params: { maxunmeasuredbw: 5 } });
    expect(p.relays[1]!.bandwidth).toBe(5000);
    // Two measuring votes are not enough to clip (a network without scanners keeps claims).
    const two = votes.map((v, i) =>
      i < 2 ? v : { ...v, relays: v.relays.map((r) => ({ ...r, measuredBandwidth: undefined })) },
    );
    expect(computeConsensus(two, opts).relays[1]!.bandwidth).toBe(1e12);
    // A one-authority testnet: its own measurement counts (all of the authorities measured).
    const lone = computeConsensus([votes[0]!], { authorityIds: [AUTH[0]!] });
    expect(lone.relays[0]!.bandwidth).toBe(400_000);
    expect(lone.relays[0]!.unmeasured).toBeUndefined();
    expect(lone.relays[1]!.bandwidth).toBe(DEFAULT_MAX_UNMEASURED_BW_KB * 1000);
  });

  it('an honest vote caps the claimed bandwidth at MAX_BELIEVABLE_BANDWIDTH', () => {
    const d = descriptor(10, { bandwidth: 1e12 });
    const r = voteRelayFromDescriptor(d, signRelayDescriptor(d, seedOf(10)), ['Running', 'Valid']);
    expect(r.bandwidth).toBe(MAX_BELIEVABLE_BANDWIDTH);
    expect(credibleBandwidth(1e12)).toBe(MAX_BELIEVABLE_BANDWIDTH);
    expect(credibleBandwidth(1e12, 1234)).toBe(1234);
    expect(credibleBandwidth(5)).toBe(5);
  });

  it('times are low-medians; params need a majority of all authorities or 3 votes', () => {
    const votes = [
      vote(1, [], {
        validAfterMs: NOW,
        freshUntilMs: NOW + 10,
        validUntilMs: NOW + 30,
        params: { a: 5, b: 1, c: 9 },
      }),
      vote(2, [], {
        validAfterMs: NOW + 2,
        freshUntilMs: NOW + 12,
        validUntilMs: NOW + 32,
        params: { a: 3, b: 2 },
      }),
      vote(3, [], {
        validAfterMs: NOW + 1,
        freshUntilMs: NOW + 11,
        validUntilMs: NOW + 31,
        params: { a: 4 },
      }),
    ];
    const c = computeConsensus(votes, { authorityIds: AUTH, params: { bwweightscale: 10000, c: 1 } });
    expect([c.validAfterMs, c.freshUntilMs, c.validUntilMs]).toEqual([NOW + 1, NOW + 11, NOW + 31]);
    // a: 3 votes -> median 4; b: 2 of 3 -> low median 1; c: 1 vote -> not set, default kept.
    expect(c.params).toEqual({ a: 4, b: 1, bwweightscale: 10000, c: 1 });
    // With 5 authorities, 2 votes are neither a majority nor 3.
    const five = computeConsensus(votes, { authorityIds: [...AUTH, hexOf(4), hexOf(5)] });
    expect(five.params).toEqual({ a: 4 });
  });

  it('shared random values need more than half of all authorities', () => {
    const srv = (n: number) => ({ reveals: 3, value: new Uint8Array(32).fill(n) });
    const votes = [
      vote(1, [], { sharedRandCurrent: srv(1), sharedRandPrevious: srv(5) }),
      vote(2, [], { sharedRandCurrent: srv(1), sharedRandPrevious: srv(6) }),
      vote(3, [], { sharedRandCurrent: srv(2) }),
    ];
    const c = computeConsensus(votes, opts);
    expect(c.sharedRandCurrent).toEqual(srv(1));
    expect(c.sharedRandPrevious).toBeUndefined();
  });

  it('takes descriptor fields from the newest entry; ignores unknown authorities; refuses duplicate votes', () => {
    const old = voteRelay(10);
    const newer = {
      ...voteRelay(10),
      orPort: 7777,
      publishedMs: old.publishedMs + 1000,
      descriptorDigest: new Uint8Array(32).fill(1),
    };
    const c = computeConsensus([vote(1, [old]), vote(2, [newer]), vote(3, [old])], opts);
    expect(c.relays[0]!.orPort).toBe(7777);
    expect(c.relays[0]!.descriptorDigest).toEqual(newer.descriptorDigest);
    // An outsider's vote neither lists relays nor shifts medians.
    const outsider = vote(9, [voteRelay(20)], { validAfterMs: NOW + 999 });
    const d = computeConsensus([vote(1, [old]), vote(2, [old]), outsider], opts);
    expect(d.relays.map((r) => r.nickname)).toEqual(['relay10']);
    expect(d.validAfterMs).toBe(NOW);
    expect(() => computeConsensus([vote(1, []), vote(1, [])], opts)).toThrow(InvalidError);
    expect(() => computeConsensus([outsider], opts)).toThrow(InvalidError);
    expect(() => computeConsensus([vote(1, [])], { authorityIds: [] })).toThrow(InvalidError);
  });

  it('is deterministic regardless of vote order', () => {
    const votes = [
      vote(1, [voteRelay(10), voteRelay(11)]),
      vote(2, [voteRelay(11), voteRelay(12)]),
      vote(3, [voteRelay(12), voteRelay(10)]),
    ];
    const a = computeConsensus(votes, opts);
    const b = computeConsensus([...votes].reverse(), { authorityIds: [...AUTH].reverse() });
    expect(consensusDigest(a)).toEqual(consensusDigest(b));
  });
});
