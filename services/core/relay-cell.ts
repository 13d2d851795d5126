/**
 * Relay cells: the 509-byte body of RELAY/RELAY_EARLY cells and the typed
 * relay messages inside it.
 *
 * Follows tor-spec §6.1 (header: Cmd Recognized StreamID Digest Length Data
 * Padding), §6.2 (BEGIN/CONNECTED), §6.3 (END reasons), §5.1.2 (EXTEND2,
 * EXTENDED2), §5.4 (TRUNCATE/TRUNCATED), §7.4 (SENDME v1); relay command
 * numbers from C tor `or.h` (XOFF=43, XON=44, not the 2023 spec's swapped
 * values).
 *
 * Not in this module: the encryption and running digest (relay-crypto.ts);
 * onion-service message bodies (hs-cells.ts) — those travel here as opaque
 * `body` bytes under their command names.
 */

import { ByteReader, ByteWriter, fromUtf8, utf8 } from './bytes.js';
import { bytesToIpv6, CELL_BODY_LEN, ipv6ToBytes } from './cells.js';
import { fillRandom, type Rng, randomBytes } from './crypto.js';
import { InvalidError } from './errors.js';
import { decodeLinkSpecifiers, encodeLinkSpecifiers, type LinkSpecifier } from './link-specifiers.js';

export const RELAY_HEADER_LEN = 11;
export const RELAY_DATA_MAX = CELL_BODY_LEN - RELAY_HEADER_LEN; // 498

/** tor-spec §7.3-7.4 flow-control constants. */
export const CIRCWINDOW_START = 1000;
export const CIRCWINDOW_INCREMENT = 100;
export const STREAMWINDOW_START = 500;
export const STREAMWINDOW_INCREMENT = 50;
/** tor-spec §5.6: at most 8 RELAY_EARLY cells per circuit. */
export const MAX_RELAY_EARLY = 8;

export const RelayCommand = {
  BEGIN: 1,
  DATA: 2,
  END: 3,
  CONNECTED: 4,
  SENDME: 5,
  EXTEND: 6,
  EXTENDED: 7,
  TRUNCATE: 8,
  TRUNCATED: 9,
  DROP: 10,
  RESOLVE: 11,
  RESOLVED: 12,
  BEGIN_DIR: 13,
  EXTEND2: 14,
  EXTENDED2: 15,
  ESTABLISH_INTRO: 32,
  ESTABLISH_RENDEZVOUS: 33,
  INTRODUCE1: 34,
  INTRODUCE2: 35,
  RENDEZVOUS1: 36,
  RENDEZVOUS2: 37,
  INTRO_ESTABLISHED: 38,
  RENDEZVOUS_ESTABLISHED: 39,
  INTRODUCE_ACK: 40,
  XOFF: 43,
  XON: 44,
} as const;

export const EndReason = {
  MISC: 1,
  RESOLVEFAILED: 2,
  CONNECTREFUSED: 3,
  EXITPOLICY: 4,
  DESTROY: 5,
  DONE: 6,
  TIMEOUT: 7,
  NOROUTE: 8,
  HIBERNATING: 9,
  INTERNAL: 10,
  RESOURCELIMIT: 11,
  CONNRESET: 12,
  TORPROTOCOL: 13,
  NOTDIRECTORY: 14,
} as const;

const END_NAMES = new Map<number, string>(Object.entries(EndReason).map(([k, v]) => [v, k.toLowerCase()]));

export function endReasonName(reason: number): string {
  return END_NAMES.get(reason) ?? `unknown_${reason}`;
}

/** Onion-service messages whose bodies hs-cells.ts parses. */
export const HS_RELAY_TYPES = [
  'ESTABLISH_INTRO',
  'ESTABLISH_RENDEZVOUS',
  'INTRODUCE1',
  'INTRODUCE2',
  'RENDEZVOUS1',
  'RENDEZVOUS2',
  'INTRO_ESTABLISHED',
  'RENDEZVOUS_ESTABLISHED',
  'INTRODUCE_ACK',
] as const;
export type HsRelayType = (typeof HS_RELAY_TYPES)[number];

export type RelayMessage =
  | { type: 'BEGIN'; target: string; flags: number }
  | { type: 'DATA'; data: Uint8Array }
  | { type: 'END'; reason: number; address?: string; ttl?: number }
  | { type: 'CONNECTED'; address?: string; ttl?: number }
  | { type: 'SENDME'; version: number; digest?: Uint8Array }
  | { type: 'TRUNCATE' }
  | { type: 'TRUNCATED'; reason: number }
  | { type: 'DROP' }
  | { type: 'BEGIN_DIR' }
  | { type: 'EXTEND2'; specs: LinkSpecifier[]; htype: number; hdata: Uint8Array }
  | { type: 'EXTENDED2'; hdata: Uint8Array }
  | { type: 'XOFF' }
  | { type: 'XON'; rate: number }
  | { type: HsRelayType; body: Uint8Array };

