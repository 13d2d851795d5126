/**
 * Link latency bench (issue 18): three relays and a client on 127.0.0.1
 * whose links carry the network model's 50 ms one-way latency
 * (net/link-delay.ts), against what the spec's round trips predict:
 * - a 3-hop circuit over open channels: CREATE2 to the guard is one round
 *   trip, each EXTEND2 to hop k crosses k links both ways (tor-spec §5.1,
 *   §5.3): 2·50 + 4·50 + 6·50 = 600 ms;
 * - the same with every channel new: each link adds one cell round trip of
 *   the link handshake (tor-spec §4: VERSIONS, then CERTS/AUTH_CHALLENGE/
 *   NETINFO back; the initiator's NETINFO travels with its CREATE2):
 *   600 + 3·100 = 900 ms (TCP and TLS handshakes are not delayed: the model
 *   shapes cells, not packets);
 * - BEGIN to CONNECTED through 3 hops: one round trip over 3 links, 300 ms;
 * - a 2 MiB download, checked byte for byte: the stream window (500 cells,
 *   tor-spec §7.4) over a 300 ms round trip allows ~0.8 MB/s, so ~2.6 s.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { randomBytes } from '../../services/core/crypto.js';
import { parseNetworkModel } from '../../services/core/network-model.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import type { Relay } from '../../services/relay/relay.js';
import { linkShaping } from '../../services/runtime/shaping-options.js';
import { buildCircuit, startLocalRelay } from '../helpers/relays.js';
import { startBlobServer } from '../helpers/servers.js';
import { type BenchResult, fromLatencies } from './harness.js';

const MODEL = parseNetworkModel({ locations: ['everywhere'], defaultLatencyMs: 50, assign: 'random' });
const BLOB = 2 * 1024 * 1024;

const row = (
  name: string,
  unit: string,
  times: number[],
  expectedMs: number,
  bytes?: number,
): BenchResult => {
  const r = fromLatencies(name, unit, times, bytes);
  r.extra = { expectedMs, measuredMs: Math.round(times.reduce((a, b) => a + b, 0) / times.length) };
  return r;
};

export async function shapingBenches(runs: number): Promise<BenchResult[]> {
  const blobBytes = randomBytes(BLOB);
  const want = createHash('sha256').update(blobBytes).digest('hex');
  const blob = await startBlobServer(blobBytes);
  const relays: Relay[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const connect: number[] = [];
  const download: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      // Fresh relays each run, so the first build opens every channel.
      const path: Relay[] = [];
      for (const n of ['g', 'm', 'e'])
        path.push(await startLocalRelay(`b${n}${run}`, { shaping: linkShaping(`b${n}${run}`, MODEL, null) }));
      relays.push(...path);
      const pool = new ChannelPool({
        keys: null,
        tls: true,
        shaping: linkShaping(`client${run}`, MODEL, null),
      });
      let t = performance.now();
      const first = await buildCircuit(pool, path);
      cold.push(performance.now() - t);
      t = performance.now();
      const circ = await buildCircuit(pool, path);
      warm.push(performance.now() - t);
      first.destroy();
      t = performance.now();
      const s = await circ.openStream({ host: '127.0.0.1', port: blob.port }, 10_000);
      connect.push(performance.now() - t);
      const hash = createHash('sha256');
      let got = 0;
      await new Promise<void>((resolve, reject) => {
        s.on('data', (d: Uint8Array) => {
          hash.update(d);
          got += d.length;
        });
        s.on('end', () => resolve());
        s.on('error', reject);
      });
      download.push(performance.now() - t);
      if (got !== BLOB || hash.digest('hex') !== want) throw new Error(`download corrupted: ${got} bytes`);
      circ.destroy();
      pool.closeAll();
    }
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
    await blob.close();
  }
  return [
    row('3-hop build, 50 ms links, open channels', 'circuit', warm, 600),
    row('3-hop build, 50 ms links, new channels', 'circuit', cold, 900),
    row('stream connect, 3 hops, 50 ms links', 'stream', connect, 300),
    row('2 MiB download (connect + data, verified), 50 ms links', 'download', download, 2600, BLOB),
  ];
}
