/**
 * Tor's Ed25519 certificates (cert-spec §2.1, extensions §2.2), used in
 * CERTS cells (types 4-6) and onion-service descriptors (types 8, 9, 0B).
 *
 *   VERSION(1)=01 CERT_TYPE(1) EXPIRATION_DATE(4, hours since the epoch)
 *   CERT_KEY_TYPE(1) CERTIFIED_KEY(32) N_EXTENSIONS(1)
 *   { ExtLength(2) ExtType(1) ExtFlags(1) ExtData(ExtLength) }*  SIGNATURE(64)
 *
 * The signature covers every byte before it, with no prefix string.
 * Extension 04 ("signed-with-ed25519-key") names the signing key; it is
 * kept apart from the other extensions because verification depends on it.
 */
import { ByteReader, ByteWriter, equalBytes } from './bytes.js';
import { ed25519SignExpanded } from './crypto/ed25519-math.js';
import { type ExpandedKey, ed25519Sign, ed25519Verify } from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';

export const CertType = {
  IDENTITY_V_SIGNING: 4,
  SIGNING_V_TLS_CERT: 5,
  SIGNING_V_LINK_AUTH: 6,
  HS_BLINDED_ID_V_SIGNING: 8,
  HS_IP_V_SIGNING: 9,
  NTOR_CC_IDENTITY: 0x0a,
  HS_IP_CC_SIGNING: 0x0b,
} as const;

/** cert-spec §2.1 CERT_KEY_TYPE. */
export const CertKeyType = { ED25519: 1, SHA256_OF_RSA: 2, SHA256_OF_X509: 3 } as const;

/** cert-spec §2.2.1. */
export const EXT_SIGNED_WITH_ED25519_KEY = 4;
/** ExtFlags bit: an implementation that does not understand the extension must reject the cert. */
export const EXT_FLAG_AFFECTS_VALIDATION = 1;

const VERSION = 1;
const SIG_LEN = 64;

export interface EdCertExtension {
  type: number;
  flags: number;
  data: Uint8Array;
}

export interface EdCert {
  certType: number;
  /** EXPIRATION_DATE: hours since 1970-01-01 00:00 UTC. */
  expiresHours: number;
  keyType: number;
  certifiedKey: Uint8Array;
  /** Extension 04, when present. */
  signedWithKey?: Uint8Array;
  /** Every extension other than 04, in order. */
  extensions: EdCertExtension[];
  signature: Uint8Array;
  /** The bytes the signature covers (everything before it). */
  signedPart: Uint8Array;
}

export interface EdCertFields {
  certType: number;
  expiresHours: number;
  certifiedKey: Uint8Array;
  /** Defaults to 1 (an Ed25519 key). */
  keyType?: number;
  /** When set, written as extension 04 with flags 01. */
  signedWithKey?: Uint8Array;
}

/** The EXPIRATION_DATE for a cert valid `lifetimeHours` from `nowMs`, rounded up to a whole hour. */
export function expiresHoursFrom(nowMs: number, lifetimeHours: number): number {
  return Math.ceil(nowMs / 3_600_000) + lifetimeHours;
}

/**
 * Encodes and signs a cert. `signer` is a 32-byte seed, or an expanded key
 * when signing with a blinded key (which has no seed).
 */
export function encodeEdCert(fields: EdCertFields, signer: Uint8Array | ExpandedKey): Uint8Array {
  if (fields.certifiedKey.length !== 32) {
    throw new InvalidError('ed25519 cert', 'certified key must be 32 bytes');
  }
  if (fields.signedWithKey !== undefined && fields.signedWithKey.length !== 32) {
    throw new InvalidError('ed25519 cert', 'signed-with key must be 32 bytes');
  }
  const w = new ByteWriter(140);
  w.u8(VERSION)
    .u8(fields.certType)
    .u32(fields.expiresHours)
    .u8(fields.keyType ?? CertKeyType.ED25519);
  w.bytes(fields.certifiedKey);
  if (fields.signedWithKey) {
    w.u8(1)
      .u16(32)
      .u8(EXT_SIGNED_WITH_ED25519_KEY)
      .u8(EXT_FLAG_AFFECTS_VALIDATION)
      .bytes(fields.signedWithKey);
  } else {
    w.u8(0);
  }
  const body = w.finish().slice();
  const sig = signer instanceof Uint8Array ? ed25519Sign(signer, body) : ed25519SignExpanded(signer, body);
  return new ByteWriter(body.length + SIG_LEN).bytes(body).bytes(sig).finish();
}

/** Parses a cert; checks structure only (see verifyEdCert for signature and expiry). */
export function decodeEdCert(bytes: Uint8Array): EdCert {
  const r = new ByteReader(bytes, 'ed25519 cert');
  const version = r.u8();
  if (version !== VERSION)
    throw new InvalidError('ed25519 cert', `unsupported version ${version}`, { version });
  const certType = r.u8();
  const expiresHours = r.u32();
  const keyType = r.u8();
  const certifiedKey = r.take(32).slice();
  const nExt = r.u8();
  let signedWithKey: Uint8Array | undefined;
  const extensions: EdCertExtension[] = [];
  for (let i = 0; i < nExt; i++) {
    const len = r.u16();
    const type = r.u8();
    const flags = r.u8();
    const data = r.take(len).slice();
    if (type === EXT_SIGNED_WITH_ED25519_KEY) {
      if (len !== 32)
        throw new InvalidError('ed25519 cert', 'signed-with-ed25519-key extension must be 32 bytes');
      if (signedWithKey)
        throw new InvalidError('ed25519 cert', 'duplicate signed-with-ed25519-key extension');
      signedWithKey = data;
    } else if (flags & EXT_FLAG_AFFECTS_VALIDATION) {
      // cert-spec §2.1: an unknown extension that affects validation makes the cert invalid.
      throw new InvalidError('ed25519 cert', `unknown critical extension ${type}`, { extType: type });
    } else {
      extensions.push({ type, flags, data });
    }
  }
  const signedPart = bytes.slice(0, r.offset);
  const signature = r.take(SIG_LEN).slice();
  r.assertExhausted();
  const cert: EdCert = { certType, expiresHours, keyType, certifiedKey, extensions, signature, signedPart };
  if (signedWithKey) cert.signedWithKey = signedWithKey;
  return cert;
}

/**
 * Checks the signature under `signingKey`, that the cert has not expired at
 * `now` (ms), and that extension 04, if present, names `signingKey`.
 * Throws CryptoError on any failure.
 */
export function verifyEdCert(cert: EdCert, opts: { signingKey: Uint8Array; now: number }): void {
  if (cert.signedWithKey && !equalBytes(cert.signedWithKey, opts.signingKey)) {
    throw new CryptoError('ed25519 cert', 'signed-with key does not match', { certType: cert.certType });
  }
  if (cert.expiresHours * 3_600_000 <= opts.now) {
    throw new CryptoError('ed25519 cert', 'expired', {
      certType: cert.certType,
      expiresHours: cert.expiresHours,
    });
  }
  if (!ed25519Verify(opts.signingKey, cert.signedPart, cert.signature)) {
    throw new CryptoError('ed25519 cert', 'bad signature', { certType: cert.certType });
  }
}

/** The key a cert is signed with: extension 04 when present, else the one the caller expected. */
export function certSigningKey(cert: EdCert, fallback?: Uint8Array): Uint8Array | undefined {
  return cert.signedWithKey ?? fallback;
}
