/**
 * The client's proxy listeners, whatever the protocol: the SOCKS port
 * (SOCKS4, SOCKS4a, SOCKS5: socks-server.ts) and the HTTP CONNECT tunnel
 * port (http-tunnel.ts) share this accept loop, its exhaustion defences and
 * its deadlines. A protocol only reads its handshake into a request and
 * phrases the answer; the connector (client.ts, connect.ts) opens the
 * stream or fails with a typed error, which `connectReply`
 * (connect-reply.ts) turns into the END reason and SOCKS5 code every
 * protocol phrases its answer from (the stream itself is tor-spec §6.2's
 * BEGIN/CONNECTED, or rend-spec-v3 for onion services).
 *
 * Exhaustion defences (issue 12): a connection must finish its handshake
 * within `handshakeTimeoutMs` and reach CONNECTED within `socksTimeoutMs`
 * (C tor SocksTimeout); at most `maxHandshaking` connections may be in
 * handshake, and a new one over that closes the least recently active
 * (silent for `minIdleMs` at least) instead of being turned away, so 4,096
 * idle connections cost an attacker their own connections, not honest
 * applications theirs. Counted in `shallot_client_socks_closed_total{reason}`.
 *
 * Replies before close (issue 13): once the request is read, every outcome
 * is an answer written before the socket closes. Timeouts nest: the
 * connector gets `deadline` (connect.ts `remainingMs`), `replyMarginMs` before
 * SocksTimeout, so its own code (0xF3 for a late RENDEZVOUS2, 0x06 for a
 * stream that never got CONNECTED...) goes out first; if it still has not
 * answered at SocksTimeout, the server answers 0x06 (TTL expired, as C tor
 * answers END reason TIMEOUT) and closes. Counted by protocol and result in
 * `shallot_client_proxy_requests_total`, and SOCKS5's codes in
 * `shallot_client_socks_replies_total{code}`.
 */

import type * as net from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidError, ShallotError, TruncatedError } from '../core/errors.js';
import { SocksReply } from '../core/socks5.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { listenTcp } from '../runtime/tcp-server.js';
import { ConnectError, type Connector, type ConnectRequest } from './connect.js';
import { CONNECT_SUCCEEDED, type ConnectReply, connectReply } from './connect-reply.js';

/** `not_socks`: an HTTP request sent to the SOCKS port. */
export type ProxyProtocol = 'socks4' | 'socks4a' | 'socks5' | 'http_connect' | 'not_socks';

/** A request read from the application, and how to phrase the answer to its connect. */
export interface Handshake {
  protocol: ProxyProtocol;
  req: Omit<ConnectRequest, 'deadline'>;
  /** The bytes that answer a connect that ended with `reply` (connect-reply.ts). */
  answer(reply: ConnectReply): Uint8Array;
}

/** An answer written before closing, with no connect: a malformed or refused request. */
export class HandshakeAnswer extends ShallotError {
  constructor(
    readonly protocol: ProxyProtocol,
    readonly bytes: Uint8Array,
    message: string,
    /** The SOCKS5 code this answer stands for, when the protocol is SOCKS5. */
    readonly socks5Code?: number,
  ) {
    super('ERR_PROXY_HANDSHAKE', message, { protocol });
  }
}

/** The application closed before its request was complete: nothing to answer. */
export class HandshakeClosedError extends ShallotError {
  constructor() {
    super('ERR_PROXY_CLOSED', 'client closed during handshake');
  }
}

/** Reads a handshake; throws HandshakeAnswer to answer and close, anything else closes silently. */
export type ReadHandshake = (rd: HandshakeReader) => Promise<Handshake>;

export interface ProxyServerOptions {
  host: string;
  port: number;
  /**
   * Time to send the whole handshake; default 10 s. Deliberate deviation:
   * C tor has no separate limit (its SocksTimeout covers it), but a local
   * application sends the handshake in one round trip, and an idle
   * connection holds a slot and a descriptor.
   */
  handshakeTimeoutMs?: number;
  /** From accept to CONNECTED (C tor SocksTimeout, default 2 minutes). */
  socksTimeoutMs?: number;
  /**
   * The connector's deadline is this long before SocksTimeout (default 1 s),
   * so the inner failure's own reply code is written before the outer timer.
   */
  replyMarginMs?: number;
  /**
   * Connections in handshake at once (default 512). A new connection over
   * it closes the least recently active one instead of being refused, so
   * idle connections cannot lock honest applications out (issue 12).
   */
  maxHandshaking?: number;
  /**
   * Only a connection silent this long (default 1 s, far above a local
   * handshake's round trip) is closed for a newcomer.
   */
  minIdleMs?: number;
  /**
   * All connections at once (default 4096). At it, the least recently
   * active connection in handshake is closed for the newcomer; only when
   * every connection is a working stream is the newcomer refused.
   */
  maxConnections?: number;
}

