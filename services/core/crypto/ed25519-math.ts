/**
 * Ed25519 arithmetic OpenSSL does not offer, on @noble/curves: the RFC 8032
 * expanded secret key (a, RH) and signing with it, C tor's 64-byte
 * `hs_ed25519_secret_key` form, the torsion check, onion-service key
 * blinding (rend-spec-v3 §A.2) and the Curve25519 -> Ed25519 public key map
 * (rend-spec-v3 §2.5.2). Part of the crypto room (core/crypto.ts header).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { concat, utf8 } from '../bytes.js';
import { type ExpandedKey, sha3_256, sha512 } from '../crypto.js';
import { CryptoError, InvalidError } from '../errors.js';

function checkLen(what: string, b: Uint8Array, n: number): void {
  if (b.length !== n) throw new InvalidError(what, `expected ${n} bytes, got ${b.length}`);
}

const L = ed25519.Point.Fn.ORDER;
const Point = ed25519.Point;

function leToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function bigintToLe32(v: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;

/** RFC 8032 §5.1.5 expansion of a seed into (a, RH). */
export function ed25519Expand(seed: Uint8Array): ExpandedKey {
  checkLen('ed25519 seed', seed, 32);
  const h = sha512(seed);
  const s = h.slice(0, 32);
  s[0]! &= 248;
  s[31]! &= 127;
  s[31]! |= 64;
  const a = mod(leToBigint(s), L);
  return { scalar: bigintToLe32(a), prefix: h.slice(32, 64), public: Point.BASE.multiply(a).toBytes() };
}

/**
 * C tor's 64-byte Ed25519 secret key for a seed (ed25519_ref10_seckey_expand):
 * SHA-512(seed) with the scalar half clamped but not reduced mod l, the form
 * `hs_ed25519_secret_key` files hold.
 */
export function ed25519SecretKeyFromSeed(seed: Uint8Array): Uint8Array {
  checkLen('ed25519 seed', seed, 32);
  const h = sha512(seed);
  h[0]! &= 248;
  h[31]! &= 63;
  h[31]! |= 64;
  return h;
}

/**
 * An expanded key from C tor's 64-byte secret key (scalar `a` | prefix `RH`),
 * as ed25519_public_key_generate reads it: the scalar is used as given
 * (reduced mod l here, which signs and blinds identically), never re-clamped.
 * A scalar that is 0 mod l has no usable public key and is refused.
 */
export function ed25519ExpandedFromSecretKey(secretKey: Uint8Array): ExpandedKey {
  checkLen('ed25519 secret key', secretKey, 64);
  const a = mod(leToBigint(secretKey.subarray(0, 32)), L);
  if (a === 0n) throw new InvalidError('ed25519 secret key', 'scalar is zero mod l');
  return {
    scalar: bigintToLe32(a),
    prefix: secretKey.slice(32, 64),
    public: Point.BASE.multiply(a).toBytes(),
  };
}

/** RFC 8032 signing with an already expanded key, as onion services do with blinded keys. */
export function ed25519SignExpanded(key: ExpandedKey, message: Uint8Array): Uint8Array {
  const r = mod(leToBigint(sha512(key.prefix, message)), L);
  const R = Point.BASE.multiply(r === 0n ? 1n : r).toBytes();
  const k = mod(leToBigint(sha512(R, key.public, message)), L);
  const S = mod(r + k * leToBigint(key.scalar), L);
  return concat(R, bigintToLe32(S));
}

/** Decodes a point and checks it is on the curve and torsion-free (rend-spec-v3 §6: l*A = identity). */
export function ed25519IsValidTorsionFree(pub: Uint8Array): boolean {
  if (pub.length !== 32) return false;
  try {
    const P = Point.fromBytes(pub);
    return !P.is0() && P.isTorsionFree();
  } catch {
    return false;
  }
}

const BLIND_STRING = utf8('Derive temporary signing key\0');
const BLIND_BASEPOINT = utf8(
  '(15112221349535400772501151409588531511454012693041857206046113283949847762202, ' +
    '46316835694926478169428394003475163141307993866256225615783033603165251855960)',
);

