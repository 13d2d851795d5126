/**
 * The ntor handshake (CREATE2 handshake type 2), client and server.
 *
 * Follows tor-spec §5.1.4 and the KDF-RFC5869 key expansion of §5.2.2.
 * Deviation (README: differs from Tor): ID is the 20-byte legacy id derived from the
 * Ed25519 identity (crypto.legacyIdFromEd25519), not an RSA fingerprint;
 * the handshake bytes are otherwise Tor's.
 *
 * Randomness is replaceable: `ntorClientStart(rng, …)` wraps
 * `ntorClientStartWithKey(x, …)` and the server takes `y` the same way, so
 * tests replay arti's `ntor.rs` vector byte for byte.
 */

import { concat, utf8 } from './bytes.js';
import {
  ctEqual,
  hmacSha256,
  kdfRfc5869,
  type Rng,
  type X25519KeyPair,
  x25519,
  x25519Generate,
} from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';

const PROTOID = utf8('ntor-curve25519-sha256-1');
const T_MAC = utf8('ntor-curve25519-sha256-1:mac');
const T_KEY = utf8('ntor-curve25519-sha256-1:key_extract');
const T_VERIFY = utf8('ntor-curve25519-sha256-1:verify');
const M_EXPAND = utf8('ntor-curve25519-sha256-1:key_expand');
const SERVER = utf8('Server');

export const NTOR_CLIENT_HDATA_LEN = 84;
export const NTOR_SERVER_HDATA_LEN = 64;

/** tor-spec §5.2.2 split of the 92 KDF bytes. */
export interface CircuitKeys {
  df: Uint8Array;
  db: Uint8Array;
  kf: Uint8Array;
  kb: Uint8Array;
  kh: Uint8Array;
}

export interface NtorRelayKeys {
  /** 20-byte node id. */
  id: Uint8Array;
  /** The relay's ntor onion key B. */
  ntorKey: Uint8Array;
}

export interface NtorClientState {
  id: Uint8Array;
  B: Uint8Array;
  x: X25519KeyPair;
}

const H = (msg: Uint8Array, tweak: Uint8Array) => hmacSha256(tweak, msg);

/** Bytes of key material a tor1 hop takes: Df Db (20 each), Kf Kb (16 each), KH (20). */
export const CIRCUIT_KEYS_LEN = 92;

/** tor-spec §5.2.2: the first 92 bytes of a handshake's KDF output as Df | Db | Kf | Kb | KH. */
export function splitCircuitKeys(k: Uint8Array): CircuitKeys {
  return {
    df: k.subarray(0, 20),
    db: k.subarray(20, 40),
    kf: k.subarray(40, 56),
    kb: k.subarray(56, 72),
    kh: k.subarray(72, CIRCUIT_KEYS_LEN),
  };
}

export function ntorExpandKeys(secretInput: Uint8Array): CircuitKeys {
  return splitCircuitKeys(kdfRfc5869(secretInput, T_KEY, M_EXPAND, CIRCUIT_KEYS_LEN));
}

export function ntorClientStart(
  rng: Rng,
  relay: NtorRelayKeys,
): { state: NtorClientState; hdata: Uint8Array } {
  return ntorClientStartWithKey(x25519Generate(rng), relay);
}

export function ntorClientStartWithKey(
  x: X25519KeyPair,
  relay: NtorRelayKeys,
): { state: NtorClientState; hdata: Uint8Array } {
  if (relay.id.length !== 20 || relay.ntorKey.length !== 32) {
    throw new InvalidError('ntor', 'relay id must be 20 bytes and key 32');
  }
  return {
    state: { id: relay.id, B: relay.ntorKey, x },
    hdata: concat(relay.id, relay.ntorKey, x.public),
  };
}

// x25519 rejects all-zero outputs (small-order points) with a CryptoError.
function secretInput(
  xy: Uint8Array,
  xb: Uint8Array,
  id: Uint8Array,
  B: Uint8Array,
  X: Uint8Array,
  Y: Uint8Array,
): Uint8Array {
  // tor-spec §5.1.4: secret_input = EXP(X,y) | EXP(X,b) | ID | B | X | Y | PROTOID
  return concat(xy, xb, id, B, X, Y, PROTOID);
}

function authFor(si: Uint8Array, id: Uint8Array, B: Uint8Array, X: Uint8Array, Y: Uint8Array): Uint8Array {
  const verify = H(si, T_VERIFY);
  // auth_input = verify | ID | B | Y | X | PROTOID | "Server"
  return H(concat(verify, id, B, Y, X, PROTOID, SERVER), T_MAC);
}

export function ntorClientFinish(state: NtorClientState, reply: Uint8Array): CircuitKeys {
  if (reply.length !== NTOR_SERVER_HDATA_LEN) {
    throw new InvalidError('ntor', 'server reply must be 64 bytes', { length: reply.length });
  }
  const Y = reply.subarray(0, 32);
  const auth = reply.subarray(32, 64);
  const si = secretInput(x25519(state.x, Y), x25519(state.x, state.B), state.id, state.B, state.x.public, Y);
  if (!ctEqual(authFor(si, state.id, state.B, state.x.public, Y), auth)) {
    throw new CryptoError('ntor', 'server AUTH does not match');
  }
  return ntorExpandKeys(si);
}

export interface NtorServerKeys {
  id: Uint8Array;
  /** Current and (during rotation) previous onion keys; the client names one by B. */
  onionKeys: readonly X25519KeyPair[];
}

export function ntorServerHandshake(
  rng: Rng,
  server: NtorServerKeys,
  hdata: Uint8Array,
): { reply: Uint8Array; keys: CircuitKeys } {
  return ntorServerHandshakeWithKey(x25519Generate(rng), server, hdata);
}

export function ntorServerHandshakeWithKey(
  y: X25519KeyPair,
  server: NtorServerKeys,
  hdata: Uint8Array,
): { reply: Uint8Array; keys: CircuitKeys } {
  if (hdata.length !== NTOR_CLIENT_HDATA_LEN) {
    throw new InvalidError('ntor', 'client handshake must be 84 bytes', { length: hdata.length });
  }
  const id = hdata.subarray(0, 20);
  const B = hdata.subarray(20, 52);
  const X = hdata.subarray(52, 84);
  if (!ctEqual(id, server.id)) throw new CryptoError('ntor', 'handshake is for another relay');
  const b = server.onionKeys.find((k) => ctEqual(k.public, B));
  if (!b) throw new CryptoError('ntor', 'unknown onion key');
  const si = secretInput(x25519(y, X), x25519(b, X), id, B, X, y.public);
  const auth = authFor(si, id, B, X, y.public);
  return { reply: concat(y.public, auth), keys: ntorExpandKeys(si) };
}
