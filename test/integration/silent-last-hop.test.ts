// A requested last hop that stops answering (path-spec §2.4 and
// rend-spec-v3 §2.2.3: an HSDir, introduction or rendezvous point), on a
// whole local network in this process whose relay is paused by the link
// fault table (every link of it holds what it gets, as a SIGSTOPped relay's
// do). C tor does not rebuild to such a relay: it moves on to another HSDir,
// intro point or rendezvous point. So the client fails the request at the
// first attempt that met the silence, instead of spending every build
// attempt on the same relay (three times the no-answer timeout, 30 s by
// default, before an onion fetch could try the next HSDir), and launches no
// more attempts behind it. Once the relay answers again it is built to.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HopSilentError } from '../../services/client/build-race.js';
import { ShallotClient } from '../../services/client/client.js';
import { applyLinkFaults, EMPTY_LINK_FAULTS } from '../../services/net/link-faults.js';
import { namedShaping } from '../../services/runtime/shaping-options.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { flagsListed } from '../helpers/consensus.js';
import { testLogger } from '../helpers/log.js';

/**
 * The client's no-answer time for a hop, shorter than the default 10 s so
 * the test is quick, long enough that no live hop on a loaded machine
 * misses it (the channels are warm: a CREATE2 or EXTEND2 over them takes
 * milliseconds); the rule does not depend on it.
 */
const NO_ANSWER_MS = 4_000;

let network: LocalNetwork;
let client: ShallotClient;
let registry: Registry;

beforeAll(async () => {
  network = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    {
      authorities: 3,
      relays: 4,
      exits: 2,
      votingIntervalSec: 5,
      tls: true,
      host: '127.0.0.1',
      basePort: 0,
      shaping: (name) => namedShaping(name),
    },
  );
  await network.waitForConsensus(4, 40_000);
  registry = new Registry();
  client = new ShallotClient(
    { logger: testLogger('client'), registry },
    {
      authorities: network.endpoints,
      socksHost: '127.0.0.1',
      socksPort: null,
      circuits: { prebuild: 0, firstHopTimeoutMs: NO_ANSWER_MS },
    },
  );
  await client.start();
  await client.ready(30_000);
  await flagsListed(client, ['HSDir'], 4);
}, 60_000);

afterAll(async () => {
  applyLinkFaults(EMPTY_LINK_FAULTS);
  await client?.stop();
  await network?.stop();
});

async function hsdirFailures(): Promise<number> {
  const m = registry.getSingleMetric('shallot_circuit_failures_total');
  const values = m ? (await m.get()).values : [];
  return values.filter((v) => v.labels.purpose === 'hsdir').reduce((sum, v) => sum + v.value, 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a requested last hop that does not answer', () => {
  it('fails the request at the first attempt that met it, with no attempt behind it; answers again once resumed', async () => {
    const hsdir = client.dir?.relays.find((r) => r.nickname === 'relay3');
    if (!hsdir) throw new Error('relay3 not in the consensus');
    // Warm the channels the builds below may take (the guard's to each middle, theirs to relay3).
    for (let i = 0; i < 4; i++) (await client.circuits.build({ purpose: 'hsdir', lastHop: hsdir })).destroy();
    const before = await hsdirFailures();
    applyLinkFaults({ ...EMPTY_LINK_FAULTS, paused: ['relay3'] });
    try {
      const err = await client.circuits.build({ purpose: 'hsdir', lastHop: hsdir }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HopSilentError);
      expect((err as HopSilentError).hopId).toBe(hsdir.id);
      // Rejected at the first failed attempt: one failure counted (the old rule counted all
      // three before giving up), and none more afterwards, as no attempt was left running.
      expect(await hsdirFailures()).toBe(before + 1);
      // Long enough for an attempt launched behind the first one to have failed too.
      await sleep(NO_ANSWER_MS + 1_000);
      expect(await hsdirFailures()).toBe(before + 1);
    } finally {
      applyLinkFaults(EMPTY_LINK_FAULTS);
    }
    // Not excluded from being asked for: a caller that must reach it (its HSDir role) still can.
    const circ = await client.circuits.build({ purpose: 'hsdir', lastHop: hsdir });
    expect(circ.isOpen).toBe(true);
    circ.destroy();
  }, 60_000);
});
