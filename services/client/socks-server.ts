/**
 * The SOCKS port: SOCKS4, SOCKS4a and SOCKS5 CONNECT on one listener,
 * told apart by the first byte as C tor's proto_socks.c
 * `parse_socks_client` does (socks-extensions.txt). The accept loop, its
 * exhaustion defences and the nested deadlines are proxy-server.ts's.
 *
 * Stream isolation follows C tor's IsolateSOCKSAuth (on by default): the
 * SOCKS5 user name and password, or the SOCKS4 user id taken as a user name
 * with no password, choose which circuits a stream may share; so SOCKS4 user
 * id "a" and SOCKS5 user "a" with an empty password share circuits, as in
 * C tor's `connection_edge_compatible_with_circuit`.
 *
 * Answers (connect-reply.ts): SOCKS5 replies carry the failure's SOCKS5 code
 * (Tor's extended codes for onion services included). SOCKS4 has only 90 (granted) and 91
 * (rejected): every failure is 91 (C tor `connection_ap_handshake_socks_reply`),
 * and so is a malformed SOCKS4 request, which C tor also answers before
 * closing. A malformed SOCKS5 greeting is closed without an answer; a
 * malformed SOCKS5 request gets its reply code first. An HTTP request on
 * the SOCKS port gets C tor's "Tor is not an HTTP Proxy" page, which points
 * to the HTTP tunnel port; any other first byte is closed unanswered.
 */

import type { Registry } from 'prom-client';
import { ShallotError, TruncatedError } from '../core/errors.js';
import {
  AUTH_NO_ACCEPTABLE,
  AUTH_NONE,
  AUTH_USERPASS,
  CMD_CONNECT,
  decodeGreeting,
  decodeRequest,
  decodeUserPass,
  encodeMethodChoice,
  encodeReply,
  encodeUserPassReply,
  SOCKS_VERSION,
  SocksReply,
} from '../core/socks5.js';
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
import { decodeSocks4Request, encodeSocks4Reply, SOCKS4_VERSION, Socks4Reply } from './socks4.js';

export type SocksServerOptions = ProxyServerOptions;
export type SocksServer = ProxyServer;

/** SOCKS messages are short: a SOCKS5 request is at most 262 bytes, a SOCKS4 one 512 (C tor's cap). */
const MAX_HANDSHAKE_BYTES = 1024;

/**
 * Streams with the same credentials may share circuits (C tor IsolateSOCKSAuth).
 * Empty credentials are none: C tor keeps an empty user name and password
 * as absent, and absent ones compare equal to a stream without any.
 */
export function credentialsIsolationKey(username: string, password: string): string {
  if (username === '' && password === '') return 'anonymous';
  return `user:${username.length}:${username}:${password}`;
}

/** Starts the SOCKS4/4a/5 listener; with a registry, its defences and answers are counted. */
export function startSocksServer(
  opts: SocksServerOptions,
  connect: Connector,
  c: { registry?: Registry } = {},
): Promise<SocksServer> {
  return startProxyServer(
    { ...opts, maxHandshakeBytes: MAX_HANDSHAKE_BYTES },
    readSocksHandshake,
    connect,
    c,
  );
}

/** C tor proto_socks.c SOCKS_PROXY_IS_NOT_AN_HTTP_PROXY_MSG, word for word. */
export const NOT_AN_HTTP_PROXY =
  'HTTP/1.0 501 Tor is not an HTTP Proxy\r\n' +
  'Content-Type: text/html; charset=iso-8859-1\r\n\r\n' +
  '<html>\n<head>\n<title>This is a SOCKS Proxy, Not An HTTP Proxy</title>\n</head>\n<body>\n' +
  '<h1>This is a SOCKs proxy, not an HTTP proxy.</h1>\n<p>\n' +
  'It appears you have configured your web browser to use this Tor port as\nan HTTP proxy.\n</p><p>\n' +
  'This is not correct: This port is configured as a SOCKS proxy, not\n' +
  'an HTTP proxy. If you need an HTTP proxy tunnel, use the HTTPTunnelPort\n' +
  'configuration option in place of, or in addition to, SOCKSPort.\n' +
  'Please configure your client accordingly.\n</p>\n<p>\n' +
  'See <a href="https://www.torproject.org/documentation.html">' +
  'https://www.torproject.org/documentation.html</a> for more information.\n</p>\n</body>\n</html>\n';

