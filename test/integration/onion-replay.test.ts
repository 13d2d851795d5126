// The INTRODUCE2 replay defences on a whole in-process network (real sockets
// on 127.0.0.1): a hostile intro point that relays every INTRODUCE1 it gets
// as INTRODUCE2, any number per circuit and without the DoS bucket — the
// party the service's replay cache exists for (rend-spec-v3 §3.3). Through
// it, an attacker sends one valid INTRODUCE1, then 50,000+ junk ones (right
// AUTH_KEY, random X/ENCRYPTED/MAC, some with a v2 LEGACY_KEY_ID), then the
// valid one again: the junk is counted as bad_mac/invalid and never enters
// the cache, the replay is refused. A second cell naming the same rendezvous
// cookie is refused by the service's cookie cache.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { toHex } from '../../services/core/bytes.js';
import { randomBytes } from '../../services/core/crypto.js';
import {
  decodeEstablishIntro,
  encodeIntroduceAck,
  IntroduceAckStatus,
} from '../../services/core/hs-cells.js';
import type { IntroPointInfo } from '../../services/core/hs-descriptor.js';
import type { OrCircuit } from '../../services/net/or-circuit.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import { OnionService } from '../../services/onion-service/service.js';
import type { RelayNode } from '../../services/relay/node.js';
import { attachOnionRoles } from '../../services/relay/onion-roles.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { validIntroduce1 } from '../helpers/introduce.js';
import { testLogger } from '../helpers/log.js';

const JUNK = 50_500;
/** Junk cells sent but not yet counted by the service: keeps every queue on the path short. */
const IN_FLIGHT = 400;

let net_: LocalNetwork;
let dataDir: string;
let registry: Registry;
let service: OnionService;
let attacker: ShallotClient;
let svcClient: ShallotClient;

/**
 * A hostile intro point: it watches ESTABLISH_INTRO (the honest roles still
 * answer it) and relays every INTRODUCE1 for a known AUTH_KEY to that
 * service circuit, acking each, with no one-per-circuit rule and no DoS bucket.
 */
function makeHostile(node: RelayNode): void {
  const services = new Map<string, OrCircuit>();
  node.addRelayHandler((circ, _streamId, msg) => {
    if (msg.type === 'ESTABLISH_INTRO') {
      try {
        services.set(toHex(decodeEstablishIntro(msg.body).authKey), circ);
      } catch {
        // The honest roles refuse it.
      }
      return false;
    }
    if (msg.type !== 'INTRODUCE1' || msg.body.length < 55) return false;
    // AUTH_KEY sits after LEGACY_KEY_ID[20] AUTH_KEY_TYPE[1] AUTH_KEY_LEN[2].
    const target = services.get(toHex(msg.body.subarray(23, 55)));
    if (!target?.isOpen) return false;
    target.sendBackward(0, { type: 'INTRODUCE2', body: msg.body });
    circ.sendBackward(0, {
      type: 'INTRODUCE_ACK',
      body: encodeIntroduceAck({ status: IntroduceAckStatus.SUCCESS, extensions: [] }),
    });
    return true;
  });
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  let n = 0;
  for (const v of m?.values ?? []) {
    if (Object.entries(labels).every(([k, val]) => v.labels[k] === val)) n += Number(v.value);
  }
  return n;
}

const intro = (outcome: string) => counter('shallot_hs_intro_requests_total', { outcome });

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A valid INTRODUCE1 for `ip` (the attacker read the descriptor) naming a rendezvous point and `cookie`. */
function introduce1For(ip: IntroPointInfo, cookie: Uint8Array): Uint8Array {
  const dir = attacker.dir;
  if (!dir) throw new Error('no consensus');
  const rp = dir.relays[0];
  if (!rp) throw new Error('no relays');
  return validIntroduce1(dir, service.onionAddress, ip, rp, cookie);
}

let ip: IntroPointInfo;
let circ: OriginCircuit;
/** Added to the service's clock: the last test moves it past the intro points' lifetime. */
let clockOffsetMs = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-hs-replay-'));
  net_ = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    {
      authorities: 3,
      relays: 5,
      exits: 1,
      votingIntervalSec: 5,
      tls: true,
      host: '127.0.0.1',
      basePort: 0,
      onionRoles: false,
    },
  );
  for (const node of net_.relays) {
    makeHostile(node);
    net_.attachRoles(attachOnionRoles(node));
  }
  await net_.waitForConsensus(5, 40_000);
  registry = new Registry();
  const mk = (name: string, reg: Registry) =>
    new ShallotClient(
      { logger: testLogger(name), registry: reg },
      { authorities: net_.endpoints, socksHost: '127.0.0.1', socksPort: null, circuits: { prebuild: 0 } },
    );
  svcClient = mk('hs', registry);
  attacker = mk('attacker', new Registry());
  await Promise.all([svcClient.start(), attacker.start()]);
  await Promise.all([svcClient.ready(30_000), attacker.ready(30_000)]);
  service = new OnionService(
    { logger: testLogger('hs'), registry, client: svcClient, now: () => Date.now() + clockOffsetMs },
    { name: 'victim', identitySeed: randomBytes(32), backend: { type: 'builtin' }, numIntroPoints: 1 },
  );
  await service.start();
  await service.whenPublished(1, 40_000);
  ip = service.publishedIntroPoints[0] as IntroPointInfo;
  const ed = ip.linkSpecifiers.find((s) => s.type === 'ed25519');
  const relay = attacker.dir?.relays.find(
    (r) => ed?.type === 'ed25519' && toHex(r.identity) === toHex(ed.id),
  );
  if (!relay) throw new Error('intro relay not in the attacker’s consensus');
  circ = await attacker.circuits.build({ purpose: 'onion-intro', lastHop: relay });
}, 90_000);

