/**
 * The ntor-v3 handshake (CREATE2 handshake type 3), client and server, and
 * the extension list carried in its encrypted messages.
 *
 * Follows proposal 332 / tor-spec §5.1.4.3 ("ntor-v3"). Unlike
 * ntor (type 2) each side can send an encrypted message: the client's is
 * encrypted and MACed under a key derived only from Bx (no forward secrecy),
 * the server's under the final handshake keys. ID is the relay's 32-byte
 * Ed25519 identity.
 *
 * Randomness is replaceable: `ntorV3ClientStart(rng, …)` wraps
 * `ntorV3ClientStartWithKey(x, …)` and the server takes `y` the same way, so
 * tests replay arti's `ntor_v3.rs::test_ntor3_testvec` byte for byte.
 */

import { ByteReader, ByteWriter, concat, int8, utf8 } from './bytes.js';
import {
  aesCtr,
  ctEqual,
  type Rng,
  sha3_256,
  shake256,
  type X25519KeyPair,
  x25519,
  x25519Generate,
} from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';
import { CIRCUIT_KEYS_LEN, type CircuitKeys, splitCircuitKeys } from './ntor.js';

export type { CircuitKeys } from './ntor.js';

const PROTOID_STR = 'ntor3-curve25519-sha3_256-1';
const PROTOID = utf8(PROTOID_STR);

/** ENCAP(s) = INT_8(len(s)) | s. */
const encap = (s: Uint8Array): Uint8Array => concat(int8(s.length), s);

// Every tweak is used ENCAP'd, so store it that way.
const tweak = (suffix: string): Uint8Array => encap(utf8(`${PROTOID_STR}:${suffix}`));
const T_MSGKDF = tweak('kdf_phase1');
const T_MSGMAC = tweak('msg_mac');
const T_KEY_SEED = tweak('key_seed');
const T_VERIFY = tweak('verify');
const T_FINAL = tweak('kdf_final');
const T_AUTH = tweak('auth_final');
const SERVER = utf8('Server');

/** VER for circuit extension (tor-spec §5.1.4.3). */
export const NTOR_V3_CIRC_VERIFICATION = utf8('circuit extend');
export const NTOR_V3_ID_LEN = 32;
const KEY_LEN = 32;
const MAC_LEN = 32;
const ENC_KEY_LEN = 32;
/** ID | B | X | MAC with an empty client message. */
export const NTOR_V3_CLIENT_MIN_LEN = NTOR_V3_ID_LEN + KEY_LEN + KEY_LEN + MAC_LEN;
/** Y | AUTH with an empty server message. */
export const NTOR_V3_SERVER_MIN_LEN = KEY_LEN + MAC_LEN;

export interface NtorV3RelayKeys {
  /** 32-byte Ed25519 identity. */
  id: Uint8Array;
  /** The relay's ntor onion key B. */
  ntorKey: Uint8Array;
}

export interface NtorV3ServerKeys {
  id: Uint8Array;
  /** Current and (during rotation) previous onion keys; the client names one by B. */
  onionKeys: readonly X25519KeyPair[];
}

export interface NtorV3ClientState {
  id: Uint8Array;
  B: Uint8Array;
  x: X25519KeyPair;
  /** EXP(B, x), kept so the final secret_input need not recompute it. */
  bx: Uint8Array;
  /** The MAC over the client message: the server's AUTH covers it. */
  msgMac: Uint8Array;
  verification: Uint8Array;
}

/** H(s, t) = SHA3-256(ENCAP(t) | s); `t` is already ENCAP'd. */
const H = (t: Uint8Array, ...s: Uint8Array[]) => sha3_256(t, ...s);

function asVerification(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? utf8(v) : v;
}

/**
 * Phase-1 keys: ENC_K1 | MAC_K1 = KDF_msgkdf(Bx | ID | X | B | PROTOID | ENCAP(VER)),
 * then msg_mac = MAC_msgmac(MAC_K1, ID | B | X | encrypted_msg).
 */
function phase1(
  bx: Uint8Array,
  id: Uint8Array,
  B: Uint8Array,
  X: Uint8Array,
  ver: Uint8Array,
): { encKey: Uint8Array; mac: (encrypted: Uint8Array) => Uint8Array } {
  const k = shake256(ENC_KEY_LEN + MAC_LEN, T_MSGKDF, bx, id, X, B, PROTOID, encap(ver));
  const encKey = k.subarray(0, ENC_KEY_LEN);
  const macKey = k.subarray(ENC_KEY_LEN);
  // MAC(k, m, t) = SHA3-256(ENCAP(t) | ENCAP(k) | m)
  return { encKey, mac: (encrypted) => sha3_256(T_MSGMAC, encap(macKey), id, B, X, encrypted) };
}

