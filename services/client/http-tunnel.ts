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
 * writes for the stream's END reason (connect-reply.ts gives the reason,
 * `httpConnectAnswer` the line).
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
import { EndReason } from '../core/relay-cell.js';
import { CMD_CONNECT, HOST_CHARS } from '../core/socks5.js';
import type { Connector } from './connect.js';
import {
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

/** C tor `fetch_from_buf_http(..., 8192, ...)`: the most header bytes it buffers. */
export const HTTP_MAX_HEAD = 8192;

export const HttpAnswer = {
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
 * C tor's status line for a stream that ended with `endReason` (0: it
 * opened), reasons.c `end_reason_to_http_connect_response_line`; local
 * reasons (NET_UNREACHABLE, 258) have no line of their own there: its default.
 */
export function httpConnectAnswer(endReason: number): string {
  const line = HTTP_LINES.get(endReason) ?? '500 Internal Server Error (weird end reason)';
  return `HTTP/1.0 ${line}\r\n\r\n`;
}

const HTTP_LINES = new Map<number, string>([
  [0, '200 OK'],
  [EndReason.MISC, '500 Internal Server Error'],
  [EndReason.RESOLVEFAILED, '404 Not Found (resolve failed)'],
  [EndReason.NOROUTE, '404 Not Found (no route)'],
  [EndReason.CONNECTREFUSED, '403 Forbidden (connection refused)'],
  [EndReason.EXITPOLICY, '403 Forbidden (exit policy)'],
  [EndReason.DESTROY, '502 Bad Gateway (destroy cell received)'],
  [EndReason.DONE, '502 Bad Gateway (unexpected close)'],
  [EndReason.TIMEOUT, '504 Gateway Timeout'],
  [EndReason.HIBERNATING, '502 Bad Gateway (hibernating server)'],
  [EndReason.INTERNAL, '502 Bad Gateway (internal error)'],
  [EndReason.RESOURCELIMIT, '502 Bad Gateway (resource limit)'],
  [EndReason.CONNRESET, '403 Forbidden (connection reset)'],
  [EndReason.TORPROTOCOL, '502 Bad Gateway (tor protocol violation)'],
]);

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
    answer: (r) => Buffer.from(httpConnectAnswer(r.endReason), 'latin1'),
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