afterAll(async () => {
  await service?.stop();
  await Promise.allSettled([svcClient?.stop(), attacker?.stop()]);
  await net_?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('INTRODUCE2 replay cache under a junk flood from a hostile intro point', () => {
  const cookie = randomBytes(20);
  let old: Uint8Array;

  it('accepts one valid introduction (it enters the intro point’s cache)', async () => {
    old = introduce1For(ip, cookie);
    circ.sendControl({ type: 'INTRODUCE1', body: old });
    await until(async () => (await intro('accepted')) === 1, 10_000, 'the valid introduction');
    expect(service.introReplayEntries).toBe(1);
  });

  it(`counts ${JUNK} junk introductions, none of which enters the cache, then refuses the old cell's replay`, async () => {
    // A template: header with the intro point's AUTH_KEY, then X | ENCRYPTED | MAC, randomised per cell.
    const template = introduce1For(ip, randomBytes(20));
    const header = 20 + 1 + 2 + 32 + 1;
    const pool = randomBytes(1 << 20);
    const junkCounted = async () => (await intro('bad_mac')) + (await intro('invalid'));
    let sent = 0;
    let legacy = 0;
    while (sent < JUNK) {
      const counted = await junkCounted();
      while (sent < JUNK && sent - counted < IN_FLIGHT) {
        const cell = template.slice();
        const off = (sent * 331) % (pool.length - cell.length);
        cell.set(pool.subarray(off, off + cell.length - header), header);
        // Every 10th carries a v2 LEGACY_KEY_ID: refused as invalid before any crypto.
        if (sent % 10 === 0) {
          cell[0] = 1;
          legacy++;
        }
        circ.sendControl({ type: 'INTRODUCE1', body: cell });
        sent++;
      }
      await new Promise((r) => setImmediate(r));
    }
    await until(async () => (await junkCounted()) === JUNK, 30_000, 'the junk to be counted');
    expect(await intro('invalid')).toBe(legacy);
    expect(await intro('bad_mac')).toBe(JUNK - legacy);
    // Junk never entered the cache: it holds the one valid cell still.
    expect(service.introReplayEntries).toBe(1);
    expect(circ.isOpen).toBe(true);

    circ.sendControl({ type: 'INTRODUCE1', body: old });
    await until(async () => (await intro('replay')) === 1, 10_000, 'the replay to be refused');
    expect(await intro('accepted')).toBe(1);
    expect(service.introReplayEntries).toBe(1);
    // Bounded by its timeout, not timed: 50,500 hs-ntor attempts take 20 s idle and over a minute
    // beside another suite on 2 cores.
  }, 180_000);

  it('refuses a second introduction with a fresh handshake but a used rendezvous cookie', async () => {
    const again = introduce1For(ip, cookie);
    circ.sendControl({ type: 'INTRODUCE1', body: again });
    await until(async () => (await intro('rend_cookie_replay')) === 1, 10_000, 'the cookie replay');
    expect(await intro('accepted')).toBe(1);
    // It was a new cell for the intro point (its cache has it), but no second rendezvous.
    expect(service.introReplayEntries).toBe(2);
    // A new cookie is served.
    circ.sendControl({ type: 'INTRODUCE1', body: introduce1For(ip, randomBytes(20)) });
    await until(async () => (await intro('accepted')) === 2, 10_000, 'a fresh introduction');
  });

  it('replaces an intro point once it has lived hs_intro_max_lifetime (default 24 h)', async () => {
    const rotations = () => counter('shallot_hs_intro_rotations_total', { reason: 'lifetime' });
    expect(await rotations()).toBe(0);
    const before = toHex(ip.authKey);
    clockOffsetMs = 24 * 3600_000 + 60_000;
    await until(async () => (await rotations()) === 1, 10_000, 'the lifetime rotation');
    // A new intro point (new keys) is established in its place; the old circuit is closed.
    await until(async () => service.establishedIntroPoints === 1, 30_000, 'a replacement intro point');
    expect(service.publishedIntroPoints.map((x) => toHex(x.authKey))).not.toContain(before);
    expect(await counter('shallot_hs_intro_rotations_total', { reason: 'budget' })).toBe(0);
  }, 40_000);
});
