// The authority's reachability rule end to end (services/directory/
// admission.ts; issue 17): a lone authority with a 2 s voting interval
// tests four real relays by link handshake on 127.0.0.1. One relay that
// stops is still Running in the first consensus voted after it stopped (one
// failed test) and loses Running after the second (C tor's authorities, too,
// keep Running for REACHABLE_TIMEOUT after the last success). When most of
// the relays fail their test in the same round, as they would if the
// authority itself were starved or cut off, none of the failures is trusted:
// the three stopped at once stay Running.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import { decodeSignedConsensus } from '../../services/core/dir/consensus.js';
import { type RelayDescriptor, signRelayDescriptor } from '../../services/core/dir/descriptor.js';
import { parseExitPolicy } from '../../services/core/exit-policy.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import { DirectoryAuthority } from '../../services/directory/authority.js';
import { CONSENSUS_PATH, httpRequest, publishDescriptor } from '../../services/net/dir-client.js';
import { Relay } from '../../services/relay/relay.js';
import { silentLogger } from '../../services/runtime/log.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { LOCAL_EXIT_POLICY } from '../helpers/relays.js';

const INTERVAL_S = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let auth: DirectoryAuthority;
let self: { identity: string; url: string };
const relays: Relay[] = [];
const stopped = new Set<number>();

beforeAll(async () => {
  const seed = randomBytes(32);
  const port = await ephemeralPort();
  self = { identity: toHex(ed25519PublicFromSeed(seed)), url: `http://127.0.0.1:${port}` };
  auth = new DirectoryAuthority(
    { logger: silentLogger, registry: new Registry() },
    {
      identitySeed: seed,
      host: '127.0.0.1',
      port,
      peers: [self],
      votingIntervalSec: INTERVAL_S,
      testnet: true,
      probeReachability: true,
      measureBandwidth: false,
      maxServersPerAddr: 0,
      name: 'failsafe',
    },
  );
  await auth.start();
  for (let i = 0; i < 4; i++) {
    const keys = generateNodeKeys();
    const relay = new Relay(
      { logger: silentLogger, registry: new Registry() },
      { nickname: `r${i}`, host: '127.0.0.1', port: 0, tls: true, keys, exitPolicy: LOCAL_EXIT_POLICY },
    );
    await relay.start();
    relays.push(relay);
    const desc: RelayDescriptor = {
      nickname: `r${i}`,
      identity: keys.identity,
      ntorOnionKey: keys.onionKeys[0]!.public,
      address: '127.0.0.1',
      orPort: relay.port,
      linkUrl: relay.linkUrl,
      bandwidth: 1_000_000,
      family: [],
      exitPolicy: parseExitPolicy(['reject *:*']),
      platform: 'Shallot test',
      publishedMs: Date.now(),
      uptimeSec: 10,
      protocols: { Link: '4-5', Relay: '2-4' },
      hsdir: false,
    };
    const res = await publishDescriptor([self], signRelayDescriptor(desc, keys.identitySeed));
    expect(res.accepted).toBe(1);
  }
}, 60_000);

afterAll(async () => {
  await auth?.stop();
  for (const [i, r] of relays.entries()) if (!stopped.has(i)) await r.stop();
});

/** The served consensus: valid-after and the nicknames voted Running. */
async function current(): Promise<{ va: number; running: string[] } | null> {
  const r = await httpRequest(self.url, 'GET', CONSENSUS_PATH, { maxBytes: 1 << 20 }).catch(() => null);
  if (r?.status !== 200) return null;
  const c = decodeSignedConsensus(r.body, 1 << 20).consensus;
  return {
    va: c.validAfterMs,
    running: c.relays
      .filter((x) => x.flags.includes('Running'))
      .map((x) => x.nickname)
      .sort(),
  };
}

/**
 * The consensuses published whose vote was built after `sinceMs` (valid-after
 * more than the vote and distribution delays later), until there are
 * `count` of them (at most 30 s: a loaded host may miss rounds).
 */
async function consensusesAfter(sinceMs: number, count: number): Promise<[number, string[]][]> {
  const seen = new Map<number, string[]>();
  const end = Date.now() + 30_000;
  while (seen.size < count && Date.now() < end) {
    const c = await current();
    if (c && c.va - 0.4 * INTERVAL_S * 1000 > sinceMs) seen.set(c.va, c.running);
    await sleep(100);
  }
  return [...seen].sort((a, b) => a[0] - b[0]);
}

const stop = async (i: number) => {
  stopped.add(i);
  await relays[i]!.stop();
};

describe('reachability fail-safe (a lone authority, four real relays)', () => {
  it('drops one stopped relay after two failed rounds, and none when most fail at once', async () => {
    const deadline = Date.now() + 30_000;
    while ((await current())?.running.length !== 4) {
      if (Date.now() > deadline) throw new Error('the four relays were never all Running');
      await sleep(200);
    }

    // One of four stops: a trusted round.
    await stop(0);
    const stoppedAt = Date.now();
    const afterOne = await consensusesAfter(stoppedAt, 3);
    expect(afterOne.length).toBeGreaterThanOrEqual(3);
    // The first vote after the stop saw one failure: still Running.
    expect(afterOne[0]![1]).toEqual(['r0', 'r1', 'r2', 'r3']);
    // The second failure drops it; the others never move.
    expect(afterOne.at(-1)![1]).toEqual(['r1', 'r2', 'r3']);
    for (const [, running] of afterOne) expect(running).toEqual(expect.arrayContaining(['r1', 'r2', 'r3']));

    // Three of the three left stop at once: every test of the round fails, none is trusted.
    await Promise.all([stop(1), stop(2), stop(3)]);
    const stoppedAll = Date.now();
    const afterMost = await consensusesAfter(stoppedAll, 3);
    expect(afterMost.length).toBeGreaterThanOrEqual(3);
    for (const [, running] of afterMost) expect(running).toEqual(['r1', 'r2', 'r3']);
  }, 90_000);
});
