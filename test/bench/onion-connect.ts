/**
 * Timing onion connects for the benches (onion.ts, onion-model.ts): a fresh
 * client's first connect (descriptor fetch from the HSDirs, introduction,
 * rendezvous, BEGIN; rend-spec-v3 §3) and warm connects of the same client
 * (descriptor cached; a new SOCKS username, so a new rendezvous each time).
 * Each is timed from the SOCKS request to the CONNECT reply.
 */
import { performance } from 'node:perf_hooks';
import { readAll } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

/** A client for one series of connects: its SOCKS port, and how to end it. */
export interface ConnectClient {
  socksPort: number;
  stop(): Promise<void>;
}

/**
 * One timed connect to `onion`:80. With `probe`, a small GET follows (not
 * timed) and must answer 200, proving the stream carries bytes; otherwise
 * the stream is closed at once.
 */
export async function timedOnionConnect(
  port: number,
  onion: string,
  isolation: string,
  probe: boolean,
): Promise<number> {
  const t = performance.now();
  const s = await socksConnect(port, onion, 80, { username: isolation, password: 'x', timeoutMs: 60_000 });
  const ms = performance.now() - t;
  if (!probe) {
    s.destroy();
    return ms;
  }
  s.write(`GET /bytes/16 HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
  const res = (await readAll(s)).toString('latin1');
  if (!res.startsWith('HTTP/1.1 200 OK')) throw new Error(`onion GET answered ${res.slice(0, 40)}`);
  return ms;
}

/** `clients` fresh clients in turn, each one first connect then `warmPerClient` warm ones. */
export async function firstAndWarmConnects(
  o: { clients: number; warmPerClient: number; probe: boolean },
  onion: string,
  newClient: () => Promise<ConnectClient>,
): Promise<{ first: number[]; warm: number[] }> {
  const first: number[] = [];
  const warm: number[] = [];
  for (let c = 0; c < o.clients; c++) {
    const client = await newClient();
    try {
      first.push(await timedOnionConnect(client.socksPort, onion, `first${c}`, o.probe));
      for (let w = 0; w < o.warmPerClient; w++)
        warm.push(await timedOnionConnect(client.socksPort, onion, `warm${c}-${w}`, o.probe));
    } finally {
      await client.stop();
    }
  }
  return { first, warm };
}
