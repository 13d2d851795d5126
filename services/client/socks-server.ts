/**
 * The SOCKS5 front end: accepts CONNECT requests on 127.0.0.1 and hands
 * each to the client's connector, which returns a stream through the
 * network or fails with a SOCKS reply code. Credentials (any values) pick
 * an isolation group, as Tor's IsolateSOCKSAuth does.
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
 * is a reply code written before the socket closes. Timeouts nest: the
 * connector gets `deadline` (`remainingMs`), `replyMarginMs` before
 * SocksTimeout, so its own code (0xF3 for a late RENDEZVOUS2, 0x06 for a
 * stream that never got CONNECTED...) goes out first; if it still has not
 * answered at SocksTimeout, the server answers 0x06 (TTL expired, as C tor
 * answers END reason TIMEOUT) and closes. Counted in
 * `shallot_client_socks_replies_total{code}`.
 */

import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { ShallotError, TruncatedError } from '../core/errors.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { listenTcp } from '../net/tcp-server.js';
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
  SocksReply,
  type SocksRequest,
} from './socks5.js';

/** A failure the connector reports to the SOCKS client as a reply code. */
export class SocksFailure extends ShallotError {
  constructor(
    readonly reply: number,
    message: string,
  ) {
    super('ERR_SOCKS', message, { reply });
  }
}

export interface ConnectRequest extends SocksRequest {
  /** Streams with different keys never share a circuit. */
  isolationKey: string;
  /** performance.now() by which the connector must answer (absent: no bound but its own timeouts). */
  deadline?: number;
}

/** Time left before `req.deadline` (Infinity without one). */
export function remainingMs(req: ConnectRequest): number {
  return req.deadline === undefined ? Number.POSITIVE_INFINITY : req.deadline - performance.now();
}

/**
 * `p`, or TTL expired (C tor's reply for END reason TIMEOUT) once the
 * request's deadline passes; a result that arrives later goes to `late`.
 */
export function withDeadline<T>(p: Promise<T>, req: ConnectRequest, late?: (v: T) => void): Promise<T> {
  const left = remainingMs(req);
  if (left === Number.POSITIVE_INFINITY) return p;
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        expired = true;
        reject(new SocksFailure(SocksReply.TTL_EXPIRED, 'no answer before the SOCKS deadline'));
      },
      Math.max(0, left),
    );
  });
  void p.then((v) => expired && late?.(v)).catch(() => {});
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

export type Connector = (req: ConnectRequest) => Promise<Duplex>;

export interface SocksServerOptions {
  host: string;
  port: number;
  /**
   * Time to send the whole SOCKS handshake (greeting, credentials, request);
   * default 10 s. Deliberate deviation: C tor has no separate limit (its
   * SocksTimeout covers it), but a local application sends the handshake in
   * one round trip, and an idle connection holds a slot and a descriptor.
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

export interface SocksServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

const MAX_HANDSHAKE_BYTES = 1024;

const SOCKS_DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  socksTimeoutMs: 120_000,
  replyMarginMs: 1_000,
  maxHandshaking: 512,
  minIdleMs: 1_000,
  maxConnections: 4096,
};

type SocksMetrics = Pick<Metrics['client'], 'socksClosed' | 'socksHandshaking' | 'socksReplies'>;

/**
 * The connections whose request has not been read yet, least recently
 * active first (a Map iterates in insertion order; activity re-inserts),
 * with the time each was last active.
 */
class Handshaking {
  private readonly sockets = new Map<net.Socket, number>();

  constructor(
    private readonly o: { maxHandshaking: number; minIdleMs: number },
    private readonly m: SocksMetrics | null,
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
    this.m?.socksHandshaking.set(this.sockets.size);
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
    if (this.sockets.delete(socket)) this.m?.socksHandshaking.set(this.sockets.size);
  }
}

/** Starts the SOCKS5 listener; with a registry, its defences are counted (shallot_client_socks_*). */
export async function startSocksServer(
  opts: SocksServerOptions,
  connect: Connector,
  c: { registry?: Registry } = {},
): Promise<SocksServer> {
  const o = { ...SOCKS_DEFAULTS, ...opts };
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
    void handle(socket, connect, { ...o, handshaking, m });
  });
  return { port: server.port, address: `${o.host}:${server.port}`, close: server.close };
}

