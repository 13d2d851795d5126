// Tests use the product's SOCKS5 client (services/loadgen/socks-client.ts)
// the way an application would, through this positional-argument shim.
import type net from 'node:net';
import { socksConnect as connectViaSocks, SocksConnectError } from '../../services/loadgen/socks-client.js';

/** The proxy answered CONNECT with a non-success reply code. */
export class SocksReplyError extends Error {
  constructor(readonly reply: number) {
    super(`SOCKS reply 0x${reply.toString(16)}`);
  }
}

export async function socksConnect(
  proxyPort: number,
  host: string,
  port: number,
  opts: { username?: string; password?: string; timeoutMs?: number } = {},
): Promise<net.Socket> {
  try {
    const { socket } = await connectViaSocks({
      proxyHost: '127.0.0.1',
      proxyPort,
      host,
      port,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
      ...(opts.username !== undefined
        ? { credentials: { username: opts.username, password: opts.password ?? '' } }
        : {}),
    });
    // The client hands the socket over paused; flow starts with the first
    // reader, as for any fresh socket, so no early byte is lost.
    const onListener = (event: string | symbol) => {
      if (event !== 'data') return;
      socket.off('newListener', onListener);
      socket.resume();
    };
    socket.on('newListener', onListener);
    return socket;
  } catch (e) {
    if (e instanceof SocksConnectError && e.kind === 'reply' && e.reply !== undefined) {
      throw new SocksReplyError(e.reply);
    }
    throw e;
  }
}
