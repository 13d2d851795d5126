/**
 * The RSA half of a C tor relay's CERTS cell (tor-spec §4.2 "CERTS
 * cells"): the self-signed RSA-1024 identity certificate (type 2) and the
 * RSA->Ed25519 cross-certificate (type 7, tor-spec §4.2 / cert-spec
 * §2.3), which together tie the relay's RSA legacy id to its Ed25519
 * identity.
 *
 * Overview: `verifyRsaIdentity` checks, for an initiator authenticating
 * a responder with both identities (tor-spec §4.2 list): the ID
 * certificate is a correctly self-signed X.509 certificate inside its
 * validity dates with a 1024-bit RSA key; the cross-certificate certifies
 * the Ed25519 identity the type-4 certificate proved, has not expired and
 * is signed by that RSA key. It returns the legacy id, SHA-1 of the RSA
 * key's PKCS#1 DER, for the caller to compare with the one it dialled.
 *
 * Design notes: the cross-certificate signature is PKCS#1 v1.5 over the
 * bare SHA-256 of "Tor TLS RSA/Ed25519 cross-certificate" | ED25519_KEY |
 * EXPIRATION_DATE, as C tor's rsa_ed25519_crosscert_check.
 *
 * Not in this module: the Ed25519 certificates (ed-cert.ts), the type-1
 * RSA link certificate (only an RSA-only handshake needs it), whether to
 * ask (channel.ts does when it knows the peer's legacy id).
 */
import { ByteReader, equalBytes, utf8 } from './bytes.js';
import { rsaVerifyDigest, x509RsaCert } from './crypto/rsa.js';
import { sha1, sha256 } from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';

/** CERTS certificate types with RSA keys (tor-spec §4.2). */
export const RsaCertType = { RSA_ID: 2, RSA_ID_V_ED25519: 7 } as const;

const CROSSCERT_PREFIX = utf8('Tor TLS RSA/Ed25519 cross-certificate');
const HOUR_MS = 3_600_000;

export interface RsaCrossCert {
  ed25519Key: Uint8Array;
  /** Hours since the epoch. */
  expiresHours: number;
  signature: Uint8Array;
  /** ED25519_KEY | EXPIRATION_DATE: what the prefix and signature cover. */
  signedPart: Uint8Array;
}

/** tor-spec §4.2: ED25519_KEY [32] | EXPIRATION_DATE [4] | SIGLEN [1] | SIGNATURE [SIGLEN]. */
export function decodeRsaCrossCert(bytes: Uint8Array): RsaCrossCert {
  const r = new ByteReader(bytes, 'RSA->Ed25519 cross-certificate');
  const ed25519Key = r.take(32);
  const expiresHours = r.u32();
  const signature = r.take(r.u8());
  r.assertExhausted();
  return { ed25519Key, expiresHours, signature, signedPart: bytes.subarray(0, 36) };
}

/** Checks CERTS types 2 and 7 against the proven Ed25519 identity; returns the RSA legacy id. */
export function verifyRsaIdentity(
  idCertDer: Uint8Array | undefined,
  crossCertBytes: Uint8Array | undefined,
  ed25519Identity: Uint8Array,
  nowMs: number,
): Uint8Array {
  const what = 'RSA identity certificates';
  if (!idCertDer) throw new InvalidError(what, 'CERTS lacks the RSA identity certificate (type 2)');
  if (!crossCertBytes)
    throw new InvalidError(what, 'CERTS lacks the RSA->Ed25519 cross-certificate (type 7)');
  const id = x509RsaCert(idCertDer);
  if (id.key.bits !== 1024) throw new InvalidError(what, `identity key is ${id.key.bits} bits, not 1024`);
  if (!id.selfSigned) throw new CryptoError(what, 'identity certificate is not self-signed');
  if (nowMs < id.validFromMs || nowMs > id.validToMs)
    throw new CryptoError(what, 'identity certificate not valid now');
  const cross = decodeRsaCrossCert(crossCertBytes);
  if (!equalBytes(cross.ed25519Key, ed25519Identity))
    throw new CryptoError(what, 'cross-certificate names another Ed25519 identity');
  if (cross.expiresHours * HOUR_MS < nowMs) throw new CryptoError(what, 'cross-certificate expired');
  if (!rsaVerifyDigest(id.key, sha256(CROSSCERT_PREFIX, cross.signedPart), cross.signature))
    throw new CryptoError(what, 'cross-certificate signature does not verify');
  return sha1(id.key.der);
}
