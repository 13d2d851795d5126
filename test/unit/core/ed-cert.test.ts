// cert-spec Ed25519 certificates: two real certs from a CERTS cell in a
// chutney network (arti tor-cert tests/testvec_certs.rs), round trips,
// signature / expiry / signed-with checks, and hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, fromHex, toHex } from '../../../services/core/bytes.js';
import { ed25519Expand } from '../../../services/core/crypto/ed25519-math.js';
import { ed25519PublicFromSeed } from '../../../services/core/crypto.js';
import {
  CertType,
  decodeEdCert,
  encodeEdCert,
  expiresHoursFrom,
  verifyEdCert,
} from '../../../services/core/ed-cert.js';
import { CryptoError, InvalidError, TruncatedError } from '../../../services/core/errors.js';
import { blindExpandedKey, blindIdentity } from '../../../services/core/hs-keys.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const SIGNING_KEY = fromHex('F82294B866A31F01FC5D0DA8572850A9B929545C3266558D7D2316E3B74172B0');
const IDENTITY_KEY = fromHex('DCB604DB2034B00FD16986D4ADB9D16B21CB4E4457A33DEC0F538903683E96E9');
const NOTIONAL_NOW = 1601000000 * 1000;

const TYPE4 = fromHex(`01 04 0006CC2A 01
  F82294B866A31F01FC5D0DA8572850A9B929545C3266558D7D2316E3B74172B0
  01 0020 04 00
  DCB604DB2034B00FD16986D4ADB9D16B21CB4E4457A33DEC0F538903683E96E9
  FF1A5203FA27F86EF7528D89A0845D2520166E340754FFEA2AAE0F612B7CE5DA
  094A0236CDAC45034B0B6842C18E7F6B51B93A3CF7E60663B8AD061C30A62602`);

const TYPE5 = fromHex(`01 05 0006C98A 03
  B4FD606B64E4CBD466B8D76CB131069BAE6F3AA1878857C9F624E31D77A799B8
  00
  7173E5F8068431D0D3F5EE16B4C9FFD59DF373E152A87281BAE744AA5FCF7217
  1BF4B27C4E8FC1C6A9FC5CA11058BC49647063D7903CFD9F512F89099B27BC0C`);

describe('C tor certs (arti testvec_certs.rs)', () => {
  it('type 4 identity->signing cert with extension 04', () => {
    const cert = decodeEdCert(TYPE4);
    expect(cert.certType).toBe(CertType.IDENTITY_V_SIGNING);
    expect(cert.expiresHours).toBe(0x6cc2a);
    expect(cert.keyType).toBe(1);
    expect(cert.certifiedKey).toEqual(SIGNING_KEY);
    expect(cert.signedWithKey).toEqual(IDENTITY_KEY);
    expect(cert.extensions).toEqual([]);
    expect(cert.signedPart).toEqual(TYPE4.subarray(0, TYPE4.length - 64));
    verifyEdCert(cert, { signingKey: IDENTITY_KEY, now: NOTIONAL_NOW });
    expect(() => verifyEdCert(cert, { signingKey: SIGNING_KEY, now: NOTIONAL_NOW })).toThrow(CryptoError);
  });

  it('type 5 signing->TLS cert digest, no extensions', () => {
    const cert = decodeEdCert(TYPE5);
    expect(cert.certType).toBe(CertType.SIGNING_V_TLS_CERT);
    expect(cert.keyType).toBe(3);
    expect(cert.expiresHours).toBe(0x6c98a);
    expect(toHex(cert.certifiedKey)).toBe('b4fd606b64e4cbd466b8d76cb131069bae6f3aa1878857c9f624e31d77a799b8');
    expect(cert.signedWithKey).toBeUndefined();
    verifyEdCert(cert, { signingKey: SIGNING_KEY, now: NOTIONAL_NOW });
    expect(() => verifyEdCert(cert, { signingKey: IDENTITY_KEY, now: NOTIONAL_NOW })).toThrow(
      /bad signature/,
    );
  });

  it('expiry: valid just before EXPIRATION_DATE, rejected at and after it', () => {
    const cert = decodeEdCert(TYPE5);
    const exp = 0x6c98a * 3_600_000;
    verifyEdCert(cert, { signingKey: SIGNING_KEY, now: exp - 1 });
    expect(() => verifyEdCert(cert, { signingKey: SIGNING_KEY, now: exp })).toThrow(/expired/);
  });

  it('a flipped signed byte fails verification', () => {
    const bad = TYPE5.slice();
    bad[10]! ^= 1;
    expect(() => verifyEdCert(decodeEdCert(bad), { signingKey: SIGNING_KEY, now: NOTIONAL_NOW })).toThrow(
      CryptoError,
    );
  });
});

