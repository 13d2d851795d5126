// Authority key certificates (dir-spec §3.1) from a C tor 0.4.9 testnet
// (test/vectors/ctor/key-certificates.txt): parsed, both signatures
// checked, tampering refused, hostile input gives typed errors.
import * as nc from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../../services/core/bytes.js';
import { rsaPublicKeyFromPkcs1, rsaVerifyDigest } from '../../../../services/core/crypto/rsa.js';
import { sha1 } from '../../../../services/core/crypto.js';
import { keyCertificateLive, parseKeyCertificates } from '../../../../services/core/ctor/key-cert.js';
import { CryptoError, InvalidError } from '../../../../services/core/errors.js';
import { mutateLine } from '../../../helpers/line-mutations.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const CERTS = readFileSync(new URL('../../../vectors/ctor/key-certificates.txt', import.meta.url), 'utf8');
const ONE = CERTS.slice(0, CERTS.indexOf('dir-key-certificate-version', 1));

describe('C tor key certificates', () => {
  it('parses the three authorities of the testnet with their keys', () => {
    const certs = parseKeyCertificates(CERTS);
    expect(certs.map((c) => toHex(c.fingerprint).toUpperCase()).sort()).toEqual([
      '2D22AE2196316477ACB9DF5156208DEC9409680B',
      '346B3B09E52263E3990AE3D7CB899FF9E5CB0193',
      'BC246B6EF2C35AC3D18DA1CD3FA08ED0E18D07CE',
    ]);
    const c = certs.find((x) => toHex(x.fingerprint) === '346b3b09e52263e3990ae3d7cb899ff9e5cb0193')!;
    // tor-gencert: 3072-bit identity, 2048-bit signing key.
    expect([c.identityKey.bits, c.signingKey.bits]).toEqual([3072, 2048]);
    expect(c.address).toBe('127.0.0.1:47200');
    expect(new Date(c.publishedMs).toISOString()).toBe('2026-12-05T19:26:51.000Z');
    expect(c.expiresMs - c.publishedMs).toBe(365 * 86400_000);
    expect(keyCertificateLive(c, c.publishedMs + 1)).toBe(true);
    expect(keyCertificateLive(c, c.expiresMs + 1)).toBe(false);
  });

  it('takes unknown keywords between the first and last item (only the signature then fails)', () => {
    // The vectors are signed by C tor, so an added line cannot keep a valid
    // signature; what shows tolerance is that parsing gets as far as the check.
    const extra = ONE.replace('dir-key-published', 'future-thing 1 2 3\ndir-key-published');
    expect(() => parseKeyCertificates(extra)).toThrow(/dir-key-certification does not verify/);
  });

  it('refuses a certificate whose certified text changed', () => {
    const changed = ONE.replace('dir-address 127.0.0.1:47200', 'dir-address 127.0.0.1:47201');
    expect(() => parseKeyCertificates(changed)).toThrow(/dir-key-certification does not verify/);
  });

  it("refuses a cross-certificate or certification from another authority's certificate", () => {
    const objects = (kw: string, text: string) => {
      const at = text.indexOf(`${kw}\n`);
      return text.slice(at, text.indexOf('-----END', at));
    };
    const other = CERTS.slice(ONE.length);
    for (const kw of ['dir-key-crosscert', 'dir-key-certification']) {
      const swapped = ONE.replace(objects(kw, ONE), objects(kw, other));
      expect(() => parseKeyCertificates(swapped), kw).toThrow(CryptoError);
    }
  });

  it('refuses a fingerprint that is not the identity digest', () => {
    const wrong = ONE.replace(/^fingerprint .*$/m, 'fingerprint 2D22AE2196316477ACB9DF5156208DEC9409680B');
    expect(() => parseKeyCertificates(wrong)).toThrow(/fingerprint is not the identity key digest/);
  });

  it('enforces order and counts: version first, certification last, one of each', () => {
    // Each case below changes one thing in a certificate that verifies.
    expect(parseKeyCertificates(ONE)).toHaveLength(1);
    const cases: [string, string][] = [
      [
        'moved version',
        ONE.replace('dir-key-certificate-version 3\n', '')
          .replace('fingerprint', 'dir-key-certificate-version 3\nfingerprint')
          .replace(/^/, 'dir-address x\n'),
      ],
      ['version 4', ONE.replace('dir-key-certificate-version 3', 'dir-key-certificate-version 4')],
      ['no fingerprint', ONE.replace(/^fingerprint .*\n/m, '')],
      ['two published', ONE.replace(/^(dir-key-published .*\n)/m, '$1$1')],
      ['no certification', ONE.slice(0, ONE.indexOf('dir-key-certification'))],
      ['bad time', ONE.replace(/^dir-key-expires .*$/m, 'dir-key-expires 2027-02-31 00:00:00')],
      ['expires first', ONE.replace(/^dir-key-expires .*$/m, 'dir-key-expires 2020-01-01 00:00:00')],
      [
        'key not RSA',
        ONE.replace(
          'dir-signing-key\n-----BEGIN RSA PUBLIC KEY-----\nMIIB',
          'dir-signing-key\n-----BEGIN RSA PUBLIC KEY-----\nMIIA',
        ),
      ],
      ['empty', ''],
    ];
    for (const [name, text] of cases) {
      let err: unknown;
      try {
        parseKeyCertificates(text);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(InvalidError);
    }
  });
});

describe('hostile key certificates', () => {
  it('random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => expectOnlyTypedErrors(() => parseKeyCertificates(s))),
      { numRuns: 300 },
    );
  });

  it('line-level mutations never pass as a different valid certificate', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 3 }), (i, how) => {
        const text = mutateLine(ONE, i, how);
        expectOnlyTypedErrors(() => parseKeyCertificates(text));
      }),
      { numRuns: 200 },
    );
  });

  it('every truncation', () => {
    for (let n = 0; n < ONE.length; n += 7)
      expectOnlyTypedErrors(() => parseKeyCertificates(ONE.slice(0, n)));
  });

  it('an oversized answer is refused before parsing', () => {
    expect(() => parseKeyCertificates('x\n'.repeat(5_000_000))).toThrow(/too long/);
  });
});

