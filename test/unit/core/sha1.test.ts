// crypto/sha1.ts (the running relay-cell digest, tor-spec §6.1) held against
// FIPS 180 examples and node:crypto: every length across the block and
// padding limits, any split of the input, reads that leave the state going
// on, copies, and a message past 2^32 bits (the length's high word).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../services/core/bytes.js';
import { SHA1_LEN, Sha1 } from '../../../services/core/crypto/sha1.js';
import { RunningDigest } from '../../../services/core/crypto.js';

const hex = (s: Sha1) => toHex(s.digestInto(new Uint8Array(SHA1_LEN)));
const ref = (...parts: Uint8Array[]) => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('Sha1', () => {
  it('FIPS 180 examples', () => {
    expect(hex(new Sha1())).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    expect(hex(new Sha1().update(utf8('abc')))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(hex(new Sha1().update(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe(
      '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
    );
    const s = new Sha1();
    const a = new Uint8Array(1000).fill(0x61);
    for (let i = 0; i < 1000; i++) s.update(a);
    expect(hex(s)).toBe('34aa973cd4c4daa4f61eeb2bdbad27316534016f');
  });

  it('every length from 0 to 300 bytes, and the prefix is the first four bytes', () => {
    const data = new Uint8Array(300).map((_, i) => (i * 131 + 7) & 0xff);
    for (let n = 0; n <= 300; n++) {
      const s = new Sha1().update(data.subarray(0, n));
      const want = ref(data.subarray(0, n));
      expect(hex(s)).toBe(want);
      expect(s.prefix32()).toBe(Number.parseInt(want.slice(0, 8), 16));
    }
  });

  it('any split of the input, read after each part, gives node:crypto running digest', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 12 }), (parts) => {
        const s = new Sha1();
        const h = createHash('sha1');
        for (const p of parts) {
          s.update(p);
          h.update(p);
          const want = h.copy().digest('hex');
          expect(hex(s)).toBe(want);
          expect(s.prefix32()).toBe(Number.parseInt(want.slice(0, 8), 16));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('views at any offset into shared buffers, from one buffer and from alternating ones, as node:crypto', () => {
    // Cells are views into one link message after another: the block reader keeps a view of the last buffer.
    const a = new Uint8Array(4096).map((_, i) => (i * 31 + 5) & 0xff);
    const b = Buffer.from(new Uint8Array(3000).map((_, i) => (i * 17 + 1) & 0xff));
    const pooled = Buffer.from(a.subarray(0, 700)); // from node's shared allocation pool
    const sources = [a, b, pooled, a.subarray(3), b.subarray(1)];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(sources.length - 1), fc.nat(4095), fc.nat(700)), { maxLength: 16 }),
        (picks) => {
          const s = new Sha1();
          const h = createHash('sha1');
          for (const [k, at, len] of picks) {
            const src = sources[k]!;
            const start = at % src.length;
            const part = src.subarray(start, Math.min(src.length, start + len));
            s.update(part);
            h.update(part);
            expect(hex(s)).toBe(h.copy().digest('hex'));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('writes the digest at an offset and leaves the rest of the buffer', () => {
    const out = new Uint8Array(30).fill(0xee);
    new Sha1().update(utf8('abc')).digestInto(out, 5);
    expect(toHex(out.subarray(5, 25))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect([...out.subarray(0, 5), ...out.subarray(25)].every((b) => b === 0xee)).toBe(true);
  });

  it('clones and copies are independent of the original', () => {
    const s = new Sha1().update(utf8('hello, '));
    const c = s.clone();
    c.update(utf8('world'));
    expect(hex(s)).toBe(ref(utf8('hello, ')));
    expect(hex(c)).toBe(ref(utf8('hello, world')));
    s.copyFrom(c);
    c.update(utf8('!'));
    expect(hex(s)).toBe(ref(utf8('hello, world')));
    expect(hex(c)).toBe(ref(utf8('hello, world!')));
  });

  it('a message past 2^32 bits (512 MiB) carries the length high word', () => {
    const chunk = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    const s = new Sha1();
    const h = createHash('sha1');
    for (let i = 0; i < 513; i++) {
      s.update(chunk);
      h.update(chunk);
    }
    s.update(utf8('tail'));
    h.update(utf8('tail'));
    expect(hex(s)).toBe(h.digest('hex'));
  });
});

describe('RunningDigest.updateIfPrefix (relay-cell recognition, tor-spec §6.1)', () => {
  for (const alg of ['sha1', 'sha3-256'] as const) {
    it(`${alg}: keeps a matching update and restores the state on a mismatch`, () => {
      const seed = utf8('seed');
      const cell = new Uint8Array(509).fill(3);
      const d = RunningDigest.create(alg, seed);
      const right = RunningDigest.create(alg, seed).update(cell).prefix32();
      expect(d.updateIfPrefix(cell, (right ^ 1) >>> 0)).toBe(false);
      expect(toHex(d.peek())).toBe(toHex(RunningDigest.create(alg, seed).peek()));
      expect(d.updateIfPrefix(cell, right)).toBe(true);
      expect(toHex(d.peek())).toBe(toHex(RunningDigest.create(alg, seed).update(cell).peek()));
      expect(d.peek().length).toBe(alg === 'sha1' ? 20 : 32);
    });
  }
});
