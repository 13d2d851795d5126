// The authority's round state machine (round.ts), without sockets or timers:
// which votes it stores, how consensus signatures are checked, queued and
// matched, and when a consensus is published (majority, due, never older).
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import {
  type Consensus,
  consensusDigest,
  decodeSignedConsensus,
  encodeSignedConsensus,
  signConsensus,
} from '../../../services/core/dir/consensus.js';
import { decodeVote, encodeVote, type Vote } from '../../../services/core/dir/vote.js';
import { computeConsensus } from '../../../services/core/dir/voting.js';
import { ShallotError } from '../../../services/core/errors.js';
import {
  MAX_QUEUED_SIGNATURES,
  PeerDocumentError,
  peerRefusalReason,
  VoteRefusedError,
  VotingRounds,
} from '../../../services/directory/round.js';
import { AUTH, NOW, seedOf, tamper, vote, voteRelay } from '../../helpers/dir-documents.js';

const INTERVAL = 300_000;
const SELF = AUTH[0]!;

function rounds(): VotingRounds {
  const r = new VotingRounds({ selfId: SELF, authorityIds: AUTH, intervalMs: INTERVAL });
  r.prepare(NOW);
  return r;
}

const signed = (v: Vote, author: number) => ({ vote: v, raw: encodeVote(v, seedOf(author)) });
const votes = [1, 2, 3].map((a) => vote(a, [voteRelay(10)]));
const consensus = (): Consensus => computeConsensus(votes, { authorityIds: AUTH });
const sigDoc = (c: Consensus, author: number, va = NOW) => ({
  validAfterMs: va,
  digestHex: toHex(consensusDigest(c)),
  signature: signConsensus(c, seedOf(author)),
});
const reasonOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof PeerDocumentError ? e.reason : (e as Error).constructor.name;
  }
  return 'accepted';
};

describe('votes', () => {
  it('stores one vote per peer for the round being prepared and the next', () => {
    const r = rounds();
    const v2 = signed(vote(2, []), 2);
    expect(r.acceptVote(v2.vote, v2.raw)).toBe(true);
    expect(r.hasVote(NOW, AUTH[1]!)).toBe(true);
    // The same bytes again (a retry) are a no-op.
    expect(r.acceptVote(v2.vote, v2.raw)).toBe(false);
    const next = signed(vote(3, [], { validAfterMs: NOW + INTERVAL, freshUntilMs: NOW + 2 * INTERVAL }), 3);
    expect(r.acceptVote(next.vote, next.raw)).toBe(true);
    expect(r.votes(NOW + INTERVAL)).toEqual([next.vote]);
    expect(r.votes(NOW)).toEqual([v2.vote]);
  });

  it('refuses a second, different vote, its own identity and other rounds', () => {
    const r = rounds();
    const a = signed(vote(2, []), 2);
    const b = signed(vote(2, [voteRelay(10)]), 2);
    r.acceptVote(a.vote, a.raw);
    expect(() => r.acceptVote(b.vote, b.raw)).toThrow(VoteRefusedError);
    const own = signed(vote(1, []), 1);
    expect(() => r.acceptVote(own.vote, own.raw)).toThrow(/my own identity/);
    for (const va of [NOW - INTERVAL, NOW + 2 * INTERVAL]) {
      const far = signed(
        vote(3, [], { validAfterMs: va, freshUntilMs: va + INTERVAL, validUntilMs: va + 3 * INTERVAL }),
        3,
      );
      expect(() => r.acceptVote(far.vote, far.raw)).toThrow(/not voting on valid-after/);
    }
    expect(r.votes(NOW)).toEqual([a.vote]);
  });

  it('serves its own vote for the round being prepared only', () => {
    const r = rounds();
    expect(r.ownNextVote()).toBeNull();
    const own = signed(vote(1, []), 1);
    r.setOwnVote(NOW, own.vote, own.raw);
    expect(r.ownNextVote()).toEqual(own.raw);
    r.prepare(NOW + INTERVAL);
    expect(r.ownNextVote()).toBeNull();
  });
});

