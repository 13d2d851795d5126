// The descriptor publisher on its own (publisher.ts), with a fake clock and
// a circuit manager that records the HSDirs it is asked to reach and
// reaches none: when an upload round starts (not without intro points, not
// while one is settling, at once on a change of the intro set, 5 s after a
// round some HSDir missed), where it goes (the ring periods.ts computes for
// each period), which periods it keeps, and when clients can fetch what it
// published (fetchable: every period's descriptor on an HSDir a client
// asks), with circuits whose HSDirs answer as each test says.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CircuitManager } from '../../../services/client/circuit-manager.js';
import type { BuildRequest } from '../../../services/client/circuit-options.js';
import { NetDir } from '../../../services/client/netdir.js';
import { ed25519Expand } from '../../../services/core/crypto/ed25519-math.js';
import { ed25519PublicFromSeed, randomBytes } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import type { IntroPointInfo } from '../../../services/core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity, hsSubcredential } from '../../../services/core/hs-keys.js';
import { timePeriodParams } from '../../../services/core/hs-time.js';
import { relayLinkSpecifiers } from '../../../services/core/link-specifiers.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import type { OriginCircuit } from '../../../services/net/origin-circuit.js';
import {
  fetchHsDirsFor,
  serviceDescriptorPeriods,
  uploadHsDirs,
} from '../../../services/onion-service/periods.js';
import {
  DescriptorPublisher,
  type PeriodKeys,
  type PublishedEvent,
} from '../../../services/onion-service/publisher.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { dirStream } from '../../helpers/dir-stream.js';
import {
  FAKE_SHARED_RAND,
  fakeConsensus,
  fakeRelay,
  recordingCircuits,
} from '../../helpers/fake-consensus.js';
import { seededRng } from '../../helpers/seeded-rng.js';

const relay = (i: number): ConsensusRelay => fakeRelay(i, ['Fast', 'HSDir', 'Running', 'Stable', 'Valid']);

const T0 = Date.UTC(2025, 0, 1, 12);
const consensus: Consensus = fakeConsensus(
  Array.from({ length: 12 }, (_, i) => relay(i + 1)),
  { validAfterMs: T0, knownFlags: ['Fast', 'HSDir', 'Running', 'Stable', 'Valid'], ...FAKE_SHARED_RAND },
);
const params = timePeriodParams({ votingIntervalSec: 10, testnet: true });

function introPoint(): IntroPointInfo {
  const r = consensus.relays[0]!;
  return {
    linkSpecifiers: relayLinkSpecifiers({
      address: r.address,
      port: r.orPort,
      legacyId: new Uint8Array(20),
      ed25519Id: r.identity,
    }),
    onionKey: r.ntorOnionKey,
    authKey: randomBytes(32),
    encKey: randomBytes(32),
  };
}

/**
 * Circuits to HSDirs that answer the i-th upload (in build order) with
 * `status(i, hsdir id)`, which may wait: a round's builds are all asked for
 * before the next period's round starts, so the order names the period.
 */
function answeringCircuits(
  dir: NetDir,
  status: (i: number, hsdir: string) => number | Promise<number>,
): { circuits: Pick<CircuitManager, 'build'>; builds: BuildRequest[] } {
  const builds: BuildRequest[] = [];
  const circuits: Pick<CircuitManager, 'build'> = {
    build: async (req: BuildRequest) => {
      const i = builds.push(req) - 1;
      const hsdir = req.lastHop?.id ?? '';
      expect(dir.get(hsdir)).toBeDefined();
      const circ = {
        openDirStream: async () => dirStream({ status: await status(i, hsdir), body: 'OK\n' }),
        destroy() {},
      };
      return circ as unknown as OriginCircuit;
    },
  };
  return { circuits, builds };
}

