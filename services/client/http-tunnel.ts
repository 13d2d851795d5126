/**
 * The HTTP CONNECT tunnel port, C tor's HTTPTunnelPort (tor manual
 * "HTTPTunnelPort"; connection_edge.c `connection_ap_process_http_connect`,
 * reasons.c `end_reason_to_http_connect_response_line`): for applications
 * and load tools that speak HTTP proxies, not SOCKS.
 *
 *   CONNECT host:port HTTP/1.x        ->  HTTP/1.0 200 OK, then raw bytes
 *   GET http://host/ HTTP/1.1         ->  HTTP/1.0 405 Method Not Allowed
 *
 * Overview: the request head (up to the blank line, at most 8,192 bytes as
 * C tor's `fetch_from_buf_http` allows) is parsed here; the stream is
 * opened by the same connector and under the same deadlines as the SOCKS
 * port (proxy-server.ts). Bytes after the head go into the stream.
 *
 * Answers are C tor's status lines, byte for byte: 400 for a malformed
 * request, 405 for any method but CONNECT, 414 for a host of 256 bytes or
 * more (MAX_SOCKS_ADDR_LEN), and for a failed connect the line C tor
 * writes for the stream's END reason (the SOCKS5 code the connector failed
 * with, mapped back to that reason: see `httpConnectAnswer`).
 *
 * Isolation: C tor takes the Proxy-Authorization header's value as the SOCKS
 * user name and X-Tor-Stream-Isolation's as the password, so both isolate
 * streams as IsolateSOCKSAuth does. C tor also gives each listener its own
 * session group, so tunnel streams never share circuits with SOCKS streams.
 *
 * Limitations: no Tor-specific response headers (C tor sends none; arti's
 * proposal-365 headers are not implemented); the credentials are not
 * checked, only compared, as in C tor.
 */

import type { Registry } from 'prom-client';
import { InvalidError, TruncatedError } from '../core/errors.js';
import {
  type Connector,
  type Handshake,
  HandshakeAnswer,
  HandshakeClosedError,
  type HandshakeReader,
  type ProxyServer,
  type ProxyServerOptions,
  startProxyServer,
} from './proxy-server.js';
import { credentialsIsolationKey } from './socks-server.js';
import { SOCKS_MAX_ADDR_LEN } from './socks4.js';
import { CMD_CONNECT, HOST_CHARS, SocksReply } from './socks5.js';

/** C tor `fetch_from_buf_http(..., 8192, ...)`: the most header bytes it buffers. */
export const HTTP_MAX_HEAD = 8192;

export const HttpAnswer = {
  OK: 'HTTP/1.0 200 OK\r\n\r\n',
  BAD_REQUEST: 'HTTP/1.0 400 Bad Request\r\n\r\n',
  METHOD_NOT_ALLOWED: 'HTTP/1.0 405 Method Not Allowed\r\n\r\n',
  URI_TOO_LONG: 'HTTP/1.0 414 Request-URI Too Long\r\n\r\n',
} as const;

export interface HttpConnectRequest {
  method: string;
  host: string;
  port: number;
  addressType: 'ipv4' | 'domain' | 'ipv6';
  proxyAuthorization?: string;
  streamIsolation?: string;
}

/** A request the tunnel answers with `answer` and closes. */
export class HttpTunnelError extends InvalidError {
  constructor(
    readonly answer: string,
    reason: string,
  ) {
    super('http connect', reason);
  }
}

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.\d$/;
const HEADER = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

const bad = (why: string) => new HttpTunnelError(HttpAnswer.BAD_REQUEST, why);

/**
 * Decodes a request head. TruncatedError until the blank line arrives;
 * HttpTunnelError (carrying C tor's answer) for anything it refuses.
 */
export function decodeConnectRequest(buf: Uint8Array): { msg: HttpConnectRequest; consumed: number } {
  const end = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).indexOf('\r\n\r\n');
  if (end < 0 || end + 4 > HTTP_MAX_HEAD) {
    if (buf.length > HTTP_MAX_HEAD || end >= 0) throw bad(`head longer than ${HTTP_MAX_HEAD} bytes`);
    throw new TruncatedError('http connect head', buf.length + 1, buf.length);
  }
  const head = Buffer.from(buf.buffer, buf.byteOffset, end).toString('latin1');
  // Header values are opaque here, but control bytes in a head are a broken client or an attack.
  if (/[\0-\x08\x0a-\x1f\x7f]/.test(head.replaceAll('\r\n', ''))) throw bad('control byte in head');
  const [line = '', ...fields] = head.split('\r\n');
  const m = REQUEST_LINE.exec(line);
  if (!m) throw bad('malformed request line');
  const method = m[1] as string;
  const target = m[2] as string;
  const headers = new Map<string, string>();
  for (const f of fields) {
    const h = HEADER.exec(f);
    if (!h) throw bad('malformed header line');
    const name = (h[1] as string).toLowerCase();
    if (!headers.has(name)) headers.set(name, h[2] as string);
  }
  // C tor checks the method before the target (405 even for an absolute URI).
  if (method.toLowerCase() !== 'connect')
    throw new HttpTunnelError(HttpAnswer.METHOD_NOT_ALLOWED, `method ${method.slice(0, 16)}`);
  const { host, port, addressType } = parseAuthority(target);
  const proxyAuthorization = headers.get('proxy-authorization');
  const streamIsolation = headers.get('x-tor-stream-isolation');
  return {
    msg: {
      method,
      host,
      port,
      addressType,
      ...(proxyAuthorization !== undefined ? { proxyAuthorization } : {}),
      ...(streamIsolation !== undefined ? { streamIsolation } : {}),
    },
    consumed: end + 4,
  };
}

