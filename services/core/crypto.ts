/**
 * The crypto module: the only file that imports node:crypto or @noble/*.
 *
 * Overview: node:crypto (OpenSSL) is the fast path for X25519, Ed25519
 * sign/verify, hashes, HMAC, HKDF and AES-CTR. @noble/curves does what
 * OpenSSL cannot: Ed25519 point arithmetic for key blinding
 * (rend-spec-v3 §A.2), signing with an expanded key, and torsion checks.
 *
 * Design notes: AES-CTR is exposed as a stateful keystream (`CtrStream`)
 * because tor-spec §6 keeps one continuous stream per hop and direction
 * across cells (509 is not a multiple of 16). Randomness is passed in as an
 * `Rng` so tests can replay published vectors byte for byte.
 */
import * as nc from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { concat, utf8 } from './bytes.js';
import { CryptoError, InvalidError } from './errors.js';

export type Rng = (n: number) => Uint8Array;

/** Cryptographically secure randomness (the default Rng). */
export const randomBytes: Rng = (n) => new Uint8Array(nc.randomBytes(n));

const u8 = (b: Buffer | ArrayBuffer): Uint8Array =>
  b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function checkLen(what: string, b: Uint8Array, n: number): void {
  if (b.length !== n) throw new InvalidError(what, `expected ${n} bytes, got ${b.length}`);
}

/* ------------------------------------------------------------------ hashes */

export const sha1 = (...parts: Uint8Array[]): Uint8Array => digest('sha1', parts);
export const sha256 = (...parts: Uint8Array[]): Uint8Array => digest('sha256', parts);
export const sha512 = (...parts: Uint8Array[]): Uint8Array => digest('sha512', parts);
export const sha3_256 = (...parts: Uint8Array[]): Uint8Array => digest('sha3-256', parts);

function digest(alg: string, parts: Uint8Array[]): Uint8Array {
  const h = nc.createHash(alg);
  for (const p of parts) h.update(p);
  return u8(h.digest());
}

/** SHAKE-256 extendable output, `outLen` bytes. */
export function shake256(outLen: number, ...parts: Uint8Array[]): Uint8Array {
  const h = nc.createHash('shake256', { outputLength: outLen });
  for (const p of parts) h.update(p);
  return u8(h.digest());
}

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = nc.createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return u8(h.digest());
}

/** tor-spec §5.2.2 KDF-RFC5869: HKDF-SHA256(salt=t_key, IKM=secret, info=m_expand). */
export function kdfRfc5869(secret: Uint8Array, salt: Uint8Array, info: Uint8Array, len: number): Uint8Array {
  return u8(nc.hkdfSync('sha256', secret, salt, info, len));
}

/**
 * A running digest (SHA-1 for normal hops, SHA3-256 for the onion-service
 * hop) that can be cloned: tor-spec §6.1 checks 'recognized' cells on a
 * copy and keeps it only if the digest matches.
 */
export class RunningDigest {
  private constructor(
    private h: nc.Hash,
    readonly algorithm: 'sha1' | 'sha3-256',
  ) {}

  static create(algorithm: 'sha1' | 'sha3-256', seed: Uint8Array): RunningDigest {
    const h = nc.createHash(algorithm);
    h.update(seed);
    return new RunningDigest(h, algorithm);
  }

  update(b: Uint8Array): this {
    this.h.update(b);
    return this;
  }

  clone(): RunningDigest {
    return new RunningDigest(this.h.copy(), this.algorithm);
  }

  /** The digest so far, without ending the running state. */
  peek(): Uint8Array {
    return u8(this.h.copy().digest());
  }

  /** The digest, ending this state: for a clone that is dropped afterwards (no second copy, unlike peek). */
  finish(): Uint8Array {
    return u8(this.h.digest());
  }
}

/* ------------------------------------------------------------------ ciphers */

/**
 * A busy stream generates its keystream ahead, KEYSTREAM_AHEAD bytes per
 * OpenSSL call, once it has processed KEYSTREAM_AFTER bytes: one call per 16
 * cells instead of one per 509-byte cell, and no output buffer per cell
 * (each `Cipher.update` allocates one; the per-call cost and that garbage
 * were most of the relay-cell AES time, issue 16). Streams that carry a few
 * cells (most circuits) never buffer, so idle circuits hold no keystream:
 * at most KEYSTREAM_AHEAD bytes per busy hop and direction.
 */