/* ------------------------------ cell body ------------------------------ */

export interface RelayCellBody {
  command: number;
  streamId: number;
  data: Uint8Array;
}

/**
 * Builds the 509-byte body with Recognized and Digest zero (relay-crypto
 * fills the digest). Padding is four zero bytes then random bytes (§6.1).
 * `out` (509 bytes, any contents) is written over entirely and returned: a
 * sender that hands the body on at once reuses one buffer (issue 16).
 */
export function encodeRelayCellBody(
  c: RelayCellBody,
  rng: Rng,
  out: Uint8Array = new Uint8Array(CELL_BODY_LEN),
): Uint8Array {
  if (c.data.length > RELAY_DATA_MAX) {
    throw new InvalidError('relay cell', 'data over 498 bytes', { length: c.data.length });
  }
  if (out.length !== CELL_BODY_LEN) throw new InvalidError('relay cell', 'body must be 509 bytes');
  const body = out;
  body[0] = c.command;
  body[1] = 0;
  body[2] = 0;
  body[3] = c.streamId >> 8;
  body[4] = c.streamId & 0xff;
  body.fill(0, 5, 9);
  body[9] = c.data.length >> 8;
  body[10] = c.data.length & 0xff;
  body.set(c.data, RELAY_HEADER_LEN);
  const padStart = RELAY_HEADER_LEN + c.data.length + 4;
  body.fill(0, RELAY_HEADER_LEN + c.data.length, Math.min(padStart, CELL_BODY_LEN));
  if (padStart < CELL_BODY_LEN) {
    // The default Rng's padding comes from a pooled block (no OpenSSL call per cell); a test's Rng is called as given.
    if (rng === randomBytes) fillRandom(body, padStart, CELL_BODY_LEN - padStart);
    else body.set(rng(CELL_BODY_LEN - padStart), padStart);
  }
  return body;
}

/** Reads the header of a recognized, decrypted body (fixed offsets; no ByteReader per cell, issue 16). */
export function decodeRelayCellBody(body: Uint8Array): RelayCellBody {
  if (body.length !== CELL_BODY_LEN) {
    throw new InvalidError('relay cell', 'body must be 509 bytes', { length: body.length });
  }
  const len = (body[9]! << 8) | body[10]!;
  if (len > RELAY_DATA_MAX) throw new InvalidError('relay cell', 'length field over 498', { len });
  return {
    command: body[0]!,
    streamId: (body[3]! << 8) | body[4]!,
    data: body.subarray(RELAY_HEADER_LEN, RELAY_HEADER_LEN + len),
  };
}

/* ---------------------------- relay messages ---------------------------- */

export function encodeRelayMessage(m: RelayMessage): { command: number; data: Uint8Array } {
  // DATA, nearly every cell, needs no writer (a ByteWriter per cell showed in profiles, issue 16).
  if (m.type === 'DATA') return { command: RelayCommand.DATA, data: m.data };
  const w = new ByteWriter();
  switch (m.type) {
    case 'BEGIN':
      w.bytes(utf8(m.target)).u8(0);
      if (m.flags !== 0) w.u32(m.flags);
      return { command: RelayCommand.BEGIN, data: w.finish() };
    case 'END':
      w.u8(m.reason);
      if (m.reason === EndReason.EXITPOLICY && m.address !== undefined) {
        // tor-spec §6.3: END carries the raw 4- or 16-byte address, unlike CONNECTED.
        if (m.address.includes(':')) w.bytes(ipv6ToBytes(m.address.replace(/^\[|\]$/g, '')));
        else writeAddress(w, m.address);
        w.u32(m.ttl ?? 0);
      }
      return { command: RelayCommand.END, data: w.finish() };
    case 'CONNECTED':
      if (m.address !== undefined) {
        writeAddress(w, m.address);
        w.u32(m.ttl ?? 0);
      }
      return { command: RelayCommand.CONNECTED, data: w.finish() };
    case 'SENDME':
      if (m.version === 0) return { command: RelayCommand.SENDME, data: new Uint8Array(0) };
      w.u8(m.version);
      w.u16(m.digest?.length ?? 0);
      if (m.digest) w.bytes(m.digest);
      return { command: RelayCommand.SENDME, data: w.finish() };
    case 'TRUNCATE':
      return { command: RelayCommand.TRUNCATE, data: new Uint8Array(0) };
    case 'TRUNCATED':
      return { command: RelayCommand.TRUNCATED, data: Uint8Array.of(m.reason) };
    case 'DROP':
      return { command: RelayCommand.DROP, data: new Uint8Array(0) };
    case 'BEGIN_DIR':
      return { command: RelayCommand.BEGIN_DIR, data: new Uint8Array(0) };
    case 'EXTEND2':
      encodeLinkSpecifiers(w, m.specs);
      w.u16(m.htype).u16(m.hdata.length).bytes(m.hdata);
      return { command: RelayCommand.EXTEND2, data: w.finish() };
    case 'EXTENDED2':
      w.u16(m.hdata.length).bytes(m.hdata);
      return { command: RelayCommand.EXTENDED2, data: w.finish() };
    case 'XOFF':
      return { command: RelayCommand.XOFF, data: Uint8Array.of(0) };
    case 'XON':
      return { command: RelayCommand.XON, data: w.u8(0).u32(m.rate).finish() };
    default:
      return { command: RelayCommand[m.type], data: m.body };
  }
}

