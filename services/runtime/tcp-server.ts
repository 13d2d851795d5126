/**
 * A plain TCP listener that remembers its open sockets, so close() ends
 * them instead of waiting for idle peers to hang up (net.Server.close only
 * stops accepting). Used by the SOCKS front end, the testnet's web target
 * and the test servers.
 */
import * as net from 'node:net';

export interface TcpServer {
  /** The bound port (the one the OS chose when asked for 0). */
  port: number;
  /** Destroys every open socket, then stops listening. */
  close(): Promise<void>;
}

export interface TcpServerOptions {
  host: string;
  port: number;
  maxConnections?: number;
}

/** Listens on host:port, handing each accepted socket to `onSocket`; rejects if the listen fails. */
export async function listenTcp(
  opts: TcpServerOptions,
  onSocket: (s: net.Socket) => void,
): Promise<TcpServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  if (opts.maxConnections !== undefined) server.maxConnections = opts.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
