/**
 * Connecting to an onion service through SOCKS on a local network (3
 * authorities and 8 relays as processes, the service with its built-in
 * backend): first and warm connects as onion-connect.ts times them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { ShallotClient } from '../../services/client/client.js';
import { silentLogger } from '../../services/runtime/log.js';
import { upProcessNetwork } from '../helpers/testnet.js';
import { type BenchResult, fromLatencies, quantile } from './harness.js';
import { firstAndWarmConnects } from './onion-connect.js';

export async function onionBenches(o: { clients: number; warmPerClient: number }): Promise<BenchResult[]> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-bench-onion-'));
  const net = await upProcessNetwork({ relays: 8, exits: 1, onionServices: 1, dataDir, logLevel: 'warn' });
  let times: { first: number[]; warm: number[] };
  try {
    const onion = net.state.onionServices[0]?.address;
    if (!onion) throw new Error('the network has no onion service');
    // A fresh client each time: no cached descriptor, no rendezvous circuit.
    times = await firstAndWarmConnects({ ...o, probe: false }, onion, async () => {
      const client = new ShallotClient(
        { logger: silentLogger, registry: new Registry() },
        {
          authorities: net.state.authorities,
          socksHost: '127.0.0.1',
          socksPort: 0,
          circuits: { prebuild: 0 },
        },
      );
      try {
        await client.start();
        await client.ready(30_000);
      } catch (e) {
        await client.stop();
        throw e;
      }
      return client;
    });
  } finally {
    await net.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  // The issue asks for median and p95; p95 rides in `extra` next to the harness's p50/p90/p99.
  const withP95 = (r: BenchResult, xs: number[]): BenchResult => ({
    ...r,
    extra: {
      p95Ms: Number(
        quantile(
          [...xs].sort((a, b) => a - b),
          0.95,
        ).toFixed(1),
      ),
    },
  });
  const { first, warm } = times;
  return [
    withP95(fromLatencies('onion first connect (descriptor + intro + rendezvous)', 'conn', first), first),
    withP95(fromLatencies('onion warm connect (cached descriptor, new rendezvous)', 'conn', warm), warm),
  ];
}
