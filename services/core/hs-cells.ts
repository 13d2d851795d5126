/**
 * Onion-service relay message bodies (rend-spec-v3 §3.1-3.4): ESTABLISH_INTRO,
 * INTRO_ESTABLISHED, INTRODUCE1/2 (and their encrypted plaintext),
 * INTRODUCE_ACK; the rendezvous cells are in hs-rend-cells.ts.
 *
 * Overview: plain `encodeX`/`decodeX` pairs for each body, plus the
 * authenticated builders a service and client actually use:
 * `buildEstablishIntro`/`verifyEstablishIntro` (MAC with the circuit's KH and
 * an Ed25519 signature by the intro auth key) and
 * `buildIntroduce1`/`openIntroduce2` (hs-ntor encryption and MAC).
 *
 * Not in this module: relay-cell framing (the relay command says which body
 * this is), the hs-ntor math (hs-ntor.ts), intro-point replay caches.
 *
 * Design notes:
 * - INTRODUCE2 is byte-for-byte the INTRODUCE1 the intro point received.
 * - The INTRODUCE1 MAC covers the header from LEGACY_KEY_ID on (then X and
 *   the ciphertext); the spec prose says "from AUTH_KEY", App. G says otherwise.
 * - The plaintext is zero-padded so header + plaintext >= 246 bytes, as C
 *   tor does (`introduce1_set_encrypted_padding`), so the App. G cell replays exactly.
 */
import { ByteReader, ByteWriter, concat, utf8 } from './bytes.js';
import { ed25519SignExpanded } from './crypto/ed25519-math.js';
import { aesCtr, ctEqual, type ExpandedKey, ed25519Sign, ed25519Verify, type Rng } from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';
import { hsMac } from './hs-keys.js';
import { hsNtorClientIntroKeys, hsNtorServiceIntroKeys } from './hs-ntor.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers, type LinkSpecifier } from './link-specifiers.js';

/** AUTH_KEY_TYPE 02: Ed25519 (the only v3 type; 00/01 were v2 RSA). */
export const AUTH_KEY_TYPE_ED25519 = 2;
/** ONION_KEY_TYPE 01: ntor (curve25519). */
export const ONION_KEY_TYPE_NTOR = 1;
/** C tor's HS_CELL_INTRODUCE1_MIN_SIZE: header + plaintext are padded to this. */
export const INTRODUCE1_MIN_SIZE = 246;
export const REND_COOKIE_LEN = 20;

/** One `EXT_FIELD_TYPE[1] EXT_FIELD_LEN[1] EXT_FIELD` entry; unknown types are kept verbatim. */
export interface CellExtension {
  type: number;
  data: Uint8Array;
}

/** Writes `N_EXTENSIONS[1]` and each extension. */
export function encodeExtensions(w: ByteWriter, exts: readonly CellExtension[]): void {
  if (exts.length > 255) throw new InvalidError('cell extensions', 'more than 255');
  w.u8(exts.length);
  for (const e of exts) {
    if (e.data.length > 255) throw new InvalidError('cell extension', 'longer than 255 bytes');
    w.u8(e.type).u8(e.data.length).bytes(e.data);
  }
}

export function decodeExtensions(r: ByteReader): CellExtension[] {
  const n = r.u8();
  const out: CellExtension[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8();
    out.push({ type, data: r.take(r.u8()).slice() });
  }
  return out;
}

/* ------------------------------------------------------ DoS extension 01 */

export const EXT_DOS_PARAMS = 1;
const DOS_PARAM_RATE = 1;
const DOS_PARAM_BURST = 2;
const INT32_MAX = 0x7fffffff;

/** INTRODUCE2 rate limit the service asks its intro point to enforce (rend-spec-v3 §3.1.1.1). */
export interface DosParams {
  /** INTRODUCE2 cells per second. */
  rate?: number;
  burst?: number;
}

/** ESTABLISH_INTRO extension 01: `N_PARAMS[1] {PARAM_TYPE[1] PARAM_VALUE[8]}*`. */
export function encodeDosExtension(p: DosParams): CellExtension {
  const params: [number, number][] = [];
  if (p.rate !== undefined) params.push([DOS_PARAM_RATE, p.rate]);
  if (p.burst !== undefined) params.push([DOS_PARAM_BURST, p.burst]);
  const w = new ByteWriter(19).u8(params.length);
  for (const [t, v] of params) {
    if (!Number.isInteger(v) || v < 0 || v > INT32_MAX) throw new InvalidError('dos param', 'out of range');
    w.u8(t).u64(v);
  }
  return { type: EXT_DOS_PARAMS, data: w.finish().slice() };
}