function setup(answers?: (i: number, hsdir: string) => number | Promise<number>) {
  const dir = new NetDir(consensus);
  let now = T0;
  const { circuits, builds } = answers ? answeringCircuits(dir, answers) : recordingCircuits(dir);
  const seed = randomBytes(32);
  const identityPub = ed25519PublicFromSeed(seed);
  const keysFor = (tp: number): PeriodKeys => {
    const len = BigInt(params.lengthMinutes);
    const blindedPub = blindIdentity(identityPub, BigInt(tp), len);
    return {
      blindedPub,
      blindedKey: blindExpandedKey(ed25519Expand(seed), BigInt(tp), len),
      subcredential: hsSubcredential(identityPub, blindedPub),
    };
  };
  const publisher = new DescriptorPublisher(
    {
      circuits,
      logger: silentLogger,
      metrics: metricsFor(new Registry()).service,
      now: () => now,
      rng: seededRng(7),
    },
    { name: 'svc', instance: 'a', onion: 'x.onion', identityPub },
  );
  const periods = serviceDescriptorPeriods(consensus, params);
  publisher.setPeriods(periods, keysFor);
  const rounds: PublishedEvent[] = [];
  publisher.on('published', (e) => rounds.push(e));
  const maintain = (introPoints: IntroPointInfo[], settling = false) =>
    publisher.maintain({ relays: dir.relays, params, introPoints, settling });
  /** Waits for `n` rounds in all to have finished. */
  const roundsDone = async (n: number) => {
    while (rounds.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  const ring = periods.map((p) => uploadHsDirs(dir.relays, keysFor(p.tp).blindedPub, p, params));
  const asked = periods.map((p) => fetchHsDirsFor(dir.relays, keysFor(p.tp).blindedPub, p, params));
  return {
    asked,
    publisher,
    builds,
    rounds,
    maintain,
    roundsDone,
    ring,
    periods,
    keysFor,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('DescriptorPublisher', () => {
  it('uploads nothing without an intro point, or while one is settling', async () => {
    const t = setup();
    t.maintain([]);
    t.maintain([introPoint()], true);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.builds).toHaveLength(0);
    expect(t.rounds).toHaveLength(0);
  });

  it('sends each period’s descriptor to that period’s HSDirs over hsdir circuits', async () => {
    const t = setup();
    t.maintain([introPoint()]);
    await t.roundsDone(2);
    expect(t.builds.every((b) => b.purpose === 'hsdir')).toBe(true);
    const asked = t.builds.map((b) => b.lastHop?.id).sort();
    const expected = t.ring.flat().map((r) => r.id);
    expect(asked).toEqual(expected.sort());
    expect(t.ring.every((hsdirs) => hsdirs.length > 0)).toBe(true);
    expect(t.rounds.map((r) => r.tp).sort()).toEqual(t.periods.map((p) => p.tp).sort());
    expect(t.rounds.every((r) => r.uploaded === 0 && r.failed > 0 && r.introPoints === 1)).toBe(true);
    expect(t.publisher.published).toBe(0);
    expect(t.publisher.bestPublished).toBeNull();
  });

  it('retries a round some HSDir missed after 5 s, not before', async () => {
    const t = setup();
    const ips = [introPoint()];
    t.maintain(ips);
    await t.roundsDone(2);
    const first = t.builds.length;
    t.advance(4_999);
    t.maintain(ips);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.builds).toHaveLength(first);
    t.advance(1);
    t.maintain(ips);
    await t.roundsDone(4);
    expect(t.builds).toHaveLength(2 * first);
  });

  it('uploads at once when the intro set changes', async () => {
    const t = setup();
    t.maintain([introPoint()]);
    await t.roundsDone(2);
    t.maintain([introPoint(), introPoint()]);
    await t.roundsDone(4);
    expect(t.rounds.slice(2).map((r) => r.introPoints)).toEqual([2, 2]);
  });

  it('forgets a period that is no longer named, and keeps the others', async () => {
    const t = setup();
    const second = t.periods[1];
    t.publisher.setPeriods([second!], t.keysFor);
    expect(t.publisher.periods).toEqual([second!.tp]);
    t.maintain([introPoint()]);
    await t.roundsDone(1);
    expect(t.rounds.map((r) => r.tp)).toEqual([second!.tp]);
  });

  it('is fetchable only once both periods’ rounds are in, not at the first round’s event', async () => {
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let firstRound = Number.POSITIVE_INFINITY;
    // The first period's HSDirs answer at once; the second period's wait for `release`.
    const t = setup(async (i) => {
      if (i >= firstRound) await held;
      return 200;
    });
    firstRound = t.ring[0]!.length;
    t.maintain([introPoint()]);
    await t.roundsDone(1);
    // The event `shallot up` took for "ready" before: one period's round, every HSDir took it.
    expect(t.rounds[0]).toMatchObject({ tp: t.periods[0]!.tp, uploaded: firstRound, failed: 0 });
    expect(t.publisher.fetchable(1)).toBe(false);
    release();
    await t.roundsDone(2);
    expect(t.publisher.fetchable(1)).toBe(true);
    expect(t.publisher.fetchable(2)).toBe(false);
  });

  it('counts only the HSDirs clients ask: one beyond spread_fetch that took it is not enough', async () => {
    let everyone = false;
    const t = setup((i, hsdir) => {
      const period = i < t.ring[0]!.length ? 0 : 1;
      const askedHere = t.asked[period]!.some((r) => r.id === hsdir);
      return everyone || !askedHere ? 200 : 503;
    });
    // spread_store 4 and spread_fetch 3 per replica: some HSDirs store what no client asks them for.
    for (const [p, stored] of t.ring.entries()) expect(stored.length).toBeGreaterThan(t.asked[p]!.length);
    const ips = [introPoint()];
    t.maintain(ips);
    await t.roundsDone(2);
    expect(t.rounds.every((r) => r.uploaded > 0 && r.failed > 0)).toBe(true);
    expect(t.publisher.fetchable(1)).toBe(false);
    // The retry 5 s later reaches them all; what the first round placed still counts.
    everyone = true;
    t.advance(5_000);
    t.maintain(ips);
    await t.roundsDone(4);
    expect(t.publisher.fetchable(1)).toBe(true);
  });

  it('one HSDir a client asks per period is enough: a dead one does not keep the service from ready', async () => {
    // Every HSDir a client asks refuses, except the first of each period's fetch set.
    const t = setup((i, hsdir) => {
      const period = i < t.ring[0]!.length ? 0 : 1;
      const asked = t.asked[period]!;
      return asked[0]!.id === hsdir || !asked.some((r) => r.id === hsdir) ? 200 : 503;
    });
    t.maintain([introPoint()]);
    await t.roundsDone(2);
    expect(t.rounds.every((r) => r.failed > 0)).toBe(true);
    expect(t.publisher.fetchable(1)).toBe(true);
  });

  it('a new intro set must reach them again: HSDirs holding the old one do not count for it', async () => {
    let refuse = false;
    const t = setup(() => (refuse ? 503 : 200));
    t.maintain([introPoint()]);
    await t.roundsDone(2);
    expect(t.publisher.fetchable(1)).toBe(true);
    refuse = true;
    t.maintain([introPoint(), introPoint()]);
    await t.roundsDone(4);
    expect(t.publisher.fetchable(1)).toBe(false);
    expect(t.publisher.fetchable(2)).toBe(false);
  });
});
