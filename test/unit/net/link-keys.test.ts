// A relay's link certificates (net/link-keys.ts, tor-spec §4.2, tor-cert-spec)
// laid out as C tor lays them out: compared field by field with the CERTS
// cell a C tor 0.4.9 relay sent (test/vectors/ctor/certs-cell.json).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../../services/core/bytes.js';
import { CellCommand, decodeLinkMessage } from '../../../services/core/cells.js';
import { sha256 } from '../../../services/core/crypto.js';
import { CertKeyType, CertType, decodeEdCert } from '../../../services/core/ed-cert.js';
import { generateNodeKeys } from '../../../services/core/node-keys.js';
import { createLinkKeys } from '../../../services/net/link-keys.js';

const v = JSON.parse(
  readFileSync(new URL('../../vectors/ctor/certs-cell.json', import.meta.url), 'utf8'),
) as { certsPayload: string };
const msg = decodeLinkMessage(CellCommand.CERTS, fromHex(v.certsPayload));
if (msg.type !== 'CERTS') throw new Error('vector is not a CERTS cell');
/** C tor's Ed25519 certificates (types 4-6); 1, 2 and 7 are RSA/X.509. */
const ctor = new Map(
  msg.certs
    .filter((c) => c.certType >= 4 && c.certType <= 6)
    .map((c) => [c.certType, decodeEdCert(c.body)] as const),
);

describe('link certificates as C tor writes them', () => {
  const id = generateNodeKeys();
  const keys = createLinkKeys({ seed: id.identitySeed, public: id.identity });

  it('type 5 (signing -> TLS certificate) certifies a SHA-256 of X.509, key type 03', () => {
    const ours = decodeEdCert(keys.certSigningToTls);
    expect(ctor.get(CertType.SIGNING_V_TLS_CERT)?.keyType).toBe(CertKeyType.SHA256_OF_X509);
    expect(ours.certType).toBe(CertType.SIGNING_V_TLS_CERT);
    expect(ours.keyType).toBe(CertKeyType.SHA256_OF_X509);
    expect(ours.certifiedKey).toEqual(sha256(keys.tlsCertDer));
  });

  it('types 4 and 6 certify Ed25519 keys (key type 01), as C tor', () => {
    for (const [type, body] of [
      [CertType.IDENTITY_V_SIGNING, keys.certIdentityToSigning],
      [CertType.SIGNING_V_LINK_AUTH, keys.certSigningToAuth],
    ] as const) {
      expect(decodeEdCert(body).keyType).toBe(CertKeyType.ED25519);
      // C tor's relay sends type 4 (its own link has no type 6 for a responder).
      const theirs = ctor.get(type);
      if (theirs) expect(theirs.keyType).toBe(CertKeyType.ED25519);
    }
    expect(ctor.has(CertType.IDENTITY_V_SIGNING)).toBe(true);
  });
});