export interface ProxyServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

const DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  socksTimeoutMs: 120_000,
  replyMarginMs: 1_000,
  maxHandshaking: 512,
  minIdleMs: 1_000,
  maxConnections: 4096,
};

type ProxyMetrics = Pick<
  Metrics['client'],
  'socksClosed' | 'socksHandshaking' | 'socksReplies' | 'proxyRequests'
>;

/** `result` label of shallot_client_proxy_requests_total for a SOCKS5 reply code (bounded set). */
const RESULT_NAMES = new Map<number, string>(
  Object.entries(SocksReply).map(([name, code]) => [
    code,
    name === 'SUCCEEDED' ? 'success' : name.toLowerCase(),
  ]),
);

function countAnswer(m: ProxyMetrics | null, protocol: ProxyProtocol, { socks5: code }: ConnectReply): void {
  m?.proxyRequests.labels({ protocol, result: RESULT_NAMES.get(code) ?? 'general_failure' }).inc();
  if (protocol === 'socks5')
    m?.socksReplies.labels({ code: `0x${code.toString(16).padStart(2, '0')}` }).inc();
}

/**
 * The connections whose request has not been read yet, least recently
 * active first (a Map iterates in insertion order; activity re-inserts),
 * with the time each was last active.
 */
class Handshaking {
  private readonly sockets = new Map<net.Socket, number>();

  constructor(
    private readonly o: { maxHandshaking: number; minIdleMs: number },
    private readonly m: ProxyMetrics | null,
  ) {}

  /**
   * Admits a new connection. While `maxHandshaking` or more are in
   * handshake, the least recently active is closed if it has been idle for
   * `minIdleMs`: a burst of fresh connections (which have had no time to
   * speak) is admitted over the cap. With the listener full, the least
   * recently active is closed regardless; false when none is in handshake
   * (every connection is a working stream): the newcomer is refused.
   */
  admit(socket: net.Socket, listenerFull: boolean): boolean {
    const now = performance.now();
    if (listenerFull) {
      const oldest = this.sockets.keys().next().value;
      if (!oldest) return false;
      this.evict(oldest);
    }
    for (const [oldest, since] of this.sockets) {
      if (this.sockets.size < this.o.maxHandshaking || now - since < this.o.minIdleMs) break;
      this.evict(oldest);
    }
    this.sockets.set(socket, now);
    // inc/dec, not set: every listener of the client shares the gauge.
    this.m?.socksHandshaking.inc();
    return true;
  }

  private evict(socket: net.Socket): void {
    this.remove(socket);
    this.m?.socksClosed.labels({ reason: 'evicted' }).inc();
    socket.destroy();
  }

  touch(socket: net.Socket): void {
    if (this.sockets.delete(socket)) this.sockets.set(socket, performance.now());
  }

  remove(socket: net.Socket): void {
    if (this.sockets.delete(socket)) this.m?.socksHandshaking.dec();
  }
}

