// Votes (dir-spec §3.4.1): signed by their author, refused when malformed,
// hostile input; shared-random reveals taken from votes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeCommit } from '../../../../services/core/dir/shared-random.js';
import { decodeVote, encodeVote } from '../../../../services/core/dir/vote.js';
import { revealsFromVotes } from '../../../../services/core/dir/voting.js';
import { CryptoError, InvalidError } from '../../../../services/core/errors.js';
import { AUTH, hexOf, idOf, NOW, seedOf, tamper, vote, voteRelay } from '../../../helpers/dir-documents.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

describe('votes', () => {
  it('encode / decode round-trip, signed by the author', () => {
    const c = makeCommit(() => new Uint8Array(32).fill(9), idOf(1), NOW / 1000);
    const v = vote(1, [voteRelay(10), voteRelay(11, { measuredBandwidth: 5 })], {
      params: { bwweightscale: 10000, circwindow: 1000, neg: -5, 'allow-network-reentry': 1 },
      srCommits: [c],
      sharedRandCurrent: { reveals: 3, value: new Uint8Array(32).fill(7) },
    });
    const bytes = encodeVote(v, seedOf(1));
    expect(decodeVote(bytes, { maxBytes: 1 << 20, authorityIds: AUTH })).toEqual(v);
    expect(() => decodeVote(bytes, { maxBytes: 1 << 20, authorityIds: [hexOf(2)] })).toThrow(CryptoError);
    expect(() => decodeVote(bytes, { maxBytes: 100 })).toThrow(InvalidError);
    const forged = tamper(bytes, (d) => {
      d.body.relays[0].flags = ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'Valid'];
    });
    expect(() => decodeVote(forged, { maxBytes: 1 << 20 })).toThrow(CryptoError);
    const impersonated = tamper(bytes, (d) => {
      d.body.authority = hexOf(2);
    });
    expect(() => decodeVote(impersonated, { maxBytes: 1 << 20 })).toThrow(CryptoError);
  });

  it('refuses bad votes', () => {
    expect(() => encodeVote(vote(1, []), seedOf(2))).toThrow(InvalidError);
    // Relays must be sorted and unique.
    const r = voteRelay(10);
    expect(() => encodeVote({ ...vote(1, []), relays: [r, r] }, seedOf(1))).toThrow(InvalidError);
    // Flags must be known.
    expect(() => encodeVote(vote(1, [voteRelay(10, { flags: ['Bogus'] })]), seedOf(1))).toThrow(InvalidError);
    expect(() => encodeVote(vote(1, [], { freshUntilMs: NOW }), seedOf(1))).toThrow(InvalidError);
    expect(() => encodeVote(vote(1, [], { params: { 'bad key': 1 } }), seedOf(1))).toThrow(InvalidError);
    expect(() => encodeVote(vote(1, [], { params: { big: 2 ** 31 } }), seedOf(1))).toThrow(InvalidError);
    // A key that would set the prototype instead of being a key (found by the consensus property test).
    const proto = JSON.parse('{"__proto__": 1}') as Record<string, number>;
    expect(() => encodeVote(vote(1, [], { params: proto }), seedOf(1))).toThrow(/reserved key/);
    const bad = { authorityId: hexOf(1), commit: 'x' };
    expect(() => encodeVote(vote(1, [], { srCommits: [bad] }), seedOf(1))).toThrow(InvalidError);
  });

  it('hostile input: only typed errors', () => {
    const bytes = encodeVote(vote(1, [voteRelay(10)]), seedOf(1));
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.nat(255), (at, v) => {
        const m = new Uint8Array(bytes);
        m[at] = v;
        expectOnlyTypedErrors(() => decodeVote(m, { maxBytes: 1 << 20 }));
      }),
      { numRuns: 300 },
    );
  });

  it('revealsFromVotes keeps only authors’ own reveals that open their commits', () => {
    const ts = NOW / 1000;
    const mk = (n: number) => makeCommit(() => new Uint8Array(32).fill(n), idOf(n), ts);
    const [c1, c2, c3] = [mk(1), mk(2), mk(3)];
    const votes = [
      vote(1, [], { srCommits: [c1] }),
      // Reveal that does not open the commit.
      vote(2, [], { srCommits: [{ authorityId: hexOf(2), commit: c2.commit, reveal: c3.reveal }] }),
      // Commit phase: no reveal yet.
      vote(3, [], { srCommits: [{ authorityId: hexOf(3), commit: c3.commit }] }),
      // Unknown author.
      vote(4, [], { srCommits: [mk(4)] }),
    ];
    expect(revealsFromVotes(votes, AUTH)).toEqual([{ authorityId: idOf(1), reveal: c1.reveal }]);
  });
});
