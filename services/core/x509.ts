/**
 * Minimal self-signed X.509 v3 certificates with Ed25519 keys (RFC 5280,
 * RFC 8410), for the TLS layer under WebSocket links.
 *
 * Tor relays present a throwaway TLS certificate and bind it to their
 * identity in CERTS (type 5: signing key -> SHA256(TLS cert)), so the
 * certificate itself carries no trust: a random CN, a short validity and no
 * extensions are enough. node:crypto can parse certificates but not make
 * them, hence this DER encoder.
 */
import { concat, utf8 } from './bytes.js';
import { ed25519PublicFromSeed, ed25519Sign, type Rng, randomBytes } from './crypto.js';
import { InvalidError } from './errors.js';

function derLength(n: number): Uint8Array {
  if (n < 0x80) return new Uint8Array([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>>= 8;
  }
  return new Uint8Array([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...body: Uint8Array[]): Uint8Array => {
  const b = concat(...body);
  return concat(new Uint8Array([tag]), derLength(b.length), b);
};

const seq = (...items: Uint8Array[]) => tlv(0x30, ...items);
const set = (...items: Uint8Array[]) => tlv(0x31, ...items);
const ED25519_ALG = seq(new Uint8Array([0x06, 0x03, 0x2b, 0x65, 0x70])); // OID 1.3.101.112
const CN_OID = new Uint8Array([0x06, 0x03, 0x55, 0x04, 0x03]); // 2.5.4.3

function positiveInteger(b: Uint8Array): Uint8Array {
  const body = (b[0] ?? 0) & 0x80 ? concat(new Uint8Array([0]), b) : b;
  return tlv(0x02, body);
}

function generalizedTime(d: Date): Uint8Array {
  const s = d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return tlv(0x18, utf8(s));
}

function name(cn: string): Uint8Array {
  return seq(set(seq(CN_OID, tlv(0x0c, utf8(cn)))));
}

export interface SelfSignedCertOptions {
  /** Ed25519 seed of the TLS key (not the relay identity). */
  seed: Uint8Array;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  rng?: Rng;
}

/** A DER-encoded self-signed Ed25519 certificate. */
export function selfSignedEd25519Cert(opts: SelfSignedCertOptions): Uint8Array {
  if (opts.notAfter <= opts.notBefore)
    throw new InvalidError('certificate', 'notAfter must follow notBefore');
  const serial = (opts.rng ?? randomBytes)(16);
  // DER INTEGERs are minimal: a leading 0x00 (first byte masked to 0) is rejected by OpenSSL
  // ("illegal padding"), so the first byte is kept in 0x40-0x7f: positive and non-zero.
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  const pub = ed25519PublicFromSeed(opts.seed);
  const tbs = seq(
    tlv(0xa0, tlv(0x02, new Uint8Array([2]))),
    positiveInteger(serial),
    ED25519_ALG,
    name(opts.commonName),
    seq(generalizedTime(opts.notBefore), generalizedTime(opts.notAfter)),
    name(opts.commonName),
    seq(ED25519_ALG, tlv(0x03, new Uint8Array([0]), pub)),
  );
  const sig = ed25519Sign(opts.seed, tbs);
  return seq(tbs, ED25519_ALG, tlv(0x03, new Uint8Array([0]), sig));
}

/** PEM armour for node:tls. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
