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
  maxHandshaking: 512,
  minIdleMs: 1_000,
  maxConnections: 4096,
};

type SocksMetrics = Pick<Metrics['client'], 'socksClosed' | 'socksHandshaking'>;

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
  handshaking: Handshaking;
  m: SocksMetrics | null;
}

/** Runs one admitted connection: handshake under its timeout, then CONNECT and splice. */
async function handle(socket: net.Socket, connect: Connector, x: HandleContext): Promise<void> {
  const handshakeTimer = setTimeout(() => {
    x.m?.socksClosed.labels({ reason: 'handshake_timeout' }).inc();
    socket.destroy();
  }, x.handshakeTimeoutMs);
  const socksTimer = setTimeout(() => socket.destroy(), x.socksTimeoutMs);
  const handshakeDone = () => {
    clearTimeout(handshakeTimer);
    x.handshaking.remove(socket);
  };
  socket.once('close', handshakeDone);
  const rd = reader(socket, () => x.handshaking.touch(socket));
  let stage: 'greeting' | 'request' = 'greeting';
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
    const stream = await connect({ ...req, isolationKey });
    clearTimeout(socksTimer);
    const early = rd.detach();
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    socket.write(encodeReply(SocksReply.SUCCEEDED));
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
    if (!socket.destroyed) {
      if (stage === 'request') socket.end(encodeReply(code));
      else socket.destroy();
    }
  }
}