/** Starts a proxy listener speaking the protocol `read` reads; with a registry, it is counted. */
export async function startProxyServer(
  opts: ProxyServerOptions & { maxHandshakeBytes: number },
  read: ReadHandshake,
  connect: Connector,
  c: { registry?: Registry } = {},
): Promise<ProxyServer> {
  const o = { ...DEFAULTS, ...opts };
  const m = c.registry ? metricsFor(c.registry).client : null;
  const handshaking = new Handshaking(o, m);
  // maxConnections is enforced here rather than by net.Server, which would
  // drop newcomers without letting an idle connection make room.
  let open = 0;
  const server = await listenTcp({ host: o.host, port: o.port }, (socket) => {
    socket.on('error', () => {});
    open += 1;
    socket.once('close', () => {
      open -= 1;
    });
    if (!handshaking.admit(socket, open > o.maxConnections)) {
      m?.socksClosed.labels({ reason: 'refused' }).inc();
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    void handle(socket, read, connect, { ...o, handshaking, m });
  });
  return { port: server.port, address: `${o.host}:${server.port}`, close: server.close };
}

export interface HandshakeReader {
  /** Decodes from the bytes received so far, waiting while `decode` throws TruncatedError. */
  read<T>(decode: (b: Uint8Array) => { consumed: number } & T): Promise<T>;
  /** Writes a handshake message that is not the final answer (SOCKS5 method choice and auth). */
  write(bytes: Uint8Array): void;
}

/** Reads from the socket until `decode` stops asking for more bytes. */
function reader(socket: net.Socket, maxBytes: number, onActivity: () => void) {
  let buf = Buffer.alloc(0);
  let waiting: (() => void) | null = null;
  let ended = false;
  const onData = (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    onActivity();
    waiting?.();
  };
  const onEnd = () => {
    ended = true;
    waiting?.();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  const rd: HandshakeReader & { detach(): Buffer } = {
    async read<T>(decode: (b: Uint8Array) => { consumed: number } & T): Promise<T> {
      for (;;) {
        try {
          const res = decode(buf);
          buf = buf.subarray(res.consumed);
          return res;
        } catch (e) {
          if (!(e instanceof TruncatedError)) throw e;
        }
        if (ended) throw new HandshakeClosedError();
        if (buf.length > maxBytes) throw new InvalidError('proxy handshake', `longer than ${maxBytes} bytes`);
        await new Promise<void>((r) => {
          waiting = r;
        });
        waiting = null;
      }
    },
    write(bytes: Uint8Array): void {
      socket.write(bytes);
    },
    /** Stops reading and returns bytes that arrived after the handshake. */
    detach(): Buffer {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      return buf;
    },
  };
  return rd;
}

interface HandleContext {
  handshakeTimeoutMs: number;
  socksTimeoutMs: number;
  replyMarginMs: number;
  maxHandshakeBytes: number;
  handshaking: Handshaking;
  m: ProxyMetrics | null;
}

/** Runs one admitted connection: handshake under its timeout, then connect and splice. */
async function handle(
  socket: net.Socket,
  read: ReadHandshake,
  connect: Connector,
  x: HandleContext,
): Promise<void> {
  const accepted = performance.now();
  let hs: Handshake | null = null;
  let replied = false;
  /** Writes the one answer to the request and, unless it is success, closes. */
  const reply = (r: ConnectReply): boolean => {
    if (replied || socket.destroyed || !hs) return false;
    replied = true;
    countAnswer(x.m, hs.protocol, r);
    if (r === CONNECT_SUCCEEDED) socket.write(hs.answer(r));
    else socket.end(hs.answer(r));
    return true;
  };
  const handshakeTimer = setTimeout(() => {
    x.m?.socksClosed.labels({ reason: 'handshake_timeout' }).inc();
    socket.destroy();
  }, x.handshakeTimeoutMs);
  const socksTimer = setTimeout(() => {
    // The connector missed its deadline: answer for it, as C tor's END reason TIMEOUT.
    if (hs) reply(connectReply(new ConnectError('timeout', 'SocksTimeout')));
    else socket.destroy();
  }, x.socksTimeoutMs);
  const handshakeDone = () => {
    clearTimeout(handshakeTimer);
    x.handshaking.remove(socket);
  };
  socket.once('close', handshakeDone);
  const rd = reader(socket, x.maxHandshakeBytes, () => x.handshaking.touch(socket));
  try {
    hs = await read(rd);
    handshakeDone();
    const deadline = accepted + x.socksTimeoutMs - x.replyMarginMs;
    const stream = await connect({ ...hs.req, deadline });
    clearTimeout(socksTimer);
    const early = rd.detach();
    if (!reply(CONNECT_SUCCEEDED)) {
      stream.destroy();
      return;
    }
    if (early.length > 0) stream.write(early);
    socket.pipe(stream);
    stream.pipe(socket);
    stream.on('error', () => socket.destroy());
    // A stream reset in the same link read as its CONNECTED is closed before
    // this line runs (origin-circuit.ts beginStream): its 'close' is past, so
    // end the socket here or the application waits on it forever.
    if (stream.destroyed) socket.end();
    else stream.on('close', () => socket.end());
    socket.on('close', () => stream.destroy());
  } catch (e) {
    handshakeDone();
    clearTimeout(socksTimer);
    if (hs) reply(connectReply(e));
    else if (e instanceof HandshakeAnswer && !socket.destroyed) {
      x.m?.proxyRequests.labels({ protocol: e.protocol, result: 'malformed' }).inc();
      if (e.protocol === 'socks5' && e.socks5Code !== undefined)
        x.m?.socksReplies.labels({ code: `0x${e.socks5Code.toString(16).padStart(2, '0')}` }).inc();
      socket.end(e.bytes);
    } else socket.destroy();
  }
}