describe('consensus signatures', () => {
  it('checks the signer and the signature before anything else', () => {
    const r = rounds();
    const c = consensus();
    expect(reasonOf(() => r.acceptSignature(sigDoc(c, 9)))).toBe('unknown-authority');
    const forged = { ...sigDoc(c, 2), digestHex: toHex(new Uint8Array(32).fill(1)) };
    expect(reasonOf(() => r.acceptSignature(forged))).toBe('bad-signature');
    expect(reasonOf(() => r.acceptSignature(sigDoc(c, 2, NOW + 7 * INTERVAL)))).toBe('no-round');
  });

  it('queues verified signatures until its own consensus exists, then keeps those on its digest', () => {
    const r = rounds();
    const c = consensus();
    const other = computeConsensus(votes, { authorityIds: AUTH, params: { other: 1 } });
    expect(r.acceptSignature(sigDoc(other, 2))).toBe('signature queued');
    expect(r.acceptSignature(sigDoc(c, 2))).toBe('signature queued');
    expect(r.acceptSignature(sigDoc(c, 2))).toBe('already have it');
    expect(r.signatureCount(NOW)).toBe(0);
    const digest = r.setConsensus(NOW, c, signConsensus(c, seedOf(1)));
    expect(digest).toEqual(consensusDigest(c));
    expect(r.signatureCount(NOW)).toBe(2);
    expect(r.hasSignature(NOW, AUTH[1]!)).toBe(true);
    expect(r.acceptSignature(sigDoc(c, 2))).toBe('already have it');
    expect(reasonOf(() => r.acceptSignature(sigDoc(other, 3)))).toBe('other-digest');
    expect(r.acceptSignature(sigDoc(c, 3))).toBe('signature accepted');
    expect(r.signatureCount(NOW)).toBe(3);
  });

  it(`queues at most ${MAX_QUEUED_SIGNATURES} digests per authority and round`, () => {
    const r = rounds();
    const docs = [1, 2, 3, 4, 5].map((n) => {
      const c = computeConsensus([vote(1, [voteRelay(10 + n)])], { authorityIds: AUTH.slice(0, 1) });
      return sigDoc(c, 2);
    });
    for (const d of docs.slice(0, MAX_QUEUED_SIGNATURES))
      expect(r.acceptSignature(d)).toBe('signature queued');
    expect(reasonOf(() => r.acceptSignature(docs[MAX_QUEUED_SIGNATURES]!))).toBe('queue-full');
  });

  it('takes pulled signatures only from configured authorities, valid, on its digest', () => {
    const r = rounds();
    const c = consensus();
    r.setConsensus(NOW, c, signConsensus(c, seedOf(1)));
    const s2 = signConsensus(c, seedOf(2));
    const outsider = signConsensus(c, seedOf(9));
    // Authority 3's identity on authority 2's signature.
    const forged = { identity: signConsensus(c, seedOf(3)).identity, signature: s2.signature };
    r.addPulledSignatures(NOW, decodeSignedConsensus(encodeSignedConsensus(c, [outsider, forged]), 1 << 20));
    expect(r.signatureCount(NOW)).toBe(1);
    const other = computeConsensus(votes, { authorityIds: AUTH, params: { other: 1 } });
    r.addPulledSignatures(
      NOW,
      decodeSignedConsensus(encodeSignedConsensus(other, [signConsensus(other, seedOf(2))]), 1 << 20),
    );
    expect(r.signatureCount(NOW)).toBe(1);
    r.addPulledSignatures(NOW, decodeSignedConsensus(encodeSignedConsensus(c, [s2]), 1 << 20));
    expect(r.signatureCount(NOW)).toBe(2);
  });

  it('counts refusals by reason', () => {
    const r = rounds();
    const c = consensus();
    const caught = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return peerRefusalReason(e);
      }
      return 'none';
    };
    expect(caught(() => r.acceptSignature(sigDoc(c, 9)))).toBe('unknown-authority');
    expect(
      caught(() => decodeVote(encodeVote(vote(9, []), seedOf(9)), { maxBytes: 1 << 20, authorityIds: AUTH })),
    ).toBe('unknown-authority');
    expect(caught(() => decodeVote(new Uint8Array(3), { maxBytes: 1 << 20 }))).toBe('invalid');
    const forged = tamper(signed(vote(2, []), 2).raw, (d) => {
      d.body.publishedMs += 1;
    });
    expect(caught(() => decodeVote(forged, { maxBytes: 1 << 20 }))).toBe('bad-signature');
  });

  it('hostile signature documents: typed errors, nothing stored', () => {
    const r = rounds();
    const c = consensus();
    const good = sigDoc(c, 2);
    const variants = [
      { ...good, validAfterMs: -1 },
      { ...good, digestHex: 'zz' },
      { ...good, signature: { identity: new Uint8Array(32), signature: new Uint8Array(64) } },
      { ...good, signature: { identity: good.signature.identity, signature: new Uint8Array(64) } },
    ];
    for (const d of variants) expect(() => r.acceptSignature(d)).toThrow(ShallotError);
    expect(r.signatureCount(NOW)).toBe(0);
  });
});

