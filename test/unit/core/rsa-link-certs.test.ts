// The RSA half of a C tor relay's CERTS cell (services/core/rsa-link-certs.ts,
// tor-spec §4.2) on a real cell (test/vectors/ctor/certs-cell.json): the
// type-2 ID certificate and type-7 cross-certificate give the relay's RSA
// legacy id; another Ed25519 identity, a flipped signature, an expired
// cross-certificate, the type-1 link certificate in place of the ID one, a
// missing certificate and every truncation fail typed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { CellCommand, decodeLinkMessage } from '../../../services/core/cells.js';
import { CryptoError, InvalidError } from '../../../services/core/errors.js';
import { decodeRsaCrossCert, RsaCertType, verifyRsaIdentity } from '../../../services/core/rsa-link-certs.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const v = JSON.parse(
  readFileSync(new URL('../../vectors/ctor/certs-cell.json', import.meta.url), 'utf8'),
) as {
  capturedAt: string;
  ed25519Id: string;
  rsaId: string;
  certsPayload: string;
};
const msg = decodeLinkMessage(CellCommand.CERTS, fromHex(v.certsPayload));
if (msg.type !== 'CERTS') throw new Error('vector is not a CERTS cell');
const byType = new Map(msg.certs.map((c) => [c.certType, c.body]));
const ID = byType.get(RsaCertType.RSA_ID)!;
const CROSS = byType.get(RsaCertType.RSA_ID_V_ED25519)!;
const ED = fromHex(v.ed25519Id);
const NOW = Date.parse(v.capturedAt);

describe('RSA identity certificates in CERTS', () => {
  it('C tor sends types 1, 2, 4, 5 and 7', () => {
    expect([...byType.keys()].sort()).toEqual([1, 2, 4, 5, 7]);
  });

  it('give the RSA legacy id the consensus lists', () => {
    expect(toHex(verifyRsaIdentity(ID, CROSS, ED, NOW))).toBe(v.rsaId);
  });

  it('refuse a cross-certificate for another Ed25519 identity', () => {
    const other = ED.slice();
    other[0]! ^= 1;
    expect(() => verifyRsaIdentity(ID, CROSS, other, NOW)).toThrow(CryptoError);
  });

  it('refuse a flipped signature byte', () => {
    const bad = CROSS.slice();
    bad[bad.length - 1]! ^= 1;
    expect(() => verifyRsaIdentity(ID, bad, ED, NOW)).toThrow(/does not verify/);
  });

  it('refuse an expired cross-certificate and an ID certificate past its dates', () => {
    const expires = decodeRsaCrossCert(CROSS).expiresHours * 3_600_000;
    expect(() => verifyRsaIdentity(ID, CROSS, ED, expires + 1)).toThrow(CryptoError);
    expect(() => verifyRsaIdentity(ID, CROSS, ED, Date.parse('2000-01-01'))).toThrow(/not valid now/);
  });

  it('refuse the type-1 link certificate as the ID certificate (2048-bit, not self-signed)', () => {
    expect(() => verifyRsaIdentity(byType.get(1), CROSS, ED, NOW)).toThrow(InvalidError);
  });

  it('refuse a CERTS cell without either certificate', () => {
    expect(() => verifyRsaIdentity(undefined, CROSS, ED, NOW)).toThrow(/type 2/);
    expect(() => verifyRsaIdentity(ID, undefined, ED, NOW)).toThrow(/type 7/);
  });

  it('every truncation, extension and byte flip fails typed', () => {
    for (let n = 0; n < CROSS.length; n++)
      expectOnlyTypedErrors(() => verifyRsaIdentity(ID, CROSS.subarray(0, n), ED, NOW));
    expect(() => verifyRsaIdentity(ID, new Uint8Array([...CROSS, 0]), ED, NOW)).toThrow(InvalidError);
    for (let n = 0; n < ID.length; n += 7)
      expectOnlyTypedErrors(() => verifyRsaIdentity(ID.subarray(0, n), CROSS, ED, NOW));
    for (let i = 0; i < ID.length; i += 5) {
      const flipped = ID.slice();
      flipped[i]! ^= 0x40;
      expect(() => verifyRsaIdentity(flipped, CROSS, ED, NOW)).toThrow();
      expectOnlyTypedErrors(() => verifyRsaIdentity(flipped, CROSS, ED, NOW));
    }
  });
});
