/**
 * v3 onion addresses (rend-spec-v3 §6 "Encoding onion addresses").
 *
 *   onion_address = base32(PUBKEY | CHECKSUM | VERSION) + ".onion"
 *   CHECKSUM = H(".onion checksum" | PUBKEY | VERSION)[:2], VERSION = 03
 *
 * 35 bytes encode to exactly 56 base32 characters, so there is no padding.
 * Decoding is case-insensitive and, like Tor's parse_extended_hostname,
 * takes the label just before ".onion" so "www.<addr>.onion" works.
 * Errors carry `reason` so the SOCKS layer can tell a malformed address
 * from a wrong checksum or a key with a torsion component.
 */
import { concat, fromBase32, toBase32, utf8 } from './bytes.js';
import { ed25519IsValidTorsionFree } from './crypto/ed25519-math.js';
import { sha3_256 } from './crypto.js';
import { InvalidError } from './errors.js';

export const ONION_VERSION = 3;
/** Length of the base32 label (without ".onion"). */
export const ONION_LABEL_LENGTH = 56;

const CHECKSUM_PREFIX = utf8('.onion checksum');

export type OnionAddressErrorReason = 'format' | 'checksum' | 'version' | 'torsion';

function fail(reason: OnionAddressErrorReason, message: string): InvalidError {
  return new InvalidError('onion address', message, { reason });
}

function checksum(pub: Uint8Array, version: number): Uint8Array {
  return sha3_256(CHECKSUM_PREFIX, pub, new Uint8Array([version])).subarray(0, 2);
}

/** The "<56 chars>.onion" hostname for an Ed25519 identity key. */
export function encodeOnionAddress(pub: Uint8Array): string {
  if (pub.length !== 32)
    throw new InvalidError('onion address', 'identity key must be 32 bytes', { reason: 'format' });
  const v = new Uint8Array([ONION_VERSION]);
  return `${toBase32(concat(pub, checksum(pub, ONION_VERSION), v))}.onion`;
}

/** True for any hostname Tor would treat as an onion service (ends in ".onion"), valid or not. */
export function isOnionHostname(host: string): boolean {
  return /\.onion\.?$/i.test(host);
}

/**
 * The identity key named by an onion address. Accepts any letter case, an
 * optional ".onion" suffix (and trailing dot), and subdomain labels before
 * the address. Throws InvalidError with context.reason set.
 */
export function decodeOnionAddress(address: string): Uint8Array {
  let host = address.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.endsWith('.onion')) host = host.slice(0, -'.onion'.length);
  const label = host.slice(host.lastIndexOf('.') + 1);
  if (label.length !== ONION_LABEL_LENGTH) {
    const shown = /^[a-z0-9-]{1,24}$/.test(label) ? ` ("${label}")` : '';
    throw fail(
      'format',
      `expected ${ONION_LABEL_LENGTH} base32 characters before ".onion", got ${label.length}${shown}`,
    );
  }
  let raw: Uint8Array;
  try {
    raw = fromBase32(label);
  } catch {
    throw fail('format', 'not base32');
  }
  const pub = raw.slice(0, 32);
  const version = raw[34]!;
  if (version !== ONION_VERSION)
    throw fail('version', `unsupported version ${version} (v3 addresses end in "d"; mistyped?)`);
  const want = checksum(pub, version);
  if (raw[32] !== want[0] || raw[33] !== want[1]) throw fail('checksum', 'bad checksum');
  // rend-spec-v3 §6: reject keys with a torsion component (and non-points),
  // or one service could have several addresses.
  if (!ed25519IsValidTorsionFree(pub)) throw fail('torsion', 'not a valid torsion-free Ed25519 key');
  return pub;
}
