/**
 * Onion-service client authorization keys in Tor's file formats (tor(1)
 * "CLIENT AUTHORIZATION"; the keys are rend-spec-v3 §2.5.1.2's x25519
 * KP/KS_hsc_desc_enc):
 *
 * - a service's `authorized_clients/<name>.auth`:
 *     descriptor:x25519:<base32 public key>
 * - a client's `<name>.auth_private`:
 *     <56-char onion address without .onion>:descriptor:x25519:<base32 private key>
 *
 * Base32 is unpadded, in either case; one line per file, surrounding
 * whitespace ignored. Files made by Tor work here and the other way round.
 */
import { fromBase32, toBase32 } from './bytes.js';
import { type Rng, x25519, x25519PublicFromSecret } from './crypto.js';
import { InvalidError } from './errors.js';
import { decodeOnionAddress, encodeOnionAddress, ONION_LABEL_LENGTH } from './onion-address.js';

const PREFIX = 'descriptor:x25519:';
/** Longer than any valid line: refuse before splitting megabytes. */
const MAX_LINE = 200;

export interface ClientAuthKeyPair {
  secret: Uint8Array;
  public: Uint8Array;
}

/** A client's key for one onion service. */
export interface ClientAuthPrivate {
  /** The service's identity key (from the address in the file). */
  identity: Uint8Array;
  secret: Uint8Array;
}

function key(b32: string, what: string): Uint8Array {
  const k = fromBase32(b32, what);
  if (k.length !== 32) throw new InvalidError(what, 'key must be 32 bytes (52 base32 characters)');
  return k;
}

// Any clamped scalar sends a low-order point to zero, so one fixed scalar finds them all.
const PROBE_SCALAR = new Uint8Array(32).fill(0x42);

/** A public key a service can do x25519 with (not a low-order point, which would stop every descriptor build). */
export function checkClientAuthPublicKey(pub: Uint8Array, what = 'authorized client'): Uint8Array {
  if (pub.length !== 32) throw new InvalidError(what, 'key must be 32 bytes');
  try {
    x25519(PROBE_SCALAR, pub);
  } catch {
    throw new InvalidError(what, 'not a usable x25519 key (low-order point)');
  }
  return pub;
}

function line(text: string, what: string): string {
  if (text.length > MAX_LINE) throw new InvalidError(what, 'longer than any key line');
  const s = text.trim();
  if (s.includes('\n')) throw new InvalidError(what, 'more than one line');
  return s;
}

export function generateClientAuthKey(rng: Rng): ClientAuthKeyPair {
  const secret = rng(32);
  return { secret, public: x25519PublicFromSecret(secret) };
}

/** A `.auth` line: `descriptor:x25519:<base32 public key>`. */
export function formatAuthorizedClient(publicKey: Uint8Array): string {
  return `${PREFIX}${toBase32(publicKey).toUpperCase()}`;
}

export function parseAuthorizedClient(text: string): Uint8Array {
  const what = 'authorized client';
  const s = line(text, what);
  if (!s.toLowerCase().startsWith(PREFIX)) throw new InvalidError(what, `must start with "${PREFIX}"`);
  return parseClientAuthPublicKey(s.slice(PREFIX.length), what);
}

/** A public key as the base32 after `descriptor:x25519:` (how the operator's CRD carries it). */
export function parseClientAuthPublicKey(b32: string, what = 'authorized client'): Uint8Array {
  return checkClientAuthPublicKey(key(b32, what), what);
}

/** A `.auth_private` line for the service with identity key `identity`. */
export function formatClientAuthPrivate(identity: Uint8Array, secret: Uint8Array): string {
  const address = encodeOnionAddress(identity).slice(0, ONION_LABEL_LENGTH);
  return `${address}:${PREFIX}${toBase32(secret).toUpperCase()}`;
}

export function parseClientAuthPrivate(text: string): ClientAuthPrivate {
  const what = 'client auth private key';
  const s = line(text, what);
  const colon = s.indexOf(':');
  if (colon < 0) throw new InvalidError(what, 'want <onion address>:descriptor:x25519:<key>');
  const rest = s.slice(colon + 1);
  if (!rest.toLowerCase().startsWith(PREFIX))
    throw new InvalidError(what, `"${PREFIX}" must follow the address`);
  return { identity: decodeOnionAddress(s.slice(0, colon)), secret: key(rest.slice(PREFIX.length), what) };
}
