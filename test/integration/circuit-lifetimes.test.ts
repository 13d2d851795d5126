// Client circuit lifetimes on a whole local network (3 authorities, 4 relays,
// 2 exits), with MaxCircuitDirtiness shortened to 1.5 s and the expiry timer
// at 200 ms: per-request isolation (a new circuit per SOCKS credentials, as
// `shallot load --new-circuit`) no longer grows circuits without bound —
// every dirty circuit is closed once its stream is done, at the client and at
// the relays; a dirty circuit with a stream still open is kept until the
// stream ends; clean pre-built circuits are replaced after the idle timeout;
// a relay the client avoids for a minute is still built to when a caller
// names it as the last hop.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { flagsListed } from '../helpers/consensus.js';
import { testLogger } from '../helpers/log.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

let network: LocalNetwork;
let relayRegistry: Registry;
let echo: TestServer;
const clients: ShallotClient[] = [];

beforeAll(async () => {
  echo = await startEchoServer();
  relayRegistry = new Registry();
  network = await LocalNetwork.start(
    { logger: testLogger('net'), registry: relayRegistry },
    { authorities: 3, relays: 4, exits: 2, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await network.waitForConsensus(4, 40_000);
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.stop();
  await network?.stop();
  await echo?.close();
});

async function startClient(circuits: Record<string, number>) {
  const registry = new Registry();
  const client = new ShallotClient(
    { logger: testLogger('client'), registry },
    { authorities: network.endpoints, socksHost: '127.0.0.1', socksPort: 0, circuits },
  );
  clients.push(client);
  await client.start();
  await client.ready(30_000);
  await flagsListed(client, ['Guard'], 2);
  const metric = async (name: string, where: Record<string, string> = {}, reg = registry) => {
    const m = reg.getSingleMetric(name);
    const values = m ? (await m.get()).values : [];
    return values
      .filter((v) => Object.entries(where).every(([k, x]) => v.labels[k] === x))
      .reduce((sum, v) => sum + v.value, 0);
  };
  return { client, metric };
}

/** One echo round trip through SOCKS under its own credentials (its own circuit). */
async function echoAs(port: number, username: string, keepOpen = false) {
  const s = await socksConnect(port, '127.0.0.1', echo.port, { username, password: 'x', timeoutMs: 20_000 });
  s.write('ping');
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  if (!keepOpen) s.destroy();
  return s;
}

async function until(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pred();
}

describe('client circuit lifetimes', () => {
  it('closes every per-request circuit after MaxCircuitDirtiness once its stream is done, here and at the relays', async () => {
    const { client, metric } = await startClient({ prebuild: 0, maxDirtinessMs: 1_500, expiryCheckMs: 200 });
    const relayCircuits = () => metric('shallot_relay_circuits_active', {}, relayRegistry);
    const relaysBefore = await relayCircuits();
    for (let i = 0; i < 12; i++) await echoAs(client.socksPort, `user${i}`);
    expect(await metric('shallot_client_circuits_open')).toBeGreaterThanOrEqual(12);
    // Each circuit is 3 hops: at least 12 x 3 relay-side circuits more than before.
    expect((await relayCircuits()) - relaysBefore).toBeGreaterThanOrEqual(36);
    expect(await until(async () => (await metric('shallot_client_circuits_open')) === 0, 8_000)).toBe(true);
    expect(await metric('shallot_client_circuits_expired_total', { reason: 'dirty' })).toBeGreaterThanOrEqual(
      12,
    );
    // The DESTROYs reached the relays: their circuits are reclaimed too.
    expect(await until(async () => (await relayCircuits()) <= relaysBefore, 5_000)).toBe(true);
  }, 60_000);

  it('keeps a dirty circuit while a stream is open on it, and closes it after the stream ends', async () => {
    const { client, metric } = await startClient({ prebuild: 0, maxDirtinessMs: 1_000, expiryCheckMs: 200 });
    const s = await echoAs(client.socksPort, 'long', true);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await metric('shallot_client_circuits_open')).toBe(1);
    s.write('still there');
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    s.destroy();
    expect(await until(async () => (await metric('shallot_client_circuits_open')) === 0, 5_000)).toBe(true);
  }, 60_000);

  it('replaces clean pre-built circuits after the idle timeout', async () => {
    const { metric } = await startClient({ prebuild: 2, idleTimeoutMs: 1_000, expiryCheckMs: 200 });
    expect(await until(async () => (await metric('shallot_client_circuits_open')) === 2, 10_000)).toBe(true);
    expect(
      await until(
        async () => (await metric('shallot_client_circuits_expired_total', { reason: 'idle' })) >= 2,
        5_000,
      ),
    ).toBe(true);
    // maintain() builds replacements: two clean circuits again, never more.
    expect(await until(async () => (await metric('shallot_client_circuits_open')) === 2, 10_000)).toBe(true);
    expect(await metric('shallot_client_circuits_open')).toBeLessThanOrEqual(2);
  }, 60_000);

  it('builds to a requested last hop even while it avoids that relay (a service cannot pick another rendezvous point)', async () => {
    const { client } = await startClient({ prebuild: 0 });
    const target = client.dir?.relays.find((r) => r.flags.includes('Stable'));
    if (!target) throw new Error('no relay in the consensus');
    const first = await client.circuits.build({ purpose: 'onion-rend', lastHop: target });
    // A stream that got no CONNECTED while the first hop kept answering: the later hops are
    // left out of new choices for a minute (relay-liveness.ts).
    client.circuits.streamTimedOut(first, 60_000);
    expect(client.circuits.isUnresponsive(target.id)).toBe(true);
    const again = await client.circuits.build({ purpose: 'onion-rend', lastHop: target });
    expect(again.isOpen).toBe(true);
    expect(Buffer.from(again.hops.at(-1)?.identity ?? []).toString('hex')).toBe(target.id);
    again.destroy();
    first.destroy();
  }, 60_000);
});
