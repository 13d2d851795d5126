/**
 * End-to-end figures over real wss links on 127.0.0.1: three Relay
 * instances in this process (as in test/integration/circuit.test.ts), a
 * client that builds 3-hop circuits, and a local TCP blob server behind the
 * exit for a bulk download.
 *
 * Everything (client, three relays, TLS, the blob server) shares one Node
 * event loop, so these figures are a floor for a real deployment, where each
 * relay has its own process. Every wait is bounded by a timeout.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { randomBytes } from '../../services/core/crypto.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import type { Relay } from '../../services/relay/relay.js';
import { buildCircuit, startLocalRelay } from '../helpers/relays.js';
import { readAll, startBlobServer, type TestServer } from '../helpers/servers.js';
import { type BenchResult, benchAsync, quantile } from './harness.js';

const MiB = 1024 * 1024;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export interface E2eOptions {
  buildBudgetMs: number;
  maxBuilds: number;
  downloadBytes: number;
  /** Downloads to time (after one warm-up of a smaller size); stops early past `downloadBudgetMs`. */
  downloads: number;
  downloadBudgetMs: number;
}

export async function e2eBenches(o: E2eOptions): Promise<BenchResult[]> {
  const relays: Relay[] = [];
  const pool = new ChannelPool({ keys: null, tls: true });
  const blobData = randomBytes(o.downloadBytes);
  const blobHash = createHash('sha256').update(blobData).digest('hex');
  let blob: TestServer | undefined;
  const out: BenchResult[] = [];

  const build = () => buildCircuit(pool, relays);

  try {
    blob = await startBlobServer(blobData);
    for (let i = 0; i < 3; i++)
      relays.push(await withTimeout(startLocalRelay(`bench${i}`), 10_000, 'relay start'));

    // First build pays for the TLS link handshakes (client->r0, r0->r1, r1->r2).
    const t0 = performance.now();
    (await withTimeout(build(), 10_000, 'first circuit build')).destroy();
    const coldMs = performance.now() - t0;

    const builds = await benchAsync(
      '3-hop circuit build (warm channels)',
      async () => (await withTimeout(build(), 5_000, 'circuit build')).destroy(),
      { unit: 'circ', budgetMs: o.buildBudgetMs, maxOps: o.maxBuilds, warmupOps: 5 },
    );
    builds.extra = { coldFirstBuildMs: Number(coldMs.toFixed(1)) };
    out.push(builds);

    const circ = await withTimeout(build(), 5_000, 'circuit build');
    try {
      const download = async (): Promise<number> => {
        const s = await withTimeout(circ.openStream({ host: '127.0.0.1', port: blob!.port }), 5_000, 'BEGIN');
        const t = performance.now();
        const data = await withTimeout(readAll(s), 60_000, 'download');
        const ms = performance.now() - t;
        if (data.length !== blobData.length || createHash('sha256').update(data).digest('hex') !== blobHash) {
          throw new Error(`download corrupt: ${data.length} of ${blobData.length} bytes`);
        }
        return ms;
      };
      await download(); // warm-up: JIT, windows, socket buffers
      const times: number[] = [];
      const start = performance.now();
      while (times.length < o.downloads && performance.now() - start < o.downloadBudgetMs) {
        times.push(await download());
      }
      times.sort((a, b) => a - b);
      const total = times.reduce((a, b) => a + b, 0);
      const median = quantile(times, 0.5);
      out.push({
        name: `3-hop download ${(o.downloadBytes / MiB).toFixed(0)} MiB via exit (TCP blob)`,
        unit: 'dl',
        perSecond: times.length / (total / 1000),
        ops: times.length,
        seconds: total / 1000,
        bytesPerSecond: o.downloadBytes / (median / 1000),
        p50Ms: median,
        p90Ms: quantile(times, 0.9),
        p99Ms: quantile(times, 0.99),
        extra: { bestMBps: Number((o.downloadBytes / (times[0]! / 1000) / 1e6).toFixed(1)) },
      });
    } finally {
      circ.destroy();
    }
  } finally {
    pool.closeAll();
    await Promise.allSettled(relays.map((r) => withTimeout(r.stop(), 5_000, 'relay stop')));
    await blob?.close();
  }
  return out;
}
