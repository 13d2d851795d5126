// Issue #4's acceptance runs on a whole local network (3 authorities, 10
// relays, 5 s voting interval, so a time period is 2 minutes):
// 10 MiB from the built-in backend with equal SHA-256; 100 sequential and 20
// concurrent connections; rendezvous points spread across relays as the
// relays' own metrics show; an intro point killed and replaced while clients
// keep connecting; and a time-period change during the run, after which the
// service has republished under the new blinded key and clients still connect.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { rendezvousCandidates } from '../../services/client/onion-params.js';
import { timePeriodNum, timePeriodParams } from '../../services/core/hs-time.js';
import { positionWeight } from '../../services/core/path.js';
import { parsePromText } from '../../services/loadgen/prom-text.js';
import { counterDeltaBy, snapshotOf } from '../../services/loadgen/scrape.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { OnionService } from '../../services/onion-service/service.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { leastDistinct, mostOfOne } from '../helpers/draw-bounds.js';
import { testLogger } from '../helpers/log.js';
import { readAll } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

const VOTING = 5;
let network: LocalNetwork;
let registry: Registry;
let dataDir: string;
let service: OnionService;
let serviceClient: ShallotClient;
const users: ShallotClient[] = [];

async function user(): Promise<ShallotClient> {
  const c = new ShallotClient(
    { logger: testLogger('user'), registry: new Registry() },
    { authorities: network.endpoints, socksHost: '127.0.0.1', socksPort: 0 },
  );
  users.push(c);
  await c.start();
  await c.ready(30_000);
  return c;
}

