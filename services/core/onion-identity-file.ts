/**
 * The onion service's identity key file formats (rend-spec-v3 §1.9: the
 * master identity key, KS_hs_id, whose public half is the onion address).
 *
 * Shallot's own file is one small JSON document holding the 32-byte Ed25519
 * seed; C tor's `hs_ed25519_secret_key` (core/ctor/hs-key-files.ts) holds
 * the 64-byte expanded key only, and is read here too so a C tor service's
 * key moves over unchanged. The service reads and creates the file
 * (onion-service/identity.ts); the operator keeps the JSON document in the
 * service's identity Secret (operator/reconcile/onion-service.ts).
 *
 * Not in this module: reading and writing files (no I/O in core).
 */
import { fromHex, toHex } from './bytes.js';
import { ed25519ExpandedFromSecretKey, ed25519SecretKeyFromSeed } from './crypto/ed25519-math.js';
import { decodeHsSecretKeyFile, isCtorKeyFile } from './ctor/hs-key-files.js';
import { ShallotError } from './errors.js';
import { encodeOnionAddress } from './onion-address.js';

const KIND = 'shallot-onion-service-identity-v1';

export class IdentityKeyError extends ShallotError {
  constructor(file: string, message: string) {
    super('ERR_ONION_KEY_FILE', `${file}: ${message}`, { file });
  }
}

export function encodeIdentityFile(seed: Uint8Array): string {
  if (seed.length !== 32) throw new Error('identity seed must be 32 bytes');
  return `${JSON.stringify({ kind: KIND, ed25519Seed: toHex(seed) })}\n`;
}

export function decodeIdentityFile(text: string, file = 'identity key'): Uint8Array {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new IdentityKeyError(file, 'not JSON');
  }
  const d = doc as { kind?: unknown; ed25519Seed?: unknown };
  if (d.kind !== KIND) throw new IdentityKeyError(file, `not a ${KIND} file`);
  if (typeof d.ed25519Seed !== 'string' || !/^[0-9a-f]{64}$/.test(d.ed25519Seed)) {
    throw new IdentityKeyError(file, 'ed25519Seed must be 64 lowercase hex digits');
  }
  return fromHex(d.ed25519Seed);
}

/** An onion service's identity secret, from either key file format. */
export interface OnionIdentityKey {
  /** The 32-byte seed of a key Shallot made; null for a key from C tor (which keeps no seed). */
  seed: Uint8Array | null;
  /** C tor's 64-byte expanded secret key (clamped scalar | prefix), what descriptors are signed with. */
  secretKey: Uint8Array;
}

export function identityKeyFromSeed(seed: Uint8Array): OnionIdentityKey {
  return { seed, secretKey: ed25519SecretKeyFromSeed(seed) };
}

/** A key file's bytes: C tor's `hs_ed25519_secret_key` or Shallot's JSON seed file. */
export function decodeIdentityKey(bytes: Uint8Array, file = 'identity key'): OnionIdentityKey {
  if (!isCtorKeyFile(bytes)) {
    return identityKeyFromSeed(decodeIdentityFile(Buffer.from(bytes).toString('utf8'), file));
  }
  try {
    const secretKey = decodeHsSecretKeyFile(bytes);
    ed25519ExpandedFromSecretKey(secretKey); // refuses a scalar with no public key
    return { seed: null, secretKey };
  } catch (e) {
    throw new IdentityKeyError(file, (e as Error).message);
  }
}

/** The onion address ("<56 chars>.onion") of an identity key. */
export function identityAddress(key: OnionIdentityKey): string {
  return encodeOnionAddress(ed25519ExpandedFromSecretKey(key.secretKey).public);
}
