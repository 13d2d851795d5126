// A tiny HTTP server with the load target's contract, for loadgen tests:
// GET /bytes/<n> returns n deterministic bytes, GET /sha256/<n> their hex
// SHA-256. `corrupt` flips a byte of every /bytes body (checksum tests);
// `noDigest` answers /sha256 with 404 (a target that cannot be checked).
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export function patternBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

export interface BytesServer {
  port: number;
  requests: string[];
  close(): Promise<void>;
}

export async function startBytesServer(
  opts: { corrupt?: boolean; noDigest?: boolean; delayMs?: number } = {},
): Promise<BytesServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const m = /^\/(bytes|sha256)\/(\d{1,9})$/.exec(req.url ?? '');
    if (!m || (m[1] === 'sha256' && opts.noDigest)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const body = patternBytes(Number(m[2]));
    const send = () => {
      if (m[1] === 'sha256') {
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end(`${createHash('sha256').update(body).digest('hex')}\n`);
        return;
      }
      if (opts.corrupt && body.length > 0) body[body.length - 1]! ^= 1;
      res
        .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
        .end(body);
    };
    if (opts.delayMs) setTimeout(send, opts.delayMs);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