describe('encode / decode', () => {
  const seed = new Uint8Array(32).fill(9);
  const signerPub = ed25519PublicFromSeed(seed);

  it('round-trips and verifies, with and without extension 04', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(CertType)),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.boolean(),
        (certType, expiresHours, certifiedKey, withExt) => {
          const bytes = encodeEdCert(
            { certType, expiresHours, certifiedKey, ...(withExt ? { signedWithKey: signerPub } : {}) },
            seed,
          );
          expect(bytes.length).toBe(withExt ? 104 + 36 : 104);
          const cert = decodeEdCert(bytes);
          expect(cert.certType).toBe(certType);
          expect(cert.expiresHours).toBe(expiresHours);
          expect(cert.keyType).toBe(1);
          expect(cert.certifiedKey).toEqual(certifiedKey);
          expect(cert.signedWithKey).toEqual(withExt ? signerPub : undefined);
          if (expiresHours > 0) verifyEdCert(cert, { signingKey: signerPub, now: 0 });
        },
      ),
      { numRuns: 50 },
    );
  });

  it('extension 04 is written with flags 01 (affects validation)', () => {
    const bytes = encodeEdCert(
      { certType: 4, expiresHours: 1, certifiedKey: new Uint8Array(32), signedWithKey: signerPub },
      seed,
    );
    expect(toHex(bytes.subarray(39, 43))).toBe('01002004');
    expect(bytes[43]).toBe(1);
  });

  it('signs with a blinded expanded key (descriptor signing-key cert, type 08)', () => {
    const identity = ed25519Expand(new Uint8Array(32).fill(3));
    const blinded = blindExpandedKey(identity, 100n, 1440n);
    const Ap = blindIdentity(identity.public, 100n, 1440n);
    const descSigning = ed25519PublicFromSeed(new Uint8Array(32).fill(4));
    const now = 1_700_000_000_000;
    const bytes = encodeEdCert(
      {
        certType: CertType.HS_BLINDED_ID_V_SIGNING,
        expiresHours: expiresHoursFrom(now, 3),
        certifiedKey: descSigning,
        signedWithKey: Ap,
      },
      blinded,
    );
    const cert = decodeEdCert(bytes);
    verifyEdCert(cert, { signingKey: Ap, now });
    expect(() => verifyEdCert(cert, { signingKey: identity.public, now })).toThrow(/does not match/);
    expect(() => verifyEdCert(cert, { signingKey: Ap, now: now + 4 * 3_600_000 })).toThrow(/expired/);
  });

  it('expiresHoursFrom rounds up to a whole hour', () => {
    expect(expiresHoursFrom(0, 3)).toBe(3);
    expect(expiresHoursFrom(1, 3)).toBe(4);
    expect(expiresHoursFrom(3_600_000, 0)).toBe(1);
  });

  it('encoder rejects wrong key lengths', () => {
    expect(() =>
      encodeEdCert({ certType: 4, expiresHours: 1, certifiedKey: new Uint8Array(31) }, seed),
    ).toThrow(InvalidError);
    expect(() =>
      encodeEdCert(
        { certType: 4, expiresHours: 1, certifiedKey: new Uint8Array(32), signedWithKey: new Uint8Array(3) },
        seed,
      ),
    ).toThrow(InvalidError);
  });
});

describe('decoder strictness', () => {
  const body = (nExt: number, exts: Uint8Array) =>
    concat(
      fromHex('01 04 00000010 01'),
      new Uint8Array(32),
      new Uint8Array([nExt]),
      exts,
      new Uint8Array(64),
    );

  it('keeps unknown non-critical extensions, rejects unknown critical ones', () => {
    const cert = decodeEdCert(body(1, fromHex('0002 07 00 abcd')));
    expect(cert.extensions).toEqual([{ type: 7, flags: 0, data: fromHex('abcd') }]);
    expect(() => decodeEdCert(body(1, fromHex('0002 07 01 abcd')))).toThrow(InvalidError);
  });

  it('rejects bad version, bad ext-04 length, duplicate ext-04, trailing bytes', () => {
    const good = body(0, new Uint8Array());
    const v2 = good.slice();
    v2[0] = 2;
    expect(() => decodeEdCert(v2)).toThrow(/version/);
    expect(() => decodeEdCert(body(1, fromHex('0002 04 00 abcd')))).toThrow(InvalidError);
    const ext4 = concat(fromHex('0020 04 00'), new Uint8Array(32));
    expect(() => decodeEdCert(body(2, concat(ext4, ext4)))).toThrow(/duplicate/);
    expect(() => decodeEdCert(concat(good, new Uint8Array(1)))).toThrow(InvalidError);
  });

  it('truncation anywhere is a TruncatedError', () => {
    for (let n = 0; n < TYPE4.length; n++) {
      expect(() => decodeEdCert(TYPE4.subarray(0, n))).toThrow(TruncatedError);
    }
  });

  it('hostile input only throws typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expectOnlyTypedErrors(() => decodeEdCert(b));
        const mutated = TYPE4.slice();
        if (b.length >= 2) mutated[b[0]! % mutated.length] = b[1]!;
        expectOnlyTypedErrors(() =>
          verifyEdCert(decodeEdCert(mutated), { signingKey: IDENTITY_KEY, now: 0 }),
        );
      }),
      { numRuns: 500 },
    );
  });
});
