/**
 * hs-ntor: the onion-service handshake (rend-spec-v3 §3.3, [NTOR-WITH-EXTRA-DATA]).
 *
 * Overview: a client that has read an intro point's `enc-key` (B) and
 * `auth-key` from the descriptor derives ENC_KEY/MAC_KEY for INTRODUCE1
 * from an ephemeral X25519 key x. The service, holding b, derives the same
 * keys from X, answers in RENDEZVOUS1 with Y and AUTH, and both sides
 * derive KEY_SEED, which expands into the keys of the extra virtual hop
 * spliced at the rendezvous point.
 *
 * Not in this module: cell layouts (hs-cells.ts), the MAC and subcredential
 * definitions (hs-keys.ts).
 *
 * Design notes: every function that needs randomness takes `Rng | secret`
 * so the App. G.1 vectors (fixed x and y) replay byte for byte.
 */
import { concat, utf8 } from './bytes.js';
import {
  ctEqual,
  type Rng,
  shake256,
  type X25519KeyPair,
  x25519,
  x25519Generate,
  x25519PublicFromSecret,
} from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';
import { hsMac } from './hs-keys.js';

// rend-spec-v3 §3.3: PROTOID and the four tweak strings derived from it.
const PROTOID = utf8('tor-hs-ntor-curve25519-sha3-256-1');
const T_HSENC = utf8('tor-hs-ntor-curve25519-sha3-256-1:hs_key_extract');
const T_HSVERIFY = utf8('tor-hs-ntor-curve25519-sha3-256-1:hs_verify');
const T_HSMAC = utf8('tor-hs-ntor-curve25519-sha3-256-1:hs_mac');
const M_HSEXPAND = utf8('tor-hs-ntor-curve25519-sha3-256-1:hs_key_expand');
const SERVER = utf8('Server');

function check32(what: string, b: Uint8Array): void {
  if (b.length !== 32) throw new InvalidError(what, `expected 32 bytes, got ${b.length}`);
}

function keyPairFrom(rngOrSecret: Rng | Uint8Array, what: string): X25519KeyPair {
  if (typeof rngOrSecret === 'function') return x25519Generate(rngOrSecret);
  check32(what, rngOrSecret);
  return { secret: rngOrSecret, public: x25519PublicFromSecret(rngOrSecret) };
}

/** What a client knows about one introduction point (from the descriptor). */
export interface HsNtorServiceInfo {
  /** KP_hss_ntor: the intro point's `enc-key ntor`. */
  B: Uint8Array;
  /** KP_hs_ipt_sid: the intro point's `auth-key`. */
  authKey: Uint8Array;
  subcredential: Uint8Array;
}

/** Keys for encrypting and authenticating the INTRODUCE1 encrypted section. */
export interface HsIntroKeys {
  encKey: Uint8Array;
  macKey: Uint8Array;
}

/**
 * rend-spec-v3 §3.3: intro_secret_hs_input = EXP(B,x) | AUTH_KEY | X | B | PROTOID;
 * ENC_KEY | MAC_KEY = SHAKE256(intro_secret_hs_input | t_hsenc | m_hsexpand | subcredential).
 */
function introKeys(
  dh: Uint8Array,
  authKey: Uint8Array,
  X: Uint8Array,
  B: Uint8Array,
  subcredential: Uint8Array,
): HsIntroKeys {
  const k = shake256(64, dh, authKey, X, B, PROTOID, T_HSENC, M_HSEXPAND, subcredential);
  return { encKey: k.slice(0, 32), macKey: k.slice(32, 64) };
}

function checkInfo(info: HsNtorServiceInfo): void {
  check32('hs-ntor B', info.B);
  check32('hs-ntor auth key', info.authKey);
  check32('hs-ntor subcredential', info.subcredential);
}

/**
 * Client: picks x (or uses the one given, for vectors) and derives the
 * INTRODUCE1 keys. Keep `x` and `X` for `hsNtorClientRendezvous`.
 */
export function hsNtorClientIntroKeys(
  rngOrX: Rng | Uint8Array,
  info: HsNtorServiceInfo,
): HsIntroKeys & { x: Uint8Array; X: Uint8Array } {
  checkInfo(info);
  const pair = keyPairFrom(rngOrX, 'hs-ntor x');
  const X = pair.public;
  return {
    x: pair.secret,
    X,
    ...introKeys(x25519(pair, info.B), info.authKey, X, info.B, info.subcredential),
  };
}

