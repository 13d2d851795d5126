// Onion services on a whole local network (3 authorities, 8 relays with the onion roles,
// 5 s voting interval): the service publishes its descriptors, which an HSDir serves back
// and a client decrypts; a client downloads 1 MiB from the built-in backend through the
// .onion address over SOCKS; a TCP backend is spliced; a replayed INTRODUCE2 is dropped;
// two instances of one service share the load (each reached by clients), meeting in a
// shared directory or, with separate data dirs, only over HTTP (instance-peers.ts); a
// rendezvous circuit that fails to build is relaunched and the client connects.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import { decodeIntroduceAck, IntroduceAckStatus } from '../../services/core/hs-cells.js';
import { decodeOnionAddress } from '../../services/core/onion-address.js';
import { decodeIdentityFile, encodeIdentityFile } from '../../services/core/onion-identity-file.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { OnionService } from '../../services/onion-service/service.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { fetchDescriptor } from '../helpers/hs-fetch.js';
import { validIntroduce1 } from '../helpers/introduce.js';
import { testLogger } from '../helpers/log.js';
import { published } from '../helpers/onion-published.js';
import { readAll, startEchoServer, type TestServer } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

let net_: LocalNetwork;
let dataDir: string;
const clients: ShallotClient[] = [];
const services: OnionService[] = [];
let svcRegistry: Registry;
let service: OnionService;
let echo: TestServer;
let echoService: OnionService;
let user: ShallotClient;

async function embeddedClient(
  name: string,
  socks: boolean,
  registry = new Registry(),
): Promise<ShallotClient> {
  const c = new ShallotClient(
    { logger: testLogger(name), registry },
    {
      authorities: net_.endpoints,
      socksHost: '127.0.0.1',
      socksPort: socks ? 0 : null,
      circuits: { prebuild: socks ? 2 : 0 },
    },
  );
  clients.push(c);
  await c.start();
  await c.ready(30_000);
  return c;
}

/** An instance of the 'web' service (built-in backend); every instance shares its key file. */
function startWebInstance(instance: string): Promise<OnionService> {
  return startService(
    {
      name: 'web',
      instance,
      identityKeyFile: path.join(dataDir, 'web', 'identity.json'),
      backend: { type: 'builtin' },
      heartbeatMs: 1000,
      republishMs: [20_000, 30_000],
    },
    svcRegistry,
  );
}

async function startService(
  opts: ConstructorParameters<typeof OnionService>[1],
  registry: Registry,
): Promise<OnionService> {
  const client = await embeddedClient(`hs-${opts.name}-${opts.instance ?? ''}`, false, registry);
  const s = new OnionService({ logger: testLogger(`hs-${opts.name}`), registry, client }, opts);
  services.push(s);
  await s.start();
  return s;
}

