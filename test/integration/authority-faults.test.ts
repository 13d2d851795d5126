/**
 * Link faults on a directory authority as the operator sends them (issue
 * 18: NetworkFault pause, cut and slow of an authority on Kubernetes), over
 * real sockets on 127.0.0.1:
 *   - pause: the table PUT to the authority's ops endpoint with the fault
 *     token (runtime/fault-route.ts, served as directory/main.ts serves it
 *     with --fault-token-file) pauses it: its DirPort leaves requests
 *     unanswered with their connections open, and answers them once the
 *     next table no longer pauses it;
 *   - cut: the authority's reachability test of a relay (a real relay on a
 *     real link, named as relays name theirs) fails while the link between
 *     the two is cut, the channel it held is dropped, and the test passes
 *     again once healed;
 *   - pause of the relay holds the authority's test link the same way.
 * Hostile and malformed tables at the route are covered in
 * fault-route.test.ts (the authority adds no route of its own).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import { DirectoryAuthority } from '../../services/directory/authority.js';
import { type ProbeTarget, ReachabilityTester } from '../../services/directory/reachability.js';
import { CONSENSUS_PATH, httpRequest } from '../../services/net/dir-client.js';
import { applyLinkFaults, EMPTY_LINK_FAULTS } from '../../services/net/link-faults.js';
import { FAULT_TABLE_PATH } from '../../services/runtime/fault-route.js';
import { silentLogger } from '../../services/runtime/log.js';
import { serveOps } from '../../services/runtime/ops-server.js';
import { namedShaping } from '../../services/runtime/shaping-options.js';
import { RelaySlot } from '../../services/testnet/relay-slot.js';
import { testLogger } from '../helpers/log.js';
import { LOCAL_EXIT_POLICY } from '../helpers/relays.js';

const AUTH = 'neta-auth-0';
const RELAY = 'neta0r1';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  applyLinkFaults(EMPTY_LINK_FAULTS);
  for (const c of cleanups.splice(0).reverse()) await c();
});

const pausing = (...paused: string[]) => applyLinkFaults({ cuts: [], slows: [], paused });
const TOKEN = 'c3'.repeat(32);

describe('an authority paused through its ops endpoint', () => {
  it('holds DirPort requests with the connection open and answers them when the pause ends', {
    timeout: 20_000,
  }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'auth-faults-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(path.join(dir, 'token'), TOKEN);
    const seed = randomBytes(32);
    const id = toHex(ed25519PublicFromSeed(seed));
    // One authority listing itself (no peers to talk to), on a port it picks.
    const auth = new DirectoryAuthority(
      { logger: silentLogger, registry: new Registry() },
      {
        identitySeed: seed,
        host: '127.0.0.1',
        port: 0,
        peers: [{ identity: id, url: 'http://127.0.0.1:1' }],
        votingIntervalSec: 60,
        testnet: true,
        name: AUTH,
        shaping: namedShaping(AUTH),
      },
    );
    await auth.start();
    cleanups.push(() => auth.stop());
    const ops = await serveOps({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      health: () => auth.health(),
      faultTokenFile: path.join(dir, 'token'),
    });
    cleanups.push(() => ops.close());
    const table = async (paused: string[], token = TOKEN) =>
      (
        await fetch(`http://127.0.0.1:${ops.port}${FAULT_TABLE_PATH}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ cuts: [], slows: [], paused }),
        })
      ).status;
    const url = `http://127.0.0.1:${auth.port}`;
    // Not paused: answered at once (no consensus yet).
    expect((await httpRequest(url, 'GET', CONSENSUS_PATH, { timeoutMs: 2000 })).status).toBe(404);
    // Another node's pause leaves it alone.
    expect(await table([RELAY])).toBe(200);
    expect((await httpRequest(url, 'GET', CONSENSUS_PATH, { timeoutMs: 2000 })).status).toBe(404);
    // Without the token nothing changes.
    expect(await table([AUTH], 'd4'.repeat(32))).toBe(401);
    expect((await httpRequest(url, 'GET', CONSENSUS_PATH, { timeoutMs: 2000 })).status).toBe(404);
    expect(await table([AUTH])).toBe(200);
    await expect(httpRequest(url, 'GET', CONSENSUS_PATH, { timeoutMs: 800 })).rejects.toThrow();
    const held = httpRequest(url, 'GET', CONSENSUS_PATH, { timeoutMs: 5000 });
    let answered = false;
    void held.then(() => {
      answered = true;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(answered).toBe(false);
    expect(await table([])).toBe(200);
    expect((await held).status).toBe(404);
  });
});

describe("an authority's reachability test under link faults", () => {
  async function setup() {
    const keys = generateNodeKeys();
    const slot = new RelaySlot(
      { logger: testLogger(RELAY), registry: new Registry() },
      {
        nickname: RELAY,
        host: '127.0.0.1',
        port: 0,
        tls: true,
        keys,
        exitPolicy: LOCAL_EXIT_POLICY,
        authorities: [],
        shaping: namedShaping(RELAY),
      },
      false,
    );
    await slot.start();
    cleanups.push(() => slot.stop());
    const port = slot.node?.relay.port ?? 0;
    const target: ProbeTarget = {
      nickname: RELAY,
      identity: keys.identity,
      ntorOnionKey: keys.onionKeys[0]!.public,
      address: '127.0.0.1',
      orPort: port,
      linkUrl: `wss://127.0.0.1:${port}/link`,
    };
    const tester = new ReachabilityTester({
      timeoutMs: 1500,
      concurrency: 2,
      tls: true,
      shaping: namedShaping(AUTH),
    });
    cleanups.push(() => tester.close());
    return { tester, target };
  }

  it('fails while the link to the relay is cut (the held channel drops) and passes once healed', {
    timeout: 20_000,
  }, async () => {
    const { tester, target } = await setup();
    expect(await tester.probe(target)).toBe('up');
    expect(tester.isHeld(target)).toBe(true);
    applyLinkFaults({ cuts: [[RELAY, AUTH]], slows: [], paused: [] });
    expect(tester.isHeld(target)).toBe(false);
    expect(await tester.probe(target)).not.toBe('up');
    // A cut between other nodes does not touch it.
    applyLinkFaults({ cuts: [[RELAY, 'neta-auth-1']], slows: [], paused: [] });
    expect(await tester.probe(target)).toBe('up');
  });

  it('times out while either end is paused and passes once the pause ends', { timeout: 20_000 }, async () => {
    const { tester, target } = await setup();
    for (const node of [AUTH, RELAY]) {
      pausing(node);
      expect(await tester.probe(target)).not.toBe('up');
      applyLinkFaults(EMPTY_LINK_FAULTS);
      expect(await tester.probe(target)).toBe('up');
      tester.forget(toHex(target.identity));
    }
  });
});