/** Unknown parameter types are skipped; values above INT32_MAX are invalid (as in C tor). */
export function decodeDosExtension(ext: CellExtension): DosParams {
  if (ext.type !== EXT_DOS_PARAMS) throw new InvalidError('dos extension', `wrong type ${ext.type}`);
  const r = new ByteReader(ext.data, 'dos extension');
  const n = r.u8();
  const out: DosParams = {};
  for (let i = 0; i < n; i++) {
    const t = r.u8();
    const v = r.u64();
    if (t !== DOS_PARAM_RATE && t !== DOS_PARAM_BURST) continue;
    if (v > BigInt(INT32_MAX)) throw new InvalidError('dos extension', 'value out of range', { param: t });
    if (t === DOS_PARAM_RATE) out.rate = Number(v);
    else out.burst = Number(v);
  }
  r.assertExhausted();
  return out;
}

/* ------------------------------------------------------- ESTABLISH_INTRO */

/** `AUTH_KEY_TYPE[1] AUTH_KEY_LEN[2] AUTH_KEY N_EXT[1] {ext}* HANDSHAKE_AUTH[32] SIG_LEN[2] SIG`. */
export interface EstablishIntro {
  authKey: Uint8Array;
  extensions: CellExtension[];
  handshakeAuth: Uint8Array;
  sig: Uint8Array;
}

const EST_INTRO_SIG_PREFIX = utf8('Tor establish-intro cell v1');

function encodeEstablishIntroBody(w: ByteWriter, authKey: Uint8Array, exts: readonly CellExtension[]): void {
  if (authKey.length !== 32) throw new InvalidError('establish_intro auth key', 'must be 32 bytes');
  w.u8(AUTH_KEY_TYPE_ED25519).u16(32).bytes(authKey);
  encodeExtensions(w, exts);
}

export function encodeEstablishIntro(m: EstablishIntro): Uint8Array {
  const w = new ByteWriter(256);
  encodeEstablishIntroBody(w, m.authKey, m.extensions);
  if (m.handshakeAuth.length !== 32)
    throw new InvalidError('establish_intro', 'HANDSHAKE_AUTH must be 32 bytes');
  if (m.sig.length !== 64) throw new InvalidError('establish_intro', 'SIG must be 64 bytes');
  w.bytes(m.handshakeAuth).u16(64).bytes(m.sig);
  return w.finish().slice();
}

interface ParsedEstablishIntro {
  msg: EstablishIntro;
  /** Bytes covered by HANDSHAKE_AUTH (everything before it). */
  macEnd: number;
  /** Bytes covered by SIG (everything through HANDSHAKE_AUTH). */
  sigEnd: number;
}

function parseEstablishIntro(bytes: Uint8Array): ParsedEstablishIntro {
  const r = new ByteReader(bytes, 'establish_intro');
  const type = r.u8();
  if (type !== AUTH_KEY_TYPE_ED25519) throw new InvalidError('establish_intro', `auth key type ${type}`);
  const keyLen = r.u16();
  if (keyLen !== 32) throw new InvalidError('establish_intro', `auth key length ${keyLen}`);
  const authKey = r.take(32).slice();
  const extensions = decodeExtensions(r);
  const macEnd = r.offset;
  const handshakeAuth = r.take(32).slice();
  const sigEnd = r.offset;
  const sigLen = r.u16();
  if (sigLen !== 64) throw new InvalidError('establish_intro', `signature length ${sigLen}`);
  const sig = r.take(64).slice();
  r.assertExhausted();
  return { msg: { authKey, extensions, handshakeAuth, sig }, macEnd, sigEnd };
}

/** Parses without checking MAC or signature (see `verifyEstablishIntro`). */
export function decodeEstablishIntro(bytes: Uint8Array): EstablishIntro {
  return parseEstablishIntro(bytes).msg;
}

/**
 * Service side. `kh` is KH from the ntor handshake with the intro point
 * (tor-spec §5.2.2); it binds the cell to this circuit. The auth key signs
 * with either its seed or, for keys kept expanded, its ExpandedKey.
 */
export function buildEstablishIntro(
  p: {
    authKeyPub: Uint8Array;
    authKeySeed?: Uint8Array;
    authKeyExpanded?: ExpandedKey;
    dos?: DosParams;
    extensions?: CellExtension[];
  },
  kh: Uint8Array,
): Uint8Array {
  const exts = [...(p.dos ? [encodeDosExtension(p.dos)] : []), ...(p.extensions ?? [])];
  const w = new ByteWriter(256);
  encodeEstablishIntroBody(w, p.authKeyPub, exts);
  // rend-spec-v3 §3.1.1: HANDSHAKE_AUTH = MAC(KH, all preceding fields).
  w.bytes(hsMac(kh, w.finish()));
  const signed = concat(EST_INTRO_SIG_PREFIX, w.finish());
  let sig: Uint8Array;
  if (p.authKeyExpanded) sig = ed25519SignExpanded(p.authKeyExpanded, signed);
  else if (p.authKeySeed) sig = ed25519Sign(p.authKeySeed, signed);
  else throw new InvalidError('establish_intro', 'no signing key given');
  w.u16(64).bytes(sig);
  return w.finish().slice();
}