describe('rsaVerifyDigest (C tor crypto_pk_public_checksig)', () => {
  const { privateKey, publicKey } = nc.generateKeyPairSync('rsa', {
    modulusLength: 1024,
    publicExponent: 65537,
  });
  const pub = rsaPublicKeyFromPkcs1(new Uint8Array(publicKey.export({ format: 'der', type: 'pkcs1' })));
  const digest = sha1(utf8('signed text'));
  const raw = new Uint8Array(
    nc.privateEncrypt({ key: privateKey, padding: nc.constants.RSA_PKCS1_PADDING }, digest),
  );

  it('accepts PKCS#1 v1.5 padding of the bare digest', () => {
    expect(rsaVerifyDigest(pub, digest, raw)).toBe(true);
  });

  it('refuses a DigestInfo signature, another digest, a changed or short signature', () => {
    const withDigestInfo = new Uint8Array(nc.sign('sha1', utf8('signed text'), privateKey));
    expect(rsaVerifyDigest(pub, digest, withDigestInfo)).toBe(false);
    expect(rsaVerifyDigest(pub, sha1(utf8('other')), raw)).toBe(false);
    const flipped = raw.slice();
    flipped[60]! ^= 1;
    expect(rsaVerifyDigest(pub, digest, flipped)).toBe(false);
    expect(rsaVerifyDigest(pub, digest, raw.slice(1))).toBe(false);
  });

  it('refuses keys that are not RSA with exponent 65537', () => {
    const e3 = nc.generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 }).publicKey;
    expect(() => rsaPublicKeyFromPkcs1(new Uint8Array(e3.export({ format: 'der', type: 'pkcs1' })))).toThrow(
      InvalidError,
    );
    expect(() => rsaPublicKeyFromPkcs1(utf8('not der'))).toThrow(InvalidError);
  });
});
