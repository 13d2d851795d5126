// The onion-service client end to end on a whole local network (3 authorities,
// 8 relays with the intro / rendezvous / HSDir roles): SOCKS 0xF6 for a bad
// address, 0xF0 for an unknown service, 0xF1 for a tampered descriptor, 0xF2
// when the intro point knows no such service, 0xF3 when no RENDEZVOUS2 comes,
// then a real OnionService carrying bytes both ways, rendezvous-circuit reuse
// and the spread of rendezvous points over 20 isolated connections; and a
// service with client authorization: the key holder connects, 0xF4 without a
// key, 0xF5 with a key it does not list; and vanguards-lite paths.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { ConnectError } from '../../services/client/connect.js';
import { connectReply } from '../../services/client/connect-reply.js';
import type { NetRelay } from '../../services/client/netdir.js';
import { OnionClient } from '../../services/client/onion.js';
import { toHex } from '../../services/core/bytes.js';
import { generateClientAuthKey } from '../../services/core/client-auth.js';
import { ed25519Generate, randomBytes, x25519Generate } from '../../services/core/crypto.js';
import { buildEstablishIntro } from '../../services/core/hs-cells.js';
import type { IntroPointInfo } from '../../services/core/hs-descriptor.js';
import { decodeOnionAddress, encodeOnionAddress } from '../../services/core/onion-address.js';
import { SocksReply } from '../../services/core/socks5.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import { OnionService } from '../../services/onion-service/service.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { testLogger } from '../helpers/log.js';
import { clientRelayOf, introPointAt, storeDescriptor } from '../helpers/onion-descriptors.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { SocksReplyError, socksConnect } from '../helpers/socks-client.js';

const RELAYS = 8;
let net: LocalNetwork;
let client: ShallotClient;
let clientRegistry: Registry;
let serviceClient: ShallotClient;
let service: OnionService;
let echo: TestServer;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  echo = await startEchoServer();
  net = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    {
      authorities: 3,
      relays: RELAYS,
      exits: 0,
      votingIntervalSec: 5,
      tls: true,
      host: '127.0.0.1',
      basePort: 0,
    },
  );
  await net.waitForConsensus(RELAYS, 40_000);
  clientRegistry = new Registry();
  client = new ShallotClient(
    { logger: testLogger('client'), registry: clientRegistry },
    { authorities: net.endpoints, socksHost: '127.0.0.1', socksPort: 0, circuits: { prebuild: 0 } },
  );
  serviceClient = new ShallotClient(
    { logger: testLogger('svc-client'), registry: new Registry() },
    { authorities: net.endpoints, socksHost: '127.0.0.1', socksPort: null, circuits: { prebuild: 0 } },
  );
  await Promise.all([client.start(), serviceClient.start()]);
  await Promise.all([client.ready(30_000), serviceClient.ready(30_000)]);
  service = new OnionService(
    { logger: testLogger('svc'), registry: new Registry(), client: serviceClient },
    {
      name: 'echo',
      identitySeed: randomBytes(32),
      numIntroPoints: 3,
      backend: { type: 'tcp', host: '127.0.0.1', port: echo.port },
      virtualPort: 80,
    },
  );
  const published = new Promise<void>((resolve) => {
    service.on('published', (e) => {
      if (e.uploaded > 0 && e.introPoints > 0) resolve();
    });
  });
  await service.start();
  await published;
}, 90_000);

afterAll(async () => {
  for (const c of cleanups) c();
  await service?.stop();
  await client?.stop();
  await serviceClient?.stop();
  await net?.stop();
  await echo?.close();
});

async function socksReply(host: string, port = 80, username?: string): Promise<number> {
  const err = await socksConnect(client.socksPort, host, port, {
    timeoutMs: 30_000,
    ...(username !== undefined ? { username, password: 'x' } : {}),
  }).then(
    (s) => {
      s.destroy();
      return null;
    },
    (e: unknown) => e,
  );
  if (!(err instanceof SocksReplyError)) throw new Error(`expected a SOCKS error reply, got ${String(err)}`);
  return err.reply;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0);
}

