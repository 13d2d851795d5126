// The check shared by the server-speaks-first stream tests (integration and
// slow): connections over SOCKS to a target that writes a body on accept and
// closes, each on a fresh circuit, each reading until EOF.
import type net from 'node:net';
import { socksConnect } from './socks-client.js';

/** A body whose neighbouring bytes differ, so a lost or repeated cell shows. */
export function patternBody(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

/** What one connection read: its bytes, and whether EOF came within `ms`. */
function readToEof(s: net.Socket, ms: number): Promise<{ bytes: Buffer; eof: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (eof: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks), eof });
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => done(true));
    s.on('error', () => done(false));
  });
}

/**
 * `rounds` x `parallel` SOCKS connections to 127.0.0.1:`targetPort`, each
 * with its own username (IsolateSOCKSAuth: a fresh circuit), each expected
 * to read exactly `blob` then EOF within `eofMs` of the SOCKS success.
 * Returns one line per connection that did not.
 */
export async function serverFirstFailures(o: {
  socksPort: number;
  targetPort: number;
  blob: Buffer;
  label: string;
  rounds: number;
  parallel: number;
  eofMs: number;
}): Promise<string[]> {
  const failures: string[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const results = await Promise.all(
      Array.from({ length: o.parallel }, async (_, i) => {
        const user = `${o.label}-${round}-${i}`;
        const s = await socksConnect(o.socksPort, '127.0.0.1', o.targetPort, { username: user });
        const started = performance.now();
        const { bytes, eof } = await readToEof(s, o.eofMs);
        if (eof && bytes.equals(o.blob)) return null;
        const ms = Math.round(performance.now() - started);
        return `${user}: ${bytes.length} of ${o.blob.length} bytes, eof ${eof}, after ${ms} ms`;
      }),
    );
    for (const r of results) if (r !== null) failures.push(r);
  }
  return failures;
}
