/**
 * The network as separate processes (`shallot up --process-per-node`): a
 * download through SOCKS and three hops, then each relay process's resident
 * memory read from /proc — what one relay costs on a machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from '../../services/core/crypto.js';
import { readAll, startBlobServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';
import { socksPortOf, upProcessNetwork } from '../helpers/testnet.js';
import { type BenchResult, fromLatencies, quantile } from './harness.js';
import { processRssMiB } from './proc-stat.js';

/** A relay process's RSS; one that has exited fails the row rather than pull its figures down. */
function liveRssMiB(pid: number): number {
  const mib = processRssMiB(pid);
  if (mib === 0) throw new Error(`relay process ${pid} has exited`);
  return mib;
}

export async function processBenches(o: {
  relays: number;
  downloadBytes: number;
  downloads: number;
}): Promise<BenchResult[]> {
  const blob = await startBlobServer(randomBytes(o.downloadBytes));
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-bench-'));
  const net = await upProcessNetwork({ relays: o.relays, exits: 2, dataDir, logLevel: 'warn' });
  try {
    const socksPort = socksPortOf(net);
    const relayPids = net.state.nodes.filter((n) => n.role === 'relay').map((n) => n.pid as number);
    const idle = relayPids.map(liveRssMiB).sort((a, b) => a - b);
    const times: number[] = [];
    for (let i = 0; i < o.downloads; i++) {
      const t = performance.now();
      const data = await readAll(
        await socksConnect(socksPort, '127.0.0.1', blob.port, { timeoutMs: 60_000 }),
      );
      if (data.length !== o.downloadBytes) throw new Error(`download ${i} was short: ${data.length} bytes`);
      times.push(performance.now() - t);
    }
    const busy = relayPids.map(liveRssMiB).sort((a, b) => a - b);
    const fmt = (xs: number[], q: number) => Number(quantile(xs, q).toFixed(1));
    return [
      fromLatencies(
        `SOCKS download ${o.downloadBytes >> 20} MiB, ${o.relays} relay processes`,
        'dl',
        times,
        o.downloadBytes,
      ),
      {
        name: 'relay process RSS (MiB)',
        unit: 'MiB',
        perSecond: Number.NaN,
        ops: relayPids.length,
        seconds: 0,
        extra: {
          idleP50: fmt(idle, 0.5),
          idleMax: fmt(idle, 1),
          afterDownloadsP50: fmt(busy, 0.5),
          afterDownloadsMax: fmt(busy, 1),
        },
      },
    ];
  } finally {
    await net.stop();
    await blob.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
