// Shared randomness: commit/reveal, SRV computation against C tor's
// test_sr_compute_srv vector (sr_srv_calc_ref.py), phases, hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  concat,
  fromBase64,
  fromHex,
  int4,
  int8,
  toBase64,
  toHex,
  utf8,
} from '../../../../services/core/bytes.js';
import { sha3_256 } from '../../../../services/core/crypto.js';
import {
  computeSrv,
  decodeCommit,
  decodeReveal,
  makeCommit,
  srPhase,
  verifyReveal,
} from '../../../../services/core/dir/shared-random.js';
import { InvalidError } from '../../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const seeded = (seed: number) => (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
};

describe('computeSrv', () => {
  it('C tor test_sr_compute_srv vector (ids 41.., 42.., 43.. x20; reveals A/B/C x56; prev Z x32)', () => {
    const reveals = [
      { authorityId: new Uint8Array(20).fill(0x43), reveal: 'C'.repeat(56) },
      { authorityId: new Uint8Array(20).fill(0x41), reveal: 'A'.repeat(56) },
      { authorityId: new Uint8Array(20).fill(0x42), reveal: 'B'.repeat(56) },
    ];
    const prev = utf8('Z'.repeat(32));
    expect(toHex(computeSrv(reveals, prev)).toUpperCase()).toBe(
      '2A9B1D6237DAB312A40F575DA85C147663E7ED3F80E9555395F15B515C74253D',
    );
  });

  it('uses upper-case hex Ed25519 ids, sorted, and 32 zero bytes without a previous SRV', () => {
    const a = {
      authorityId: new Uint8Array(32).fill(0xab),
      reveal: makeCommit(seeded(1), new Uint8Array(32), 5).reveal,
    };
    const b = {
      authorityId: new Uint8Array(32).fill(0x0c),
      reveal: makeCommit(seeded(2), new Uint8Array(32), 5).reveal,
    };
    const expected = sha3_256(
      utf8('shared-random'),
      int8(2),
      int4(1),
      sha3_256(utf8(`${'0C'.repeat(32)}${b.reveal}${'AB'.repeat(32)}${a.reveal}`)),
      new Uint8Array(32),
    );
    expect(computeSrv([a, b], null)).toEqual(expected);
    expect(computeSrv([b, a], null)).toEqual(expected);
    expect(computeSrv([a, b], new Uint8Array(32).fill(1))).not.toEqual(expected);
    expect(computeSrv([a], null)).not.toEqual(expected);
  });

  it('rejects duplicate authorities and a bad previous SRV', () => {
    const r = { authorityId: new Uint8Array(32), reveal: 'x' };
    expect(() => computeSrv([r, r], null)).toThrow(InvalidError);
    expect(() => computeSrv([r], new Uint8Array(31))).toThrow(InvalidError);
  });
});

describe('commit and reveal', () => {
  it('has the srv-spec layout', () => {
    const c = makeCommit(seeded(9), new Uint8Array(32).fill(7), 1_700_000_000);
    expect(c.authorityId).toBe('07'.repeat(32));
    const reveal = fromBase64(c.reveal);
    expect(c.reveal).toHaveLength(56);
    expect(reveal.subarray(0, 8)).toEqual(int8(1_700_000_000));
    // RN is the hash of the RNG output, not the output itself.
    expect(reveal.subarray(8)).toEqual(sha3_256(seeded(9)(32)));
    expect(fromBase64(c.commit)).toEqual(concat(int8(1_700_000_000), sha3_256(utf8(c.reveal))));
    expect(decodeCommit(c.commit)).toEqual({ tsSec: 1_700_000_000, hashedReveal: sha3_256(utf8(c.reveal)) });
    expect(decodeReveal(c.reveal).tsSec).toBe(1_700_000_000);
  });

  it('verifyReveal accepts the matching reveal only', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (seed, ts) => {
          const c = makeCommit(() => seed, new Uint8Array(32), ts);
          expect(verifyReveal(c.commit, c.reveal)).toBe(true);
          const other = makeCommit(() => seed.map((x) => x ^ 1), new Uint8Array(32), ts);
          expect(verifyReveal(c.commit, other.reveal)).toBe(false);
          // Same random, different timestamp.
          const later = makeCommit(() => seed, new Uint8Array(32), ts + 1);
          expect(verifyReveal(c.commit, later.reveal)).toBe(false);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('verifyReveal never throws and refuses malformed values', () => {
    const c = makeCommit(seeded(3), new Uint8Array(32), 100);
    expect(verifyReveal(c.commit, `${c.reveal}=`)).toBe(false);
    expect(verifyReveal(c.commit.slice(1), c.reveal)).toBe(false);
    expect(verifyReveal('', '')).toBe(false);
    // Non-canonical base64: flip the unused low bits of the last character.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const lastIndex = alphabet.indexOf(c.reveal.at(-3)!);
    const tweaked = `${c.reveal.slice(0, -3)}${alphabet[lastIndex ^ 1]}==`;
    expect(fromBase64(tweaked)).toEqual(fromBase64(c.reveal));
    expect(() => decodeReveal(tweaked)).toThrow(InvalidError);
    expect(verifyReveal(c.commit, tweaked)).toBe(false);
  });

  it('rejects bad timestamps', () => {
    expect(() => makeCommit(seeded(1), new Uint8Array(32), -1)).toThrow(InvalidError);
    expect(() => makeCommit(seeded(1), new Uint8Array(32), 1.5)).toThrow(InvalidError);
    const huge = toBase64(concat(fromHex('ffffffffffffffff'), new Uint8Array(32)));
    expect(() => decodeCommit(huge)).toThrow(InvalidError);
  });

  it('hostile input: only typed errors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.uint8Array({ minLength: 40, maxLength: 40 }), (s, b) => {
        expectOnlyTypedErrors(() => decodeCommit(s));
        expectOnlyTypedErrors(() => decodeReveal(toBase64(b)));
        expect(typeof verifyReveal(s, toBase64(b))).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });
});

describe('srPhase', () => {
  it('12 commit rounds then 12 reveal rounds', () => {
    const hour = 3600;
    const day = Date.UTC(2024, 0, 2);
    expect(srPhase(day, hour)).toEqual({ phase: 'commit', round: 0, runStartMs: day });
    expect(srPhase(day + 11 * 3600_000, hour)).toEqual({ phase: 'commit', round: 11, runStartMs: day });
    expect(srPhase(day + 12 * 3600_000, hour)).toEqual({ phase: 'reveal', round: 0, runStartMs: day });
    expect(srPhase(day + 23 * 3600_000 + 59_000, hour)).toEqual({
      phase: 'reveal',
      round: 11,
      runStartMs: day,
    });
    expect(srPhase(day + 24 * 3600_000, hour).runStartMs).toBe(day + 24 * 3600_000);
    // Testnet: 20 s interval, a run is 8 minutes.
    expect(srPhase(480_000 * 5 + 20_000 * 13, 20)).toEqual({
      phase: 'reveal',
      round: 1,
      runStartMs: 2_400_000,
    });
    expect(() => srPhase(0, 0)).toThrow(InvalidError);
  });
});
