/**
 * A relay's link keys (tor-spec §4.2, cert-spec): the long-term Ed25519
 * identity certifies a medium-term signing key (CERTS type 4), which
 * certifies the TLS certificate's digest (type 5) and the key that signs
 * AUTHENTICATE (type 6).
 *
 * Design notes: the TLS certificate is Ed25519 and self-signed (see
 * core/x509.ts); trust comes only from the type-5 binding. Signing, TLS
 * and auth keys are regenerated at every start: only the identity persists.
 */
import {
  type Ed25519KeyPair,
  ed25519Generate,
  ed25519SeedToPkcs8,
  type Rng,
  randomBytes,
  sha256,
} from '../core/crypto.js';
import { CertKeyType, CertType, encodeEdCert } from '../core/ed-cert.js';
import { selfSignedEd25519Cert, toPem } from '../core/x509.js';
import type { TlsMaterial } from './transport.js';

export interface LinkKeys {
  identity: Ed25519KeyPair;
  signing: Ed25519KeyPair;
  auth: Ed25519KeyPair;
  /** CERTS type 4: identity -> signing key. */
  certIdentityToSigning: Uint8Array;
  /** CERTS type 5: signing key -> SHA-256 of the TLS certificate. */
  certSigningToTls: Uint8Array;
  /** CERTS type 6: signing key -> auth key. */
  certSigningToAuth: Uint8Array;
  tls: TlsMaterial;
  tlsCertDer: Uint8Array;
}

const HOUR_MS = 3_600_000;

export function createLinkKeys(
  identity: Ed25519KeyPair,
  opts: { now?: number; rng?: Rng; lifetimeHours?: number } = {},
): LinkKeys {
  const rng = opts.rng ?? randomBytes;
  const now = opts.now ?? Date.now();
  const hours = opts.lifetimeHours ?? 24 * 30;
  const expiresHours = Math.floor(now / HOUR_MS) + hours;
  const signing = ed25519Generate(rng);
  const auth = ed25519Generate(rng);
  const tlsSeed = rng(32);
  const tlsCertDer = selfSignedEd25519Cert({
    seed: tlsSeed,
    commonName: `www.${Buffer.from(rng(8)).toString('hex')}.net`,
    notBefore: new Date(now - 24 * HOUR_MS),
    notAfter: new Date(now + hours * HOUR_MS),
    rng,
  });
  return {
    identity,
    signing,
    auth,
    certIdentityToSigning: encodeEdCert(
      {
        certType: CertType.IDENTITY_V_SIGNING,
        expiresHours,
        certifiedKey: signing.public,
        signedWithKey: identity.public,
      },
      identity.seed,
    ),
    certSigningToTls: encodeEdCert(
      // tor-cert-spec: the certified key is a SHA-256 of an X.509 certificate, key type 03, as C tor
      // writes it (routerkeys.c SIGNED_KEY_TYPE_SHA256_OF_X509); C tor does not check it on receipt.
      {
        certType: CertType.SIGNING_V_TLS_CERT,
        keyType: CertKeyType.SHA256_OF_X509,
        expiresHours,
        certifiedKey: sha256(tlsCertDer),
      },
      signing.seed,
    ),
    certSigningToAuth: encodeEdCert(
      { certType: CertType.SIGNING_V_LINK_AUTH, expiresHours, certifiedKey: auth.public },
      signing.seed,
    ),
    tls: {
      certPem: toPem('CERTIFICATE', tlsCertDer),
      keyPem: toPem('PRIVATE KEY', ed25519SeedToPkcs8(tlsSeed)),
    },
    tlsCertDer,
  };
}
