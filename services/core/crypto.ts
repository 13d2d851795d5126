/**
 * The crypto module: with the two files of core/crypto/, the only code that
 * imports node:crypto or @noble/* (the crypto room; the architecture test
 * holds every other file to it).
 *
 * Overview: node:crypto (OpenSSL) is the fast path for X25519, Ed25519
 * sign/verify, hashes, HMAC, HKDF and AES-CTR, all here. @noble/curves does
 * what OpenSSL cannot, in crypto/ed25519-math.ts: Ed25519 point arithmetic
 * for key blinding (rend-spec-v3 §A.2), signing with an expanded key, and
 * torsion checks. crypto/rsa.ts checks C tor's RSA identities.
 *
 * Design notes: AES-CTR is exposed as a stateful keystream (`CtrStream`)
 * because tor-spec §6 keeps one continuous stream per hop and direction
 * across cells (509 is not a multiple of 16). Randomness is passed in as an
 * `Rng` so tests can replay published vectors byte for byte. The room is
 * three files rather than one so that no file passes ~450 lines (issue 15);
 * each wraps its primitives behind Tor-named functions.
 */
import * as nc from 'node:crypto';
import { concat } from './bytes.js';
import { SHA1_LEN, Sha1 } from './crypto/sha1.js';
import { CryptoError, InvalidError } from './errors.js';

export type Rng = (n: number) => Uint8Array;

/** Cryptographically secure randomness (the default Rng). */
export const randomBytes: Rng = (n) => new Uint8Array(nc.randomBytes(n));

/**
 * Random bytes for relay-cell padding (tor-spec §6.1: the unused bytes after
 * four zero bytes SHOULD be random), handed out from a pool that one
 * randomFillSync call refills 64 KiB at a time. One OpenSSL call per cell
 * showed as ~3-4 % of a client's thread during downloads (issue 16); C tor
 * likewise takes padding from a buffered PRNG (crypto_fast_rng). Each pool
 * byte is used once, and it is copied into the cell at once, so no two cells
 * share padding and nothing keeps a view of the pool.
 */
const PAD_POOL_LEN = 64 * 1024;
const padPool = new Uint8Array(PAD_POOL_LEN);
let padUsed = PAD_POOL_LEN;

/** Writes `n` cryptographically random bytes into `out` at `off` (from the padding pool). */
export function fillRandom(out: Uint8Array, off: number, n: number): void {
  if (n > PAD_POOL_LEN) {
    nc.randomFillSync(out, off, n);
    return;
  }
  if (padUsed + n > PAD_POOL_LEN) {
    nc.randomFillSync(padPool);
    padUsed = 0;
  }
  out.set(padPool.subarray(padUsed, padUsed + n), off);
  padUsed += n;
}

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
 *
 * Design notes: SHA-1, read once per cell on the data path, is our own
 * (crypto/sha1.ts: a read costs no native object or buffer, issue 16);
 * SHA3-256 stays node:crypto's `Hash` and is read through a copy.
 */
export class RunningDigest {
  private constructor(
    private readonly js: Sha1 | null,
    private readonly h: nc.Hash | null,
    readonly algorithm: 'sha1' | 'sha3-256',
  ) {}

  static create(algorithm: 'sha1' | 'sha3-256', seed: Uint8Array): RunningDigest {
    if (algorithm === 'sha1') return new RunningDigest(new Sha1().update(seed), null, algorithm);
    return new RunningDigest(null, nc.createHash(algorithm).update(seed), algorithm);
  }

  update(b: Uint8Array): this {
    if (this.js) this.js.update(b);
    else this.h!.update(b);
    return this;
  }

  clone(): RunningDigest {
    return this.js
      ? new RunningDigest(this.js.clone(), null, this.algorithm)
      : new RunningDigest(null, this.h!.copy(), this.algorithm);
  }

  /** The digest so far, without ending the running state. */
  peek(): Uint8Array {
    return this.js ? this.js.digestInto(new Uint8Array(SHA1_LEN)) : u8(this.h!.copy().digest());
  }

  /** The first four bytes of `peek()` as a big-endian uint32 (a relay cell's Digest field); nothing allocated for SHA-1. */
  prefix32(): number {
    if (this.js) return this.js.prefix32();
    const d = this.peek();
    return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
  }

  /**
   * Updates with `b` and keeps the result only if the digest's first four
   * bytes then equal `prefix` (tor-spec §6.1 recognition; C tor's
   * relay_digest_matches backs the state up and restores it on a mismatch).
   */
  updateIfPrefix(b: Uint8Array, prefix: number): boolean {
    if (this.js) {
      SAVED.copyFrom(this.js);
      const ok = this.js.update(b).prefix32() === prefix >>> 0;
      if (!ok) this.js.copyFrom(SAVED);
      return ok;
    }
    const trial = this.h!.copy().update(b).digest();
    const ok = trial.readUInt32BE(0) === prefix >>> 0;
    if (ok) this.h!.update(b);
    return ok;
  }
}

/** Where updateIfPrefix keeps the state it may restore (one at a time: it never yields). */
const SAVED = new Sha1();

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