const KEYSTREAM_AFTER = 32 * 1024;
const KEYSTREAM_AHEAD = 8 * 1024;
const ZEROS = new Uint8Array(KEYSTREAM_AHEAD);
/** Keystream bytes lined up with the data's alignment, so it can be XORed a word at a time. */
const XOR_SPAN = 2048;
const scratch8 = new Uint8Array(XOR_SPAN + 4);
const scratch32 = new Int32Array(scratch8.buffer);

/** data[off, off + n) ^= ks[ko, ko + n), n <= XOR_SPAN: 32-bit words where both line up (through scratch). */
function xorKeystream(data: Uint8Array, off: number, n: number, ks: Uint8Array, ko: number): void {
  const abs = data.byteOffset + off;
  const a = abs & 3;
  scratch8.set(ks.subarray(ko, ko + n), a);
  const head = Math.min(n, (4 - a) & 3);
  for (let j = 0; j < head; j++) data[off + j]! ^= scratch8[a + j]!;
  const words = (n - head) >> 2;
  if (words > 0) {
    const dw = new Int32Array(data.buffer, abs + head, words);
    const s0 = (a + head) >> 2;
    for (let w = 0; w < words; w++) dw[w]! ^= scratch32[s0 + w]!;
  }
  for (let j = head + (words << 2); j < n; j++) data[off + j]! ^= scratch8[a + j]!;
}

/** One continuous AES-CTR keystream (IV 0 unless given); `update` encrypts and decrypts alike. */
export class CtrStream {
  private readonly c: nc.Cipher;
  /** Keystream generated ahead and not yet used: ks[ko..]. */
  private ks: Uint8Array = ZEROS.subarray(0, 0);
  private ko = 0;
  private processed = 0;

  constructor(key: Uint8Array, iv: Uint8Array = new Uint8Array(16)) {
    if (key.length !== 16 && key.length !== 32) throw new InvalidError('aes key', `bad length ${key.length}`);
    checkLen('aes iv', iv, 16);
    this.c = nc.createCipheriv(key.length === 16 ? 'aes-128-ctr' : 'aes-256-ctr', key, iv);
  }

  update(data: Uint8Array): Uint8Array {
    if (this.ko === this.ks.length) return u8(this.c.update(data));
    const out = new Uint8Array(data); // a copy (Buffer#slice would be a view)
    this.xorAhead(out);
    return out;
  }

  /** Encrypts `data` in place (the output of CTR has the input's length). */
  updateInPlace(data: Uint8Array): void {
    if (this.ko === this.ks.length && this.processed < KEYSTREAM_AFTER) {
      this.processed += data.length;
      data.set(this.c.update(data));
      return;
    }
    this.xorAhead(data);
  }

  /** XORs with keystream generated ahead (the cipher itself is past it). */
  private xorAhead(data: Uint8Array): void {
    let i = 0;
    while (i < data.length) {
      if (this.ko === this.ks.length) {
        this.ks = u8(this.c.update(ZEROS));
        this.ko = 0;
      }
      const n = Math.min(data.length - i, this.ks.length - this.ko, XOR_SPAN);
      xorKeystream(data, i, n, this.ks, this.ko);
      i += n;
      this.ko += n;
    }
  }
}

/** One-shot AES-CTR (a fresh keystream), as used for descriptor layers and INTRODUCE1. */
export function aesCtr(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  return new CtrStream(key, iv).update(data);
}

/* ------------------------------------------------------------------ X25519 */

const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

export interface X25519KeyPair {
  secret: Uint8Array;
  public: Uint8Array;
}

// Importing a raw secret through PKCS#8 costs ~10x a JWK import (OpenSSL
// derives the public half), so private keys are cached per secret and
// imported as JWK whenever the public half is known.
const privateKeyCache = new WeakMap<Uint8Array, nc.KeyObject>();

function x25519PrivateKey(secret: Uint8Array, pub?: Uint8Array): nc.KeyObject {
  const cached = privateKeyCache.get(secret);
  if (cached) return cached;
  checkLen('x25519 secret', secret, 32);
  const key = pub
    ? nc.createPrivateKey({
        key: { kty: 'OKP', crv: 'X25519', d: b64url(secret), x: b64url(pub) },
        format: 'jwk',
      })
    : nc.createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secret]), format: 'der', type: 'pkcs8' });
  privateKeyCache.set(secret, key);
  return key;
}

function x25519PublicKey(pub: Uint8Array): nc.KeyObject {
  checkLen('x25519 public key', pub, 32);
  return nc.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(pub) }, format: 'jwk' });
}

