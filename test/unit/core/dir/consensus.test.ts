// Consensus signatures with the majority rule (dir-spec §4), the validity
// window, the canonical-form decoder, hostile input; the detached signature
// document authorities exchange (dir-spec §3.10).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../../services/core/bytes.js';
import { randomBytes } from '../../../../services/core/crypto.js';
import { computeBandwidthWeights } from '../../../../services/core/dir/bw-weights.js';
import {
  type Consensus,
  type ConsensusSignature,
  consensusDigest,
  decodeSignatureDocument,
  decodeSignedConsensus,
  encodeSignatureDocument,
  encodeSignedConsensus,
  signConsensus,
  verifyConsensus,
} from '../../../../services/core/dir/consensus.js';
import { computeConsensus } from '../../../../services/core/dir/voting.js';
import { CryptoError, InvalidError } from '../../../../services/core/errors.js';
import {
  AUTH,
  AUTH_SEEDS,
  type Doc,
  hexOf,
  NOW,
  seedOf,
  tamper,
  vote,
  voteRelay,
} from '../../../helpers/dir-documents.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

describe('consensus signatures (majority of configured authorities)', () => {
  const consensus = (): Consensus =>
    computeConsensus(
      [1, 2, 3].map((a) => vote(a, [voteRelay(10), voteRelay(11, { flags: ['Exit', 'Running', 'Valid'] })])),
      { authorityIds: AUTH, params: { bwweightscale: 10000 } },
    );
  const sign = (c: Consensus, seeds: Uint8Array[]) => seeds.map((s) => signConsensus(c, s));
  const at = { authorityIds: AUTH, nowMs: NOW + 1000 };
  const reasonOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as CryptoError).context.reason;
    }
    return 'accepted';
  };

  it('round-trips and accepts 2 of 3 and 3 of 3 signatures', () => {
    const c = consensus();
    const all = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    const decoded = decodeSignedConsensus(all, 1 << 20);
    expect(decoded.consensus).toEqual(c);
    expect(decoded.digest).toEqual(consensusDigest(c));
    expect(verifyConsensus(decoded, at)).toEqual(c);
    const two = encodeSignedConsensus(c, sign(c, AUTH_SEEDS.slice(1)));
    expect(verifyConsensus(two, at)).toEqual(c);
  });

  it('rejects 1 of 3, a duplicated signer, unknown signers and bad signatures', () => {
    const c = consensus();
    const [s1, s2] = sign(c, AUTH_SEEDS);
    const outsider = signConsensus(c, seedOf(9));
    const forged: ConsensusSignature = { identity: s2!.identity, signature: s1!.signature };
    for (const sigs of [[s1!], [s1!, s1!, s1!], [s1!, outsider], [s1!, forged], []]) {
      const bytes = encodeSignedConsensus(c, sigs);
      expect(() => verifyConsensus(bytes, at)).toThrow(CryptoError);
      expect(reasonOf(() => verifyConsensus(bytes, at))).toBe('not-enough-signatures');
    }
    // Unknown signers are ignored rather than fatal.
    expect(verifyConsensus(encodeSignedConsensus(c, [outsider, s1!, s2!]), at)).toEqual(c);
    // With 4 authorities, 2 signatures are not more than half.
    const four = { ...at, authorityIds: [...AUTH, hexOf(4)] };
    expect(reasonOf(() => verifyConsensus(encodeSignedConsensus(c, [s1!, s2!]), four))).toBe(
      'not-enough-signatures',
    );
  });

  it('tampering with the consensus invalidates the signatures', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    const t = tamper(bytes, (d) => {
      d.consensus.relays[0].bandwidth += 1;
    });
    expect(reasonOf(() => verifyConsensus(t, at))).toBe('not-enough-signatures');
    const t2 = tamper(bytes, (d) => {
      d.consensus.validUntilMs += 3600_000;
    });
    expect(reasonOf(() => verifyConsensus(t2, { ...at, nowMs: c.validUntilMs + 1 }))).toBe(
      'not-enough-signatures',
    );
  });

  it('checks the validity window', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs + 1 }))).toBe('expired');
    expect(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs + 1 })).toThrow(InvalidError);
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validAfterMs - 1 }))).toBe(
      'not-yet-valid',
    );
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs + 1, skewMs: 10 }))).toBe(
      'accepted',
    );
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs }))).toBe('accepted');
  });

  it('decoder refuses non-canonical or inconsistent documents', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    const mutations: ((d: Doc) => void)[] = [
      (d) => {
        d.consensus.relays.reverse();
      },
      (d) => {
        d.consensus.authorities.reverse();
      },
      (d) => {
        d.consensus.knownFlags.reverse();
      },
      (d) => {
        d.consensus.relays[0].flags.push('Unknown');
      },
      (d) => {
        d.consensus.relays[0].unmeasured = false;
      },
      (d) => {
        d.consensus.freshUntilMs = d.consensus.validUntilMs + 1;
      },
      (d) => {
        d.consensus.bandwidthWeights = { bogus: 1 };
      },
      (d) => {
        d.signatures[0].identity = 'zz';
      },
      (d) => {
        d.extra = true;
      },
    ];
    for (const [i, m] of mutations.entries()) {
      expect(() => decodeSignedConsensus(tamper(bytes, m), 1 << 20), `case ${i}`).toThrow(InvalidError);
    }
    expect(() => decodeSignedConsensus(bytes, bytes.length - 1)).toThrow(/too large/);
  });

  it('round-trips arbitrary consensus documents (property)', () => {
    const flagsArb = fc.uniqueArray(fc.constantFrom('Exit', 'Fast', 'Guard', 'Running', 'Valid'), {
      maxLength: 5,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 10, max: 60 }), flagsArb, fc.nat(10 ** 9), fc.boolean()), {
          maxLength: 6,
        }),
        fc.dictionary(
          fc.stringMatching(/^[a-z_]{1,10}$/).filter((k) => k !== '__proto__'),
          fc.integer({ min: -1000, max: 1000 }),
          { maxKeys: 4 },
        ),
        fc.option(fc.nat(3), { nil: undefined }),
        (rs, params, srv) => {
          const relays = [...new Map(rs.map((r) => [r[0], r])).values()].map(([n, flags, bw, um]) => {
            const r = { ...voteRelay(n), flags: [...flags].sort(), bandwidth: bw } as ReturnType<
              typeof voteRelay
            > & {
              unmeasured?: boolean;
            };
            if (um) r.unmeasured = true;
            return r;
          });
          relays.sort((a, b) => Buffer.compare(a.identity, b.identity));
          const c: Consensus = {
            validAfterMs: NOW,
            freshUntilMs: NOW + 1,
            validUntilMs: NOW + 2,
            votingIntervalSec: 20,
            knownFlags: ['Exit', 'Fast', 'Guard', 'Running', 'Valid'],
            params,
            relays,
            bandwidthWeights: computeBandwidthWeights(relays),
            authorities: [...AUTH].sort(),
          };
          if (srv !== undefined) c.sharedRandCurrent = { reveals: srv, value: new Uint8Array(32).fill(srv) };
          const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS.slice(0, 2)));
          const back = decodeSignedConsensus(bytes, 1 << 22);
          expect(back.consensus).toEqual(c);
          expect(verifyConsensus(back, { ...at, nowMs: NOW + 1 })).toEqual(c);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('hostile input: only typed errors', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.nat(255), fc.uint8Array({ maxLength: 200 }), (i, v, junk) => {
        const m = new Uint8Array(bytes);
        m[i] = v;
        expectOnlyTypedErrors(() => verifyConsensus(m, at));
        expectOnlyTypedErrors(() => verifyConsensus(junk, at));
      }),
      { numRuns: 300 },
    );
  });
});

