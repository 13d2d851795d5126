/**
 * The rendezvous cells of onion services (rend-spec-v3 §3.4, §4.2):
 * ESTABLISH_RENDEZVOUS (the client's cookie to its rendezvous point),
 * RENDEZVOUS1 (the service's cookie and handshake info, padded to C tor's
 * legacy cell size) and RENDEZVOUS2 (the handshake info relayed to the
 * client), with the HANDSHAKE_INFO layout (Y | AUTH) both ends split.
 *
 * Not in this module: the introduction cells (hs-cells.ts), the hs-ntor
 * math (hs-ntor.ts).
 */
import { ByteReader, concat } from './bytes.js';
import { InvalidError } from './errors.js';
import { REND_COOKIE_LEN } from './hs-cells.js';

export interface EstablishRendezvous {
  cookie: Uint8Array;
}

export function encodeEstablishRendezvous(m: EstablishRendezvous): Uint8Array {
  if (m.cookie.length !== REND_COOKIE_LEN)
    throw new InvalidError('establish_rendezvous', 'cookie must be 20 bytes');
  return m.cookie.slice();
}

export function decodeEstablishRendezvous(bytes: Uint8Array): EstablishRendezvous {
  const r = new ByteReader(bytes, 'establish_rendezvous');
  const cookie = r.take(REND_COOKIE_LEN).slice();
  r.assertExhausted();
  return { cookie };
}

/** HANDSHAKE_INFO for hs-ntor: `SERVER_PK[32] AUTH[32]`. */
export const HS_NTOR_HANDSHAKE_INFO_LEN = 64;

/**
 * C tor's HS_LEGACY_RENDEZVOUS_CELL_SIZE (cookie 20 + DH 128 + digest 20):
 * a C tor service pads RENDEZVOUS1 to this size with random bytes
 * (hs_circuit.c hs_circ_send_rendezvous1) so v3 rendezvous looks like v2's;
 * the rendezvous point passes them on in RENDEZVOUS2.
 */
export const HS_LEGACY_RENDEZVOUS_CELL_SIZE = 168;

/** RENDEZVOUS1's body padded as C tor pads it (random bytes up to 168). */
export function padRendezvous1(body: Uint8Array, rng: (n: number) => Uint8Array): Uint8Array {
  return body.length >= HS_LEGACY_RENDEZVOUS_CELL_SIZE
    ? body
    : concat(body, rng(HS_LEGACY_RENDEZVOUS_CELL_SIZE - body.length));
}

export interface Rendezvous1 {
  cookie: Uint8Array;
  handshakeInfo: Uint8Array;
}

export function encodeRendezvous1(m: Rendezvous1): Uint8Array {
  if (m.cookie.length !== REND_COOKIE_LEN) throw new InvalidError('rendezvous1', 'cookie must be 20 bytes');
  return concat(m.cookie, m.handshakeInfo);
}

/** HANDSHAKE_INFO is the rest of the body; `splitHandshakeInfo` checks its hs-ntor length. */
export function decodeRendezvous1(bytes: Uint8Array): Rendezvous1 {
  const r = new ByteReader(bytes, 'rendezvous1');
  const cookie = r.take(REND_COOKIE_LEN).slice();
  return { cookie, handshakeInfo: r.rest().slice() };
}

export interface Rendezvous2 {
  handshakeInfo: Uint8Array;
}

export function encodeRendezvous2(m: Rendezvous2): Uint8Array {
  return m.handshakeInfo.slice();
}

export function decodeRendezvous2(bytes: Uint8Array): Rendezvous2 {
  return { handshakeInfo: bytes.slice() };
}

/** Y | AUTH, as produced by `hsNtorServiceRendezvous`. */
export function joinHandshakeInfo(Y: Uint8Array, auth: Uint8Array): Uint8Array {
  if (Y.length !== 32 || auth.length !== 32)
    throw new InvalidError('handshake info', 'Y and AUTH are 32 bytes');
  return concat(Y, auth);
}

/**
 * Y and AUTH from HANDSHAKE_INFO. Bytes after the 64 are a C tor service's
 * padding (HS_LEGACY_RENDEZVOUS_CELL_SIZE) and are ignored, as C tor's
 * fixed-size trunnel parse of RENDEZVOUS2 ignores them.
 */
export function splitHandshakeInfo(info: Uint8Array): { Y: Uint8Array; auth: Uint8Array } {
  if (info.length < HS_NTOR_HANDSHAKE_INFO_LEN) {
    throw new InvalidError('handshake info', `expected 64 bytes, got ${info.length}`);
  }
  return { Y: info.slice(0, 32), auth: info.slice(32, 64) };
}