const b64url = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

export function x25519PublicFromSecret(secret: Uint8Array): Uint8Array {
  return x25519RawPublic(nc.createPublicKey(x25519PrivateKey(secret)));
}

/**
 * Keys leave OpenSSL as DER, never as JWK: in Node 20 a garbage collection
 * during a JWK export can deadlock the main thread for good (issue 12: a
 * relay froze after ~3,500 CREATE2 cells; DER/raw export did not hang in
 * 200,000 keys, test/slow/keygen-soak.test.ts).
 */
function x25519RawPublic(key: nc.KeyObject): Uint8Array {
  return u8(key.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length));
}

export function x25519Generate(rng: Rng = randomBytes): X25519KeyPair {
  if (rng === randomBytes) {
    // OpenSSL's own generation avoids the slow raw-secret import.
    const { privateKey, publicKey } = nc.generateKeyPairSync('x25519');
    const secret = u8(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(X25519_PKCS8.length));
    privateKeyCache.set(secret, privateKey);
    return { secret, public: x25519RawPublic(publicKey) };
  }
  const secret = rng(32);
  return { secret, public: x25519PublicFromSecret(secret) };
}

/**
 * EXP(P, s): X25519 shared secret. Throws CryptoError for a low-order
 * peer key (an all-zero output), which every Tor handshake must reject.
 */
export function x25519(ours: Uint8Array | X25519KeyPair, peerPublic: Uint8Array): Uint8Array {
  const privateKey =
    ours instanceof Uint8Array ? x25519PrivateKey(ours) : x25519PrivateKey(ours.secret, ours.public);
  let out: Uint8Array;
  try {
    out = u8(nc.diffieHellman({ privateKey, publicKey: x25519PublicKey(peerPublic) }));
  } catch (e) {
    if (e instanceof InvalidError) throw e;
    throw new CryptoError('x25519', 'key agreement failed (low-order point?)');
  }
  if (out.every((b) => b === 0)) throw new CryptoError('x25519', 'all-zero shared secret');
  return out;
}

/* ------------------------------------------------------------------ Ed25519 */

export interface Ed25519KeyPair {
  /** The 32-byte seed (RFC 8032 private key). */
  seed: Uint8Array;
  public: Uint8Array;
}

/** An expanded Ed25519 secret: scalar `a` (little-endian, < l) and nonce prefix `RH`. */
export interface ExpandedKey {
  scalar: Uint8Array;
  prefix: Uint8Array;
  public: Uint8Array;
}

function ed25519PrivateKey(seed: Uint8Array): nc.KeyObject {
  checkLen('ed25519 seed', seed, 32);
  return nc.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
}

const edPublicCache = new Map<string, nc.KeyObject>();

function ed25519PublicKey(pub: Uint8Array): nc.KeyObject {
  checkLen('ed25519 public key', pub, 32);
  const k = Buffer.from(pub).toString('hex');
  let obj = edPublicCache.get(k);
  if (!obj) {
    obj = nc.createPublicKey({ key: Buffer.concat([ED25519_SPKI, pub]), format: 'der', type: 'spki' });
    if (edPublicCache.size > 4096) edPublicCache.clear();
    edPublicCache.set(k, obj);
  }
  return obj;
}

export function ed25519PublicFromSeed(seed: Uint8Array): Uint8Array {
  const der = nc.createPublicKey(ed25519PrivateKey(seed)).export({ format: 'der', type: 'spki' });
  return u8(der.subarray(ED25519_SPKI.length));
}

export function ed25519Generate(rng: Rng = randomBytes): Ed25519KeyPair {
  const seed = rng(32);
  return { seed, public: ed25519PublicFromSeed(seed) };
}

export function ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
  return u8(nc.sign(null, message, ed25519PrivateKey(seed)));
}