/**
 * The final phase shared by both sides: from secret_input derive the server
 * message key, the circuit keys, and the AUTH the server must send.
 */
function finalPhase(
  xy: Uint8Array,
  xb: Uint8Array,
  id: Uint8Array,
  B: Uint8Array,
  X: Uint8Array,
  Y: Uint8Array,
  ver: Uint8Array,
  msgMac: Uint8Array,
): { encKey: Uint8Array; keys: CircuitKeys; auth: (encryptedReply: Uint8Array) => Uint8Array } {
  // secret_input = Xy | Xb | ID | B | X | Y | PROTOID | ENCAP(VER)
  const si = concat(xy, xb, id, B, X, Y, PROTOID, encap(ver));
  const seed = H(T_KEY_SEED, si);
  const verify = H(T_VERIFY, si);
  // KDF_final(seed) = ENC_KEY | Df | Db | Kf | Kb | KH | … (an XOF: read in order)
  const k = shake256(ENC_KEY_LEN + CIRCUIT_KEYS_LEN, T_FINAL, seed);
  return {
    encKey: k.subarray(0, ENC_KEY_LEN),
    keys: splitCircuitKeys(k.subarray(ENC_KEY_LEN)),
    // AUTH = H_auth(verify | ID | B | Y | X | MAC | ENCAP(encrypted_msg) | PROTOID | "Server")
    auth: (enc) => H(T_AUTH, verify, id, B, Y, X, msgMac, encap(enc), PROTOID, SERVER),
  };
}

// ENC is AES-256-CTR with a zero IV; each key encrypts exactly one message.
const ZERO_IV = new Uint8Array(16);
const enc = (key: Uint8Array, m: Uint8Array): Uint8Array => aesCtr(key, ZERO_IV, m);

export function ntorV3ClientStart(
  rng: Rng,
  relay: NtorV3RelayKeys,
  clientMessage: Uint8Array,
  verification: Uint8Array | string = NTOR_V3_CIRC_VERIFICATION,
): { state: NtorV3ClientState; hdata: Uint8Array } {
  return ntorV3ClientStartWithKey(x25519Generate(rng), relay, clientMessage, verification);
}

export function ntorV3ClientStartWithKey(
  x: X25519KeyPair,
  relay: NtorV3RelayKeys,
  clientMessage: Uint8Array,
  verification: Uint8Array | string = NTOR_V3_CIRC_VERIFICATION,
): { state: NtorV3ClientState; hdata: Uint8Array } {
  if (relay.id.length !== NTOR_V3_ID_LEN || relay.ntorKey.length !== KEY_LEN) {
    throw new InvalidError('ntor-v3', 'relay id and key must be 32 bytes');
  }
  const ver = asVerification(verification);
  const { id, ntorKey: B } = relay;
  const bx = x25519(x, B);
  const p1 = phase1(bx, id, B, x.public, ver);
  const encrypted = enc(p1.encKey, clientMessage);
  const msgMac = p1.mac(encrypted);
  return {
    state: { id, B, x, bx, msgMac, verification: ver },
    hdata: concat(id, B, x.public, encrypted, msgMac),
  };
}

export function ntorV3ClientFinish(
  state: NtorV3ClientState,
  reply: Uint8Array,
): { keys: CircuitKeys; serverMessage: Uint8Array } {
  if (reply.length < NTOR_V3_SERVER_MIN_LEN) {
    throw new InvalidError('ntor-v3', 'server reply shorter than 64 bytes', { length: reply.length });
  }
  const Y = reply.subarray(0, KEY_LEN);
  const auth = reply.subarray(KEY_LEN, KEY_LEN + MAC_LEN);
  const encrypted = reply.subarray(KEY_LEN + MAC_LEN);
  // x25519 rejects all-zero (low-order) outputs with a CryptoError.
  const f = finalPhase(
    x25519(state.x, Y),
    state.bx,
    state.id,
    state.B,
    state.x.public,
    Y,
    state.verification,
    state.msgMac,
  );
  if (!ctEqual(f.auth(encrypted), auth)) throw new CryptoError('ntor-v3', 'server AUTH does not match');
  return { keys: f.keys, serverMessage: enc(f.encKey, encrypted) };
}

