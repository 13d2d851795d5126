// A round whose steps all come due at once, on a starved event loop (dir-spec
// §1.4 voting timeline), is still served by every authority: the steps run
// in order, late rather than never (C tor's dirvote_act: vote, fetch the
// missing votes, compute, publish, one after another). Before, each step
// started on its own timer: the publish step ran while the consensus step
// still fetched votes, found no consensus ("no consensus computed for this
// round") and the round was lost; in `shallot up --workers 1` every node
// shares one loop, which CI's load can starve that way.
// Three authorities on one event loop, as the one-process launcher runs
// them; the loop is blocked from before the round's vote time until after
// its valid-after, so their vote, consensus and publish steps fire together.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import { decodeSignedConsensus } from '../../services/core/dir/consensus.js';
import { DirectoryAuthority } from '../../services/directory/authority.js';
import { createLogger } from '../../services/runtime/log.js';
import { ephemeralPort } from '../../services/testnet/ports.js';

// As `shallot up` in the slow tests (and CI's failing runs): 1 s vote and distribution delays.
const INTERVAL_MS = 5_000;
// resolveTiming's defaults: a fifth of the interval each.
const VOTE_MS = INTERVAL_MS / 5;
const DIST_MS = INTERVAL_MS / 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: DirectoryAuthority[] = [];
afterAll(async () => {
  for (const a of running) await a.stop();
});

/** The valid-after of each authority's served consensus (0 for none). */
const servedRounds = () =>
  running.map((a) => {
    const raw = a.latestConsensus;
    return raw ? decodeSignedConsensus(raw, 1 << 20).consensus.validAfterMs : 0;
  });

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('a round on a starved event loop', () => {
  it('is computed and published by every authority once the loop runs again', async () => {
    const seeds = [0, 1, 2].map(() => randomBytes(32));
    const ports = [await ephemeralPort(), await ephemeralPort(), await ephemeralPort()];
    const peers = seeds.map((s, i) => ({
      identity: toHex(ed25519PublicFromSeed(s)),
      url: `http://127.0.0.1:${ports[i]}`,
    }));
    const lines: string[][] = [[], [], []];
    for (const i of [0, 1, 2]) {
      const a = new DirectoryAuthority(
        { logger: createLogger(`a${i}`, 'debug', (l) => lines[i]!.push(l)), registry: new Registry() },
        {
          identitySeed: seeds[i]!,
          host: '127.0.0.1',
          port: ports[i]!,
          peers,
          votingIntervalSec: INTERVAL_MS / 1000,
          testnet: true,
          probeReachability: false,
          name: `a${i}`,
        },
      );
      running.push(a);
      await a.start();
    }
    await until('every authority to publish a first consensus', 30_000, () =>
      servedRounds().every((va) => va > 0),
    );

    // A round whose vote time is still ahead when the block starts (a late
    // wake-up under load just moves to the next round).
    let va = 0;
    for (let tries = 0; tries < 10 && va === 0; tries++) {
      const next = Math.ceil((Date.now() + VOTE_MS + DIST_MS + 300) / INTERVAL_MS) * INTERVAL_MS;
      await sleep(next - VOTE_MS - DIST_MS - 150 - Date.now());
      if (Date.now() < next - VOTE_MS - DIST_MS - 20) va = next;
    }
    expect(va).toBeGreaterThan(0);
    // Blocked from before the vote time until past valid-after: every step of
    // the round, at every authority, comes due in the same turn of the loop.
    while (Date.now() < va + 100) {
      // busy: the loop is starved
    }

    await until('every authority to serve that round or a later one', 20_000, () =>
      servedRounds().every((r) => r >= va),
    );
    // Each serves round va: its own (published) or, when its peers' signatures
    // or votes reached it after its publish step, theirs (took). Before, every
    // one lost the round (no consensus computed) and went from the round
    // before straight to the next.
    const ofRound = (l: string) => l.includes(`"validAfter":"${new Date(va).toISOString()}"`);
    const servedIt = (i: number) =>
      lines[i]!.some(
        (l) =>
          ofRound(l) &&
          (l.includes('published consensus') || l.includes('took the consensus its peers published')),
      );
    const story = lines
      .flat()
      .filter((l) => ofRound(l) || l.includes(' warn '))
      .join('\n');
    expect([0, 1, 2].map(servedIt), story).toEqual([true, true, true]);
  }, 90_000);
});