/** `host:port` or `[v6]:port`, as C tor's `tor_addr_port_split`; the port is required. */
function parseAuthority(target: string): Pick<HttpConnectRequest, 'host' | 'port' | 'addressType'> {
  const colon = target.lastIndexOf(':');
  if (colon <= 0) throw bad('no port in CONNECT target');
  let host = target.slice(0, colon);
  const portText = target.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) throw bad('bad port');
  const port = Number(portText);
  if (port === 0 || port > 65535) throw bad('bad port');
  let addressType: HttpConnectRequest['addressType'] = 'domain';
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (!IPV6.test(host) || !host.includes(':')) throw bad('bad IPv6 address');
    addressType = 'ipv6';
  } else if (IPV4.test(host)) addressType = 'ipv4';
  // C tor: an address that does not fit MAX_SOCKS_ADDR_LEN is 414, not 400.
  if (host.length >= SOCKS_MAX_ADDR_LEN) throw new HttpTunnelError(HttpAnswer.URI_TOO_LONG, 'host too long');
  if (addressType === 'domain' && !HOST_CHARS.test(host)) throw bad('host has invalid characters');
  return { host, port, addressType };
}

/**
 * C tor's answer for a connect that failed with SOCKS5 reply `code`: the code
 * is taken back to the END reason C tor would have closed the stream with
 * (reasons.c `stream_end_reason_to_socks5_response`, read backwards), and
 * that reason to its status line (`end_reason_to_http_connect_response_line`).
 * Onion failures use the reasons C tor's hs_client closes streams with:
 * RESOLVEFAILED for a missing or unusable descriptor and for failed
 * introductions, TIMEOUT for a rendezvous or introduction that timed out,
 * TORPROTOCOL for a malformed onion address.
 */
export function httpConnectAnswer(code: number): string {
  switch (code) {
    case SocksReply.SUCCEEDED:
      return HttpAnswer.OK;
    case SocksReply.NOT_ALLOWED:
      return 'HTTP/1.0 403 Forbidden (exit policy)\r\n\r\n';
    case SocksReply.CONNECTION_REFUSED:
      return 'HTTP/1.0 403 Forbidden (connection refused)\r\n\r\n';
    case SocksReply.HOST_UNREACHABLE:
      return 'HTTP/1.0 404 Not Found (no route)\r\n\r\n';
    case SocksReply.ONION_DESC_NOT_FOUND:
    case SocksReply.ONION_DESC_INVALID:
    case SocksReply.ONION_INTRO_FAILED:
    case SocksReply.ONION_MISSING_CLIENT_AUTH:
    case SocksReply.ONION_WRONG_CLIENT_AUTH:
      return 'HTTP/1.0 404 Not Found (resolve failed)\r\n\r\n';
    case SocksReply.TTL_EXPIRED:
    case SocksReply.ONION_REND_FAILED:
    case SocksReply.ONION_INTRO_TIMEOUT:
      return 'HTTP/1.0 504 Gateway Timeout\r\n\r\n';
    case SocksReply.ONION_BAD_ADDRESS:
      return 'HTTP/1.0 502 Bad Gateway (tor protocol violation)\r\n\r\n';
    case SocksReply.NETWORK_UNREACHABLE:
      // END reason NET_UNREACHABLE has no line of its own in C tor: its default.
      return 'HTTP/1.0 500 Internal Server Error (weird end reason)\r\n\r\n';
    default:
      return 'HTTP/1.0 500 Internal Server Error\r\n\r\n';
  }
}

/** Reads one CONNECT request head; refusals become C tor's answers. */
export async function readHttpConnect(rd: HandshakeReader): Promise<Handshake> {
  let msg: HttpConnectRequest;
  try {
    ({ msg } = await rd.read(decodeConnectRequest));
  } catch (e) {
    if (e instanceof HandshakeClosedError) throw e;
    const answer = e instanceof HttpTunnelError ? e.answer : HttpAnswer.BAD_REQUEST;
    throw new HandshakeAnswer('http_connect', Buffer.from(answer, 'latin1'), String(e));
  }
  const key = credentialsIsolationKey(msg.proxyAuthorization ?? '', msg.streamIsolation ?? '');
  return {
    protocol: 'http_connect',
    req: {
      command: CMD_CONNECT,
      host: msg.host,
      port: msg.port,
      addressType: msg.addressType,
      isolationKey: `http-tunnel:${key}`,
    },
    answer: (code) => Buffer.from(httpConnectAnswer(code), 'latin1'),
  };
}

/** Starts the HTTP CONNECT listener (C tor HTTPTunnelPort); with a registry, it is counted. */
export function startHttpTunnelServer(
  opts: ProxyServerOptions,
  connect: Connector,
  c: { registry?: Registry } = {},
): Promise<ProxyServer> {
  return startProxyServer({ ...opts, maxHandshakeBytes: HTTP_MAX_HEAD }, readHttpConnect, connect, c);
}
