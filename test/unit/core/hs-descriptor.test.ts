// v3 onion-service descriptors: build/parse round trip, tampering, wrong keys, limits, and
// arti's tor-netdoc/testdata/hsdesc-inner.txt (the inner layer of hsdesc1.txt, made by C tor).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, int8, toHex, utf8 } from '../../../services/core/bytes.js';
import {
  ed25519Expand,
  ed25519Generate,
  ed25519PublicFromSeed,
  shake256,
  x25519Generate,
} from '../../../services/core/crypto.js';
import { CryptoError, InvalidError } from '../../../services/core/errors.js';
import {
  buildHsDescriptor,
  decryptDescLayer,
  decryptHsDescriptor,
  encryptDescLayer,
  HS_DESC_MAX_INTRO_POINTS,
  type IntroPointInfo,
  parseHsDescriptorInner,
  parseHsDescriptorOuter,
} from '../../../services/core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity, hsSubcredential } from '../../../services/core/hs-keys.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

/** A deterministic Rng (SHAKE256 of a counter), so failures replay. */
function testRng(seed = 0) {
  let n = BigInt(seed) << 32n;
  return (len: number) => shake256(len, int8(n++));
}

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const TP = 20454n;
const LEN = 1440n;

function service(seed = 1) {
  const rng = testRng(seed);
  const identitySeed = rng(32);
  const identityPub = ed25519PublicFromSeed(identitySeed);
  const blindedKey = blindExpandedKey(ed25519Expand(identitySeed), TP, LEN);
  const blindedPub = blindIdentity(identityPub, TP, LEN);
  return {
    identityPub,
    blindedKey,
    blindedPub,
    descSigningSeed: rng(32),
    subcredential: hsSubcredential(identityPub, blindedPub),
  };
}

function introPoint(i: number): IntroPointInfo {
  return {
    linkSpecifiers: [
      { type: 'ipv4', addr: `127.0.0.${i + 1}`, port: 9000 + i },
      { type: 'legacy-id', id: new Uint8Array(20).fill(i) },
      { type: 'ed25519', id: new Uint8Array(32).fill(0x80 + i) },
    ],
    onionKey: x25519Generate().public,
    authKey: ed25519Generate().public,
    encKey: x25519Generate().public,
  };
}

const SVC = service();
const IPS = [0, 1, 2].map(introPoint);
const DESC = buildHsDescriptor({ ...SVC, revisionCounter: 42n, introPoints: IPS, nowMs: NOW }, testRng(7));
const KEYS = { blindedPub: SVC.blindedPub, subcredential: SVC.subcredential, nowMs: NOW };

describe('build and parse', () => {
  it('outer document has the rend-spec §2.4 layout and verifies', () => {
    const lines = DESC.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'hs-descriptor 3',
      'descriptor-lifetime 180',
      'descriptor-signing-key-cert',
    ]);
    expect(lines).toContain('revision-counter 42');
    expect(lines[lines.length - 2]).toMatch(/^signature [A-Za-z0-9+/]{86}$/);
    const o = parseHsDescriptorOuter(DESC, { nowMs: NOW });
    expect(o.blindedPub).toEqual(SVC.blindedPub);
    expect(o.revisionCounter).toBe(42n);
    expect(o.lifetime).toBe(180);
    expect(o.descSigningKey).toEqual(ed25519PublicFromSeed(SVC.descSigningSeed));
    expect(o.signingKeyCert.certType).toBe(8);
    // The superencrypted plaintext is padded to a multiple of 10000 (+ salt and MAC).
    expect((o.superencrypted.length - 48) % 10000).toBe(0);
  });

  it('decrypts to the intro points it was built with', () => {
    const d = decryptHsDescriptor(DESC, KEYS);
    expect(d.revisionCounter).toBe(42n);
    expect(d.singleOnion).toBe(false);
    expect(d.introPoints).toEqual(IPS);
  });

  it('accepts bytes as well as text, and derives the subcredential from the identity', () => {
    const { subcredential: _, ...noSubcred } = SVC;
    const text = buildHsDescriptor(
      {
        ...noSubcred,
        revisionCounter: 1n,
        introPoints: [],
        singleOnion: true,
        lifetimeMinutes: 60,
        nowMs: NOW,
      },
      testRng(3),
    );
    const d = decryptHsDescriptor(utf8(text), KEYS);
    expect(d).toMatchObject({ introPoints: [], singleOnion: true, lifetime: 60, revisionCounter: 1n });
  });

  it('round trip with arbitrary intro points and counters', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.integer({ min: 0, max: HS_DESC_MAX_INTRO_POINTS }),
        fc.integer({ min: 30, max: 720 }),
        (rev, n, lifetime) => {
          const ips = Array.from({ length: n }, (_, i) => introPoint(i));
          const text = buildHsDescriptor(
            { ...SVC, revisionCounter: rev, introPoints: ips, lifetimeMinutes: lifetime, nowMs: NOW },
            testRng(n),
          );
          expect(text.length).toBeLessThanOrEqual(50000);
          const d = decryptHsDescriptor(text, KEYS);
          expect(d.revisionCounter).toBe(rev);
          expect(d.lifetime).toBe(lifetime);
          expect(d.introPoints).toEqual(ips);
        },
      ),
      { numRuns: 8 },
    );
  });
});

