// An authority without a consensus of its own takes the one its peers
// published, verified (more than half of all authorities signed it), as C
// tor's authorities fetch the consensus they lack like every directory
// cache. Two of three authorities run and publish; the third starts late
// and serves their consensus at once, before its own first round (at least
// the vote and distribution delays away, dir-spec §1.4) could give it one.
// Before, it answered 404 until that round: in `shallot up --workers 1` an
// authority that lost the network's first round served nothing after ready.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import { decodeSignedConsensus } from '../../services/core/dir/consensus.js';
import { DirectoryAuthority } from '../../services/directory/authority.js';
import { resolveTiming } from '../../services/directory/config.js';
import { firstValidAfter } from '../../services/directory/schedule.js';
import { createLogger } from '../../services/runtime/log.js';
import { ephemeralPort } from '../../services/testnet/ports.js';

const INTERVAL_S = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: DirectoryAuthority[] = [];
afterAll(async () => {
  for (const a of running) await a.stop();
});

describe('an authority without a consensus of its own', () => {
  it("serves its peers' published consensus before its own first round", async () => {
    const seeds = [0, 1, 2].map(() => randomBytes(32));
    const ports = [await ephemeralPort(), await ephemeralPort(), await ephemeralPort()];
    const peers = seeds.map((s, i) => ({
      identity: toHex(ed25519PublicFromSeed(s)),
      url: `http://127.0.0.1:${ports[i]}`,
    }));
    const lines: string[] = [];
    const make = (i: number) =>
      new DirectoryAuthority(
        {
          logger: createLogger(`a${i}`, 'info', (l) => (i === 2 ? lines.push(l) : undefined)),
          registry: new Registry(),
        },
        {
          identitySeed: seeds[i]!,
          host: '127.0.0.1',
          port: ports[i]!,
          peers,
          votingIntervalSec: INTERVAL_S,
          testnet: true,
          probeReachability: false,
          name: `a${i}`,
        },
      );
    for (const i of [0, 1]) {
      const a = make(i);
      running.push(a);
      await a.start();
    }
    const end = Date.now() + 20_000;
    while (!running.every((a) => a.latestConsensus) && Date.now() < end) await sleep(50);
    expect(running.every((a) => a.latestConsensus)).toBe(true);

    const late = make(2);
    running.push(late);
    const ownFirst = firstValidAfter(Date.now(), resolveTiming({ votingIntervalSec: INTERVAL_S }));
    await late.start();
    // The first consensus it serves, whenever that is (bounded by its own first round and then some).
    let first: Uint8Array | null = null;
    while (!first && Date.now() < ownFirst + 10_000) {
      first = late.latestConsensus;
      if (!first) await sleep(10);
    }
    expect(first).not.toBeNull();
    const served = decodeSignedConsensus(first!, 1 << 20);
    expect(served.consensus.validAfterMs).toBeLessThan(ownFirst);
    // Signed by the two that voted, not by the late one.
    expect(served.signatures.map((s) => toHex(s.identity)).sort()).toEqual(
      [peers[0]!.identity, peers[1]!.identity].sort(),
    );
    expect(lines.some((l) => l.includes('took the consensus its peers published'))).toBe(true);
  }, 60_000);
});
