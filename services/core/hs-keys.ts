/**
 * Onion-service key derivations (rend-spec-v3 §0.3 MAC, App. A.2 key
 * blinding, §2.1 credential and subcredential).
 *
 * The curve arithmetic lives in crypto.ts; this module names the rend-spec
 * constructions so the descriptor, intro and rendezvous code read like the
 * spec. Time periods are bigints because they go straight into INT_8.
 */
import { int8, utf8 } from './bytes.js';
import {
  hsBlindExpandedKey,
  hsBlindExpandedKeyWithFactor,
  hsBlindingFactor,
  hsBlindPublicKey,
  hsBlindPublicKeyWithFactor,
} from './crypto/ed25519-math.js';
import { type ExpandedKey, sha3_256 } from './crypto.js';
import { InvalidError } from './errors.js';

function check32(what: string, b: Uint8Array): void {
  if (b.length !== 32) throw new InvalidError(what, `expected 32 bytes, got ${b.length}`);
}

/** rend-spec-v3 §0.3: MAC(k, m) = H(INT_8(len(k)) | k | m), H = SHA3-256. */
export function hsMac(key: Uint8Array, msg: Uint8Array): Uint8Array {
  return sha3_256(int8(key.length), key, msg);
}

/** credential = H("credential" | A) (rend-spec-v3 §2.1). */
export function hsCredential(identityPub: Uint8Array): Uint8Array {
  check32('onion identity key', identityPub);
  return sha3_256(utf8('credential'), identityPub);
}

/** subcredential = H("subcredential" | credential | A') (rend-spec-v3 §2.1). */
export function hsSubcredential(identityPub: Uint8Array, blindedPub: Uint8Array): Uint8Array {
  check32('blinded key', blindedPub);
  return sha3_256(utf8('subcredential'), hsCredential(identityPub), blindedPub);
}

/** The unclamped blinding factor h for (A, tp, len) (rend-spec-v3 App. A.2). */
export function blindingFactor(identityPub: Uint8Array, tp: bigint, len: bigint): Uint8Array {
  return hsBlindingFactor(identityPub, tp, len);
}

/** A' = h*A for time period `tp` of length `len` minutes. Throws CryptoError for a non-point. */
export function blindIdentity(identityPub: Uint8Array, tp: bigint, len: bigint): Uint8Array {
  check32('onion identity key', identityPub);
  return hsBlindPublicKey(identityPub, tp, len);
}

/** The blinded expanded secret (a', RH') that signs the descriptor-signing-key cert. */
export function blindExpandedKey(expanded: ExpandedKey, tp: bigint, len: bigint): ExpandedKey {
  return hsBlindExpandedKey(expanded, tp, len);
}

/** A' from a raw (unclamped) factor h, as the C tor / arti blinding vectors give it. */
export function blindIdentityWithFactor(identityPub: Uint8Array, factor: Uint8Array): Uint8Array {
  check32('onion identity key', identityPub);
  return hsBlindPublicKeyWithFactor(identityPub, factor);
}

/** (a', RH') from a raw (unclamped) factor h. */
export function blindExpandedKeyWithFactor(expanded: ExpandedKey, factor: Uint8Array): ExpandedKey {
  return hsBlindExpandedKeyWithFactor(expanded, factor);
}

/** Convenience for callers holding both halves: the subcredential for one time period. */
export function subcredentialFor(identityPub: Uint8Array, tp: bigint, len: bigint): Uint8Array {
  return hsSubcredential(identityPub, blindIdentity(identityPub, tp, len));
}
