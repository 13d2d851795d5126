/**
 * Checking a C tor consensus's signatures (dir-spec §3.4.1
 * "directory-signature", §4 "Directory cache operation": clients accept a
 * consensus signed by more than half of the authorities they know).
 *
 * Overview: `verifyMdConsensus` counts, for each configured authority (its
 * v3ident from a DirAuthority line), whether some `directory-signature` of
 * that identity verifies under the signing key of a live key certificate
 * with that identity and signing-key digest. A consensus is accepted when
 * the count reaches C tor's threshold, n/2 + 1 of the n configured
 * authorities (networkstatus.c networkstatus_check_consensus_signature);
 * otherwise CryptoError. As in C tor, a bad signature from one authority
 * does not sink a consensus the others carry, and signatures by identities
 * not configured, or with unknown digest algorithms, are ignored.
 *
 * Design notes: the signature is RSA PKCS#1 v1.5 over the bare SHA-1 or
 * SHA-256 digest (crypto.ts rsaVerifyDigest), made with the signing key,
 * never the identity key.
 *
 * Not in this module: parsing (md-consensus.ts, key-cert.ts), fetching
 * missing certificates, the validity window (`mdConsensusLive`).
 */

import { equalBytes, toHex } from '../bytes.js';
import { rsaVerifyDigest } from '../crypto/rsa.js';
import { CryptoError, InvalidError } from '../errors.js';
import { type KeyCertificate, keyCertificateLive } from './key-cert.js';
import type { MdConsensus } from './md-consensus.js';

export interface SignatureCount {
  /** Hex v3idents of configured authorities with a valid signature. */
  good: string[];
  /** Configured authorities whose signatures all failed. */
  bad: string[];
  /** Configured authorities that signed but whose certificate is missing or expired. */
  missingCert: string[];
  /** Signatures needed: n/2 + 1. */
  required: number;
}

/**
 * Checks the signatures of `c` against `authorities` (20-byte v3idents)
 * and their `certs` at `nowMs`; returns the count or throws CryptoError
 * when fewer than n/2 + 1 configured authorities signed validly.
 */
export function verifyMdConsensus(
  c: MdConsensus,
  certs: readonly KeyCertificate[],
  authorities: readonly Uint8Array[],
  nowMs: number,
): SignatureCount {
  const ids = [...new Map(authorities.map((a) => [toHex(a), a])).entries()];
  if (ids.length === 0) throw new InvalidError('consensus signatures', 'no authorities configured');
  const count: SignatureCount = {
    good: [],
    bad: [],
    missingCert: [],
    required: Math.floor(ids.length / 2) + 1,
  };
  for (const [hex, id] of ids) {
    let outcome: 'good' | 'bad' | 'missingCert' | undefined;
    for (const sig of c.signatures) {
      if (!equalBytes(sig.identity, id)) continue;
      const digest =
        sig.algorithm === 'sha256'
          ? c.signedDigests.sha256
          : sig.algorithm === 'sha1'
            ? c.signedDigests.sha1
            : undefined;
      if (!digest) continue;
      const cert = certs.find(
        (k) =>
          equalBytes(k.fingerprint, id) &&
          equalBytes(k.signingKeyDigest, sig.signingKeyDigest) &&
          keyCertificateLive(k, nowMs),
      );
      if (!cert) {
        outcome ??= 'missingCert';
        continue;
      }
      if (rsaVerifyDigest(cert.signingKey, digest, sig.signature)) {
        outcome = 'good';
        break;
      }
      outcome = 'bad';
    }
    if (outcome) count[outcome].push(hex);
  }
  if (count.good.length < count.required)
    throw new CryptoError('consensus signatures', `${count.good.length} valid of ${count.required} needed`, {
      good: count.good.length,
      bad: count.bad.length,
      missingCert: count.missingCert.length,
      authorities: ids.length,
    });
  return count;
}

/** dir-spec §3.4.1: a consensus is valid from valid-after until valid-until. */
export function mdConsensusLive(c: MdConsensus, nowMs: number): boolean {
  return nowMs >= c.validAfterMs && nowMs <= c.validUntilMs;
}