/** Service: derives the INTRODUCE2 keys from the client's X for one candidate subcredential. */
export function hsNtorServiceIntroKeys(p: {
  b: Uint8Array;
  B: Uint8Array;
  authKey: Uint8Array;
  subcredential: Uint8Array;
  X: Uint8Array;
}): HsIntroKeys {
  checkInfo(p);
  check32('hs-ntor X', p.X);
  return introKeys(x25519({ secret: p.b, public: p.B }, p.X), p.authKey, p.X, p.B, p.subcredential);
}

/**
 * rend-spec-v3 §3.4.1:
 * rend_secret_hs_input = EXP(X,y) | EXP(X,b) | AUTH_KEY | B | X | Y | PROTOID;
 * NTOR_KEY_SEED = MAC(rend_secret_hs_input, t_hsenc); verify = MAC(rend_secret_hs_input, t_hsverify);
 * AUTH = MAC(verify | AUTH_KEY | B | Y | X | PROTOID | "Server", t_hsmac).
 * MAC(key, msg): the secret input is the key, the tweak the message.
 */
function rendMaterial(
  xy: Uint8Array,
  xb: Uint8Array,
  authKey: Uint8Array,
  B: Uint8Array,
  X: Uint8Array,
  Y: Uint8Array,
): { keySeed: Uint8Array; auth: Uint8Array } {
  const rs = concat(xy, xb, authKey, B, X, Y, PROTOID);
  const keySeed = hsMac(rs, T_HSENC);
  const verify = hsMac(rs, T_HSVERIFY);
  const auth = hsMac(concat(verify, authKey, B, Y, X, PROTOID, SERVER), T_HSMAC);
  rs.fill(0);
  return { keySeed, auth };
}

/** Service: picks y (or uses the one given) and computes RENDEZVOUS1's HANDSHAKE_INFO and KEY_SEED. */
export function hsNtorServiceRendezvous(
  p: { b: Uint8Array; B: Uint8Array; authKey: Uint8Array; X: Uint8Array },
  rngOrY: Rng | Uint8Array,
): { Y: Uint8Array; auth: Uint8Array; keySeed: Uint8Array } {
  check32('hs-ntor B', p.B);
  check32('hs-ntor auth key', p.authKey);
  check32('hs-ntor X', p.X);
  const y = keyPairFrom(rngOrY, 'hs-ntor y');
  const Y = y.public;
  const b = { secret: p.b, public: p.B };
  const { keySeed, auth } = rendMaterial(x25519(y, p.X), x25519(b, p.X), p.authKey, p.B, p.X, Y);
  return { Y, auth, keySeed };
}

/**
 * Client: checks RENDEZVOUS2's AUTH (constant time) and returns KEY_SEED.
 * EXP(Y,x) = EXP(X,y) and EXP(B,x) = EXP(X,b). CryptoError on mismatch.
 */
export function hsNtorClientRendezvous(p: {
  x: Uint8Array;
  X: Uint8Array;
  B: Uint8Array;
  authKey: Uint8Array;
  Y: Uint8Array;
  auth: Uint8Array;
}): Uint8Array {
  check32('hs-ntor B', p.B);
  check32('hs-ntor auth key', p.authKey);
  check32('hs-ntor X', p.X);
  check32('hs-ntor Y', p.Y);
  check32('hs-ntor AUTH', p.auth);
  const { keySeed, auth } = rendMaterial(
    x25519({ secret: p.x, public: p.X }, p.Y),
    x25519({ secret: p.x, public: p.X }, p.B),
    p.authKey,
    p.B,
    p.X,
    p.Y,
  );
  if (!ctEqual(auth, p.auth)) {
    keySeed.fill(0);
    throw new CryptoError('hs-ntor', 'RENDEZVOUS2 AUTH mismatch');
  }
  return keySeed;
}

/** Keys of the virtual hop between client and service (rend-spec-v3 §3.4.1, tor-spec §5.2.2 layout). */
export interface RendHopKeys {
  /** Forward (client to service) running SHA3-256 digest seed. */
  df: Uint8Array;
  db: Uint8Array;
  /** Forward AES-256-CTR key: the client encrypts with it, the service decrypts. */
  kf: Uint8Array;
  kb: Uint8Array;
}

/** K = SHAKE256(NTOR_KEY_SEED | m_hsexpand) split as Df[32] Db[32] Kf[32] Kb[32]. */
export function hsRendHopKeys(keySeed: Uint8Array): RendHopKeys {
  check32('hs-ntor KEY_SEED', keySeed);
  const k = shake256(128, keySeed, M_HSEXPAND);
  return { df: k.slice(0, 32), db: k.slice(32, 64), kf: k.slice(64, 96), kb: k.slice(96, 128) };
}