/** Intro point side: parses, then checks HANDSHAKE_AUTH against `kh` and the signature. */
export function verifyEstablishIntro(bytes: Uint8Array, kh: Uint8Array): EstablishIntro {
  const { msg, macEnd, sigEnd } = parseEstablishIntro(bytes);
  if (!ctEqual(hsMac(kh, bytes.subarray(0, macEnd)), msg.handshakeAuth)) {
    throw new CryptoError('establish_intro', 'HANDSHAKE_AUTH mismatch');
  }
  if (!ed25519Verify(msg.authKey, concat(EST_INTRO_SIG_PREFIX, bytes.subarray(0, sigEnd)), msg.sig)) {
    throw new CryptoError('establish_intro', 'bad signature');
  }
  return msg;
}

/* ----------------------------------------------------- INTRO_ESTABLISHED */

export interface IntroEstablished {
  extensions: CellExtension[];
}

export function encodeIntroEstablished(m: IntroEstablished): Uint8Array {
  const w = new ByteWriter(8);
  encodeExtensions(w, m.extensions);
  return w.finish().slice();
}

export function decodeIntroEstablished(bytes: Uint8Array): IntroEstablished {
  const r = new ByteReader(bytes, 'intro_established');
  const extensions = decodeExtensions(r);
  r.assertExhausted();
  return { extensions };
}

/* --------------------------------------------------- INTRODUCE1 / INTRODUCE2 */

/**
 * `LEGACY_KEY_ID[20] AUTH_KEY_TYPE[1] AUTH_KEY_LEN[2] AUTH_KEY N_EXT[1] {ext}*`
 * then the encrypted section `X[32] ENCRYPTED MAC[32]`.
 */
export interface Introduce1 {
  authKey: Uint8Array;
  extensions: CellExtension[];
  X: Uint8Array;
  encrypted: Uint8Array;
  mac: Uint8Array;
}

function encodeIntroduce1Header(authKey: Uint8Array, exts: readonly CellExtension[]): Uint8Array {
  if (authKey.length !== 32) throw new InvalidError('introduce1 auth key', 'must be 32 bytes');
  const w = new ByteWriter(64);
  w.zeros(20).u8(AUTH_KEY_TYPE_ED25519).u16(32).bytes(authKey);
  encodeExtensions(w, exts);
  return w.finish().slice();
}

export function encodeIntroduce1(m: Introduce1): Uint8Array {
  if (m.X.length !== 32 || m.mac.length !== 32)
    throw new InvalidError('introduce1', 'X and MAC are 32 bytes');
  return concat(encodeIntroduce1Header(m.authKey, m.extensions), m.X, m.encrypted, m.mac);
}

export function decodeIntroduce1(bytes: Uint8Array): Introduce1 {
  const r = new ByteReader(bytes, 'introduce1');
  // A non-zero LEGACY_KEY_ID marks a v2 cell, which Shallot (like C tor >= 0.4.6) rejects.
  if (r.take(20).some((b) => b !== 0)) throw new InvalidError('introduce1', 'legacy key id is not zero');
  const type = r.u8();
  if (type !== AUTH_KEY_TYPE_ED25519) throw new InvalidError('introduce1', `auth key type ${type}`);
  const keyLen = r.u16();
  if (keyLen !== 32) throw new InvalidError('introduce1', `auth key length ${keyLen}`);
  const authKey = r.take(32).slice();
  const extensions = decodeExtensions(r);
  const X = r.take(32).slice();
  const rest = r.rest();
  if (rest.length < 32) throw new InvalidError('introduce1', 'encrypted section shorter than its MAC');
  return {
    authKey,
    extensions,
    X,
    encrypted: rest.slice(0, rest.length - 32),
    mac: rest.slice(rest.length - 32),
  };
}

/** Decrypted INTRODUCE2 body: `COOKIE[20] N_EXT[1] {ext}* ONION_KEY_TYPE[1] ONION_KEY_LEN[2] ONION_KEY NSPEC[1] {spec}* PAD`. */
export interface IntroducePlaintext {
  cookie: Uint8Array;
  extensions: CellExtension[];
  /** The rendezvous point's ntor onion key. */
  onionKey: Uint8Array;
  linkSpecifiers: LinkSpecifier[];
}

