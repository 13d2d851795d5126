/**
 * What the HTTP endpoints that take a body need from a request: a bearer
 * token compared in constant time (the two fault endpoints,
 * testnet/fault-control.ts for `shallot fault` and runtime/fault-route.ts
 * for the operator's link-fault table), and a body read up to a limit and
 * no further (those two and the authorities' DirPort, directory/http.ts).
 */
import type * as http from 'node:http';
import { ctEqual } from '../core/crypto.js';

/** True when `header` is `Bearer <64 hex digits>` naming `token`. */
export function bearerMatches(header: string | undefined, token: Uint8Array): boolean {
  const m = /^Bearer ([0-9a-f]{64})$/.exec(header ?? '');
  return !!m?.[1] && ctEqual(Buffer.from(m[1], 'hex'), token);
}

/**
 * The body's bytes, or null when it is over `max`: at once when its
 * Content-Length says so (nothing is read), else once the bytes read pass
 * `max` (a chunked body has no length); reading stops there and the rest
 * is left unread (paused), so the caller answers with Connection: close or
 * drains it. Rejects when the stream fails first (the client hung up
 * mid-body: a truncated body is never handed on as a short one).
 */
export function readLimitedBytes(req: http.IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > max) {
      resolve(null);
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (d: Buffer) => {
      size += d.length;
      if (size > max) {
        req.pause();
        req.off('data', onData);
        resolve(null);
        return;
      }
      parts.push(d);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
    // Node ends a request whose client went away with 'close' and no 'end' (and not always 'error').
    req.on('close', () => {
      if (!req.complete) reject(new Error('request body truncated'));
    });
  });
}

/** The body as UTF-8, or null when over `max` (readLimitedBytes). */
export async function readLimitedBody(req: http.IncomingMessage, max: number): Promise<string | null> {
  return (await readLimitedBytes(req, max))?.toString('utf8') ?? null;
}