export function ntorV3ServerHandshake(
  rng: Rng,
  server: NtorV3ServerKeys,
  hdata: Uint8Array,
  reply: (clientMessage: Uint8Array) => Uint8Array,
  verification: Uint8Array | string = NTOR_V3_CIRC_VERIFICATION,
): { reply: Uint8Array; keys: CircuitKeys; clientMessage: Uint8Array } {
  return ntorV3ServerHandshakeWithKey(x25519Generate(rng), server, hdata, reply, verification);
}

/**
 * The relay side. `reply` sees the client's message only once its MAC has
 * verified (arti calls it on unauthenticated plaintext to stay constant-time;
 * refusing early leaks nothing beyond "bad MAC", which the error says anyway).
 */
export function ntorV3ServerHandshakeWithKey(
  y: X25519KeyPair,
  server: NtorV3ServerKeys,
  hdata: Uint8Array,
  reply: (clientMessage: Uint8Array) => Uint8Array,
  verification: Uint8Array | string = NTOR_V3_CIRC_VERIFICATION,
): { reply: Uint8Array; keys: CircuitKeys; clientMessage: Uint8Array } {
  if (hdata.length < NTOR_V3_CLIENT_MIN_LEN) {
    throw new InvalidError('ntor-v3', 'client handshake shorter than 128 bytes', { length: hdata.length });
  }
  const ver = asVerification(verification);
  const id = hdata.subarray(0, 32);
  const B = hdata.subarray(32, 64);
  const X = hdata.subarray(64, 96);
  const encrypted = hdata.subarray(96, hdata.length - MAC_LEN);
  const msgMac = hdata.subarray(hdata.length - MAC_LEN);
  if (!ctEqual(id, server.id)) throw new CryptoError('ntor-v3', 'handshake is for another relay');
  const b = server.onionKeys.find((k) => ctEqual(k.public, B));
  if (!b) throw new CryptoError('ntor-v3', 'unknown onion key');
  const xb = x25519(b, X);
  const p1 = phase1(xb, id, B, X, ver);
  if (!ctEqual(p1.mac(encrypted), msgMac))
    throw new CryptoError('ntor-v3', 'client message MAC does not match');
  const clientMessage = enc(p1.encKey, encrypted);
  const serverMessage = reply(clientMessage);
  const f = finalPhase(x25519(y, X), xb, id, B, X, y.public, ver, msgMac);
  const encReply = enc(f.encKey, serverMessage);
  return { reply: concat(y.public, f.auth(encReply), encReply), keys: f.keys, clientMessage };
}

/* ------------------------------------------------------------ extensions */

/** EXT_FIELD_TYPE values (tor-spec §5.1.4.3, prop 324/346). */
export const NtorV3ExtType = {
  CC_REQUEST: 1,
  CC_RESPONSE: 2,
  SUBPROTOCOL_REQUEST: 3,
} as const;

export interface NtorV3Extension {
  type: number;
  /** EXT_FIELD, at most 255 bytes (EXT_FIELD_LEN is one byte). */
  data: Uint8Array;
}

/** N_EXTENSIONS[1] then {EXT_FIELD_TYPE[1] EXT_FIELD_LEN[1] EXT_FIELD} each. */
export function encodeNtorV3Extensions(exts: readonly NtorV3Extension[]): Uint8Array {
  if (exts.length > 0xff) throw new InvalidError('ntor-v3 extensions', 'more than 255 extensions');
  const w = new ByteWriter().u8(exts.length);
  for (const e of exts) {
    if (e.data.length > 0xff) throw new InvalidError('ntor-v3 extension', 'data longer than 255 bytes');
    w.u8(e.type).u8(e.data.length).bytes(e.data);
  }
  return w.finish().slice();
}

/**
 * Unknown types are kept (the caller decides to ignore them); trailing
 * bytes after the last extension are invalid.
 */
export function decodeNtorV3Extensions(b: Uint8Array): NtorV3Extension[] {
  const r = new ByteReader(b, 'ntor-v3 extensions');
  const n = r.u8();
  const out: NtorV3Extension[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8();
    const len = r.u8();
    out.push({ type, data: r.take(len).slice() });
  }
  r.assertExhausted();
  return out;
}