/** Encodes the plaintext, zero-padded to at least `minLen` bytes. */
export function encodeIntroducePlaintext(p: IntroducePlaintext, minLen = 0): Uint8Array {
  if (p.cookie.length !== REND_COOKIE_LEN)
    throw new InvalidError('introduce plaintext', 'cookie must be 20 bytes');
  if (p.onionKey.length !== 32) throw new InvalidError('introduce plaintext', 'onion key must be 32 bytes');
  const w = new ByteWriter(256);
  w.bytes(p.cookie);
  encodeExtensions(w, p.extensions);
  w.u8(ONION_KEY_TYPE_NTOR).u16(32).bytes(p.onionKey);
  encodeLinkSpecifiers(w, p.linkSpecifiers);
  if (w.length < minLen) w.zeros(minLen - w.length);
  return w.finish().slice();
}

/** Trailing padding is ignored (rend-spec-v3 §3.3: PAD is not checked). */
export function decodeIntroducePlaintext(bytes: Uint8Array): IntroducePlaintext {
  const r = new ByteReader(bytes, 'introduce plaintext');
  const cookie = r.take(REND_COOKIE_LEN).slice();
  const extensions = decodeExtensions(r);
  const keyType = r.u8();
  const keyLen = r.u16();
  if (keyType !== ONION_KEY_TYPE_NTOR)
    throw new InvalidError('introduce plaintext', `onion key type ${keyType}`);
  if (keyLen !== 32) throw new InvalidError('introduce plaintext', `onion key length ${keyLen}`);
  const onionKey = r.take(32).slice();
  const linkSpecifiers = decodeLinkSpecifiers(r);
  return { cookie, extensions, onionKey, linkSpecifiers };
}

/**
 * Client: encrypts `plaintext` for the service behind one intro point
 * (rend-spec-v3 §3.3). Keep `x` and `X` to finish the handshake on RENDEZVOUS2.
 */
export function buildIntroduce1(
  p: {
    authKey: Uint8Array;
    B: Uint8Array;
    subcredential: Uint8Array;
    plaintext: IntroducePlaintext;
    extensions?: CellExtension[];
  },
  rngOrX: Rng | Uint8Array,
): { cell: Uint8Array; x: Uint8Array; X: Uint8Array } {
  const header = encodeIntroduce1Header(p.authKey, p.extensions ?? []);
  const pt = encodeIntroducePlaintext(p.plaintext, INTRODUCE1_MIN_SIZE - header.length);
  const k = hsNtorClientIntroKeys(rngOrX, p);
  const encrypted = aesCtr(k.encKey, new Uint8Array(16), pt);
  const mac = hsMac(k.macKey, concat(header, k.X, encrypted));
  return { cell: concat(header, k.X, encrypted, mac), x: k.x, X: k.X };
}

/**
 * Service: checks the MAC under each live subcredential (constant time per
 * candidate), then decrypts. `authKey`, if given, must match the cell's.
 * CryptoError if no subcredential verifies.
 */
export function openIntroduce2(
  bytes: Uint8Array,
  keys: { b: Uint8Array; B: Uint8Array; subcredentials: readonly Uint8Array[]; authKey?: Uint8Array },
): { cell: Introduce1; plaintext: IntroducePlaintext; X: Uint8Array; subcredential: Uint8Array } {
  const msg = decodeIntroduce1(bytes);
  if (keys.authKey && !ctEqual(keys.authKey, msg.authKey)) {
    throw new InvalidError('introduce2', 'auth key is not this intro point’s');
  }
  // The MAC covers the whole cell before it: header (from LEGACY_KEY_ID), X and ciphertext.
  const macked = bytes.subarray(0, bytes.length - 32);
  for (const subcredential of keys.subcredentials) {
    const k = hsNtorServiceIntroKeys({ b: keys.b, B: keys.B, authKey: msg.authKey, subcredential, X: msg.X });
    if (!ctEqual(hsMac(k.macKey, macked), msg.mac)) continue;
    const pt = aesCtr(k.encKey, new Uint8Array(16), msg.encrypted);
    return { cell: msg, plaintext: decodeIntroducePlaintext(pt), X: msg.X, subcredential };
  }
  throw new CryptoError('introduce2', 'MAC does not verify under any subcredential');
}

/* ------------------------------------------------------- INTRODUCE_ACK */

export const IntroduceAckStatus = {
  SUCCESS: 0,
  UNKNOWN_SERVICE: 1,
  BAD_FORMAT: 2,
  CANT_RELAY: 3,
} as const;

export interface IntroduceAck {
  status: number;
  extensions: CellExtension[];
}

export function encodeIntroduceAck(m: IntroduceAck): Uint8Array {
  const w = new ByteWriter(8).u16(m.status);
  encodeExtensions(w, m.extensions);
  return w.finish().slice();
}

export function decodeIntroduceAck(bytes: Uint8Array): IntroduceAck {
  const r = new ByteReader(bytes, 'introduce_ack');
  const status = r.u16();
  const extensions = decodeExtensions(r);
  r.assertExhausted();
  return { status, extensions };
}
