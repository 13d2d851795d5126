// The same network as test/integration/network.test.ts with every node a
// separate process (`shallot up --process-per-node`): 3 authorities, 8
// relays, the client and an onion service, each
// `node dist/services/<name>/main.js`, building circuits with ntor-v3, the
// onion service admitting only the client's client-authorization key, onion
// circuits through layer-2 vanguards. Needs
// `npm run build` (done by `npm run test:all`).
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { randomBytes } from '../../services/core/crypto.js';
import { SocksReply } from '../../services/core/socks5.js';
import { scrape, sumOf } from '../../services/loadgen/scrape.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { testLogger } from '../helpers/log.js';
import { readAll, startBlobServer, type TestServer } from '../helpers/servers.js';
import { SocksReplyError, socksConnect } from '../helpers/socks-client.js';
import { socksPortOf, upProcessNetwork } from '../helpers/testnet.js';

const BLOB = randomBytes(10 * 1024 * 1024);
let dataDir: string;
let net: RunningNetwork;
let blob: TestServer;

beforeAll(async () => {
  blob = await startBlobServer(BLOB);
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-procs-'));
  // ntor-v3 here (the in-process networks use ntor), so both handshakes cross
  // real process boundaries; client authorization and vanguards-lite through
  // the processes' flags.
  net = await upProcessNetwork({
    relays: 8,
    exits: 3,
    onionServices: 1,
    dataDir,
    logLevel: 'info',
    handshake: 'ntor-v3',
    clientAuth: true,
    vanguardsLite: true,
  });
}, 300_000);

afterAll(async () => {
  await net?.stop();
  await blob?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('a network of separate processes', () => {
  it('runs every node as its own process', () => {
    const pids = net.state.nodes.map((n) => n.pid).filter((p): p is number => typeof p === 'number');
    expect(new Set(pids).size).toBe(3 + 8 + 1 + 1);
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();
  });

  it('carries 10 MiB through SOCKS and three hops intact', async () => {
    const s = await socksConnect(socksPortOf(net), '127.0.0.1', blob.port);
    const data = await readAll(s);
    expect(createHash('sha256').update(data).digest('hex')).toBe(
      createHash('sha256').update(BLOB).digest('hex'),
    );
  }, 90_000);

  it('reaches the onion service process (with its client-auth key) through relay processes as intro and rendezvous points', async () => {
    const onion = net.state.onionServices[0]?.address ?? '';
    const s = await socksConnect(socksPortOf(net), onion, 80, { timeoutMs: 60_000 });
    s.write(`GET /bytes/200000 HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
    const all = await readAll(s);
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
    expect(createHash('sha256').update(body).digest('hex')).toBe(builtinSha256(200000));
  }, 90_000);

  it('turns away a client without the key with SOCKS 0xF4', async () => {
    const stranger = new ShallotClient(
      { logger: testLogger('stranger'), registry: new Registry() },
      {
        authorities: net.state.authorities,
        socksHost: '127.0.0.1',
        socksPort: 0,
        circuits: { prebuild: 0, handshake: 'ntor-v3' },
      },
    );
    try {
      await stranger.start();
      await stranger.ready(30_000);
      const onion = net.state.onionServices[0]?.address ?? '';
      const err = await socksConnect(stranger.socksPort, onion, 80, { timeoutMs: 60_000 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SocksReplyError);
      expect((err as SocksReplyError).reply).toBe(SocksReply.ONION_MISSING_CLIENT_AUTH);
    } finally {
      await stranger.stop();
    }
  }, 90_000);

  it('built every circuit with ntor-v3 (the relays processed ntor-v3 onionskins, no ntor ones)', async () => {
    const relays = net.state.nodes
      .filter((n) => n.role === 'relay')
      .map((n) => `http://${n.metrics}/metrics`);
    const snap = await scrape(relays);
    const processed = (type: string) =>
      sumOf(snap, 'shallot_relay_onionskins_total', { type, action: 'processed' });
    expect(processed('ntor-v3')).toBeGreaterThan(0);
    expect(processed('ntor')).toBe(0);
  });

  it('the client and onion-service processes built their onion circuits through at most 4 layer-2 vanguards', async () => {
    for (const role of ['client', 'onion-service']) {
      const node = net.state.nodes.find((n) => n.role === role);
      const snap = await scrape([`http://${node?.metrics}/metrics`]);
      const byRelay = [...snap.series.values()].filter(
        (x) => x.name === 'shallot_client_vanguard_circuits_total' && x.value > 0,
      );
      expect(byRelay.length, role).toBeGreaterThan(0);
      expect(byRelay.length, role).toBeLessThanOrEqual(4);
    }
  });

  it('stops every process', async () => {
    const pids = net.state.nodes.map((n) => n.pid).filter((p): p is number => typeof p === 'number');
    await net.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 30_000);
});
