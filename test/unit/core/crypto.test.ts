// The node:crypto fast path held against the @noble reference, and the
// key-blinding vector from rend-spec-v3 / arti pk.rs::key_blinding_testvec.
import { ctr } from '@noble/ciphers/aes.js';
import { ed25519, x25519 as nobleX25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha1 as nSha1 } from '@noble/hashes/legacy.js';
import { sha256 as nSha256, sha512 as nSha512 } from '@noble/hashes/sha2.js';
import { sha3_256 as nSha3, shake256 as nShake } from '@noble/hashes/sha3.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, equalBytes, fromHex, toHex } from '../../../services/core/bytes.js';
import * as ed from '../../../services/core/crypto/ed25519-math.js';
import * as c from '../../../services/core/crypto.js';
import { CryptoError } from '../../../services/core/errors.js';

const bytes = (min = 0, max = 300) => fc.uint8Array({ minLength: min, maxLength: max });

describe('hashes match @noble/hashes', () => {
  it('sha1, sha256, sha512, sha3-256, shake256, hmac', () => {
    fc.assert(
      fc.property(bytes(), bytes(), fc.integer({ min: 1, max: 200 }), (a, b, n) => {
        expect(c.sha1(a, b)).toEqual(nSha1(concat(a, b)));
        expect(c.sha256(a, b)).toEqual(nSha256(concat(a, b)));
        expect(c.sha512(a)).toEqual(nSha512(a));
        expect(c.sha3_256(a, b)).toEqual(nSha3(concat(a, b)));
        expect(c.shake256(n, a)).toEqual(nShake(a, { dkLen: n }));
        expect(c.hmacSha256(b, a)).toEqual(hmac(nSha256, b, a));
      }),
      { numRuns: 100 },
    );
  });

  it('kdfRfc5869 is HKDF-SHA256', () => {
    fc.assert(
      fc.property(
        bytes(1, 64),
        bytes(0, 40),
        bytes(0, 40),
        fc.integer({ min: 1, max: 200 }),
        (ikm, salt, info, n) => {
          expect(c.kdfRfc5869(ikm, salt, info, n)).toEqual(hkdf(nSha256, ikm, salt, info, n));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('running digest clone does not disturb the original', () => {
    const d = c.RunningDigest.create('sha1', new Uint8Array([1, 2, 3]));
    const before = d.peek();
    d.clone().update(new Uint8Array([9]));
    expect(d.peek()).toEqual(before);
    d.update(new Uint8Array([4]));
    expect(d.peek()).toEqual(nSha1(new Uint8Array([1, 2, 3, 4])));
  });
});

describe('AES-CTR is one continuous keystream', () => {
  it('chunked updates equal the @noble one-shot over the concatenation', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 32),
        fc.array(bytes(0, 600), { maxLength: 6 }),
        bytes(16, 16),
        (klen, chunks, key0) => {
          const key = klen === 16 ? key0 : concat(key0, key0);
          const s = new c.CtrStream(key);
          const out = concat(...chunks.map((ch) => s.update(ch)));
          expect(out).toEqual(ctr(key, new Uint8Array(16)).encrypt(concat(...chunks)));
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('AES-CTR keystream generated ahead (busy streams, issue 16)', () => {
  it('in-place and copying updates at any alignment, past the point where keystream is buffered, equal @noble', () => {
    // 70 relay cells in place take the stream past 32 KiB (the switch), then random pieces follow.
    const warm = Array.from({ length: 70 }, (_, i) => ({ len: 509, off: i % 4, inPlace: true }));
    fc.assert(
      fc.property(
        fc.constantFrom(16, 32),
        bytes(32, 32),
        // 509-byte relay cells, odd sizes, empty and multi-KiB pieces, at every offset mod 4.
        fc.array(
          fc.record({
            len: fc.oneof(fc.constant(509), fc.integer({ min: 0, max: 5000 })),
            off: fc.integer({ min: 0, max: 7 }),
            inPlace: fc.boolean(),
          }),
          { minLength: 10, maxLength: 40 },
        ),
        (klen, key0, pieces) => {
          const key = key0.subarray(0, klen);
          const s = new c.CtrStream(key);
          const plain: Uint8Array[] = [];
          const out: Uint8Array[] = [];
          let untouched = true;
          for (const [n, p] of [...warm, ...pieces].entries()) {
            const buf = new Uint8Array(p.off + p.len + 3).fill((n * 31 + 7) & 0xff);
            if (p.len > 0) buf[p.off] = n & 0xff;
            const view = buf.subarray(p.off, p.off + p.len);
            plain.push(view.slice());
            if (p.inPlace) {
              s.updateInPlace(view);
              out.push(view);
              // Only the view's bytes change.
              const edge = (n * 31 + 7) & 0xff;
              untouched &&= (p.off === 0 || buf[p.off - 1] === edge) && buf[p.off + p.len] === edge;
            } else {
              const before = view.slice();
              out.push(s.update(Buffer.from(view.buffer, view.byteOffset, view.length)));
              untouched &&= equalBytes(view, before);
            }
          }
          expect(untouched).toBe(true);
          expect(concat(...out)).toEqual(ctr(key, new Uint8Array(16)).encrypt(concat(...plain)));
        },
      ),
      { numRuns: 15, endOnFailure: true },
    );
  });
});

describe('X25519 and Ed25519 match @noble/curves', () => {
  it('x25519 agreement and public keys', () => {
    fc.assert(
      fc.property(bytes(32, 32), bytes(32, 32), (a, b) => {
        const A = c.x25519PublicFromSecret(a);
        expect(A).toEqual(nobleX25519.getPublicKey(a));
        const B = c.x25519PublicFromSecret(b);
        expect(c.x25519(a, B)).toEqual(nobleX25519.getSharedSecret(a, B));
        expect(c.x25519(b, A)).toEqual(c.x25519(a, B));
      }),
      { numRuns: 30 },
    );
  });

  it('x25519 rejects a low-order point with CryptoError', () => {
    const k = c.x25519Generate();
    expect(() => c.x25519(k.secret, new Uint8Array(32))).toThrow(CryptoError);
  });

  it('ed25519 sign/verify and expanded-key signing agree with noble', () => {
    fc.assert(
      fc.property(bytes(32, 32), bytes(), (seed, msg) => {
        const pub = c.ed25519PublicFromSeed(seed);
        expect(pub).toEqual(ed25519.getPublicKey(seed));
        const sig = c.ed25519Sign(seed, msg);
        expect(sig).toEqual(ed25519.sign(msg, seed));
        expect(ed.ed25519SignExpanded(ed.ed25519Expand(seed), msg)).toEqual(sig);
        expect(c.ed25519Verify(pub, msg, sig)).toBe(true);
        const bad = sig.slice();
        bad[5]! ^= 1;
        expect(c.ed25519Verify(pub, msg, bad)).toBe(false);
      }),
      { numRuns: 30 },
    );
  });

  it('ed25519Verify returns false for malformed keys and signatures', () => {
    expect(c.ed25519Verify(new Uint8Array(31), new Uint8Array(1), new Uint8Array(64))).toBe(false);
    expect(c.ed25519Verify(new Uint8Array(32).fill(0xff), new Uint8Array(1), new Uint8Array(64))).toBe(false);
    expect(c.ed25519Verify(new Uint8Array(32), new Uint8Array(1), new Uint8Array(63))).toBe(false);
  });

  it('ctEqual', () => {
    expect(c.ctEqual(fromHex('0102'), fromHex('0102'))).toBe(true);
    expect(c.ctEqual(fromHex('0102'), fromHex('0103'))).toBe(false);
    expect(c.ctEqual(fromHex('0102'), fromHex('01'))).toBe(false);
  });
});

describe('key blinding (rend-spec-v3 §A.2; arti pk.rs::key_blinding_testvec)', () => {
  const A = fromHex('833990B085C1A688C1D4C8B1F6B56AFAF5A2ECA674449E1D704F83765CCB7BC6');
  it('blinding factor and blinded public key', () => {
    expect(toHex(ed.hsBlindingFactor(A, 1234n, 1440n))).toBe(
      '379e50db31fee6775abd0af6fb7c371e060308f4f847db09fe4cfe13af602287',
    );
    expect(toHex(ed.hsBlindPublicKey(A, 1234n, 1440n))).toBe(
      '3a50bf210e8f9ee955ae0014f7a6917fb65ebf098a86305abb508d1a7291b6d5',
    );
  });

  it('blinded expanded key signs verifiably under the blinded public key', () => {
    const seed = new Uint8Array(32).fill(7);
    const exp = ed.ed25519Expand(seed);
    const blinded = ed.hsBlindExpandedKey(exp, 99n, 1440n);
    expect(blinded.public).toEqual(ed.hsBlindPublicKey(exp.public, 99n, 1440n));
    const msg = new Uint8Array([1, 2, 3]);
    expect(c.ed25519Verify(blinded.public, msg, ed.ed25519SignExpanded(blinded, msg))).toBe(true);
  });

  it('torsion check', () => {
    expect(ed.ed25519IsValidTorsionFree(A)).toBe(true);
    // A point of order 8 (from the torsion subgroup) is rejected.
    expect(
      ed.ed25519IsValidTorsionFree(
        fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
      ),
    ).toBe(false);
    expect(ed.ed25519IsValidTorsionFree(new Uint8Array(32).fill(0xff))).toBe(false);
  });
});