/** Verifies an Ed25519 signature; false (never a throw) for any malformed key or signature. */
export function ed25519Verify(pub: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  if (pub.length !== 32 || sig.length !== 64) return false;
  try {
    return nc.verify(null, message, ed25519PublicKey(pub), sig);
  } catch {
    return false;
  }
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

/* ------------------------------------------------------------------ compare */

/** Constant-time equality for MACs, AUTH values and digests. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return nc.timingSafeEqual(a, b);
}

/**
 * Deviation (Shallot has no RSA keys): where Tor uses the 20-byte RSA
 * identity digest (ntor NODEID, legacy link specifier), use the first
 * 20 bytes of SHA-256 of the Ed25519 identity.
 */
export function legacyIdFromEd25519(ed25519Id: Uint8Array): Uint8Array {
  checkLen('ed25519 identity', ed25519Id, 32);
  return sha256(ed25519Id).slice(0, 20);
}

/** PKCS#8 DER of an Ed25519 seed, for handing a TLS key to node:tls. */
export function ed25519SeedToPkcs8(seed: Uint8Array): Uint8Array {
  checkLen('ed25519 seed', seed, 32);
  return concat(ED25519_PKCS8, seed);
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

/**
 * Incremental SHA-256, for checking downloads too large to hold in memory
 * (the load generator verifies every response body against /sha256/<n>).
 */
export function sha256Incremental(): { update(b: Uint8Array): void; digest(): Uint8Array } {
  const h = nc.createHash('sha256');
  return {
    update: (b) => {
      h.update(b);
    },
    digest: () => u8(h.digest()),
  };
}

/* ------------------------------------------------------------------ RSA */

/** An RSA public key from a C tor directory document (dir-spec §1.2 "RSA PUBLIC KEY"). */
export interface RsaPublicKey {
  /** Canonical PKCS#1 DER (re-encoded), what C tor's fingerprints hash. */
  der: Uint8Array;
  bits: number;
  key: nc.KeyObject;
}

/**
 * Parses PKCS#1 DER. Like C tor's tokenizer (parsecommon.c, "bad
 * exponent") the exponent must be 65537; 1024-8192 bits bounds the work a
 * hostile document can cause.
 */
export function rsaPublicKeyFromPkcs1(der: Uint8Array): RsaPublicKey {
  let key: nc.KeyObject;
  try {
    key = nc.createPublicKey({ key: Buffer.from(der), format: 'der', type: 'pkcs1' });
  } catch {
    throw new InvalidError('RSA public key', 'not PKCS#1 DER');
  }
  const d = key.asymmetricKeyDetails;
  const bits = d?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || d?.publicExponent !== 65537n || bits < 1024 || bits > 8192)
    throw new InvalidError('RSA public key', 'not RSA-1024..8192 with exponent 65537');
  return { der: u8(key.export({ format: 'der', type: 'pkcs1' })), bits, key };
}

/** An X.509 certificate with an RSA key: C tor's link CERTS types 1 and 2 (tor-spec §4.2). */
export interface X509Rsa {
  key: RsaPublicKey;
  validFromMs: number;
  validToMs: number;
  /** The certificate's signature verifies with its own key. */
  selfSigned: boolean;
}

export function x509RsaCert(der: Uint8Array): X509Rsa {
  let cert: nc.X509Certificate;
  let pub: nc.KeyObject;
  // OpenSSL parses the key only when asked for it: a corrupt key fails there, not in the constructor.
  try {
    cert = new nc.X509Certificate(Buffer.from(der));
    pub = cert.publicKey;
  } catch {
    throw new InvalidError('X.509 certificate', 'not DER');
  }
  if (pub.asymmetricKeyType !== 'rsa') throw new InvalidError('X.509 certificate', 'not an RSA key');
  const validFromMs = Date.parse(cert.validFrom);
  const validToMs = Date.parse(cert.validTo);
  if (Number.isNaN(validFromMs) || Number.isNaN(validToMs))
    throw new InvalidError('X.509 certificate', 'bad validity');
  const key = rsaPublicKeyFromPkcs1(u8(pub.export({ format: 'der', type: 'pkcs1' })));
  let selfSigned: boolean;
  try {
    selfSigned = cert.verify(pub);
  } catch {
    selfSigned = false;
  }
  return { key, validFromMs, validToMs, selfSigned };
}

/**
 * C tor's crypto_pk_public_checksig (tor-spec §0.3, dir-spec §1.3): the
 * signature is PKCS#1 v1.5 type-1 padding of the bare digest, without the
 * DigestInfo prefix, so it is checked by recovering the padded message and
 * comparing it to the digest in constant time.
 */
export function rsaVerifyDigest(key: RsaPublicKey, digest: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== Math.ceil(key.bits / 8)) return false;
  let recovered: Uint8Array;
  try {
    recovered = u8(nc.publicDecrypt({ key: key.key, padding: nc.constants.RSA_PKCS1_PADDING }, signature));
  } catch {
    return false;
  }
  return ctEqual(recovered, digest);
}
