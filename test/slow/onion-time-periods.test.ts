// Issue 13: three consecutive time-period changes under continuous load, and
// not one connect fails. A whole local network (3 authorities, 10 relays, 5 s
// voting interval, so a time period is 2 minutes and an SRV run starts half a
// period before each change) serves one onion service; 4 workers connect
// without pause, each request a new rendezvous (its own SOCKS credentials),
// and each worker replaces its client every few requests so descriptor
// fetches happen all along, not only at the change. The service publishes
// for the current and next period before each change (periods.ts, as C tor's
// services), so a client on either side of the change finds a descriptor.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { timePeriodNum, timePeriodParams } from '../../services/core/hs-time.js';
import { OnionService } from '../../services/onion-service/service.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { testLogger } from '../helpers/log.js';
import { readAll } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

const VOTING = 5;
const WORKERS = 4;
const CHANGES = 3;
/** Requests a worker makes on one client before replacing it (a fresh descriptor fetch). */
const REQUESTS_PER_CLIENT = 8;
const BODY = 1500;

let network: LocalNetwork;
let dataDir: string;
let service: OnionService;
let serviceClient: ShallotClient;
let serviceRegistry: Registry;

async function newUser(name: string): Promise<ShallotClient> {
  const c = new ShallotClient(
    { logger: testLogger(name), registry: new Registry() },
    { authorities: network.endpoints, socksHost: '127.0.0.1', socksPort: 0 },
  );
  await c.start();
  await c.ready(30_000);
  return c;
}

async function get(c: ShallotClient, username: string): Promise<void> {
  const onion = service.onionAddress;
  const s = await socksConnect(c.socksPort, onion, 80, { timeoutMs: 60_000, username, password: 'x' });
  s.write(`GET /bytes/${BODY} HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
  const all = await readAll(s);
  const i = all.indexOf('\r\n\r\n');
  if (!all.subarray(0, i).toString('latin1').startsWith('HTTP/1.1 200'))
    throw new Error('not a 200 response');
  if (all.length - i - 4 !== BODY) throw new Error(`short body: ${all.length - i - 4} bytes`);
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-tp-'));
  network = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
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
  serviceRegistry = new Registry();
  serviceClient = new ShallotClient(
    { logger: testLogger('hs-client'), registry: serviceRegistry },
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
    { logger: testLogger('hs'), registry: serviceRegistry, client: serviceClient },
    { name: 'periods', identityKeyFile: path.join(dataDir, 'identity.key'), backend: { type: 'builtin' } },
  );
  await service.start();
  await service.whenPublished(3, 60_000);
}, 150_000);

afterAll(async () => {
  await service?.stop();
  await serviceClient?.stop();
  await network?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('onion service across time-period changes', () => {
  it(`${CHANGES} consecutive time-period changes under load at concurrency ${WORKERS}: no connect fails`, async () => {
    const params = timePeriodParams({ votingIntervalSec: VOTING, testnet: true });
    const tpNow = () => {
      const dir = serviceClient.dir;
      if (!dir) throw new Error('no consensus');
      return timePeriodNum(dir.consensus.validAfterMs, params);
    };
    const start = tpNow();
    // Three changes take at most 3 periods; the margin covers setup and the last requests.
    const deadline = Date.now() + (CHANGES * params.lengthMinutes + 1.5) * 60_000;
    const okPerPeriod = new Map<number, number>();
    const failures: { atMs: number; tp: number; error: string }[] = [];
    let requests = 0;
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      let n = 0;
      while (!stop && Date.now() < deadline) {
        const c = await newUser(`user-${w}`);
        try {
          for (let k = 0; k < REQUESTS_PER_CLIENT && !stop; k++) {
            requests++;
            const t0 = Date.now();
            try {
              await get(c, `w${w}-r${n++}`);
              const tp = tpNow();
              okPerPeriod.set(tp, (okPerPeriod.get(tp) ?? 0) + 1);
            } catch (e) {
              failures.push({ atMs: t0, tp: tpNow(), error: (e as Error).message });
            }
          }
        } finally {
          await c.stop();
        }
      }
    };
    const watcher = (async () => {
      while (!stop && Date.now() < deadline) {
        // Done once the period after the third change has carried some load.
        if ((okPerPeriod.get(start + CHANGES) ?? 0) >= 2 * WORKERS) stop = true;
        await new Promise((r) => setTimeout(r, 500));
      }
      stop = true;
    })();
    await Promise.all([...Array.from({ length: WORKERS }, (_, w) => worker(w)), watcher]);
    const perPeriod = [...okPerPeriod.entries()].sort((a, b) => a[0] - b[0]);
    console.log(
      `requests ${requests}, failures ${failures.length}, ok per period ${JSON.stringify(perPeriod)}`,
    );
    expect(failures).toEqual([]);
    // Every period from the start to the third change carried successful connects.
    for (let tp = start; tp <= start + CHANGES; tp++) expect(okPerPeriod.get(tp) ?? 0).toBeGreaterThan(0);
    expect(service.published).toBeGreaterThan(0);
  }, 600_000);
});
