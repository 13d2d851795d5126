// The onion service's INTRODUCE2 handler on its own (introduce-handler.ts),
// with a circuit manager that records what it is asked to build and builds
// nothing: the order of the defences (junk, replay, budget, cookie, rate)
// counted by outcome, and the rendezvous point handed to circuit building as
// a last hop straight from the client's link specifiers, listed or not
// (rend-spec-v3 §3.3), with the onion key the client gave.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { NetDir } from '../../../services/client/netdir.js';
import { ed25519PublicFromSeed, randomBytes, x25519Generate } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { buildIntroduce1 } from '../../../services/core/hs-cells.js';
import type { LinkSpecifier } from '../../../services/core/link-specifiers.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import type { IntroPoint } from '../../../services/onion-service/intro-points.js';
import { IntroBudget, ReplayCache } from '../../../services/onion-service/introduce.js';
import { IntroduceHandler } from '../../../services/onion-service/introduce-handler.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { fakeConsensus, fakeRelay, recordingCircuits } from '../../helpers/fake-consensus.js';

const relay = (i: number): ConsensusRelay => fakeRelay(i, ['Fast', 'Running', 'Stable', 'Valid']);

// One build attempt per rendezvous (hs_service_max_rdv_failures = 1): no retry waits.
const consensus: Consensus = fakeConsensus([relay(1), relay(2), relay(3)], {
  params: { hs_service_max_rdv_failures: 1 },
});

function setup(o: { introductions?: number; rate?: { rate: number; burst: number } } = {}) {
  const dir = new NetDir(consensus);
  const { circuits, builds } = recordingCircuits(dir);
  const authSeed = randomBytes(32);
  const enc = x25519Generate(randomBytes);
  const n = o.introductions ?? 100;
  const intro: IntroPoint = {
    relay: dir.relays[0]!,
    authSeed,
    authPub: ed25519PublicFromSeed(authSeed),
    encSecret: enc.secret,
    encPub: enc.public,
    circ: null,
    established: true,
    closed: false,
    launchedAt: 0,
    budget: new IntroBudget(
      { minIntroduce2: n, maxIntroduce2: n, minLifetimeMs: 3_600_000, maxLifetimeMs: 3_600_000 },
      0,
    ),
    replay: new ReplayCache(),
  };
  const subcredential = randomBytes(32);
  const registry = new Registry();
  const retired: IntroPoint[] = [];
  const handler = new IntroduceHandler(
    {
      circuits,
      logger: silentLogger,
      metrics: metricsFor(registry).service,
      now: () => 1_000,
      subcredentials: () => [randomBytes(32), subcredential],
      retire: (i) => retired.push(i),
    },
    {
      name: 'svc',
      instance: 'a',
      backend: { type: 'builtin' },
      virtualPort: 80,
      rate: o.rate ?? { rate: 1000, burst: 1000 },
      maxPending: 64,
    },
  );
  handler.start();
  const cell = (
    linkSpecifiers: LinkSpecifier[],
    p: { cookie?: Uint8Array; onionKey?: Uint8Array; subcredential?: Uint8Array } = {},
  ): Uint8Array =>
    buildIntroduce1(
      {
        authKey: intro.authPub,
        B: intro.encPub,
        subcredential: p.subcredential ?? subcredential,
        plaintext: {
          cookie: p.cookie ?? randomBytes(20),
          extensions: [],
          onionKey: p.onionKey ?? randomBytes(32),
          linkSpecifiers,
        },
      },
      randomBytes,
    ).cell;
  const outcomes = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const v of (await registry.getSingleMetric('shallot_hs_intro_requests_total')?.get())?.values ?? [])
      out[String(v.labels.outcome)] = v.value;
    return out;
  };
  const rendFailures = async (): Promise<number> =>
    (await registry.getSingleMetric('shallot_hs_rend_total')?.get())?.values.find(
      (v) => v.labels.outcome === 'failure',
    )?.value ?? 0;
  return { dir, builds, intro, handler, cell, outcomes, rendFailures, retired };
}

const specsOf = (identity: Uint8Array, addr: string, port: number): LinkSpecifier[] => [
  { type: 'ipv4', addr, port },
  { type: 'ed25519', id: identity },
];