/** Dispatches on the version byte, as C tor's `parse_socks`. */
export async function readSocksHandshake(rd: HandshakeReader): Promise<Handshake> {
  const { version } = await rd.read(peekVersion);
  if (version === SOCKS4_VERSION) return readSocks4(rd);
  if (version === SOCKS_VERSION) return readSocks5(rd);
  // GET, HEAD, POST/PUT, CONNECT: an HTTP client pointed at the SOCKS port.
  if ('GHPC'.includes(String.fromCharCode(version)))
    throw new HandshakeAnswer(
      'not_socks',
      Buffer.from(NOT_AN_HTTP_PROXY, 'latin1'),
      'HTTP on the SOCKS port',
    );
  throw new ShallotError('ERR_SOCKS_VERSION', `SOCKS version ${version}`, { version });
}

function peekVersion(b: Uint8Array): { version: number; consumed: number } {
  if (b.length === 0) throw new TruncatedError('socks version', 1, 0);
  return { version: b[0] as number, consumed: 0 };
}

async function readSocks4(rd: HandshakeReader): Promise<Handshake> {
  let msg: ReturnType<typeof decodeSocks4Request>['msg'];
  try {
    ({ msg } = await rd.read(decodeSocks4Request));
  } catch (e) {
    if (e instanceof HandshakeClosedError) throw e;
    // C tor answers SOCKS_RESULT_INVALID with a reject before closing.
    throw new HandshakeAnswer('socks4', encodeSocks4Reply(Socks4Reply.REJECTED), String(e));
  }
  return {
    protocol: msg.addressType === 'domain' ? 'socks4a' : 'socks4',
    req: {
      command: msg.command,
      host: msg.host,
      port: msg.port,
      addressType: msg.addressType,
      isolationKey: credentialsIsolationKey(msg.userid, ''),
    },
    answer: (r) => encodeSocks4Reply(r.endReason === 0 ? Socks4Reply.GRANTED : Socks4Reply.REJECTED),
  };
}

async function readSocks5(rd: HandshakeReader): Promise<Handshake> {
  const { msg: greeting } = await rd.read(decodeGreeting);
  let isolationKey = 'anonymous';
  if (greeting.methods.includes(AUTH_USERPASS)) {
    rd.write(encodeMethodChoice(AUTH_USERPASS));
    const { msg: cred } = await rd.read(decodeUserPass);
    isolationKey = credentialsIsolationKey(cred.username, cred.password);
    rd.write(encodeUserPassReply(true));
  } else if (greeting.methods.includes(AUTH_NONE)) {
    rd.write(encodeMethodChoice(AUTH_NONE));
  } else {
    throw new HandshakeAnswer('socks5', encodeMethodChoice(AUTH_NO_ACCEPTABLE), 'no acceptable method');
  }
  const refuse = (code: number, why: string) => new HandshakeAnswer('socks5', encodeReply(code), why, code);
  let req: ReturnType<typeof decodeRequest>['msg'];
  try {
    ({ msg: req } = await rd.read(decodeRequest));
  } catch (e) {
    if (e instanceof HandshakeClosedError) throw e;
    const atyp = e instanceof ShallotError && e.code === 'ERR_INVALID' && /address type/.test(e.message);
    throw refuse(atyp ? SocksReply.ADDRESS_TYPE_NOT_SUPPORTED : SocksReply.GENERAL_FAILURE, String(e));
  }
  if (req.command !== CMD_CONNECT)
    throw refuse(SocksReply.COMMAND_NOT_SUPPORTED, 'only CONNECT is supported');
  if (req.port === 0) throw refuse(SocksReply.GENERAL_FAILURE, 'port 0');
  return { protocol: 'socks5', req: { ...req, isolationKey }, answer: (r) => encodeReply(r.socks5) };
}
