// Real TCP servers on 127.0.0.1 for exit and onion-service tests.
import type net from 'node:net';
import { listenTcp, type TcpServer } from '../../services/net/tcp-server.js';

export type TestServer = TcpServer;

/** A server on an OS-chosen 127.0.0.1 port; peer errors just drop the socket. */
function startLocalServer(serve: (s: net.Socket) => void): Promise<TestServer> {
  return listenTcp({ host: '127.0.0.1', port: 0 }, (s) => {
    s.on('error', () => s.destroy());
    serve(s);
  });
}

/** Echoes every byte back. */
export function startEchoServer(): Promise<TestServer> {
  return startLocalServer((s) => s.pipe(s));
}

/** Sends `blob` on connect, then closes. */
export function startBlobServer(blob: Uint8Array): Promise<TestServer> {
  return startLocalServer((s) => s.end(blob));
}

export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