/** Reads from the socket until `decode` stops asking for more bytes. */
function reader(socket: net.Socket, onActivity: () => void) {
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
  return {
    async read<T>(decode: (b: Uint8Array) => { consumed: number } & T): Promise<T> {
      for (;;) {
        try {
          const res = decode(buf);
          buf = buf.subarray(res.consumed);
          return res;
        } catch (e) {
          if (!(e instanceof TruncatedError)) throw e;
        }
        if (ended) throw new SocksFailure(SocksReply.GENERAL_FAILURE, 'client closed during handshake');
        if (buf.length > MAX_HANDSHAKE_BYTES)
          throw new SocksFailure(SocksReply.GENERAL_FAILURE, 'handshake too long');
        await new Promise<void>((r) => {
          waiting = r;
        });
        waiting = null;
      }
    },
    /** Stops reading and returns bytes that arrived after the handshake. */
    detach(): Buffer {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      return buf;
    },
  };
}

interface HandleContext {
  handshakeTimeoutMs: number;
  socksTimeoutMs: number;
  replyMarginMs: number;
  handshaking: Handshaking;
  m: SocksMetrics | null;
}

/** Runs one admitted connection: handshake under its timeout, then CONNECT and splice. */
async function handle(socket: net.Socket, connect: Connector, x: HandleContext): Promise<void> {
  const accepted = performance.now();
  let replied = false;
  /** Writes the one reply to the request and, unless it is success, closes. */
  const reply = (code: number): boolean => {
    if (replied || socket.destroyed) return false;
    replied = true;
    x.m?.socksReplies.labels({ code: `0x${code.toString(16).padStart(2, '0')}` }).inc();
    if (code === SocksReply.SUCCEEDED) socket.write(encodeReply(code));
    else socket.end(encodeReply(code));
    return true;
  };
  let stage: 'greeting' | 'request' | 'connect' = 'greeting';
  const handshakeTimer = setTimeout(() => {
    x.m?.socksClosed.labels({ reason: 'handshake_timeout' }).inc();
    socket.destroy();
  }, x.handshakeTimeoutMs);
  const socksTimer = setTimeout(() => {
    // The connector missed its deadline: answer for it (C tor: END reason TIMEOUT is TTL expired).
    if (stage === 'connect') reply(SocksReply.TTL_EXPIRED);
    else socket.destroy();
  }, x.socksTimeoutMs);
  const handshakeDone = () => {
    clearTimeout(handshakeTimer);
    x.handshaking.remove(socket);
  };
  socket.once('close', handshakeDone);
  const rd = reader(socket, () => x.handshaking.touch(socket));
  try {
    const { msg: greeting } = await rd.read(decodeGreeting);
    let isolationKey = 'anonymous';
    if (greeting.methods.includes(AUTH_USERPASS)) {
      socket.write(encodeMethodChoice(AUTH_USERPASS));
      const { msg: cred } = await rd.read(decodeUserPass);
      isolationKey = `user:${cred.username.length}:${cred.username}:${cred.password}`;
      socket.write(encodeUserPassReply(true));
    } else if (greeting.methods.includes(AUTH_NONE)) {
      socket.write(encodeMethodChoice(AUTH_NONE));
    } else {
      handshakeDone();
      clearTimeout(socksTimer);
      socket.end(encodeMethodChoice(AUTH_NO_ACCEPTABLE));
      return;
    }
    stage = 'request';
    const { msg: req } = await rd.read(decodeRequest);
    handshakeDone();
    if (req.command !== CMD_CONNECT)
      throw new SocksFailure(SocksReply.COMMAND_NOT_SUPPORTED, 'only CONNECT is supported');
    if (req.port === 0) throw new SocksFailure(SocksReply.GENERAL_FAILURE, 'port 0');
    stage = 'connect';
    const deadline = accepted + x.socksTimeoutMs - x.replyMarginMs;
    const stream = await connect({ ...req, isolationKey, deadline });
    clearTimeout(socksTimer);
    const early = rd.detach();
    if (!reply(SocksReply.SUCCEEDED)) {
      stream.destroy();
      return;
    }
    if (early.length > 0) stream.write(early);
    socket.pipe(stream);
    stream.pipe(socket);
    stream.on('error', () => socket.destroy());
    stream.on('close', () => socket.end());
    socket.on('close', () => stream.destroy());
  } catch (e) {
    handshakeDone();
    clearTimeout(socksTimer);
    const code =
      e instanceof SocksFailure
        ? e.reply
        : e instanceof ShallotError && e.code === 'ERR_INVALID' && /address type/.test(e.message)
          ? SocksReply.ADDRESS_TYPE_NOT_SUPPORTED
          : SocksReply.GENERAL_FAILURE;
    if (stage === 'greeting') socket.destroy();
    else reply(code);
  }
}
