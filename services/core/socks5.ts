/**
 * SOCKS5 messages (RFC 1928, RFC 1929) with Tor's extended reply codes for
 * onion services (prop 304; socks-extensions.txt "Extended error codes").
 *
 * The pure codec (no I/O): the client's SOCKS port (services/client/)
 * decodes requests and encodes replies with it, and the load generator's
 * SOCKS client does the reverse, so both ends agree on framing and codes.
 *
 * Each decoder takes the bytes received so far and returns the message and
 * how many bytes it used, or throws TruncatedError when it needs more, or
 * InvalidError for a malformed message. Username/password authentication
 * accepts any credentials: like Tor's IsolateSOCKSAuth, they only choose
 * which circuits a stream may share.
 */
import { ByteReader, ByteWriter, fromUtf8 } from './bytes.js';
import { InvalidError } from './errors.js';
import { EndReason } from './relay-cell.js';

export const SOCKS_VERSION = 5;
export const AUTH_NONE = 0x00;
export const AUTH_USERPASS = 0x02;
export const AUTH_NO_ACCEPTABLE = 0xff;

export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
  /** Onion service descriptor can not be found. */
  ONION_DESC_NOT_FOUND: 0xf0,
  /** Onion service descriptor is invalid. */
  ONION_DESC_INVALID: 0xf1,
  /** Onion service introduction failed. */
  ONION_INTRO_FAILED: 0xf2,
  /** Onion service rendezvous failed. */
  ONION_REND_FAILED: 0xf3,
  ONION_MISSING_CLIENT_AUTH: 0xf4,
  ONION_WRONG_CLIENT_AUTH: 0xf5,
  /** Onion service address is invalid. */
  ONION_BAD_ADDRESS: 0xf6,
  ONION_INTRO_TIMEOUT: 0xf7,
} as const;

/**
 * The SOCKS5 reply for a stream closed with END `reason` before CONNECTED:
 * C tor's `stream_end_reason_to_socks5_response` (reasons.c), so local
 * reasons above 255 (NET_UNREACHABLE, 258) answer as C tor's do too;
 * anything else is a general failure. Deliberate deviation: C tor answers
 * DONE before CONNECTED with 0x05; Shallot keeps 0x01 there (an onion
 * service refusing an unknown port closes with DONE, and 0x01 is the answer
 * the integration tests pin).
 */
export function endReasonSocksReply(reason: number): number {
  return (
    {
      [EndReason.RESOLVEFAILED]: SocksReply.HOST_UNREACHABLE,
      [EndReason.CONNECTREFUSED]: SocksReply.CONNECTION_REFUSED,
      [EndReason.EXITPOLICY]: SocksReply.NOT_ALLOWED,
      [EndReason.TIMEOUT]: SocksReply.TTL_EXPIRED,
      [EndReason.NOROUTE]: SocksReply.HOST_UNREACHABLE,
      [EndReason.CONNRESET]: SocksReply.CONNECTION_REFUSED,
      [LocalEndReason.NET_UNREACHABLE]: SocksReply.NETWORK_UNREACHABLE,
    }[reason] ?? SocksReply.GENERAL_FAILURE
  );
}

/**
 * C tor's END reasons that never go on the wire (or.h: "to be more
 * informative when sending back socks replies to the application").
 */
export const LocalEndReason = {
  /** C tor END_STREAM_REASON_NET_UNREACHABLE: no directory reachable, no consensus. */
  NET_UNREACHABLE: 258,
} as const;

export interface SocksGreeting {
  methods: number[];
}

export interface SocksCredentials {
  username: string;
  password: string;
}

export interface SocksRequest {
  command: number;
  host: string;
  port: number;
  addressType: 'ipv4' | 'domain' | 'ipv6';
}

export const CMD_CONNECT = 0x01;

function version(r: ByteReader): void {
  const v = r.u8();
  if (v !== SOCKS_VERSION) throw new InvalidError('socks', `version ${v}, want 5`, { version: v });
}

