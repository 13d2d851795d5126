/**
 * The exit destination `shallot up` offers: the onion services' built-in
 * HTTP backend (GET /bytes/<n>, /sha256/<n>) on a plain 127.0.0.1 port, so
 * exit traffic and onion traffic can be compared like for like.
 */
import net from 'node:net';
import { serveBuiltinHttp } from '../onion-service/builtin-http.js';

export interface WebTarget {
  port: number;
  close(): Promise<void>;
}

export async function startWebTarget(host: string, port: number): Promise<WebTarget> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    serveBuiltinHttp(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
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