describe('rejections', () => {
  it('any changed character breaks the descriptor', () => {
    const positions = [...Array(DESC.length).keys()].filter((i) => i % 11 === 0 || i > DESC.length - 120);
    for (const i of positions) {
      const c = DESC.charCodeAt(i);
      const swapped = String.fromCharCode(c === 0x41 ? 0x42 : c === 0x0a ? 0x20 : 0x41);
      const t = DESC.slice(0, i) + swapped + DESC.slice(i + 1);
      expect(() => decryptHsDescriptor(t, KEYS), `offset ${i}`).toThrow();
    }
  });

  it('wrong subcredential, blinded key or expired certs give CryptoError', () => {
    expect(() => decryptHsDescriptor(DESC, { ...KEYS, subcredential: new Uint8Array(32) })).toThrow(
      CryptoError,
    );
    expect(() => decryptHsDescriptor(DESC, { ...KEYS, blindedPub: service(2).blindedPub })).toThrow(
      CryptoError,
    );
    const later = NOW + 55 * 3600_000;
    expect(() => decryptHsDescriptor(DESC, { ...KEYS, nowMs: later })).toThrow(CryptoError);
    expect(() => parseHsDescriptorOuter(DESC, { nowMs: later })).toThrow(CryptoError);
    expect(() => parseHsDescriptorOuter(DESC)).not.toThrow();
  });

  it('a descriptor whose cert is signed by someone else is rejected', () => {
    const other = service(3);
    const forged = buildHsDescriptor(
      { ...SVC, blindedKey: other.blindedKey, revisionCounter: 1n, introPoints: [], nowMs: NOW },
      testRng(4),
    );
    expect(() => parseHsDescriptorOuter(forged)).toThrow(CryptoError);
  });

  it('size and structure limits', () => {
    expect(() => parseHsDescriptorOuter('a'.repeat(50001))).toThrow(InvalidError);
    expect(() => parseHsDescriptorOuter(new Uint8Array(50001))).toThrow(InvalidError);
    expect(() => parseHsDescriptorOuter(DESC.replace('hs-descriptor 3', 'hs-descriptor 4'))).toThrow(
      InvalidError,
    );
    expect(() =>
      parseHsDescriptorOuter(DESC.replace('descriptor-lifetime 180', 'descriptor-lifetime 5000')),
    ).toThrow(InvalidError);
    expect(() => parseHsDescriptorOuter(DESC.replace('\n', '\r\n'))).toThrow(InvalidError);
    expect(() => parseHsDescriptorOuter(`${DESC}revision-counter 1\n`)).toThrow(InvalidError);
    expect(() => parseHsDescriptorOuter(DESC.slice(0, -1))).toThrow(InvalidError);
    const tooMany = Array.from({ length: HS_DESC_MAX_INTRO_POINTS + 1 }, (_, i) => introPoint(i));
    expect(() =>
      buildHsDescriptor({ ...SVC, revisionCounter: 1n, introPoints: tooMany, nowMs: NOW }, testRng()),
    ).toThrow(InvalidError);
  });

  it('layer encryption: MAC binds salt, ciphertext, subcredential, key and revision counter', () => {
    const p = {
      secret: SVC.blindedPub,
      subcredential: SVC.subcredential,
      revisionCounter: 5n,
      constant: utf8('hsdir-encrypted-data'),
    };
    const pt = utf8('create2-formats 2\n');
    const blob = encryptDescLayer(pt, p, new Uint8Array(16).fill(9));
    expect(blob.length).toBe(16 + pt.length + 32);
    expect(decryptDescLayer(blob, p)).toEqual(pt);
    for (let i = 0; i < blob.length; i++) {
      const t = blob.slice();
      t[i]! ^= 0x80;
      expect(() => decryptDescLayer(t, p), `byte ${i}`).toThrow(CryptoError);
    }
    expect(() => decryptDescLayer(blob, { ...p, revisionCounter: 6n })).toThrow(CryptoError);
    expect(() => decryptDescLayer(blob, { ...p, subcredential: new Uint8Array(32) })).toThrow(CryptoError);
    expect(() => decryptDescLayer(blob, { ...p, constant: utf8('hsdir-superencrypted-data') })).toThrow(
      CryptoError,
    );
    expect(() => decryptDescLayer(blob.subarray(0, 48), p)).toThrow(InvalidError);
  });
});

