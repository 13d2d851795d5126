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
 * instead of being turned away, so 4,096 idle connections cost an attacker
 * their own connections, not honest applications theirs. Counted in
 * `shallot_client_socks_closed_total{reason}`.
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
  /** All connections at once, the listener's backlog cap (default 4096). */
  maxConnections?: number;
}

export interface SocksServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

const MAX_HANDSHAKE_BYTES = 1024;

export const SOCKS_DEFAULTS = {
  handshakeTimeoutMs: 10_000,
  socksTimeoutMs: 120_000,
  maxHandshaking: 512,
  maxConnections: 4096,
};

type SocksMetrics = Pick<Metrics['client'], 'socksClosed' | 'socksHandshaking'>;

/**
 * The connections whose request has not been read yet, least recently
 * active first (a Set iterates in insertion order; activity re-inserts).
 */
class Handshaking {
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly max: number,
    private readonly m: SocksMetrics | null,
  ) {}

  /** Admits a new connection, closing the least recently active one if full. */
  add(socket: net.Socket): void {
    if (this.sockets.size >= this.max) {
      const oldest = this.sockets.values().next().value as net.Socket;
      this.remove(oldest);
      this.m?.socksClosed.labels({ reason: 'evicted' }).inc();
      oldest.destroy();
    }
    this.sockets.add(socket);
    this.m?.socksHandshaking.set(this.sockets.size);
  }

  touch(socket: net.Socket): void {
    if (this.sockets.delete(socket)) this.sockets.add(socket);
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
  const handshaking = new Handshaking(o.maxHandshaking, m);
  const server = await listenTcp(
    { host: o.host, port: o.port, maxConnections: o.maxConnections },
    (socket) => {
      socket.on('error', () => {});
      socket.setNoDelay(true);
      void handle(socket, connect, { ...o, handshaking, m });
    },
  );
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

async function handle(socket: net.Socket, connect: Connector, x: HandleContext): Promise<void> {
  x.handshaking.add(socket);
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
