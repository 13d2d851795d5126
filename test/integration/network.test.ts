// A whole network in one process: three voting authorities, eight relays and
// a client; bytes go through the client's SOCKS port to a local server.
import { createHash } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { randomBytes } from '../../services/core/crypto.js';
import { SocksReply } from '../../services/core/socks5.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { flagsListed } from '../helpers/consensus.js';
import { testLogger } from '../helpers/log.js';
import { readAll, startBlobServer, startPacedBlobServer, type TestServer } from '../helpers/servers.js';
import { SocksReplyError, socksConnect } from '../helpers/socks-client.js';

const BLOB = randomBytes(10 * 1024 * 1024);
let net: LocalNetwork;
let client: ShallotClient;
let blob: TestServer;
let paced: TestServer;

beforeAll(async () => {
  blob = await startBlobServer(BLOB);
  paced = await startPacedBlobServer(BLOB, 64 * 1024, 20);
  net = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    { authorities: 3, relays: 8, exits: 3, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await net.waitForConsensus(8, 40_000);
  client = new ShallotClient(
    { logger: testLogger('client'), registry: new Registry() },
    { authorities: net.endpoints, socksHost: '127.0.0.1', socksPort: 0 },
  );
  await client.start();
  await client.ready(30_000);
  // The first consensus may predate the authorities' uptime thresholds (Guard after a fifth of an interval).
  await flagsListed(client, ['Fast', 'Guard', 'Running', 'Stable', 'Valid'], 8);
}, 90_000);

afterAll(async () => {
  await client?.stop();
  await net?.stop();
  await blob?.close();
  await paced?.close();
});

describe('local network', () => {
  it('the consensus lists every relay with testnet flags and three signatures', () => {
    const c = client.dir?.consensus;
    expect(c?.relays).toHaveLength(8);
    const exits = c?.relays.filter((r) => r.flags.includes('Exit')) ?? [];
    expect(exits).toHaveLength(3);
    for (const r of c?.relays ?? [])
      expect(r.flags).toEqual(expect.arrayContaining(['Fast', 'Guard', 'Running', 'Stable', 'Valid']));
  });

  it('carries 10 MiB through SOCKS and three hops intact', async () => {
    const s = await socksConnect(client.socksPort, '127.0.0.1', blob.port);
    const data = await readAll(s);
    expect(data.length).toBe(BLOB.length);
    expect(createHash('sha256').update(data).digest('hex')).toBe(
      createHash('sha256').update(BLOB).digest('hex'),
    );
  }, 60_000);

  it('answers a destination no exit allows with SOCKS "not allowed"', async () => {
    const err = await socksConnect(client.socksPort, '10.9.9.9', 80).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SocksReplyError);
    expect((err as SocksReplyError).reply).toBe(SocksReply.NOT_ALLOWED);
  }, 60_000);

  it('a relay killed mid-transfer: running streams end, new streams succeed on new circuits', async () => {
    // Paced (10 MiB over ~3 s), so the streams are still running when the exit dies.
    const socks = await Promise.all(
      Array.from({ length: 4 }, () => socksConnect(client.socksPort, '127.0.0.1', paced.port)),
    );
    const downloads = socks.map(
      (sock) =>
        new Promise<number>((resolve) => {
          let n = 0;
          sock.on('data', (d: Buffer) => {
            n += d.length;
          });
          sock.on('close', () => resolve(n));
          sock.on('error', () => {});
        }),
    );
    // Kill an exit carrying those streams once all four are flowing (not before: an exit still
    // counting an earlier case's stream could be killed while these run elsewhere).
    await Promise.all(socks.map((sock) => new Promise((r) => sock.once('data', r))));
    let exit: (typeof net.relays)[number] | undefined;
    for (let i = 0; i < 100 && !exit; i++) {
      await new Promise((r) => setTimeout(r, 20));
      exit = net.relays.find((r) => r.relay.activeStreams > 0);
    }
    expect(exit).toBeDefined();
    await exit?.stop();
    const received = await Promise.all(downloads);
    // The streams through the dead exit ended early; none hung.
    expect(received.some((n) => n < BLOB.length)).toBe(true);
    let ok = 0;
    for (let i = 0; i < 6; i++) {
      const s = await socksConnect(client.socksPort, '127.0.0.1', blob.port);
      const data = await readAll(s);
      if (data.length === BLOB.length) ok++;
    }
    expect(ok).toBe(6);
    // Authorities probe reachability: the next consensus leaves the dead exit out.
    const deadline = Date.now() + 30_000;
    while (net.listedRelays() > 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(net.listedRelays()).toBe(7);
  }, 120_000);
});