// arti crates/tor-netdoc/testdata/hsdesc-inner.txt: the inner document of hsdesc1.txt (C tor, Jan 2023).
const ARTI_INNER = `create2-formats 2
flow-control 1-2 31
introduction-point BAAGkExRxiD7AhQ49zLdNJouWQeENGURYqL0IBk0pQMgw1eln3yXVWwqSIfX1dGKcQQl5S43/Y0XTeY0hBhAaowBEioBBPgBkgPFAAAAAAAAAAIg+w==
onion-key ntor eNcVZi04zhg4x1/wogQfH3/4ReCn+hgfqvPwoYgFBzk=
auth-key
-----BEGIN ED25519 CERT-----
AQkABxq8AXv6oBvRcZ4YLScM2JhdvW9Cit+IN4OmJCkTJ3rbLVmgAQAgBAAmAobr
sExwX1OlpAcfkKoEcnvKUbWx/FfylIvH7yOxbfMxOsGQIdSEMomgEnsx9wPkfveg
rnG3uHoojzKS+P1l3RdzbB0TWDBHad7A+xAqQRSJFjiSt6hbvOaaoQ9PXg0=
-----END ED25519 CERT-----
enc-key ntor cPy17Vtuw54asOdgjNdVMwgNLnplwnMpmLOuhMqS9DE=
enc-key-cert
-----BEGIN ED25519 CERT-----
AQsABxq8AZ99sg1LKtfLwNWMlxRTqmSdNI1iVNkxoszdbpA/qItVAQAgBAAmAobr
sExwX1OlpAcfkKoEcnvKUbWx/FfylIvH7yOxbRqNgPuN+J+OUV6wBy1+yTlC8snc
MfgVVo+YuB7mPoHa8W5mMWauJ9AAXNz7sexLYPjhDCajAYOMopvKQ+mEMQ0=
-----END ED25519 CERT-----
introduction-point AwAGZAItpCMpAhRn9aw126INIqAXi/tvSsB2w7FoKQMg/Hv8OlCp2T4Uutvr0bdboxHIBiubg5OoWQRXdxjssDw=
onion-key ntor GHunWWyNi97OUsEtcKzTsCVGfvaMXgsS6EOXD+PUum0=
auth-key
-----BEGIN ED25519 CERT-----
AQkABxq8ARsr54j2Fd4pYRjIONyJXZL7WiBMUcz0/iK5w6DNIYjeAQAgBAAmAobr
sExwX1OlpAcfkKoEcnvKUbWx/FfylIvH7yOxbSlPk5ex/7lRux3xk1BbMRxPWmK2
FIeudDZK/cz9NrinVTXvNxqRhNFgEE1I+ROODME1HtNf55+xT9d37gq9TAA=
-----END ED25519 CERT-----
enc-key ntor 4plcxBMvIS6ZpJ8YqaXut1+AaOjlnZtqJLz+leAo0ho=
enc-key-cert
-----BEGIN ED25519 CERT-----
AQsABxq8AVmbbJVgyomU9uTMmBHXCbedFuaybHb7JPee8RD3ozNoAQAgBAAmAobr
sExwX1OlpAcfkKoEcnvKUbWx/FfylIvH7yOxbZa2/uI4bCYD4TwvLru1upTFqWQp
p6bRRIk7eg9IejdIGzFHpVHgK1UYWX+lY6ERlBj/Oqk1Vvlmi4ndE4NoNw0=
-----END ED25519 CERT-----
introduction-point BAAG1ZCHFgG7AhSazSFoDMvmWl1aY42FqDiKhdbuBQMgHFAex1y4FpOOz+LZz8JlNfSuf2TprWhi9b6vLwM10Q8BEioCAWhqFhEwAAAAAAAyAQIBuw==
onion-key ntor WCC+2QriSGz2UBTXeQWhLsUKO5GNYY+x4H5xtJ1qM1c=
auth-key
-----BEGIN ED25519 CERT-----
AQkABxq8AUQz+fimzueFwUcCmuP90t/ryEV1eGisc3LLUXui8ZpgAQAgBAAmAobr
sExwX1OlpAcfkKoEcnvKUbWx/FfylIvH7yOxbcvWekeIcZXoC9Z/ToAd7qds4xYw
nzuBtHbZ+MpnHs/A8cTh8ijDzCb/lvYOpzdJM6S5rjbo7Pa5nl2eslr4Tgg=
-----END ED25519 CERT-----
enc-key ntor tMDtb7dOCgTKBaS3ULdiXCur94fBmdsxvDo80gsj6Gc=
enc-key-cert
-----BEGIN ED25519 CERT-----
AQsABxq8ATh/rjZ2Q4tKWYxnLJ0/SwwCsaKseZtQfn52ZSXBtFwNAQAgBAAmAobr
sExwX1OlpAcfkKoEcnvKUbWx/FfylIvH7yOxbROoEi5bUPGtDFaHkyQdoJ7xDw9u
MLYf8ysmC55dMGc2TyDXeH4nxf8DaEwsH0rj9BpyIsCx9s+N2RFvvXLo5wM=
-----END ED25519 CERT-----
`;
// Every cert above carries extension 04 with this descriptor signing key.
const ARTI_SIGNING_KEY = fromBase64('JgKG67BMcF9TpaQHH5CqBHJ7ylG1sfxX8pSLx+8jsW0=');
const ARTI_NOW = Date.UTC(2023, 0, 23, 15, 0, 0);

