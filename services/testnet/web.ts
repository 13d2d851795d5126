/**
 * The exit destination `shallot up` offers: the onion services' built-in
 * HTTP backend (GET /bytes/<n>, /sha256/<n>) on a plain 127.0.0.1 port, so
 * exit traffic and onion traffic can be compared like for like.
 */

import { serveBuiltinHttp } from '../onion-service/builtin-http.js';
import { listenTcp, type TcpServer } from '../runtime/tcp-server.js';

export type WebTarget = TcpServer;

export function startWebTarget(host: string, port: number): Promise<WebTarget> {
  return listenTcp({ host, port }, (s) => {
    s.on('error', () => s.destroy());
    serveBuiltinHttp(s, 'Shallot exit target (shallot up: reached through exits, not an onion service)');
  });
}
