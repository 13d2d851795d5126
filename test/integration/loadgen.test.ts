// `shallot load` against a whole network in one process: three voting
// authorities, five relays and a client; requests go through the client's
// SOCKS port and an exit to a local HTTP server serving /bytes/<n> and
// /sha256/<n>. Relay and client /metrics are scraped as a user would.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { runLoad } from '../../services/loadgen/loadgen.js';
import type { LoadResult } from '../../services/loadgen/result.js';
import { metricsFor } from '../../services/metrics/metrics.js';
import { type OpsServer, serveOps } from '../../services/runtime/ops-server.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { flagsListed } from '../helpers/consensus.js';
import { expectResultFields } from '../helpers/load-report.js';
import { testLogger } from '../helpers/log.js';
import { type BytesServer, startBytesServer } from '../unit/loadgen/bytes-server.js';

let net: LocalNetwork;
let client: ShallotClient;
let web: BytesServer;
let dir: string;
const relayRegistry = new Registry();
const clientRegistry = new Registry();
const ops: OpsServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-loadgen-'));
  web = await startBytesServer();
  net = await LocalNetwork.start(
    { logger: testLogger('net'), registry: relayRegistry },
    { authorities: 3, relays: 5, exits: 3, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await net.waitForConsensus(5, 40_000);
  client = new ShallotClient(
    { logger: testLogger('client'), registry: clientRegistry },
    { authorities: net.endpoints, socksHost: '127.0.0.1', socksPort: 0 },
  );
  await client.start();
  await client.ready(30_000);
  // The first consensus can predate the authorities' uptime thresholds (no Guard yet): requests
  // would wait for one, and the load's latencies must not include that wait.
  await flagsListed(client, ['Guard'], 2);
  for (const registry of [relayRegistry, clientRegistry]) {
    ops.push(
      await serveOps({ host: '127.0.0.1', port: 0, registry, health: () => ({ ok: true, ready: true }) }),
    );
  }
}, 90_000);

afterAll(async () => {
  await client?.stop();
  await net?.stop();
  await web?.close();
  await Promise.all(ops.map((o) => o.close()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('shallot load through a local network', () => {
  let result: LoadResult;
  const loadRegistry = new Registry();

  it('completes 20 requests at concurrency 4 through an exit, all checked', async () => {
    const lines: string[] = [];
    result = await runLoad(
      {
        target: `127.0.0.1:${web.port}`,
        socks: `127.0.0.1:${client.socksPort}`,
        count: 20,
        concurrency: 4,
        size: '8k,64k',
        newCircuit: true,
        timeout: 30,
        relayMetrics: ops[0]!.url,
        clientMetrics: ops[1]!.url,
        out: path.join(dir, 'results.json'),
        html: path.join(dir, 'report.html'),
        progress: 'lines',
        progressInterval: 1,
      },
      {
        output: { write: (s: string) => lines.push(s) },
        errors: { write: (s: string) => lines.push(s) },
        registry: loadRegistry,
      },
    );
    expect(result.failuresByReason).toEqual({});
    expect(result.successRatio).toBe(1);
    expect(result.counts).toMatchObject({ requests: 20, ok: 20, failed: 0, bytes: 10 * 8192 + 10 * 65536 });
    expect(Object.values(result.checksums).every((c) => c !== null)).toBe(true);
    expect(lines.join('')).toMatch(/time to last byte/);
  }, 50_000);

  it('reports latency percentiles and circuit builds from the client; no onion spreads for an exit target', () => {
    for (const k of ['connect', 'ttfb', 'ttlb'] as const) {
      expect(result.latency[k].count).toBe(20);
      expect(result.latency[k].p50!).toBeGreaterThan(0);
      expect(result.latency[k].p99!).toBeGreaterThanOrEqual(result.latency[k].p50!);
    }
    expect(result.latency.ttlb.p50!).toBeGreaterThanOrEqual(result.latency.connect.p50!);
    // A fresh isolation group per request: the client built circuits during the run.
    expect(result.circuitBuild?.count).toBeGreaterThan(0);
    expect(result.circuitBuild?.p50).toBeGreaterThan(0);
    // Rendezvous and intro spread are for onion targets: an exit run has none to report.
    expect(result.rendezvousSpread).toBeNull();
    expect(result.introSpread).toBeNull();
    expect(result.clientRendezvousChosen).toBeNull();
    expect(result.onionConnectPhases).toBeNull();
    expect(result.instanceSpread).toBeNull();
  });

  it("reports the network's settings, p99.9 and the whole distribution; no backoff when nothing failed", () => {
    // Relays from the authorities' consensus gauge (no shallot up data dir here).
    expect(result.network.relays).toBe(5);
    expect(result.network.mode).toBeNull();
    expect(Object.keys(result.network.handshakes ?? {}).length).toBeGreaterThan(0);
    expect(result.network.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(result.latency.ttlb.p999!).toBeGreaterThanOrEqual(result.latency.ttlb.p99!);
    expect(result.distribution.ttlb.bins.reduce((s, b) => s + b.count, 0)).toBe(20);
    expect(result.backoff).toMatchObject({ pauses: [], totalMs: 0 });
    expect(result.stoppedEarly).toBeNull();
  });

  it('writes the JSON and HTML reports and exports its own metrics', async () => {
    const json = JSON.parse(await readFile(path.join(dir, 'results.json'), 'utf8'));
    expectResultFields(json);
    expect(json.successRatio).toBe(1);
    expect(json.config.newCircuit).toBe(true);
    const html = await readFile(path.join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script/i);
    const m = metricsFor(loadRegistry).client;
    expect((await m.streams.get()).values).toEqual([
      expect.objectContaining({ labels: { outcome: 'success' }, value: 20 }),
    ]);
  });
});