/** Lets the handler's rendezvous attempt run to its (failed) build. */
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('IntroduceHandler: the rendezvous point as a last hop', () => {
  it('an unlisted rendezvous point is built to from its link specifiers and the client-given onion key', async () => {
    const t = setup();
    const id = ed25519PublicFromSeed(new Uint8Array(32).fill(9));
    const onionKey = randomBytes(32);
    t.handler.handle(t.intro, t.cell(specsOf(id, '10.9.9.9', 7000), { onionKey }));
    await settle();
    expect(t.builds).toHaveLength(1);
    const req = t.builds[0]!;
    expect(req.purpose).toBe('onion-rend');
    expect(req.lastHop).toEqual({
      id: Buffer.from(id).toString('hex'),
      nickname: 'unlisted-rp',
      identity: id,
      ntorKey: onionKey,
      address: '10.9.9.9',
      port: 7000,
      flags: [],
      bandwidth: 0,
      family: [],
    });
    expect(await t.rendFailures()).toBe(1);
  });

  it('a listed rendezvous point is its consensus entry, but with the onion key the client gave', async () => {
    const t = setup();
    const listed = t.dir.relays[1]!;
    const onionKey = randomBytes(32);
    t.handler.handle(t.intro, t.cell(specsOf(listed.identity, listed.address, listed.port), { onionKey }));
    await settle();
    expect(t.builds[0]?.lastHop).toEqual({ ...listed, ntorKey: onionKey });
  });

  it('a rendezvous point without an Ed25519 id, or unlisted without IPv4, gets no circuit', async () => {
    const t = setup();
    t.handler.handle(t.intro, t.cell([{ type: 'ipv4', addr: '10.9.9.9', port: 7000 }]));
    const id = ed25519PublicFromSeed(new Uint8Array(32).fill(9));
    t.handler.handle(
      t.intro,
      t.cell([
        { type: 'ipv6', addr: '::1', port: 7000 },
        { type: 'ed25519', id },
      ]),
    );
    await settle();
    expect(t.builds).toHaveLength(0);
    expect(await t.rendFailures()).toBe(2);
    expect((await t.outcomes()).accepted).toBe(2);
  });
});

describe('IntroduceHandler: the defences in order', () => {
  const rp = () => specsOf(ed25519PublicFromSeed(new Uint8Array(32).fill(2)), '10.0.2.1', 5002);

  it('junk and a wrong subcredential are counted and never reach a cache', async () => {
    const t = setup();
    t.handler.handle(t.intro, randomBytes(300));
    t.handler.handle(t.intro, t.cell(rp(), { subcredential: randomBytes(32) }));
    expect(await t.outcomes()).toEqual({ invalid: 1, bad_mac: 1 });
    expect(t.intro.replay.size).toBe(0);
    expect(t.intro.budget.introductions).toBe(0);
  });

  it('a replayed cell is dropped; a new cell reusing a cookie is dropped by the cookie cache', async () => {
    const t = setup();
    const cookie = randomBytes(20);
    const first = t.cell(rp(), { cookie });
    t.handler.handle(t.intro, first);
    t.handler.handle(t.intro, first);
    t.handler.handle(t.intro, t.cell(rp(), { cookie }));
    await settle();
    expect(await t.outcomes()).toEqual({ accepted: 1, replay: 1, rend_cookie_replay: 1 });
    expect(t.builds).toHaveLength(1);
  });

  it('retires the intro point when its budget is spent, and still answers that cell', async () => {
    const t = setup({ introductions: 2 });
    t.handler.handle(t.intro, t.cell(rp()));
    expect(t.retired).toHaveLength(0);
    t.handler.handle(t.intro, t.cell(rp()));
    expect(t.retired).toEqual([t.intro]);
    expect((await t.outcomes()).accepted).toBe(2);
  });

  it('the token bucket drops what is over the rate', async () => {
    const t = setup({ rate: { rate: 0.001, burst: 2 } });
    for (let i = 0; i < 5; i++) t.handler.handle(t.intro, t.cell(rp()));
    await settle();
    expect(await t.outcomes()).toEqual({ accepted: 2, rate_limited: 3 });
    expect(t.builds).toHaveLength(2);
  });

  it('ignores INTRODUCE2 once stopped, and on a closed intro point', async () => {
    const t = setup();
    t.intro.closed = true;
    t.handler.handle(t.intro, t.cell(rp()));
    t.intro.closed = false;
    t.handler.stop();
    t.handler.handle(t.intro, t.cell(rp()));
    expect(await t.outcomes()).toEqual({});
  });
});