describe('consensus signature document', () => {
  it('round-trips', () => {
    fc.assert(
      fc.property(fc.nat(), fc.uint8Array({ minLength: 32, maxLength: 32 }), (va, digest) => {
        const sig = { identity: randomBytes(32), signature: randomBytes(64) };
        const d = decodeSignatureDocument(encodeSignatureDocument(va, digest, sig));
        expect(d.validAfterMs).toBe(va);
        expect(d.digestHex).toBe(toHex(digest));
        expect(toHex(d.signature.identity)).toBe(toHex(sig.identity));
        expect(toHex(d.signature.signature)).toBe(toHex(sig.signature));
      }),
    );
  });

  it('throws only typed errors on hostile input', () => {
    const good = encodeSignatureDocument(1, randomBytes(32), {
      identity: randomBytes(32),
      signature: randomBytes(64),
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) =>
        expectOnlyTypedErrors(() => decodeSignatureDocument(b)),
      ),
    );
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.nat(255), (i, v) => {
        const m = new Uint8Array(good);
        m[i] = v;
        expectOnlyTypedErrors(() => decodeSignatureDocument(m));
      }),
    );
    for (let n = 0; n < good.length; n++)
      expectOnlyTypedErrors(() => decodeSignatureDocument(good.subarray(0, n)));
    expect(() => decodeSignatureDocument(new Uint8Array(5000).fill(0x20))).toThrow();
  });
});
