/**
 * RSA, only to check C tor's relays (tor-spec §4.2 CERTS types 1, 2 and 7:
 * the RSA-1024 identity key, its self-signed X.509 certificate and the
 * RSA->Ed25519 cross-certificate; dir-spec authority signatures), on
 * node:crypto. Shallot's own nodes have no RSA keys. Part of the crypto
 * room (core/crypto.ts header).
 */
import * as nc from 'node:crypto';
import { ctEqual } from '../crypto.js';
import { InvalidError } from '../errors.js';

const u8 = (b: Buffer | ArrayBuffer): Uint8Array =>
  b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** An RSA public key from a C tor directory document (dir-spec §1.2 "RSA PUBLIC KEY"). */
export interface RsaPublicKey {
  /** Canonical PKCS#1 DER (re-encoded), what C tor's fingerprints hash. */
  der: Uint8Array;
  bits: number;
  key: nc.KeyObject;
}

/**
 * Parses PKCS#1 DER. Like C tor's tokenizer (parsecommon.c, "bad
 * exponent") the exponent must be 65537; 1024-8192 bits bounds the work a
 * hostile document can cause.
 */
export function rsaPublicKeyFromPkcs1(der: Uint8Array): RsaPublicKey {
  let key: nc.KeyObject;
  try {
    key = nc.createPublicKey({ key: Buffer.from(der), format: 'der', type: 'pkcs1' });
  } catch {
    throw new InvalidError('RSA public key', 'not PKCS#1 DER');
  }
  const d = key.asymmetricKeyDetails;
  const bits = d?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || d?.publicExponent !== 65537n || bits < 1024 || bits > 8192)
    throw new InvalidError('RSA public key', 'not RSA-1024..8192 with exponent 65537');
  return { der: u8(key.export({ format: 'der', type: 'pkcs1' })), bits, key };
}

/** An X.509 certificate with an RSA key: C tor's link CERTS types 1 and 2 (tor-spec §4.2). */
export interface X509Rsa {
  key: RsaPublicKey;
  validFromMs: number;
  validToMs: number;
  /** The certificate's signature verifies with its own key. */
  selfSigned: boolean;
}

export function x509RsaCert(der: Uint8Array): X509Rsa {
  let cert: nc.X509Certificate;
  let pub: nc.KeyObject;
  // OpenSSL parses the key only when asked for it: a corrupt key fails there, not in the constructor.
  try {
    cert = new nc.X509Certificate(Buffer.from(der));
    pub = cert.publicKey;
  } catch {
    throw new InvalidError('X.509 certificate', 'not DER');
  }
  if (pub.asymmetricKeyType !== 'rsa') throw new InvalidError('X.509 certificate', 'not an RSA key');
  const validFromMs = Date.parse(cert.validFrom);
  const validToMs = Date.parse(cert.validTo);
  if (Number.isNaN(validFromMs) || Number.isNaN(validToMs))
    throw new InvalidError('X.509 certificate', 'bad validity');
  const key = rsaPublicKeyFromPkcs1(u8(pub.export({ format: 'der', type: 'pkcs1' })));
  let selfSigned: boolean;
  try {
    selfSigned = cert.verify(pub);
  } catch {
    selfSigned = false;
  }
  return { key, validFromMs, validToMs, selfSigned };
}

/**
 * C tor's crypto_pk_public_checksig (tor-spec §0.3, dir-spec §1.3): the
 * signature is PKCS#1 v1.5 type-1 padding of the bare digest, without the
 * DigestInfo prefix, so it is checked by recovering the padded message and
 * comparing it to the digest in constant time.
 */
export function rsaVerifyDigest(key: RsaPublicKey, digest: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== Math.ceil(key.bits / 8)) return false;
  let recovered: Uint8Array;
  try {
    recovered = u8(nc.publicDecrypt({ key: key.key, padding: nc.constants.RSA_PKCS1_PADDING }, signature));
  } catch {
    return false;
  }
  return ctEqual(recovered, digest);
}
