// Relay descriptors (dir-spec §2.1.1): signature, canonical form,
// publication window, size limit, hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../services/core/bytes.js';
import { canonicalJsonBytes } from '../../../../services/core/canonical-json.js';
import { ed25519PublicFromSeed, sha256 } from '../../../../services/core/crypto.js';
import {
  descriptorDigest,
  descriptorRefreshMs,
  type RelayDescriptor,
  signRelayDescriptor,
  verifyRelayDescriptor,
} from '../../../../services/core/dir/descriptor.js';
import { CryptoError, InvalidError } from '../../../../services/core/errors.js';
import { type Doc, descriptor, idOf, NOW, seedOf, tamper } from '../../../helpers/dir-documents.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const checkOpts = { nowMs: NOW, maxSkewMs: 12 * 3600_000 };

describe('relay descriptors', () => {
  it('sign / verify round-trip (property)', () => {
    const nick = fc.stringMatching(/^[A-Za-z0-9]{1,19}$/);
    const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(
        bytes32,
        bytes32,
        nick,
        fc.record({
          orPort: fc.integer({ min: 1, max: 65535 }),
          dirPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
          bandwidth: fc.integer({ min: 0, max: 2 ** 40 }),
          uptimeSec: fc.nat(),
          hsdir: fc.boolean(),
          publishedMs: fc.integer({ min: NOW - 3600_000, max: NOW + 3600_000 }),
          platform: fc.string({ maxLength: 50 }),
          family: fc.uniqueArray(bytes32.map(toHex), { maxLength: 4 }),
          tls: fc.option(bytes32, { nil: undefined }),
          address: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
        }),
        (seed, ntor, nickname, f) => {
          const d: RelayDescriptor = {
            ...descriptor(1),
            nickname,
            identity: ed25519PublicFromSeed(seed),
            ntorOnionKey: ntor,
            orPort: f.orPort,
            bandwidth: f.bandwidth,
            uptimeSec: f.uptimeSec,
            hsdir: f.hsdir,
            publishedMs: f.publishedMs,
            platform: f.platform,
            family: f.family,
            address: f.address,
          };
          if (f.dirPort !== undefined) d.dirPort = f.dirPort;
          if (f.tls !== undefined) d.tlsCertSha256 = f.tls;
          const signed = signRelayDescriptor(d, seed);
          expect(verifyRelayDescriptor(signed, checkOpts)).toEqual(d);
          expect(descriptorDigest(signed)).toEqual(sha256(signed));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('signature covers "Shallot relay descriptor v1\\0" | canonical body', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    const doc = JSON.parse(new TextDecoder().decode(signed));
    const msg = new Uint8Array([...utf8('Shallot relay descriptor v1\0'), ...canonicalJsonBytes(doc.body)]);
    const sig = Uint8Array.from(Buffer.from(doc.signature, 'base64'));
    expect(ed25519.verify(sig, msg, idOf(1))).toBe(true);
    expect(Object.keys(doc)).toEqual(['body', 'signature']);
  });

  it('tampering → CryptoError', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    const bad = [
      tamper(signed, (d) => {
        d.body.bandwidth += 1;
      }),
      tamper(signed, (d) => {
        d.body.exitPolicy = ['accept *:*'];
      }),
      tamper(signed, (d) => {
        d.body.orPort = 1;
      }),
      // Someone else's identity on this body.
      tamper(signed, (d) => {
        d.body.identity = Buffer.from(idOf(2)).toString('base64').replace(/=+$/, '');
      }),
      tamper(signed, (d) => {
        const s = Buffer.from(d.signature, 'base64');
        s[0]! ^= 1;
        d.signature = s.toString('base64').replace(/=+$/, '');
      }),
    ];
    for (const b of bad) expect(() => verifyRelayDescriptor(b, checkOpts)).toThrow(CryptoError);
  });

  it('refuses non-canonical, unknown and malformed fields with InvalidError', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    const cases: ((d: Doc) => void)[] = [
      (d) => {
        d.body.identity += '=';
      },
      (d) => {
        d.body.extra = 1;
      },
      (d) => {
        d.body.exitPolicy = ['accept 127.0.0.1/8:*', 'reject *:*'];
      },
      (d) => {
        d.body.nickname = 'has space';
      },
      (d) => {
        d.body.family = ['AB'.repeat(32)];
      },
      (d) => {
        d.body.linkUrl = 'http://x/';
      },
      (d) => {
        d.body.orPort = 0;
      },
      (d) => {
        d.body.bandwidth = -1;
      },
      (d) => {
        delete d.body.hsdir;
      },
      (d) => {
        d.body.ntorOnionKey = 'AAAA';
      },
    ];
    for (const [i, mutate] of cases.entries()) {
      expect(() => verifyRelayDescriptor(tamper(signed, mutate), checkOpts), `case ${i}`).toThrow(
        InvalidError,
      );
    }
  });

  it('checks publication time', () => {
    const future = signRelayDescriptor(descriptor(1, { publishedMs: NOW + 13 * 3600_000 }), seedOf(1));
    expect(() => verifyRelayDescriptor(future, checkOpts)).toThrow(/future/);
    const old = signRelayDescriptor(descriptor(1, { publishedMs: NOW - 25 * 3600_000 }), seedOf(1));
    expect(() => verifyRelayDescriptor(old, checkOpts)).toThrow(/too old/);
    expect(verifyRelayDescriptor(old, { ...checkOpts, maxAgeMs: 48 * 3600_000 }).nickname).toBe('relay1');
  });

  it('refuses to sign with the wrong seed or an invalid descriptor', () => {
    expect(() => signRelayDescriptor(descriptor(1), seedOf(2))).toThrow(InvalidError);
    expect(() => signRelayDescriptor(descriptor(1, { nickname: 'x'.repeat(20) }), seedOf(1))).toThrow(
      InvalidError,
    );
    expect(() => signRelayDescriptor(descriptor(1, { bandwidth: Number.NaN }), seedOf(1))).toThrow(
      InvalidError,
    );
  });

  it('enforces the size limit', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    expect(() => verifyRelayDescriptor(signed, { ...checkOpts, maxBytes: signed.length - 1 })).toThrow(
      /too large/,
    );
  });

  it('hostile input: only typed errors', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(signed.length - 1),
        fc.nat(255),
        (junk, at, v) => {
          expectOnlyTypedErrors(() => verifyRelayDescriptor(junk, checkOpts));
          const m = new Uint8Array(signed);
          m[at] = v;
          expectOnlyTypedErrors(() => verifyRelayDescriptor(m, checkOpts));
          expectOnlyTypedErrors(() => verifyRelayDescriptor(m.subarray(0, at), checkOpts));
        },
      ),
      { numRuns: 300 },
    );
    for (const doc of ['null', '[]', '{"body":[],"signature":""}', '{"body":{},"signature":1}']) {
      expectOnlyTypedErrors(() => verifyRelayDescriptor(utf8(doc), checkOpts));
    }
  });
});

describe('descriptor refresh in voting intervals', () => {
  it("is C tor's 18 h at its default 1 h interval, scales down with a testnet's, never longer than 18 h", () => {
    expect(descriptorRefreshMs(3600_000)).toBe(18 * 3600_000);
    expect(descriptorRefreshMs(10_000)).toBe(180_000);
    expect(descriptorRefreshMs(86_400_000)).toBe(18 * 3600_000);
  });

  it("an authority's 24 h limit is not affected: a testnet relay refreshes long before it", () => {
    const signed = signRelayDescriptor(descriptor(1, { publishedMs: NOW - 23 * 3600_000 }), seedOf(1));
    expect(verifyRelayDescriptor(signed, checkOpts).publishedMs).toBe(NOW - 23 * 3600_000);
    const old = signRelayDescriptor(descriptor(1, { publishedMs: NOW - 25 * 3600_000 }), seedOf(1));
    expect(() => verifyRelayDescriptor(old, checkOpts)).toThrow(InvalidError);
  });
});
