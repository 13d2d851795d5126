/**
 * C tor's authority key certificates (dir-spec §3.1 "Creating key
 * certificates"): an authority's long-term RSA identity key certifies a
 * medium-term RSA signing key, which signs votes and consensuses.
 *
 * Overview: `parseKeyCertificates` reads one or more certificates (as
 * `/tor/keys/all` serves them), checks each one's two signatures and
 * returns the keys; `keyCertificateLive` is the validity-window test.
 * - `fingerprint` (the v3ident) must be SHA-1 of the identity key's DER;
 * - `dir-key-crosscert`: the signing key's signature over that SHA-1
 *   (object `ID SIGNATURE`, or `SIGNATURE` as older authorities wrote);
 * - `dir-key-certification`: the identity key's signature over the SHA-1
 *   of the text from `dir-key-certificate-version` through the newline
 *   after `dir-key-certification`.
 * Both are PKCS#1 v1.5 over the bare digest (crypto.ts rsaVerifyDigest).
 *
 * Design notes: order as dir-spec §3.1 and C tor's
 * authority_cert_parse_from_string (src/feature/dirparse/authcert_parse.c)
 * require: the version line first and the certification last; other
 * known items exactly or at most once anywhere between; unknown keywords
 * ignored (dir-spec §1.2).
 *
 * Not in this module: which authorities to trust (the caller's
 * DirAuthority list), fetching certificates.
 *
 * Limitations: `dir-address` is kept as text, not parsed.
 */

import { equalBytes, utf8 } from '../bytes.js';
import { type RsaPublicKey, rsaPublicKeyFromPkcs1, rsaVerifyDigest } from '../crypto/rsa.js';
import { sha1 } from '../crypto.js';
import { CryptoError, InvalidError } from '../errors.js';
import { atMostOne, exactlyOne, hexIdArg, type Item, objectOf, timeArgs, tokenize } from './meta-format.js';

/** C tor's MAX_CERT_SIZE (authcert_parse.c): one certificate's text. */
export const MAX_KEY_CERT_LEN = 128 * 1024;
/** A `/tor/keys/all` answer from a network of at most this many authorities' certificates. */
const MAX_CERTS = 64;

export interface KeyCertificate {
  /** SHA-1 of the identity key's DER: the authority's v3ident. */
  fingerprint: Uint8Array;
  identityKey: RsaPublicKey;
  signingKey: RsaPublicKey;
  /** SHA-1 of the signing key's DER, as `directory-signature` names it. */
  signingKeyDigest: Uint8Array;
  publishedMs: number;
  expiresMs: number;
  /** `dir-address`, as written. */
  address?: string;
}

const WHAT = 'key certificate';
const VERSION = 'dir-key-certificate-version';
const CERTIFICATION = 'dir-key-certification';

/**
 * Every certificate in `text`, each verified (InvalidError if malformed,
 * CryptoError if a signature or the fingerprint does not match).
 */
export function parseKeyCertificates(text: string): KeyCertificate[] {
  if (text.length > MAX_KEY_CERT_LEN * MAX_CERTS) throw new InvalidError(WHAT, 'too long');
  const items = tokenize(text, WHAT);
  if (items.length === 0) throw new InvalidError(WHAT, 'empty');
  const certs: KeyCertificate[] = [];
  let from = 0;
  while (from < items.length) {
    const end = items.findIndex((i, n) => n >= from && i.keyword === CERTIFICATION);
    if (end < 0) throw new InvalidError(WHAT, `no ${CERTIFICATION}`, { line: items[from]!.line });
    const one = items.slice(from, end + 1);
    if (certs.length >= MAX_CERTS) throw new InvalidError(WHAT, 'too many certificates');
    certs.push(parseOne(text, one));
    from = end + 1;
  }
  return certs;
}

function parseOne(text: string, items: Item[]): KeyCertificate {
  const first = items[0]!;
  const last = items[items.length - 1]!;
  if (last.end - first.start > MAX_KEY_CERT_LEN) throw new InvalidError(WHAT, 'certificate too long');
  if (first.keyword !== VERSION)
    throw new InvalidError(WHAT, `must start with ${VERSION}`, { line: first.line });
  if (first.args[0] !== '3') throw new InvalidError(WHAT, 'unsupported version');
  exactlyOne(items, VERSION, WHAT);

  const fingerprint = hexIdArg(exactlyOne(items, 'fingerprint', WHAT), 0, WHAT);
  const identityKey = rsaPublicKeyFromPkcs1(
    objectOf(exactlyOne(items, 'dir-identity-key', WHAT), 'RSA PUBLIC KEY', WHAT),
  );
  const signingKey = rsaPublicKeyFromPkcs1(
    objectOf(exactlyOne(items, 'dir-signing-key', WHAT), 'RSA PUBLIC KEY', WHAT),
  );
  const publishedMs = timeArgs(exactlyOne(items, 'dir-key-published', WHAT), 0, WHAT);
  const expiresMs = timeArgs(exactlyOne(items, 'dir-key-expires', WHAT), 0, WHAT);
  const address = atMostOne(items, 'dir-address', WHAT)?.args[0];

  const crossItem = exactlyOne(items, 'dir-key-crosscert', WHAT);
  const crossTag = crossItem.object?.tag;
  const crosscert = objectOf(crossItem, crossTag === 'SIGNATURE' ? 'SIGNATURE' : 'ID SIGNATURE', WHAT);
  if (last.args.length > 0) throw new InvalidError(WHAT, `${CERTIFICATION} takes no arguments`);
  const certification = objectOf(last, 'SIGNATURE', WHAT);

  if (expiresMs <= publishedMs) throw new InvalidError(WHAT, 'expires before it is published');

  const identityDigest = sha1(identityKey.der);
  if (!equalBytes(identityDigest, fingerprint))
    throw new CryptoError(WHAT, 'fingerprint is not the identity key digest');
  if (!rsaVerifyDigest(signingKey, identityDigest, crosscert))
    throw new CryptoError(WHAT, 'dir-key-crosscert does not verify');
  // dir-spec §3.1: signed from the version line through the newline after "dir-key-certification".
  const signedEnd = last.start + CERTIFICATION.length + 1;
  const signed = utf8(text.slice(first.start, signedEnd));
  if (!rsaVerifyDigest(identityKey, sha1(signed), certification))
    throw new CryptoError(WHAT, 'dir-key-certification does not verify');

  const cert: KeyCertificate = {
    fingerprint,
    identityKey,
    signingKey,
    signingKeyDigest: sha1(signingKey.der),
    publishedMs,
    expiresMs,
  };
  if (address !== undefined) cert.address = address;
  return cert;
}

/** True while `nowMs` lies within [published, expires] (dir-spec §3.1 dir-key-published/-expires). */
export function keyCertificateLive(cert: KeyCertificate, nowMs: number): boolean {
  return nowMs >= cert.publishedMs && nowMs <= cert.expiresMs;
}
