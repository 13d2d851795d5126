// The learned circuit-build timeout under a burst of CPU load, on a whole
// local network in this process (3 authorities, 4 relays): after 100 builds
// on loopback the timeout is a few tens of ms; a stall of the whole process
// 300 ms longer than that (every relay and the client share it) passes it.
// As in C tor (`circuit_expire_building`), the build is counted as timed out
// and another launched beside it, but the slow one is not closed: the request
// gets a circuit and no build fails. Onion-service circuits get C tor's extra 1 s
// and do not even count the stall as a timeout.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { CBT_DEFAULTS } from '../../services/core/cbt.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { flagsListed } from '../helpers/consensus.js';
import { testLogger } from '../helpers/log.js';

let network: LocalNetwork;
let client: ShallotClient;
let registry: Registry;

beforeAll(async () => {
  network = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    { authorities: 3, relays: 4, exits: 2, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await network.waitForConsensus(4, 40_000);
  registry = new Registry();
  client = new ShallotClient(
    { logger: testLogger('client'), registry },
    { authorities: network.endpoints, socksHost: '127.0.0.1', socksPort: null, circuits: { prebuild: 0 } },
  );
  await client.start();
  await client.ready(30_000);
  await flagsListed(client, ['Guard'], 2);
}, 60_000);

afterAll(async () => {
  await client?.stop();
  await network?.stop();
});

async function metric(name: string, where: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  const values = m ? (await m.get()).values : [];
  return values
    .filter((v) => Object.entries(where).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Blocks the event loop for `ms`, as a burst of CPU load on a small host does. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

/** A stall 300 ms past the learned (3-hop) timeout: a build it lands in has timed out, however slow the machine. */
const stallMs = () => client.circuits.learnedTimeoutMs + 300;

describe('learned build timeout under a CPU stall', () => {
  it('learns a loopback timeout, then a stalled build is counted as timed out but still serves the request', async () => {
    for (let i = 0; i < 100; i++) (await client.circuits.build({ purpose: 'exit' })).destroy();
    const learned = client.circuits.learnedTimeoutMs;
    // Learned from those builds (no longer the 60 s initial timeout). Its value is whatever
    // loopback builds take on this machine now (tens of ms idle, more under load), so the
    // stall below is sized from it rather than a fixed 300 ms that a loaded machine's
    // learned timeout could exceed.
    expect(learned).toBeLessThan(CBT_DEFAULTS.initialTimeoutMs);
    expect(learned).toBeGreaterThanOrEqual(CBT_DEFAULTS.minTimeoutMs);
    const timeoutsBefore = await metric('shallot_client_circuit_build_timeouts_total', { purpose: 'exit' });
    const failuresBefore = await metric('shallot_circuit_failures_total', {
      purpose: 'exit',
      reason: 'timeout',
    });

    const pending = client.circuits.build({ purpose: 'exit' });
    setImmediate(() => stall(stallMs()));
    const circ = await pending;
    expect(circ.isOpen).toBe(true);
    expect(circ.length).toBe(3);
    circ.destroy();
    expect(await metric('shallot_client_circuit_build_timeouts_total', { purpose: 'exit' })).toBeGreaterThan(
      timeoutsBefore,
    );
    expect(await metric('shallot_circuit_failures_total', { purpose: 'exit', reason: 'timeout' })).toBe(
      failuresBefore,
    );
  }, 60_000);

  it("gives onion-service circuits C tor's extra second: the same stall is no timeout for them", async () => {
    const rp = client.dir?.relays.find((r) => r.flags.includes('Stable'));
    if (!rp) throw new Error('no Stable relay');
    const before = await metric('shallot_client_circuit_build_timeouts_total', { purpose: 'onion-rend' });
    const pending = client.circuits.build({ purpose: 'onion-rend', lastHop: rp, length: 2 });
    // Past the learned 3-hop timeout, well inside the 2-hop one plus C tor's extra second.
    setImmediate(() => stall(stallMs()));
    const circ = await pending;
    expect(circ.isOpen).toBe(true);
    circ.destroy();
    expect(await metric('shallot_client_circuit_build_timeouts_total', { purpose: 'onion-rend' })).toBe(
      before,
    );
  }, 30_000);
});