async function get(c: ShallotClient, p: string, username?: string): Promise<Buffer> {
  const onion = service.onionAddress;
  const s = await socksConnect(c.socksPort, onion, 80, {
    timeoutMs: 60_000,
    ...(username ? { username, password: 'x' } : {}),
  });
  s.write(`GET ${p} HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
  const all = await readAll(s);
  const i = all.indexOf('\r\n\r\n');
  if (!all.subarray(0, i).toString('latin1').startsWith('HTTP/1.1 200'))
    throw new Error('not a 200 response');
  return all.subarray(i + 4);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-onion-'));
  registry = new Registry();
  network = await LocalNetwork.start(
    { logger: testLogger('net'), registry },
    {
      authorities: 3,
      relays: 10,
      exits: 2,
      votingIntervalSec: VOTING,
      tls: true,
      host: '127.0.0.1',
      basePort: 0,
    },
  );
  await network.waitForConsensus(10, 60_000);
  serviceClient = new ShallotClient(
    { logger: testLogger('hs-client'), registry: new Registry() },
    {
      authorities: network.endpoints,
      socksHost: '127.0.0.1',
      socksPort: null,
      refreshPromptly: true,
      circuits: { prebuild: 0 },
    },
  );
  await serviceClient.start();
  await serviceClient.ready(30_000);
  service = new OnionService(
    { logger: testLogger('hs'), registry: new Registry(), client: serviceClient },
    { name: 'must-show', identityKeyFile: path.join(dataDir, 'identity.key'), backend: { type: 'builtin' } },
  );
  await service.start();
  await service.whenPublished(3, 60_000);
}, 150_000);

afterAll(async () => {
  await service?.stop();
  for (const u of users) await u.stop();
  await serviceClient?.stop();
  await network?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('onion services: issue #4 acceptance', () => {
  it('10 MiB from the built-in backend arrives with the same SHA-256', async () => {
    const c = await user();
    const body = await get(c, `/bytes/${10 << 20}`);
    expect(body.length).toBe(10 << 20);
    expect(sha(body)).toBe(builtinSha256(10 << 20));
  }, 120_000);

  it('100 sequential connections all succeed', async () => {
    const c = await user();
    let ok = 0;
    for (let i = 0; i < 100; i++) {
      const body = await get(c, '/bytes/2048');
      if (body.length === 2048) ok++;
    }
    expect(ok).toBe(100);
  }, 300_000);

  it('20 concurrent connections, each on its own circuits, all succeed; rendezvous load spreads across relays', async () => {
    const joined = async () => snapshotOf(parsePromText(await registry.metrics()));
    const before = await joined();
    const c = await user();
    const bodies = await Promise.all(Array.from({ length: 20 }, (_, i) => get(c, '/bytes/4096', `iso-${i}`)));
    expect(bodies.every((b) => b.length === 4096)).toBe(true);
    const perRelay = counterDeltaBy(before, await joined(), 'shallot_relay_rendezvous_total', 'relay', {
      event: 'joined',
    });
    const deltas = network.relays.map((r) => [r.relay.nickname, perRelay[r.relay.nickname] ?? 0] as const);
    const total = deltas.reduce((a, [, d]) => a + d, 0);
    expect(total).toBe(20);
    const used = deltas.filter(([, d]) => d > 0).length;
    // Rendezvous points are drawn by weight among the Stable relays (middle position): most of them
    // serve, none dominates. How many serve is chance; the bounds are what the consensus's weights
    // promise 20 honest draws with probability 1 - 1e-4 each, so they fail a client that keeps
    // choosing few relays but not an unlucky honest one.
    const dir = c.dir!;
    const candidates = rendezvousCandidates(dir.relays);
    const weights = candidates.map((r) => positionWeight(r, 'middle', dir.consensus.bandwidthWeights));
    const share = Math.max(...weights) / weights.reduce((a, b) => a + b, 0);
    // The network itself offers a spread: every relay a candidate, none with a third of the weight.
    expect(candidates.length, 'Stable relays').toBeGreaterThanOrEqual(network.relays.length);
    expect(share).toBeLessThan(1 / 3);
    const least = leastDistinct(weights, total, 1e-4);
    const most = mostOfOne(weights, total, 1e-4);
    console.log(
      `rendezvous spread: ${used} relays used (>= ${least}), most ${Math.max(...deltas.map(([, d]) => d))} (<= ${most})`,
    );
    expect(least).toBeGreaterThanOrEqual(4);
    expect(used).toBeGreaterThanOrEqual(least);
    expect(Math.max(...deltas.map(([, d]) => d))).toBeLessThanOrEqual(most);
  }, 180_000);

  it('an intro point killed: the service replaces it and new clients still connect', async () => {
    const victim = service.introPointRelays[0];
    const node = network.relays.find((r) => r.relay.nickname === victim);
    expect(node).toBeDefined();
    // Each upload round with the intro points the service held at that moment.
    const rounds: string[][] = [];
    const onPublished = (e: { uploaded: number }) => {
      if (e.uploaded > 0) rounds.push([...service.introPointRelays]);
    };
    service.on('published', onPublished);
    await node?.stop();
    const republished = () => rounds.some((r) => r.length === 3 && !r.includes(victim ?? ''));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !republished()) await new Promise((r) => setTimeout(r, 250));
    service.off('published', onPublished);
    expect(republished()).toBe(true);
    expect(service.introPointRelays).not.toContain(victim);
    expect(service.establishedIntroPoints).toBe(3);
    let ok = 0;
    for (let i = 0; i < 5; i++) {
      const c = await user();
      if ((await get(c, '/bytes/1000')).length === 1000) ok++;
      await c.stop();
    }
    expect(ok).toBe(5);
  }, 180_000);

  it('across a time-period change the service republishes under the new blinded key and clients keep connecting', async () => {
    const params = timePeriodParams({ votingIntervalSec: VOTING, testnet: true });
    const tpNow = () => {
      const dir = serviceClient.dir;
      if (!dir) throw new Error('no consensus');
      return timePeriodNum(dir.consensus.validAfterMs, params);
    };
    const start = tpNow();
    const deadline = Date.now() + 4 * 60_000;
    let ok = 0;
    let attempts = 0;
    let afterChange = 0;
    while (Date.now() < deadline && afterChange < 3) {
      const c = await user();
      attempts++;
      const body = await get(c, '/bytes/1500').catch(() => Buffer.alloc(0));
      if (body.length === 1500) {
        ok++;
        if (tpNow() > start) afterChange++;
      }
      await c.stop();
      await new Promise((r) => setTimeout(r, 3_000));
    }
    expect(tpNow()).toBeGreaterThan(start);
    expect(afterChange).toBe(3);
    expect(ok).toBe(attempts);
  }, 300_000);
});