describe("arti's hsdesc-inner.txt (C tor)", () => {
  it('parses, with every cert verifying against the signing key', () => {
    const d = parseHsDescriptorInner(ARTI_INNER, { key: ARTI_SIGNING_KEY, nowMs: ARTI_NOW });
    expect(d.introPoints.length).toBe(3);
    expect(d.singleOnion).toBe(false);
    const [a] = d.introPoints;
    expect(a!.linkSpecifiers.map((s) => s.type)).toEqual(['ipv4', 'legacy-id', 'ed25519', 'ipv6']);
    expect(a!.linkSpecifiers[0]).toEqual({ type: 'ipv4', addr: '144.76.81.198', port: 8443 });
    expect(toHex(a!.encKey)).toBe(toHex(fromBase64('cPy17Vtuw54asOdgjNdVMwgNLnplwnMpmLOuhMqS9DE=')));
    expect(toHex(a!.authKey)).toBe(
      toHex(fromBase64('AQkABxq8AXv6oBvRcZ4YLScM2JhdvW9Cit+IN4OmJCkTJ3rbLVmg').slice(7, 39)),
    );
  });

  it('fails with another signing key, after expiry, or with an enc-key swapped', () => {
    expect(() =>
      parseHsDescriptorInner(ARTI_INNER, { key: new Uint8Array(32).fill(1), nowMs: ARTI_NOW }),
    ).toThrow(CryptoError);
    expect(() =>
      parseHsDescriptorInner(ARTI_INNER, { key: ARTI_SIGNING_KEY, nowMs: Date.UTC(2023, 2, 1) }),
    ).toThrow(CryptoError);
    const swapped = ARTI_INNER.replace(
      'cPy17Vtuw54asOdgjNdVMwgNLnplwnMpmLOuhMqS9DE=',
      '4plcxBMvIS6ZpJ8YqaXut1+AaOjlnZtqJLz+leAo0ho=',
    );
    expect(() => parseHsDescriptorInner(swapped, { key: ARTI_SIGNING_KEY, nowMs: ARTI_NOW })).toThrow(
      CryptoError,
    );
  });
});

describe('hostile input', () => {
  it('random text and bytes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 }), (s, b) => {
        expectOnlyTypedErrors(() => parseHsDescriptorOuter(s));
        expectOnlyTypedErrors(() => parseHsDescriptorOuter(b));
        expectOnlyTypedErrors(() => decryptHsDescriptor(s, KEYS));
        expectOnlyTypedErrors(() => parseHsDescriptorInner(s, { key: ARTI_SIGNING_KEY, nowMs: ARTI_NOW }));
      }),
      { numRuns: 300 },
    );
  });

  it('line-level mutations of valid documents', () => {
    const mutate = (text: string, i: number, how: number) => {
      const lines = text.split('\n');
      const j = i % lines.length;
      if (how === 0) lines.splice(j, 1);
      else if (how === 1) lines.splice(j, 0, lines[j]!);
      else if (how === 2) lines[j] = lines[j]!.slice(0, Math.floor(lines[j]!.length / 2));
      else lines[j] = `${lines[j]} extra`;
      return lines.join('\n');
    };
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 3 }), (i, how) => {
        expectOnlyTypedErrors(() => decryptHsDescriptor(mutate(DESC, i, how), KEYS));
        expectOnlyTypedErrors(() =>
          parseHsDescriptorInner(mutate(ARTI_INNER, i, how), { key: ARTI_SIGNING_KEY, nowMs: ARTI_NOW }),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('every truncation of the inner vector', () => {
    for (let n = 0; n < ARTI_INNER.length; n += 3) {
      expectOnlyTypedErrors(() =>
        parseHsDescriptorInner(ARTI_INNER.slice(0, n), { key: ARTI_SIGNING_KEY, nowMs: ARTI_NOW }),
      );
    }
  });
});