/**
 * rend-spec-v3 §A.2 blinding factor:
 * h = H(BLIND_STRING | A | s | B | N) with N = "key-blind" | INT_8(tp) | INT_8(len), before
 * clamping (the published vectors give it unclamped).
 */
export function hsBlindingFactor(pub: Uint8Array, periodNum: bigint, periodLength: bigint): Uint8Array {
  checkLen('ed25519 public key', pub, 32);
  const n = new Uint8Array(16);
  const dv = new DataView(n.buffer);
  dv.setBigUint64(0, periodNum);
  dv.setBigUint64(8, periodLength);
  return sha3_256(BLIND_STRING, pub, BLIND_BASEPOINT, utf8('key-blind'), n);
}

function blindScalar(factor: Uint8Array): bigint {
  const h = factor.slice();
  h[0]! &= 248;
  h[31]! &= 63;
  h[31]! |= 64;
  // The clamped factor can exceed l; noble's multiply wants a reduced scalar.
  return mod(leToBigint(h), L);
}

/** A' = h*A. Throws CryptoError if A is not a valid point. */
export function hsBlindPublicKey(pub: Uint8Array, periodNum: bigint, periodLength: bigint): Uint8Array {
  let A: InstanceType<typeof Point>;
  try {
    A = Point.fromBytes(pub);
  } catch {
    throw new CryptoError('blind public key', 'not a valid Ed25519 point');
  }
  const h = hsBlindingFactor(pub, periodNum, periodLength);
  return A.multiply(blindScalar(h)).toBytes();
}

/** a' = h*a mod l, RH' = SHA512("Derive temporary signing key hash input" | RH)[:32]. */
export function hsBlindExpandedKey(key: ExpandedKey, periodNum: bigint, periodLength: bigint): ExpandedKey {
  const h = blindScalar(hsBlindingFactor(key.public, periodNum, periodLength));
  const a = mod(h * leToBigint(key.scalar), L);
  const prefix = sha512(utf8('Derive temporary signing key hash input'), key.prefix).slice(0, 32);
  return { scalar: bigintToLe32(a), prefix, public: Point.BASE.multiply(a).toBytes() };
}

/**
 * Blinding with a caller-supplied (unclamped) factor h, for the raw-h test
 * vectors (arti tor-llcrypto keymanip.rs, C tor ed25519_exts_ref.py).
 */
export function hsBlindPublicKeyWithFactor(pub: Uint8Array, factor: Uint8Array): Uint8Array {
  checkLen('blinding factor', factor, 32);
  let A: InstanceType<typeof Point>;
  try {
    A = Point.fromBytes(pub);
  } catch {
    throw new CryptoError('blind public key', 'not a valid Ed25519 point');
  }
  return A.multiply(blindScalar(factor)).toBytes();
}

export function hsBlindExpandedKeyWithFactor(key: ExpandedKey, factor: Uint8Array): ExpandedKey {
  checkLen('blinding factor', factor, 32);
  const a = mod(blindScalar(factor) * leToBigint(key.scalar), L);
  const prefix = sha512(utf8('Derive temporary signing key hash input'), key.prefix).slice(0, 32);
  return { scalar: bigintToLe32(a), prefix, public: Point.BASE.multiply(a).toBytes() };
}

const FIELD_P = 2n ** 255n - 19n;

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

/**
 * The Ed25519 public key birationally equivalent to a Curve25519 one:
 * y = (u - 1) / (u + 1), with the given sign bit (rend-spec-v3 §2.5.2
 * enc-key-cert and tor-spec ntor-onion-key-crosscert; arti
 * `convert_curve25519_to_ed25519_public`). CryptoError for u = -1.
 */
export function x25519ToEd25519Public(u: Uint8Array, signBit: 0 | 1 = 0): Uint8Array {
  checkLen('x25519 public key', u, 32);
  const uu = mod(leToBigint(u) & (2n ** 255n - 1n), FIELD_P);
  const den = mod(uu + 1n, FIELD_P);
  if (den === 0n) throw new CryptoError('x25519 to ed25519', 'u = -1 has no Edwards equivalent');
  const y = mod((uu - 1n) * modPow(den, FIELD_P - 2n, FIELD_P), FIELD_P);
  const out = bigintToLe32(y);
  out[31]! |= signBit << 7;
  return out;
}
