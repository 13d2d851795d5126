/**
 * Instances of one onion service finding each other over the network
 * (`InstanceExchange` over HTTP), for hosts that share no directory: the
 * pods of a Kubernetes Deployment. The records are sealed
 * (instance-record.ts), so the scheme is Onionbalance's (rend-spec-v3 §2.5.2:
 * one descriptor listing every instance's intro points) without a front-end.
 *
 * Overview: each instance serves its current sealed record at
 * `GET /instance-record` on its own port, and every `pollMs` fetches the
 * records of its peers: a fixed list of host:port, and/or every address a
 * DNS name resolves to (a headless Service: one A record per pod, its own
 * included, which is recognised by the instance name and skipped). Records
 * refused (bad signature, stale, future-dated, oversized, malformed) are
 * counted by reason; a peer that cannot be reached is simply left out until
 * it answers again (its last record goes stale after `staleMs`).
 *
 * Not in this module: the record format and its checks (instance-record.ts),
 * the shared-directory exchange (instances.ts).
 *
 * Design notes: polling happens on its own timer, so a slow or silent peer
 * never holds the service's housekeeping; `peers()` only reads what the last
 * polls left. Bodies are read up to MAX_SEALED_RECORD and the connection is
 * cut beyond it; every fetch has a deadline. The server answers GET only,
 * with short header and request timeouts and a cap on connections, since
 * anyone on the pod network can reach it (what it serves is encrypted).
 *
 * Limitations: plain HTTP (the record carries its own authentication and
 * encryption); at most MAX_TARGETS peers are polled.
 */
import { promises as dns } from 'node:dns';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from '../core/crypto.js';
import type { Logger } from '../runtime/log.js';
import {
  type InstanceRecordError,
  type InstanceRecordKeys,
  type InstanceRecordRefusal,
  instanceRecordKeys,
  MAX_SEALED_RECORD,
  openInstanceRecord,
  sealInstanceRecord,
} from './instance-record.js';
import type { InstanceExchange, InstanceRecord } from './instances.js';

export const INSTANCE_RECORD_PATH = '/instance-record';
const FETCH_TIMEOUT_MS = 3_000;
const MAX_TARGETS = 64;

export interface PeerAddress {
  host: string;
  port: number;
}

export interface InstancePeersOptions {
  /** Where this instance serves its record (port 0: any free port). */
  listen: PeerAddress;
  /** Peers by address. */
  peers?: PeerAddress[];
  /** A name resolving to every instance (A/AAAA records), with the port they serve on. */
  dns?: PeerAddress;
  /** How often peers are fetched (default 5 s). */
  pollMs?: number;
}

export interface InstancePeersComponents {
  logger: Logger;
  /** A peer's record was refused (for the metric). */
  refused: (reason: InstanceRecordRefusal) => void;
  now?: () => number;
  /** Resolves the DNS name to addresses (tests replace it). */
  lookup?: (name: string) => Promise<string[]>;
}

