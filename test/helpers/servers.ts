// Real TCP servers on 127.0.0.1 for exit and onion-service tests.
import type net from 'node:net';
import { listenTcp, type TcpServer } from '../../services/runtime/tcp-server.js';

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

/**
 * Serves `blob` in `chunk`-byte writes `everyMs` apart, so a transfer lasts
 * long enough to be interrupted however fast the data path is.
 */
export function startPacedBlobServer(blob: Uint8Array, chunk: number, everyMs: number): Promise<TestServer> {
  return startLocalServer((s) => {
    let off = 0;
    const timer = setInterval(() => {
      if (s.destroyed) return clearInterval(timer);
      s.write(blob.subarray(off, off + chunk));
      off += chunk;
      if (off >= blob.length) {
        clearInterval(timer);
        s.end();
      }
    }, everyMs);
    s.on('close', () => clearInterval(timer));
  });
}

export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