export function decodeGreeting(buf: Uint8Array): { msg: SocksGreeting; consumed: number } {
  const r = new ByteReader(buf, 'socks greeting');
  version(r);
  const n = r.u8();
  if (n === 0) throw new InvalidError('socks greeting', 'no methods offered');
  const methods = Array.from(r.take(n));
  return { msg: { methods }, consumed: r.offset };
}

export function encodeGreeting(g: SocksGreeting): Uint8Array {
  return new ByteWriter().u8(SOCKS_VERSION).u8(g.methods.length).bytes(new Uint8Array(g.methods)).finish();
}

export function encodeMethodChoice(method: number): Uint8Array {
  return new Uint8Array([SOCKS_VERSION, method]);
}

export function decodeUserPass(buf: Uint8Array): { msg: SocksCredentials; consumed: number } {
  const r = new ByteReader(buf, 'socks auth');
  const v = r.u8();
  if (v !== 1) throw new InvalidError('socks auth', `subnegotiation version ${v}, want 1`);
  const username = fromUtf8(r.take(r.u8()), 'socks username');
  const password = fromUtf8(r.take(r.u8()), 'socks password');
  return { msg: { username, password }, consumed: r.offset };
}

export function encodeUserPass(c: SocksCredentials): Uint8Array {
  const u = Buffer.from(c.username);
  const p = Buffer.from(c.password);
  if (u.length > 255 || p.length > 255)
    throw new InvalidError('socks auth', 'credential longer than 255 bytes');
  return new ByteWriter().u8(1).u8(u.length).bytes(u).u8(p.length).bytes(p).finish();
}

export function encodeUserPassReply(ok: boolean): Uint8Array {
  return new Uint8Array([1, ok ? 0 : 1]);
}

/** Characters a hostname may have (letters, digits, dot, hyphen, underscore). */
export const HOST_CHARS = /^[A-Za-z0-9._-]+$/;

export function decodeRequest(buf: Uint8Array): { msg: SocksRequest; consumed: number } {
  const r = new ByteReader(buf, 'socks request');
  version(r);
  const command = r.u8();
  if (r.u8() !== 0) throw new InvalidError('socks request', 'reserved byte not zero');
  const atyp = r.u8();
  let host: string;
  let addressType: SocksRequest['addressType'];
  switch (atyp) {
    case 1:
      host = Array.from(r.take(4)).join('.');
      addressType = 'ipv4';
      break;
    case 3: {
      const len = r.u8();
      if (len === 0) throw new InvalidError('socks request', 'empty hostname');
      host = fromUtf8(r.take(len), 'socks hostname');
      if (!HOST_CHARS.test(host)) throw new InvalidError('socks request', 'hostname has invalid characters');
      addressType = 'domain';
      break;
    }
    case 4: {
      const b = r.take(16);
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
      host = groups.join(':');
      addressType = 'ipv6';
      break;
    }
    default:
      throw new InvalidError('socks request', `address type ${atyp} not supported`, { atyp });
  }
  const port = r.u16();
  return { msg: { command, host, port, addressType }, consumed: r.offset };
}

export function encodeRequest(req: { command: number; host: string; port: number }): Uint8Array {
  const w = new ByteWriter().u8(SOCKS_VERSION).u8(req.command).u8(0);
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(req.host);
  if (v4) w.u8(1).bytes(new Uint8Array(v4.slice(1).map(Number)));
  else {
    const h = Buffer.from(req.host);
    if (h.length === 0 || h.length > 255)
      throw new InvalidError('socks request', 'hostname length out of range');
    w.u8(3).u8(h.length).bytes(h);
  }
  return w.u16(req.port).finish();
}

export function encodeReply(code: number): Uint8Array {
  return new Uint8Array([SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

export function decodeReply(buf: Uint8Array): { code: number; consumed: number } {
  const r = new ByteReader(buf, 'socks reply');
  version(r);
  const code = r.u8();
  r.u8();
  const atyp = r.u8();
  if (atyp === 1) r.take(4);
  else if (atyp === 4) r.take(16);
  else if (atyp === 3) r.take(r.u8());
  else throw new InvalidError('socks reply', `address type ${atyp}`);
  r.u16();
  return { code, consumed: r.offset };
}
