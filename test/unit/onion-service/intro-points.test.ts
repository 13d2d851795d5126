// The intro-point set on its own (intro-points.ts), with a fake clock, a
// seeded rng, an in-memory instance exchange and a circuit manager that
// records the relays it is asked to reach and reaches none: which relays are
// chosen (Running, Valid and Stable; none twice; those other instances use
// only when nothing else is left), the 30 s pause for a relay that failed,
// what the descriptors list (own first, peers' after, each auth key once,
// at most 20), and when its record goes to the other instances.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { NetDir } from '../../../services/client/netdir.js';
import { toHex } from '../../../services/core/bytes.js';
import { legacyIdFromEd25519, randomBytes } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import type { IntroPointInfo } from '../../../services/core/hs-descriptor.js';
import { relayLinkSpecifiers } from '../../../services/core/link-specifiers.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import type { InstanceExchange, InstanceRecord } from '../../../services/onion-service/instances.js';
import { IntroPointSet } from '../../../services/onion-service/intro-points.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { fakeConsensus, fakeRelay, recordingCircuits } from '../../helpers/fake-consensus.js';
import { seededRng } from '../../helpers/seeded-rng.js';

const STABLE = ['Fast', 'Running', 'Stable', 'Valid'];

const relay = (i: number, flags = STABLE): ConsensusRelay => fakeRelay(i, flags);

const consensusOf = (relays: ConsensusRelay[]): Consensus => fakeConsensus(relays, { knownFlags: STABLE });

/** An intro point on relay `r` as a peer instance's record lists it. */
function peerIntroPoint(r: ConsensusRelay, authKey = randomBytes(32)): IntroPointInfo {
  return {
    linkSpecifiers: relayLinkSpecifiers({
      address: r.address,
      port: r.orPort,
      legacyId: legacyIdFromEd25519(r.identity),
      ed25519Id: r.identity,
    }),
    onionKey: r.ntorOnionKey,
    authKey,
    encKey: randomBytes(32),
  };
}

function setup(relays: ConsensusRelay[], count: number) {
  const dir = new NetDir(consensusOf(relays));
  let now = 1_000;
  const { circuits, builds } = recordingCircuits(dir);
  const set = new IntroPointSet(
    {
      circuits,
      logger: silentLogger,
      metrics: metricsFor(new Registry()).service,
      now: () => now,
      rng: seededRng(3),
    },
    { name: 'svc', instance: 'a', count, dos: { rate: 25, burst: 200 }, heartbeatMs: 5_000 },
  );
  set.start();
  let peers: InstanceRecord[] = [];
  const published: InstanceRecord[] = [];
  const exchange: InstanceExchange = {
    publish: async (r) => {
      published.push(r);
    },
    peers: async () => peers,
    close: async () => {},
  };
  return {
    dir,
    set,
    builds,
    exchange,
    published,
    setPeers: (p: InstanceRecord[]) => {
      peers = p;
    },
    advance: (ms: number) => {
      now += ms;
    },
    lastHops: () => builds.map((b) => b.lastHop?.nickname),
  };
}

/** Lets the failed builds drop their intro points. */
const settle = () => new Promise((r) => setTimeout(r, 10));

describe('IntroPointSet', () => {
  it('chooses `count` distinct relays, only Running, Valid and Stable ones', () => {
    const relays = [
      relay(1),
      relay(2),
      relay(3),
      relay(4, ['Fast', 'Running', 'Valid']),
      relay(5, ['Fast', 'Running', 'Stable']),
      relay(6, ['Fast', 'Valid', 'Stable']),
    ];
    const t = setup(relays, 3);
    t.set.maintain(t.dir);
    expect(t.builds.every((b) => b.purpose === 'onion-intro')).toBe(true);
    expect(t.lastHops().sort()).toEqual(['r1', 'r2', 'r3']);
    // A second pass while those are being established launches nothing more.
    t.set.maintain(t.dir);
    expect(t.builds).toHaveLength(3);
  });

  it('skips a relay that failed for 30 s, then tries it again', async () => {
    const t = setup([relay(1), relay(2)], 1);
    t.set.maintain(t.dir);
    await settle();
    t.set.maintain(t.dir);
    await settle();
    // Both failed once: nothing is left to try.
    t.set.maintain(t.dir);
    expect(t.lastHops().sort()).toEqual(['r1', 'r2']);
    t.advance(29_999);
    t.set.maintain(t.dir);
    expect(t.builds).toHaveLength(2);
    t.advance(1);
    t.set.maintain(t.dir);
    expect(t.builds).toHaveLength(3);
  });

  it('prefers relays no other instance uses, and uses theirs when nothing else is left', async () => {
    const relays = [relay(1), relay(2), relay(3)];
    const t = setup(relays, 1);
    t.setPeers([
      { instance: 'b', updatedMs: 0, introPoints: [peerIntroPoint(relays[0]!), peerIntroPoint(relays[1]!)] },
    ]);
    await t.set.sync(t.exchange);
    t.set.maintain(t.dir);
    expect(t.lastHops()).toEqual(['r3']);
    await settle();
    // r3 failed: only relays the peer uses are left, and one of them is taken.
    t.set.maintain(t.dir);
    expect(['r1', 'r2']).toContain(t.lastHops()[1]);
  });

  it('lists peers’ intro points after its own, each auth key once, at most 20', async () => {
    const relays = Array.from({ length: 25 }, (_, i) => relay(i + 1));
    const t = setup(relays, 1);
    const shared = randomBytes(32);
    const b = relays.slice(0, 12).map((r) => peerIntroPoint(r));
    const c = relays.slice(12, 25).map((r) => peerIntroPoint(r));
    b[0] = peerIntroPoint(relays[0]!, shared);
    c[0] = peerIntroPoint(relays[12]!, shared);
    t.setPeers([
      { instance: 'b', updatedMs: 0, introPoints: b },
      { instance: 'c', updatedMs: 0, introPoints: c },
    ]);
    await t.set.sync(t.exchange);
    const merged = t.set.merged();
    expect(merged).toHaveLength(20);
    expect(new Set(merged.map((ip) => toHex(ip.authKey))).size).toBe(20);
    expect(merged.slice(0, 12)).toEqual(b);
    expect(merged.slice(12)).toEqual(c.slice(1, 9));
  });

  it('publishes its own record on sync while running, and not once stopped', async () => {
    const t = setup([relay(1)], 1);
    // Nothing changed yet and no heartbeat due: nothing to publish.
    await t.set.sync(t.exchange);
    expect(t.published).toEqual([]);
    t.advance(5_000);
    await t.set.sync(t.exchange);
    expect(t.published).toEqual([{ instance: 'a', updatedMs: 6_000, introPoints: [] }]);
    t.set.stop();
    t.advance(10_000);
    await t.set.sync(t.exchange);
    expect(t.published).toHaveLength(1);
  });
});
