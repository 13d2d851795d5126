/**
 * SOCKS4 and SOCKS4a requests and replies, as Tor's SocksPort speaks them
 * (socks-extensions.txt "SOCKS4/SOCKS4A"; the protocol itself:
 * ss5.sourceforge.net/socks4.protocol.txt and socks4A.protocol.txt).
 *
 *   request: VN=4 | CD | DSTPORT(2) | DSTIP(4) | USERID | NUL [| HOSTNAME | NUL]
 *   reply:   VN=0 | CD (90 granted, 91 rejected) | DSTPORT(2) | DSTIP(4)
 *
 * SOCKS4a is the DSTIP 0.0.0.x form (x nonzero) with a hostname after the
 * user id, so a `.onion` name or a host name reaches the exit unresolved.
 *
 * Limits are C tor's (proto_socks.c `parse_socks4_request`): a request
 * still incomplete at MAX_SOCKS_MESSAGE_LEN (512) bytes is invalid, as are
 * a user id longer than that, a hostname that does not fit its
 * MAX_SOCKS_ADDR_LEN (256, NUL included) buffer, DSTIP 0 and port 0.
 * `process_socks4_request` then refuses a hostname that is not a valid
 * destination and commands other than CONNECT (RESOLVE is Tor's SOCKS4
 * extension; Shallot resolves nothing, as it answers SOCKS5 RESOLVE).
 *
 * Each decoder returns the message and how many bytes it used, throws
 * TruncatedError when it needs more, or InvalidError for a malformed
 * message; the server answers InvalidError with 91 and closes, as C tor does.
 *
 * Limitations: the user id must be UTF-8 (C tor takes any bytes but NUL),
 * so it compares equal to the same SOCKS5 user name for stream isolation.
 */
import { ByteReader, ByteWriter, fromUtf8 } from '../core/bytes.js';
import { InvalidError, TruncatedError } from '../core/errors.js';
import { CMD_CONNECT, HOST_CHARS } from '../core/socks5.js';

export const SOCKS4_VERSION = 4;

/** SOCKS4 reply codes (C tor connection_edge.c SOCKS4_GRANTED / SOCKS4_REJECT). */
export const Socks4Reply = {
  GRANTED: 90,
  REJECTED: 91,
} as const;

/** C tor MAX_SOCKS_MESSAGE_LEN: a SOCKS4 request still incomplete at this length is invalid. */
export const SOCKS4_MAX_MESSAGE = 512;
/** C tor MAX_SOCKS_ADDR_LEN: the hostname buffer, its NUL included. */
export const SOCKS_MAX_ADDR_LEN = 256;

export interface Socks4Request {
  command: number;
  host: string;
  port: number;
  addressType: 'ipv4' | 'domain';
  /** Empty when the client sent none; otherwise it isolates streams like a SOCKS5 user name. */
  userid: string;
}

/** Reads a NUL-terminated field starting at `from`; the index of its NUL, or a truncation. */
function nulAt(buf: Uint8Array, from: number, what: string): number {
  const nul = buf.indexOf(0, from);
  if (nul >= 0) return nul;
  if (buf.length >= SOCKS4_MAX_MESSAGE)
    throw new InvalidError(what, `no NUL within ${SOCKS4_MAX_MESSAGE} bytes`);
  throw new TruncatedError(what, buf.length + 1, buf.length);
}

export function decodeSocks4Request(buf: Uint8Array): { msg: Socks4Request; consumed: number } {
  const r = new ByteReader(buf, 'socks4 request');
  const v = r.u8();
  if (v !== SOCKS4_VERSION) throw new InvalidError('socks4 request', `version ${v}, want 4`, { version: v });
  const command = r.u8();
  const port = r.u16();
  const ip = r.take(4);
  const userEnd = nulAt(buf, r.offset, 'socks4 user id');
  if (userEnd - r.offset > SOCKS4_MAX_MESSAGE) throw new InvalidError('socks4 request', 'user id too long');
  const userid = fromUtf8(r.take(userEnd - r.offset), 'socks4 user id');
  r.skip(1);
  // C tor rejects port 0 and DSTIP 0 before looking at anything else.
  if (port === 0) throw new InvalidError('socks4 request', 'port 0');
  if (ip.every((b) => b === 0)) throw new InvalidError('socks4 request', 'DSTIP 0');
  let host: string;
  let addressType: Socks4Request['addressType'];
  if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0) {
    const hostEnd = nulAt(buf, r.offset, 'socks4a hostname');
    const len = hostEnd - r.offset;
    if (len + 1 > SOCKS_MAX_ADDR_LEN) throw new InvalidError('socks4a request', 'hostname too long');
    host = fromUtf8(r.take(len), 'socks4a hostname');
    r.skip(1);
    if (!HOST_CHARS.test(host))
      throw new InvalidError('socks4a request', 'hostname is not a valid destination');
    addressType = 'domain';
  } else {
    host = Array.from(ip).join('.');
    addressType = 'ipv4';
  }
  if (command !== CMD_CONNECT) throw new InvalidError('socks4 request', `command ${command} not supported`);
  return { msg: { command, host, port, addressType, userid }, consumed: r.offset };
}

export function encodeSocks4Request(req: {
  command: number;
  host: string;
  port: number;
  userid?: string;
}): Uint8Array {
  const w = new ByteWriter().u8(SOCKS4_VERSION).u8(req.command).u16(req.port);
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(req.host);
  const user = Buffer.from(req.userid ?? '');
  if (v4)
    return w
      .bytes(new Uint8Array(v4.slice(1).map(Number)))
      .bytes(user)
      .u8(0)
      .finish();
  return w
    .bytes(new Uint8Array([0, 0, 0, 1]))
    .bytes(user)
    .u8(0)
    .bytes(Buffer.from(req.host))
    .u8(0)
    .finish();
}

/** C tor's SOCKS4 reply: version byte 0, the code, port and address left zero. */
export function encodeSocks4Reply(code: number): Uint8Array {
  return new Uint8Array([0, code, 0, 0, 0, 0, 0, 0]);
}

export function decodeSocks4Reply(buf: Uint8Array): { code: number; consumed: number } {
  const r = new ByteReader(buf, 'socks4 reply');
  const v = r.u8();
  if (v !== 0) throw new InvalidError('socks4 reply', `version ${v}, want 0`);
  const code = r.u8();
  r.take(6);
  return { code, consumed: r.offset };
}