/** "host:port" (IPv6 hosts in brackets); throws a plain Error naming the problem. */
export function parsePeerAddress(spec: string): PeerAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(spec.trim());
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new Error(`"${spec}" is not host:port`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** A comma-separated list of host:port. */
export function parsePeerList(spec: string): PeerAddress[] {
  return spec
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(parsePeerAddress);
}

async function lookupAll(name: string): Promise<string[]> {
  return (await dns.lookup(name, { all: true })).map((a) => a.address);
}

export class HttpInstanceExchange implements InstanceExchange {
  private sealed: Uint8Array | null = null;
  private readonly records = new Map<string, InstanceRecord>();
  /** Last problem per peer address, so a lasting one is logged once. */
  private readonly problems = new Map<string, string>();
  private readonly keys: InstanceRecordKeys;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private self = '';
  private staleMs = 20_000;

  private constructor(
    private readonly c: InstancePeersComponents,
    private readonly opts: InstancePeersOptions,
    identitySeed: Uint8Array,
    private readonly server: http.Server,
  ) {
    this.keys = instanceRecordKeys(identitySeed);
    this.now = c.now ?? Date.now;
  }

  /** Serves this instance's record and starts polling peers. */
  static async start(
    c: InstancePeersComponents,
    opts: InstancePeersOptions,
    identitySeed: Uint8Array,
  ): Promise<HttpInstanceExchange> {
    const server = http.createServer();
    const ex = new HttpInstanceExchange(c, opts, identitySeed, server);
    server.on('request', (req, res) => ex.serve(req, res));
    // Slow or idle clients must not pin connections: a record is one small GET.
    server.headersTimeout = 5_000;
    server.requestTimeout = 5_000;
    server.keepAliveTimeout = 1_000;
    server.maxConnections = 64;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.listen.port, opts.listen.host, () => resolve());
    });
    ex.timer = setInterval(() => void ex.poll(), opts.pollMs ?? 5_000);
    ex.timer.unref();
    return ex;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if ((req.url ?? '/').split('?')[0] !== INSTANCE_RECORD_PATH) {
      res.writeHead(404).end();
      return;
    }
    if (!this.sealed) {
      res.writeHead(503).end(); // no intro point yet
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(this.sealed);
  }

  async publish(r: InstanceRecord): Promise<void> {
    const first = this.sealed === null;
    this.self = r.instance;
    this.sealed = sealInstanceRecord(this.keys, r, randomBytes);
    // The first record out: look for peers now rather than a poll interval later.
    if (first) void this.poll();
  }

  async peers(self: string, nowMs: number, staleMs: number): Promise<InstanceRecord[]> {
    this.self = self;
    this.staleMs = staleMs;
    const out: InstanceRecord[] = [];
    for (const [name, r] of [...this.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (nowMs - r.updatedMs > staleMs) this.records.delete(name);
      else if (name !== self) out.push(r);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sealed = null;
    await this.polling;
    await new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  /** One round over every peer; overlapping rounds are skipped. */
  poll(): Promise<void> {
    if (!this.polling)
      this.polling = this.pollOnce().finally(() => {
        this.polling = null;
      });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const targets = [...(this.opts.peers ?? [])];
    const d = this.opts.dns;
    if (d) {
      try {
        for (const host of await (this.c.lookup ?? lookupAll)(d.host)) targets.push({ host, port: d.port });
        this.problem(`dns ${d.host}`, null);
      } catch (e) {
        this.problem(`dns ${d.host}`, (e as Error).message);
      }
    }
    const seen = new Set<string>();
    const unique = targets.filter((t) => {
      const k = `${t.host}:${t.port}`;
      return !seen.has(k) && seen.add(k);
    });
    // Addresses no longer listed (pods replaced) are forgotten, so this map stays as small as the peer set.
    for (const where of this.problems.keys())
      if (!seen.has(where) && !where.startsWith('dns ')) this.problems.delete(where);
    await Promise.all(unique.slice(0, MAX_TARGETS).map((t) => this.fetchOne(t)));
  }

  private async fetchOne(t: PeerAddress): Promise<void> {
    const where = `${t.host}:${t.port}`;
    let body: Uint8Array | null;
    try {
      body = await fetchRecord(t);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        this.refuse(where, 'oversized', 'body over the limit');
        return;
      }
      this.problem(where, (e as Error).message);
      return;
    }
    if (!body) return this.problem(where, null); // up, no intro point yet
    let r: InstanceRecord;
    try {
      r = openInstanceRecord(this.keys, body, { nowMs: this.now(), staleMs: this.staleMs });
    } catch (e) {
      const err = e as InstanceRecordError;
      this.refuse(where, err.reason ?? 'malformed', err.message);
      return;
    }
    this.problem(where, null);
    if (r.instance === this.self) return; // our own pod, listed by the DNS name
    const had = this.records.get(r.instance);
    if (!had || had.updatedMs < r.updatedMs) this.records.set(r.instance, r);
  }

  private refuse(where: string, reason: InstanceRecordRefusal, detail: string): void {
    this.c.refused(reason);
    this.problem(where, detail, 'warn');
  }

  private problem(where: string, detail: string | null, level: 'info' | 'warn' = 'info'): void {
    const was = this.problems.get(where);
    if (detail === null) {
      if (was !== undefined) this.c.logger.info('instance peer answers again', { peer: where });
      this.problems.delete(where);
      return;
    }
    if (was === detail) return;
    this.problems.set(where, detail);
    this.c.logger[level]('instance peer: no record', { peer: where, error: detail });
  }
}

class BodyTooLarge extends Error {}

/** GET the record: the body, null when the peer has none yet (503); throws on anything else. */
function fetchRecord(t: PeerAddress): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: t.host, port: t.port, path: INSTANCE_RECORD_PATH, agent: false, timeout: FETCH_TIMEOUT_MS },
      (res) => {
        if (res.statusCode === 503) {
          res.resume();
          resolve(null);
          return;
        }
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`HTTP ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (b: Buffer) => {
          size += b.length;
          if (size > MAX_SEALED_RECORD) {
            reject(new BodyTooLarge());
            req.destroy();
            return;
          }
          chunks.push(b);
        });
        res.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
        res.on('error', reject);
      },
    );
    // One deadline for the whole exchange, not only for idle sockets: a peer trickling bytes is cut too.
    const timedOut = () => {
      reject(new Error('timed out'));
      req.destroy();
    };
    const deadline = setTimeout(timedOut, FETCH_TIMEOUT_MS);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', timedOut);
    req.on('error', reject);
  });
}