/** An HTTP/1.1 GET through SOCKS to the onion service; the whole response, split. */
async function httpGet(
  client: ShallotClient,
  onion: string,
  p: string,
  username?: string,
): Promise<{ head: string; body: Buffer }> {
  const s = await socksConnect(
    client.socksPort,
    onion,
    80,
    username ? { username, password: 'x', timeoutMs: 60_000 } : { timeoutMs: 60_000 },
  );
  s.write(`GET ${p} HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
  const all = await readAll(s);
  const i = all.indexOf('\r\n\r\n');
  return { head: all.subarray(0, i).toString('latin1'), body: all.subarray(i + 4) };
}

async function eventually<T>(fn: () => Promise<T>, timeoutMs: number, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

/** A port free on 127.0.0.1 just now (each instance must know the other's before either starts). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return Number(v?.value ?? 0);
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-hs-'));
  echo = await startEchoServer();
  net_ = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    { authorities: 3, relays: 8, exits: 2, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await net_.waitForConsensus(8, 40_000);
  svcRegistry = new Registry();
  [service, echoService, user] = await Promise.all([
    startWebInstance('a'),
    startService(
      {
        name: 'echo',
        identitySeed: randomBytes(32),
        backend: { type: 'tcp', host: '127.0.0.1', port: echo.port },
      },
      new Registry(),
    ),
    embeddedClient('user', true),
  ]);
  // On a loaded host the first consensus may have no Guard yet (authorities' uptime thresholds), so the
  // first upload can take two voting intervals and a build timeout: allow a minute.
  await Promise.all([published(service, 60_000, 3), published(echoService, 60_000, 3)]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(services.map((s) => s.stop()));
  await Promise.allSettled(clients.map((c) => c.stop()));
  await net_?.stop();
  await echo?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('onion service', () => {
  it('keeps its identity in a 0600 file and derives the address from it', async () => {
    const file = path.join(dataDir, 'web', 'identity.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const seed = decodeIdentityFile(await readFile(file, 'utf8'));
    expect(toHex(decodeOnionAddress(service.onionAddress))).toBe(toHex(ed25519PublicFromSeed(seed)));
    expect(service.establishedIntroPoints).toBe(3);
  });

  it('publishes a descriptor that an HSDir serves and a client decrypts', async () => {
    const desc = await eventually(() => fetchDescriptor(user, service.onionAddress), 20_000);
    expect(desc.introPoints).toHaveLength(3);
    const want = service.publishedIntroPoints.map((ip) => toHex(ip.authKey)).sort();
    expect(desc.introPoints.map((ip) => toHex(ip.authKey)).sort()).toEqual(want);
    expect(
      await counter(svcRegistry, 'shallot_hs_descriptor_upload_total', { outcome: 'success' }),
    ).toBeGreaterThan(0);
  }, 30_000);

  it('serves 1 MiB from the built-in backend through the .onion address', async () => {
    const n = 1 << 20;
    const { head, body } = await httpGet(user, service.onionAddress, `/bytes/${n}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(head).toContain(`Content-Length: ${n}`);
    expect(body.length).toBe(n);
    const sum = createHash('sha256').update(body).digest('hex');
    expect(sum).toBe(builtinSha256(n));
    const check = await httpGet(user, service.onionAddress, `/sha256/${n}`);
    expect(check.body.toString().trim()).toBe(sum);
    expect(await counter(svcRegistry, 'shallot_hs_rend_total', { outcome: 'success' })).toBeGreaterThan(0);
  }, 60_000);

  it('splices streams to a TCP backend', async () => {
    const s: net.Socket = await socksConnect(user.socksPort, echoService.onionAddress, 80, {
      timeoutMs: 60_000,
    });
    const msg = randomBytes(100_000);
    const got: Buffer[] = [];
    let n = 0;
    const done = new Promise<void>((resolve) =>
      s.on('data', (c: Buffer) => {
        got.push(c);
        n += c.length;
        if (n >= msg.length) resolve();
      }),
    );
    s.write(msg);
    await done;
    s.destroy();
    expect(Buffer.concat(got).equals(Buffer.from(msg))).toBe(true);
  }, 60_000);

  it('drops a replayed INTRODUCE2', async () => {
    const onion = service.onionAddress;
    const desc = await eventually(() => fetchDescriptor(user, onion), 20_000);
    const dir = user.dir!;
    const ip = desc.introPoints[0]!;
    const ed = ip.linkSpecifiers.find((s) => s.type === 'ed25519');
    const intro = dir.relays.find((r) => ed?.type === 'ed25519' && toHex(r.identity) === toHex(ed.id))!;
    const rp = dir.relays.find((r) => r.id !== intro.id)!;
    // A well-formed INTRODUCE1 naming a rendezvous point with an unknown cookie.
    const cell = validIntroduce1(dir, onion, ip, rp);
    const before = {
      accepted: await counter(svcRegistry, 'shallot_hs_intro_requests_total', { outcome: 'accepted' }),
      replay: await counter(svcRegistry, 'shallot_hs_intro_requests_total', { outcome: 'replay' }),
    };
    for (let i = 0; i < 2; i++) {
      const circ = await user.circuits.build({ purpose: 'onion-intro', lastHop: intro });
      const ack = circ.waitFor((_h, m) => m.type === 'INTRODUCE_ACK');
      circ.sendControl({ type: 'INTRODUCE1', body: cell });
      const { msg } = await ack;
      expect(msg.type === 'INTRODUCE_ACK' && decodeIntroduceAck(msg.body).status).toBe(
        IntroduceAckStatus.SUCCESS,
      );
      circ.destroy();
    }
    await eventually(
      async () => {
        expect(await counter(svcRegistry, 'shallot_hs_intro_requests_total', { outcome: 'replay' })).toBe(
          before.replay + 1,
        );
      },
      5_000,
      100,
    );
    expect(await counter(svcRegistry, 'shallot_hs_intro_requests_total', { outcome: 'accepted' })).toBe(
      before.accepted + 1,
    );
  }, 30_000);

  it('runs two instances of one service that both serve clients', async () => {
    const second = await startWebInstance('b');
    expect(second.onionAddress).toBe(service.onionAddress);
    // Each instance lists both instances' intro points once it has seen the other's record.
    await eventually(
      async () => {
        expect(second.publishedIntroPoints).toHaveLength(6);
        expect(service.publishedIntroPoints).toHaveLength(6);
        const desc = await fetchDescriptor(user, service.onionAddress);
        expect(desc.introPoints).toHaveLength(6);
      },
      40_000,
      1000,
    );
    // A fresh client (no cached 3-intro descriptor); separate SOCKS users mean separate rendezvous.
    const fresh = await embeddedClient('user2', true);
    const hits = { a: 0, b: 0 };
    const onA = () => hits.a++;
    const onB = () => hits.b++;
    service.on('rendezvous', onA);
    second.on('rendezvous', onB);
    for (let i = 0; i < 16 && (hits.a === 0 || hits.b === 0); i++) {
      const { head, body } = await httpGet(fresh, service.onionAddress, '/bytes/1000', `u${i}`);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(body.length).toBe(1000);
    }
    expect(hits.a).toBeGreaterThan(0);
    expect(hits.b).toBeGreaterThan(0);
  }, 80_000);

  it('runs two instances with separate data dirs that meet only over HTTP, and both serve clients', async () => {
    const seed = randomBytes(32);
    const [portP, portQ] = [await freePort(), await freePort()];
    const registries = { p: new Registry(), q: new Registry() };
    const start = async (instance: 'p' | 'q', port: number, peer: number) => {
      const dir = path.join(dataDir, `split-${instance}`);
      await mkdir(dir, { mode: 0o700 });
      await writeFile(path.join(dir, 'identity.json'), encodeIdentityFile(seed), { mode: 0o600 });
      return startService(
        {
          name: 'split',
          instance,
          identityKeyFile: path.join(dir, 'identity.json'),
          backend: { type: 'builtin' },
          heartbeatMs: 1000,
          republishMs: [20_000, 30_000],
          instancePeers: {
            listen: { host: '127.0.0.1', port },
            peers: [{ host: '127.0.0.1', port: peer }],
          },
        },
        registries[instance],
      );
    };
    const [p, q] = await Promise.all([start('p', portP, portQ), start('q', portQ, portP)]);
    expect(q.onionAddress).toBe(p.onionAddress);
    expect(p.instancePeersPort).toBe(portP);
    const own = (s: OnionService) => s.publishedIntroPoints.slice(0, 3).map((ip) => toHex(ip.authKey));
    await eventually(
      async () => {
        expect(p.publishedIntroPoints).toHaveLength(6);
        expect(q.publishedIntroPoints).toHaveLength(6);
        const desc = await fetchDescriptor(user, p.onionAddress);
        // The descriptor on the HSDirs lists each instance's own intro points.
        expect(desc.introPoints.map((ip) => toHex(ip.authKey)).sort()).toEqual([...own(p), ...own(q)].sort());
        // What a cluster's Prometheus sees: each instance uploaded a descriptor with all six.
        for (const [i, r] of Object.entries(registries))
          expect(await counter(r, 'shallot_hs_descriptor_intro_points', { service_instance: i })).toBe(6);
      },
      60_000,
      1000,
    );
    // Nothing went through a directory: each data dir holds only its key.
    for (const i of ['p', 'q'])
      expect(await readdir(path.join(dataDir, `split-${i}`))).toEqual(['identity.json']);
    for (const [i, r] of Object.entries(registries)) {
      expect(await counter(r, 'shallot_hs_instance_peers', { service_instance: i })).toBe(1);
      expect(await counter(r, 'shallot_hs_instance_records_refused_total', {})).toBe(0);
    }
    const fresh = await embeddedClient('user-split', true);
    const hits = { p: 0, q: 0 };
    p.on('rendezvous', () => hits.p++);
    q.on('rendezvous', () => hits.q++);
    for (let i = 0; i < 16 && (hits.p === 0 || hits.q === 0); i++) {
      const { head, body } = await httpGet(fresh, p.onionAddress, '/bytes/1000', `s${i}`);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(body.length).toBe(1000);
    }
    expect(hits.p).toBeGreaterThan(0);
    expect(hits.q).toBeGreaterThan(0);
    // The per-instance counters a dashboard (or the cluster test) reads show the same split.
    expect(
      await counter(registries.p, 'shallot_hs_rend_total', { service_instance: 'p', outcome: 'success' }),
    ).toBe(hits.p);
    expect(
      await counter(registries.q, 'shallot_hs_rend_total', { service_instance: 'q', outcome: 'success' }),
    ).toBe(hits.q);
  }, 120_000);

  it('retries a rendezvous circuit that failed to build, and the client connects', async () => {
    // The service's first rendezvous build goes to the client's rendezvous point with a wrong
    // onion key: the RP answers CREATE2 with a handshake that does not verify, so every path the
    // circuit manager tries fails and build() rejects, as it would after DESTROYs or timeouts.
    // The service must relaunch with the right key (C tor hs_circ_retry_service_rendezvous_point).
    const registry = new Registry();
    const client = await embeddedClient('hs-rend-retry', false, registry);
    const realBuild = client.circuits.build.bind(client.circuits);
    const rendBuilds: { rp: string; ok: boolean }[] = [];
    client.circuits.build = (req) => {
      if (req.purpose !== 'onion-rend' || !req.lastHop) return realBuild(req);
      const first = rendBuilds.length === 0;
      const lastHop = first ? { ...req.lastHop, ntorKey: randomBytes(32) } : req.lastHop;
      return realBuild({ ...req, lastHop }).then(
        (c) => {
          rendBuilds.push({ rp: req.lastHop?.id ?? '', ok: true });
          return c;
        },
        (e: unknown) => {
          rendBuilds.push({ rp: req.lastHop?.id ?? '', ok: false });
          throw e;
        },
      );
    };
    const s = new OnionService(
      { logger: testLogger('hs-rend-retry'), registry, client },
      { name: 'rend-retry', identitySeed: randomBytes(32), backend: { type: 'builtin' } },
    );
    services.push(s);
    await s.start();
    await s.whenPublished(3, 30_000);
    const { head, body } = await httpGet(user, s.onionAddress, '/bytes/1000', 'rend-retry');
    expect(head).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(body.length).toBe(1000);
    expect(rendBuilds.map((b) => b.ok)).toEqual([false, true]);
    expect(rendBuilds[1]?.rp).toBe(rendBuilds[0]?.rp);
    expect(await counter(registry, 'shallot_hs_rend_retries_total', { service: 'rend-retry' })).toBe(1);
    expect(await counter(registry, 'shallot_hs_rend_total', { outcome: 'success' })).toBe(1);
    expect(await counter(registry, 'shallot_hs_rend_total', { outcome: 'failure' })).toBe(0);
  }, 60_000);

  it('replaces an intro point whose relay goes away and republishes without it', async () => {
    const gone = echoService.introPointRelays[0]!;
    const node = net_.relays.find((r) => r.relay.nickname === gone)!;
    const goneId = toHex(node.relay.identity);
    await node.stop();
    await eventually(
      async () => {
        expect(echoService.introPointRelays).toHaveLength(3);
        expect(echoService.introPointRelays).not.toContain(gone);
        const desc = await fetchDescriptor(user, echoService.onionAddress);
        const ids = desc.introPoints.flatMap((ip) =>
          ip.linkSpecifiers.flatMap((s) => (s.type === 'ed25519' ? [toHex(s.id)] : [])),
        );
        expect(ids).toHaveLength(3);
        expect(ids).not.toContain(goneId);
      },
      30_000,
      500,
    );
  }, 40_000);
});
