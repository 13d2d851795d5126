/**
 * What the two fault endpoints (testnet/fault-control.ts for `shallot
 * fault`, runtime/fault-route.ts for the operator's link-fault table) need
 * from a request: a bearer token compared in constant time, and a body
 * read up to a limit and no further.
 */
import type * as http from 'node:http';
import { ctEqual } from '../core/crypto.js';

/** True when `header` is `Bearer <64 hex digits>` naming `token`. */
export function bearerMatches(header: string | undefined, token: Uint8Array): boolean {
  const m = /^Bearer ([0-9a-f]{64})$/.exec(header ?? '');
  return !!m?.[1] && ctEqual(Buffer.from(m[1], 'hex'), token);
}

/**
 * The body as UTF-8, or null once it passes `max` bytes: reading stops
 * there and the rest is left unread, so the caller answers with
 * Connection: close.
 */
export function readLimitedBody(req: http.IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) {
        req.pause();
        req.removeAllListeners('data');
        resolve(null);
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
