// v3 onion addresses (rend-spec-v3 §6): C tor's test_build_address vector, case and
// subdomain handling, and the distinguishable error reasons.
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { ed25519PublicFromSeed } from '../../../services/core/crypto.js';
import { InvalidError } from '../../../services/core/errors.js';
import {
  decodeOnionAddress,
  encodeOnionAddress,
  isOnionHostname,
} from '../../../services/core/onion-address.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const PUB = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const ADDR = '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion';
const LABEL = ADDR.slice(0, 56);
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidError);
    return (e as InvalidError).context.reason as string;
  }
  return undefined;
}

/** Re-encodes 35 raw bytes as a label, for building bad addresses. */
function b32(raw: Uint8Array): string {
  let bits = '';
  for (const b of raw) bits += b.toString(2).padStart(8, '0');
  let s = '';
  for (let i = 0; i < bits.length; i += 5) s += B32[Number.parseInt(bits.slice(i, i + 5), 2)];
  return s;
}

function rawOf(label: string): Uint8Array {
  let bits = '';
  for (const ch of label) bits += B32.indexOf(ch).toString(2).padStart(5, '0');
  const out = new Uint8Array(35);
  for (let i = 0; i < 35; i++) out[i] = Number.parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

describe('C tor test_hs_common.c test_build_address vector', () => {
  it('encodes', () => {
    expect(encodeOnionAddress(fromHex(PUB))).toBe(ADDR);
    expect(ADDR.length).toBe(62);
  });

  it.each([ADDR, ADDR.toUpperCase(), LABEL, `www.${ADDR}`, `a.b.${ADDR}`, `${ADDR}.`])('decodes %s', (s) => {
    expect(toHex(decodeOnionAddress(s))).toBe(PUB);
  });
});

describe('error reasons', () => {
  it('format: wrong length or non-base32', () => {
    expect(reasonOf(() => decodeOnionAddress(`${LABEL.slice(1)}.onion`))).toBe('format');
    expect(reasonOf(() => decodeOnionAddress(`${LABEL}a.onion`))).toBe('format');
    expect(reasonOf(() => decodeOnionAddress(`${LABEL.slice(0, 55)}1.onion`))).toBe('format');
    expect(reasonOf(() => decodeOnionAddress(''))).toBe('format');
    expect(reasonOf(() => decodeOnionAddress('facebookcorewwwi.onion'))).toBe('format');
  });

  it('checksum: one flipped key bit', () => {
    const raw = rawOf(LABEL);
    raw[0]! ^= 1;
    expect(reasonOf(() => decodeOnionAddress(`${b32(raw)}.onion`))).toBe('checksum');
  });

  it('version: anything but 03', () => {
    const raw = rawOf(LABEL);
    raw[34] = 4;
    expect(reasonOf(() => decodeOnionAddress(`${b32(raw)}.onion`))).toBe('version');
  });

  it('torsion: a key with a small-order component, even with a correct checksum', () => {
    // (0, -1) has order 2; adding it to a valid key leaves a point that is on the curve but not torsion-free.
    const T = ed25519.Point.fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
    const bad = ed25519.Point.fromHex(PUB).add(T).toBytes();
    const addr = encodeOnionAddress(bad);
    expect(reasonOf(() => decodeOnionAddress(addr))).toBe('torsion');
  });

  it('torsion: a y that is not on the curve', () => {
    const notPoint = new Uint8Array(32);
    notPoint[0] = 2;
    expect(reasonOf(() => decodeOnionAddress(encodeOnionAddress(notPoint)))).toBe('torsion');
  });

  it('encoder rejects a wrong-length key', () => {
    expect(() => encodeOnionAddress(new Uint8Array(31))).toThrow(InvalidError);
  });
});

describe('isOnionHostname', () => {
  it.each([
    [ADDR, true],
    ['foo.ONION', true],
    ['x.onion.', true],
    ['example.com', false],
    ['onion', false],
    ['onion.example.com', false],
  ])('%s -> %s', (h, want) => {
    expect(isOnionHostname(h)).toBe(want);
  });
});

describe('properties', () => {
  it('round-trips any valid key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const pub = ed25519PublicFromSeed(seed);
        const addr = encodeOnionAddress(pub);
        expect(addr).toMatch(/^[a-z2-7]{56}\.onion$/);
        expect(decodeOnionAddress(addr)).toEqual(pub);
      }),
      { numRuns: 50 },
    );
  });

  it('hostile strings only throw typed errors', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 80 }), fc.stringMatching(/^[a-z2-7]{56}(\.onion)?$/)),
        (s) => {
          expectOnlyTypedErrors(() => decodeOnionAddress(s));
        },
      ),
      { numRuns: 500 },
    );
  });
});
