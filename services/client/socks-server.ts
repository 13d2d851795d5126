/**
 * The SOCKS5 front end: accepts CONNECT requests on 127.0.0.1 and hands
 * each to the client's connector, which returns a stream through the
 * network or fails with a SOCKS reply code. Credentials (any values) pick
 * an isolation group, as Tor's IsolateSOCKSAuth does.
 */

import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { ShallotError, TruncatedError } from '../core/errors.js';
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
  handshakeTimeoutMs?: number;
  maxConnections?: number;
}

export interface SocksServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

const MAX_HANDSHAKE_BYTES = 1024;

export async function startSocksServer(opts: SocksServerOptions, connect: Connector): Promise<SocksServer> {
  const server = await listenTcp(
    { host: opts.host, port: opts.port, maxConnections: opts.maxConnections ?? 4096 },
    (socket) => {
      socket.on('error', () => {});
      socket.setNoDelay(true);
      void handle(socket, connect, opts.handshakeTimeoutMs ?? 30_000);
    },
  );
  return { port: server.port, address: `${opts.host}:${server.port}`, close: server.close };
}

/** Reads from the socket until `decode` stops asking for more bytes. */
function reader(socket: net.Socket) {
  let buf = Buffer.alloc(0);
  let waiting: (() => void) | null = null;
  let ended = false;
  const onData = (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
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

async function handle(socket: net.Socket, connect: Connector, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const rd = reader(socket);
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
      socket.end(encodeMethodChoice(AUTH_NO_ACCEPTABLE));
      return;
    }
    stage = 'request';
    const { msg: req } = await rd.read(decodeRequest);
    if (req.command !== CMD_CONNECT)
      throw new SocksFailure(SocksReply.COMMAND_NOT_SUPPORTED, 'only CONNECT is supported');
    if (req.port === 0) throw new SocksFailure(SocksReply.GENERAL_FAILURE, 'port 0');
    const stream = await connect({ ...req, isolationKey });
    clearTimeout(timer);
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
    clearTimeout(timer);
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