async function histogramCount(registry: Registry, name: string): Promise<number> {
  const { values } = (await registry.getSingleMetric(name)?.get()) ?? { values: [] };
  return values.find((v) => (v as { metricName?: string }).metricName === `${name}_count`)?.value ?? 0;
}

const relayOf = (i: number): NetRelay => clientRelayOf(net, client, i);

/**
 * Signs and stores a descriptor for `seed` on every HSDir, for the client's
 * period and the ones either side (a consensus may turn over mid-test).
 * `mangle` may change the outer document before it is signed.
 */
function publishDescriptor(
  seed: Uint8Array,
  introPoints: IntroPointInfo[],
  mangle?: (outer: string) => string,
) {
  const outcomes = storeDescriptor(net, client, seed, introPoints, {
    periodDeltas: [-1n, 0n, 1n],
    ...(mangle ? { mangle } : {}),
  });
  for (const outcome of outcomes) expect(['stored', 'replaced']).toContain(outcome);
}

function readExactly(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed after ${got} of ${n} bytes`)));
  });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('onion client failures', () => {
  it('answers an address with a bad checksum with 0xF6 without building anything', async () => {
    const good = encodeOnionAddress(ed25519Generate().public);
    const label = good.slice(0, 56);
    const bad = `${label.slice(0, 53)}${label[53] === 'a' ? 'b' : 'a'}${label.slice(54)}.onion`;
    const before = await metricValue(clientRegistry, 'shallot_circuits_total');
    expect(await socksReply(bad)).toBe(SocksReply.ONION_BAD_ADDRESS);
    expect(await socksReply('tooshort.onion')).toBe(SocksReply.ONION_BAD_ADDRESS);
    expect(await metricValue(clientRegistry, 'shallot_circuits_total')).toBe(before);
    expect(
      await metricValue(clientRegistry, 'shallot_onion_connects_total', { outcome: 'bad_address' }),
    ).toBe(2);
  });

  it('answers a well-formed address no HSDir knows with 0xF0', async () => {
    const before = await metricValue(clientRegistry, 'shallot_circuits_total', { purpose: 'hsdir' });
    expect(await socksReply(encodeOnionAddress(ed25519Generate().public))).toBe(
      SocksReply.ONION_DESC_NOT_FOUND,
    );
    // Every responsible HSDir was asked (2 replicas x spread 3 on 8 relays).
    const after = await metricValue(clientRegistry, 'shallot_circuits_total', { purpose: 'hsdir' });
    expect(after - before).toBeGreaterThanOrEqual(6);
  }, 60_000);

  it('answers a tampered descriptor with 0xF1', async () => {
    const id = ed25519Generate();
    const intro = x25519Generate();
    publishDescriptor(
      id.seed,
      [introPointAt(relayOf(0), ed25519Generate().public, intro.public)],
      (outer) => {
        // Flip one base64 character inside the superencrypted blob (its MAC then fails);
        // the outer signature is made afterwards, so the HSDir accepts the copy.
        const start = outer.indexOf('-----BEGIN MESSAGE-----\n') + 24 + 100;
        const c = outer[start] === 'A' ? 'B' : 'A';
        return outer.slice(0, start) + c + outer.slice(start + 1);
      },
    );
    expect(await socksReply(encodeOnionAddress(id.public))).toBe(SocksReply.ONION_DESC_INVALID);
    expect(
      await metricValue(clientRegistry, 'shallot_onion_connects_total', { outcome: 'desc_invalid' }),
    ).toBe(1);
  }, 60_000);

  it('answers 0xF2 when every intro point NACKs (no such service there)', async () => {
    const id = ed25519Generate();
    const ips = [1, 2].map((i) =>
      introPointAt(relayOf(i), ed25519Generate().public, x25519Generate().public),
    );
    publishDescriptor(id.seed, ips);
    expect(await socksReply(encodeOnionAddress(id.public))).toBe(SocksReply.ONION_INTRO_FAILED);
  }, 60_000);

  it('answers 0xF3 when the service never sends RENDEZVOUS1', async () => {
    // A mute "service": a real intro point (ESTABLISH_INTRO accepted) that ignores INTRODUCE2.
    const id = ed25519Generate();
    const auth = ed25519Generate();
    const enc = x25519Generate();
    const relay = relayOf(3);
    const circ: OriginCircuit = await serviceClient.circuits.build({
      purpose: 'onion-intro',
      lastHop: relay,
    });
    cleanups.push(() => circ.destroy());
    const kh = circ.lastHopKh;
    if (!kh) throw new Error('no KH');
    const established = circ.waitFor((_h, m) => m.type === 'INTRO_ESTABLISHED', 10_000);
    circ.sendControl({
      type: 'ESTABLISH_INTRO',
      body: buildEstablishIntro({ authKeyPub: auth.public, authKeySeed: auth.seed }, kh),
    });
    await established;
    const introduce2 = circ.waitFor((_h, m) => m.type === 'INTRODUCE2', 20_000);
    // The client introduces again for a new rendezvous once the first gets no RENDEZVOUS2.
    const again = introduce2.then(() => circ.waitFor((_h, m) => m.type === 'INTRODUCE2', 20_000));
    again.catch(() => {});
    publishDescriptor(id.seed, [introPointAt(relay, auth.public, enc.public)]);

    const registry = new Registry();
    // A failed rendezvous is tried again with a new introduction (C tor: the stream waits for
    // a new rendezvous circuit until SocksTimeout); after maxRendezvousTries it is 0xF3.
    const oc = new OnionClient(client, { registry, rendezvousTimeoutMs: 1_500, maxRendezvousTries: 2 });
    const err = await oc
      .connect({
        command: 1,
        host: encodeOnionAddress(id.public),
        port: 80,
        addressType: 'domain',
        isolationKey: 'f3',
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).kind).toBe('rend_failed');
    expect(connectReply(err).socks5).toBe(SocksReply.ONION_REND_FAILED);
    await introduce2; // the intro point did relay it
    await again; // twice
    expect(await metricValue(registry, 'shallot_onion_connects_total', { outcome: 'rend_failed' })).toBe(1);
    expect(
      await metricValue(registry, 'shallot_client_stream_retries_total', {
        server: 'onion',
        reason: 'rendezvous',
      }),
    ).toBe(1);
  }, 60_000);
});

describe('onion client with a real onion service', () => {
  it('carries bytes both ways through intro, rendezvous and the virtual hop', async () => {
    const payload = randomBytes(512 * 1024);
    const s = await socksConnect(client.socksPort, service.onionAddress, 80, { timeoutMs: 30_000 });
    try {
      const back = readExactly(s, payload.length);
      s.write(payload);
      expect(sha(await back)).toBe(sha(payload));
    } finally {
      s.destroy();
    }
    expect(await metricValue(clientRegistry, 'shallot_onion_connects_total', { outcome: 'ok' })).toBe(1);
    expect(await histogramCount(clientRegistry, 'shallot_onion_connect_seconds')).toBe(1);
    expect(
      await metricValue(clientRegistry, 'shallot_circuits_total', {
        purpose: 'onion-rend',
        outcome: 'success',
      }),
    ).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('reuses the descriptor and the rendezvous circuit for the same isolation key', async () => {
    // Its own isolation key: the first connection joins a rendezvous circuit (and may fetch the
    // descriptor of a new time period, a minute long here), the second must ride on it.
    const hello = async () => {
      const s = await socksConnect(client.socksPort, service.onionAddress, 80, {
        username: 'reuse',
        password: 'x',
        timeoutMs: 30_000,
      });
      const back = readExactly(s, 5);
      s.write('hello');
      expect((await back).toString()).toBe('hello');
      s.destroy();
    };
    await hello();
    const hsdirBefore = await metricValue(clientRegistry, 'shallot_circuits_total', { purpose: 'hsdir' });
    const rpBefore = await metricValue(clientRegistry, 'shallot_client_rendezvous_chosen_total');
    await hello();
    expect(await metricValue(clientRegistry, 'shallot_circuits_total', { purpose: 'hsdir' })).toBe(
      hsdirBefore,
    );
    expect(await metricValue(clientRegistry, 'shallot_client_rendezvous_chosen_total')).toBe(rpBefore);
  }, 60_000);

  it('refuses a port the service does not serve', async () => {
    expect(await socksReply(service.onionAddress, 81, 'other-port')).toBe(SocksReply.GENERAL_FAILURE);
  }, 60_000);

  it('spreads rendezvous points over most relays across 20 isolated connections', async () => {
    const metric = async () => {
      const m = clientRegistry.getSingleMetric('shallot_client_rendezvous_chosen_total');
      const out = new Map<string, number>();
      for (const v of (await m?.get())?.values ?? []) out.set(String(v.labels.relay), v.value);
      return out;
    };
    const before = await metric();
    const eligible = client.dir?.relays.filter((r) => r.flags.includes('Stable')).length ?? 0;
    expect(eligible).toBe(RELAYS);
    for (let batch = 0; batch < 4; batch++) {
      await Promise.all(
        Array.from({ length: 5 }, async (_, j) => {
          const s = await socksConnect(client.socksPort, service.onionAddress, 80, {
            username: `user${batch * 5 + j}`,
            password: 'x',
            timeoutMs: 30_000,
          });
          const back = readExactly(s, 2);
          s.write('ok');
          expect((await back).toString()).toBe('ok');
          s.destroy();
        }),
      );
    }
    const after = await metric();
    const used = [...after].filter(([relay, n]) => n > (before.get(relay) ?? 0)).map(([relay]) => relay);
    const draws = [...after].reduce((a, [relay, n]) => a + n - (before.get(relay) ?? 0), 0);
    expect(draws).toBeGreaterThanOrEqual(20);
    // 20 uniform draws over 8 relays cover 7.5 on average; fewer than 5 has probability < 0.1%.
    expect(used.length).toBeGreaterThanOrEqual(5);
    const top = Math.max(...[...after].map(([relay, n]) => n - (before.get(relay) ?? 0)));
    expect(top).toBeLessThanOrEqual(10);
  }, 60_000);
});

describe('client authorization', () => {
  const alice = generateClientAuthKey(randomBytes);
  const bob = generateClientAuthKey(randomBytes);
  const started: { stop(): Promise<void> }[] = [];
  let authService: OnionService;
  let authRegistry: Registry;

  /** A SOCKS client holding `key` for the service (or none). */
  async function clientWith(key: { secret: Uint8Array } | null, registry = new Registry()) {
    const c = new ShallotClient(
      { logger: testLogger('auth-client'), registry },
      {
        authorities: net.endpoints,
        socksHost: '127.0.0.1',
        socksPort: 0,
        circuits: { prebuild: 0 },
        ...(key
          ? {
              clientAuthKeys: [
                { identity: decodeOnionAddress(authService.onionAddress), secret: key.secret },
              ],
            }
          : {}),
      },
    );
    started.push(c);
    await c.start();
    await c.ready(30_000);
    return c;
  }

  beforeAll(async () => {
    const svcClient = new ShallotClient(
      { logger: testLogger('auth-svc-client'), registry: new Registry() },
      { authorities: net.endpoints, socksHost: '127.0.0.1', socksPort: null, circuits: { prebuild: 0 } },
    );
    started.push(svcClient);
    await svcClient.start();
    await svcClient.ready(30_000);
    authService = new OnionService(
      { logger: testLogger('auth-svc'), registry: new Registry(), client: svcClient },
      {
        name: 'private',
        identitySeed: randomBytes(32),
        numIntroPoints: 2,
        backend: { type: 'tcp', host: '127.0.0.1', port: echo.port },
        authorizedClients: [alice.public],
      },
    );
    started.unshift(authService);
    await authService.start();
    await authService.whenPublished(2, 60_000);
    authRegistry = new Registry();
  }, 90_000);

  afterAll(async () => {
    for (const s of started) await s.stop().catch(() => {});
  });

  it("an authorized client's key opens the descriptor and the connection carries bytes", async () => {
    const c = await clientWith(alice, authRegistry);
    const s = await socksConnect(c.socksPort, authService.onionAddress, 80, { timeoutMs: 30_000 });
    try {
      const payload = randomBytes(64 * 1024);
      const back = readExactly(s, payload.length);
      s.write(payload);
      expect(sha(await back)).toBe(sha(payload));
    } finally {
      s.destroy();
    }
    expect(await metricValue(authRegistry, 'shallot_onion_connects_total', { outcome: 'ok' })).toBe(1);
  }, 60_000);

  it('a client without a key gets 0xF4, with a key the service does not list 0xF5', async () => {
    expect(await socksReply(authService.onionAddress)).toBe(SocksReply.ONION_MISSING_CLIENT_AUTH);
    expect(
      await metricValue(clientRegistry, 'shallot_onion_connects_total', { outcome: 'missing_client_auth' }),
    ).toBe(1);
    const registry = new Registry();
    const wrong = await clientWith(bob, registry);
    const err = await socksConnect(wrong.socksPort, authService.onionAddress, 80, {
      timeoutMs: 30_000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SocksReplyError);
    expect((err as SocksReplyError).reply).toBe(SocksReply.ONION_WRONG_CLIENT_AUTH);
    expect(
      await metricValue(registry, 'shallot_onion_connects_total', { outcome: 'wrong_client_auth' }),
    ).toBe(1);
  }, 60_000);
});

describe('vanguards-lite (prop 333)', () => {
  it('onion circuits go G-L2-M-target (client rend G-L2-R) through 4 layer-2 relays, and connections work', async () => {
    const c = new ShallotClient(
      { logger: testLogger('vanguards'), registry: new Registry() },
      {
        authorities: net.endpoints,
        socksHost: '127.0.0.1',
        socksPort: 0,
        circuits: { prebuild: 0, vanguardsLite: true },
      },
    );
    try {
      await c.start();
      await c.ready(30_000);
      const target = relayOf(0);
      const intro = await c.circuits.build({ purpose: 'onion-intro', lastHop: target });
      const rend = await c.circuits.build({ purpose: 'onion-rend', lastHop: relayOf(1), length: 2 });
      const layer2 = c.circuits.vanguardIds;
      expect(layer2).toHaveLength(4);
      expect(intro.hops.map((h) => h.nickname)).toHaveLength(4);
      expect(intro.hops[3]?.nickname).toBe(target.nickname);
      expect(layer2).toContain(toHex(intro.hops[1]!.identity));
      expect(rend.hops).toHaveLength(3);
      expect(layer2).toContain(toHex(rend.hops[1]!.identity));
      intro.destroy();
      rend.destroy();
      const s = await socksConnect(c.socksPort, service.onionAddress, 80, { timeoutMs: 30_000 });
      try {
        const back = readExactly(s, 5);
        s.write('hello');
        expect((await back).toString()).toBe('hello');
      } finally {
        s.destroy();
      }
      // The set is stable across builds (it rotates over days, not circuits).
      expect(c.circuits.vanguardIds).toEqual(layer2);
    } finally {
      await c.stop();
    }
  }, 60_000);
});