describe('publish', () => {
  it('serves a consensus once more than half of all authorities signed and VA has come', () => {
    const r = rounds();
    const c = consensus();
    expect(r.publish(NOW, NOW)).toBe('not-publishable');
    r.setConsensus(NOW, c, signConsensus(c, seedOf(1)));
    expect(r.hasMajority(NOW)).toBe(false);
    expect(r.publish(NOW, NOW)).toBe('not-publishable');
    r.acceptSignature(sigDoc(c, 2));
    expect(r.hasMajority(NOW)).toBe(true);
    expect(r.publish(NOW, NOW - 1)).toBe('not-publishable');
    expect(r.latest).toBeNull();
    expect(r.publish(NOW, NOW)).toBe('published');
    expect(r.latest?.signatures).toBe(2);
    expect(decodeSignedConsensus(r.latest!.raw, 1 << 20).consensus).toEqual(c);
    expect(r.publish(NOW, NOW + 1)).toBe('unchanged');
    // A late signature re-encodes the served document.
    r.acceptSignature(sigDoc(c, 3));
    expect(r.publish(NOW, NOW + 2)).toBe('updated');
    expect(decodeSignedConsensus(r.latest!.raw, 1 << 20).signatures.map((s) => toHex(s.identity))).toEqual(
      [...AUTH].sort(),
    );
  });

  it('never replaces a newer consensus with an older one, and keeps only the previous round', () => {
    const r = rounds();
    const c = consensus();
    r.setConsensus(NOW, c, signConsensus(c, seedOf(1)));
    r.acceptSignature(sigDoc(c, 2));
    const va2 = NOW + INTERVAL;
    r.prepare(va2);
    const next = computeConsensus(
      [1, 2, 3].map((a) =>
        vote(a, [voteRelay(10)], {
          validAfterMs: va2,
          freshUntilMs: va2 + INTERVAL,
          validUntilMs: va2 + 3 * INTERVAL,
        }),
      ),
      { authorityIds: AUTH },
    );
    r.setConsensus(va2, next, signConsensus(next, seedOf(1)));
    r.acceptSignature(sigDoc(next, 3, va2));
    expect(r.publish(va2, va2)).toBe('published');
    expect(r.publish(NOW, va2)).toBe('not-publishable');
    expect(r.latest?.consensus.validAfterMs).toBe(va2);
    // The pending document is the newest computed round's.
    expect(decodeSignedConsensus(r.pendingSignatures()!, 1 << 20).consensus).toEqual(next);
    r.prepare(va2 + INTERVAL);
    expect(r.hasConsensus(va2)).toBe(true);
    r.prepare(va2 + 2 * INTERVAL);
    expect(r.hasConsensus(va2)).toBe(false);
    expect(reasonOf(() => r.acceptSignature(sigDoc(next, 2, va2)))).toBe('no-round');
  });
});

describe('adopt (a peer-published consensus, for a round this authority missed)', () => {
  const peerDoc = (c: Consensus) => {
    const sigs = [2, 3].map((a) => signConsensus(c, seedOf(a)));
    const raw = encodeSignedConsensus(c, sigs);
    return { signed: decodeSignedConsensus(raw, 1 << 20), raw };
  };
  const at = (va: number) =>
    computeConsensus(
      [1, 2, 3].map((a) =>
        vote(a, [voteRelay(10)], {
          validAfterMs: va,
          freshUntilMs: va + INTERVAL,
          validUntilMs: va + 3 * INTERVAL,
        }),
      ),
      { authorityIds: AUTH },
    );

  it('serves it when nothing is served, or only an older round', () => {
    const r = rounds();
    const first = peerDoc(at(NOW));
    expect(r.adopt(first.signed, first.raw)).toBe(true);
    expect(r.latest?.raw).toBe(first.raw);
    expect(r.latest?.signatures).toBe(2);
    const next = peerDoc(at(NOW + INTERVAL));
    expect(r.adopt(next.signed, next.raw)).toBe(true);
    expect(r.latest?.consensus.validAfterMs).toBe(NOW + INTERVAL);
  });

  it('never replaces the same round or a newer one', () => {
    const r = rounds();
    const c = consensus();
    r.setConsensus(NOW, c, signConsensus(c, seedOf(1)));
    r.acceptSignature(sigDoc(c, 2));
    expect(r.publish(NOW, NOW)).toBe('published');
    const ours = r.latest?.raw;
    const same = peerDoc(at(NOW));
    expect(r.adopt(same.signed, same.raw)).toBe(false);
    const older = peerDoc(at(NOW - INTERVAL));
    expect(r.adopt(older.signed, older.raw)).toBe(false);
    expect(r.latest?.raw).toBe(ours);
  });
});