export function decodeRelayMessage(command: number, data: Uint8Array): RelayMessage {
  // DATA, nearly every cell, before the ByteReader the other messages need.
  if (command === RelayCommand.DATA) return { type: 'DATA', data };
  const r = new ByteReader(data, 'relay message');
  switch (command) {
    case RelayCommand.BEGIN: {
      const nul = data.indexOf(0);
      if (nul < 0) throw new InvalidError('BEGIN', 'target not NUL-terminated');
      const target = fromUtf8(data.subarray(0, nul), 'BEGIN target');
      const rest = data.subarray(nul + 1);
      const flags = rest.length >= 4 ? new ByteReader(rest, 'BEGIN flags').u32() : 0;
      return { type: 'BEGIN', target, flags };
    }
    case RelayCommand.END: {
      // An empty END means MISC (tor-spec §6.3).
      if (data.length === 0) return { type: 'END', reason: EndReason.MISC };
      const reason = r.u8();
      if (reason === EndReason.EXITPOLICY && (r.remaining === 8 || r.remaining === 20)) {
        const address = r.remaining === 8 ? Array.from(r.take(4)).join('.') : bytesToIpv6(r.take(16));
        return { type: 'END', reason, address, ttl: r.u32() };
      }
      return { type: 'END', reason };
    }
    case RelayCommand.CONNECTED: {
      if (data.length === 0) return { type: 'CONNECTED' };
      if (data.length !== 8 && data.length !== 25) throw new InvalidError('CONNECTED', 'bad length');
      const address = readAddress(r, data.length === 8 ? 4 : 21);
      return { type: 'CONNECTED', address, ttl: r.u32() };
    }
    case RelayCommand.SENDME: {
      if (data.length === 0) return { type: 'SENDME', version: 0 };
      const version = r.u8();
      const len = r.u16();
      const digest = r.take(len);
      if (version === 1 && len !== 20) throw new InvalidError('SENDME', 'v1 digest must be 20 bytes');
      return { type: 'SENDME', version, digest };
    }
    case RelayCommand.TRUNCATE:
      return { type: 'TRUNCATE' };
    case RelayCommand.TRUNCATED:
      return { type: 'TRUNCATED', reason: r.u8() };
    case RelayCommand.DROP:
      return { type: 'DROP' };
    case RelayCommand.BEGIN_DIR:
      return { type: 'BEGIN_DIR' };
    case RelayCommand.EXTEND2: {
      const specs = decodeLinkSpecifiers(r);
      const htype = r.u16();
      const hlen = r.u16();
      const hdata = r.take(hlen);
      r.assertExhausted();
      return { type: 'EXTEND2', specs, htype, hdata };
    }
    case RelayCommand.EXTENDED2: {
      const hlen = r.u16();
      return { type: 'EXTENDED2', hdata: r.take(hlen) };
    }
    case RelayCommand.XOFF:
      return { type: 'XOFF' };
    case RelayCommand.XON: {
      r.u8();
      return { type: 'XON', rate: r.u32() };
    }
    default: {
      const hs = HS_RELAY_TYPES.find((t) => RelayCommand[t] === command);
      if (hs) return { type: hs, body: data };
      throw new InvalidError('relay message', `unsupported relay command ${command}`, { command });
    }
  }
}

// tor-spec §6.2: IPv4 as 4 bytes; IPv6 as 00000000 06 + 16 bytes.
function writeAddress(w: ByteWriter, address: string): void {
  if (address.includes(':')) {
    w.u32(0)
      .u8(6)
      .bytes(ipv6ToBytes(address.replace(/^\[|\]$/g, '')));
    return;
  }
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new InvalidError('address', 'bad IPv4 address');
  }
  for (const p of parts) w.u8(p);
}

function readAddress(r: ByteReader, len: number): string {
  if (len === 4) return Array.from(r.take(4)).join('.');
  if (r.u32() !== 0 || r.u8() !== 6) throw new InvalidError('address', 'bad IPv6 address type');
  return bytesToIpv6(r.take(16));
}

export interface StreamTarget {
  /** Hostname or IP; empty on a rendezvous circuit, where BEGIN is ":port" (rend-spec-v3 §4.2). */
  host: string;
  port: number;
}

/** BEGIN's ADDRPORT: "host:port", IPv6 in brackets. */
export function formatBeginTarget(t: StreamTarget): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

export function parseBeginTarget(target: string): StreamTarget {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(target);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new InvalidError('BEGIN', 'target is not host:port');
  return { host: m[1] ?? m[2] ?? '', port };
}
