// An authority computes a consensus only from votes of more than half of
// the configured authorities (C tor dirvote_compute_consensuses; issue 17).
// Without that rule, slow/authority-starvation published consensuses
// listing no relay: authorities resumed from SIGSTOP with their vote,
// consensus and publish steps all due, the publish step prepared the next
// round while the consensus step still fetched votes, so the peers' votes
// for the round were refused and each computed a consensus from its own
// vote alone. One listing is no majority of three, so each listed no relay,
// and a relay-less consensus from any single vote is the same document at
// every authority: all signed it and it was published.
// Here, of three configured authorities, one runs alone first (one vote of
// three: no consensus, nothing to sign or serve), then a second joins (two
// of three: published, signed by both).
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import { decodeSignedConsensus } from '../../services/core/dir/consensus.js';
import { DirectoryAuthority } from '../../services/directory/authority.js';
import { NEXT_SIGNATURES_PATH } from '../../services/directory/http.js';
import { CONSENSUS_PATH, httpRequest } from '../../services/net/dir-client.js';
import { createLogger } from '../../services/runtime/log.js';
import { ephemeralPort } from '../../services/testnet/ports.js';

const INTERVAL_S = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: DirectoryAuthority[] = [];
afterAll(async () => {
  for (const a of running) await a.stop();
});

async function waitFor<T>(
  what: string,
  ms: number,
  fn: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('consensus from a majority of votes only', () => {
  it('one authority of three computes none; two of three publish', async () => {
    const seeds = [0, 1, 2].map(() => randomBytes(32));
    // The third authority's port is never listened on.
    const ports = [await ephemeralPort(), await ephemeralPort(), await ephemeralPort()];
    const peers = seeds.map((s, i) => ({
      identity: toHex(ed25519PublicFromSeed(s)),
      url: `http://127.0.0.1:${ports[i]}`,
    }));
    const lines: string[][] = [[], []];
    const make = (i: number) =>
      new DirectoryAuthority(
        {
          logger: createLogger(`a${i}`, 'debug', (l) => lines[i]!.push(l)),
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

    const a0 = make(0);
    running.push(a0);
    await a0.start();
    // Its consensus step ran (it says why it computed none) with its own vote alone.
    const refusal = await waitFor('a0 to refuse a one-vote consensus', 20_000, () =>
      lines[0]!.find((l) => l.includes('could not compute a consensus')),
    );
    expect(refusal).toContain('too few votes: 1 of 3 authorities');
    expect(lines[0]!.filter((l) => l.includes('computed consensus'))).toEqual([]);
    // Nothing for a peer to pull and sign.
    const pending = await httpRequest(peers[0]!.url, 'GET', NEXT_SIGNATURES_PATH, { maxBytes: 1 << 20 });
    expect(pending.status).toBe(404);

    const a1 = make(1);
    running.push(a1);
    await a1.start();
    // Two votes of three: both compute the same consensus and it is published, signed by both.
    const served = await waitFor('a published consensus', 30_000, async () => {
      const r = await httpRequest(peers[0]!.url, 'GET', CONSENSUS_PATH, { maxBytes: 1 << 20 });
      return r.status === 200 ? decodeSignedConsensus(r.body, 1 << 20) : undefined;
    });
    expect(served.signatures.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]!.some((l) => l.includes('computed consensus') && l.includes('"votes":2'))).toBe(true);
  }, 60_000);
});
