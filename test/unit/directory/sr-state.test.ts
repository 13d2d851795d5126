// The authority's shared-random state machine: commits in the commit phase,
// reveals in the reveal phase, the SRV at the next run's first round, and
// the refusals that keep an authority from choosing its reveal late.
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import { computeSrv, makeCommit, SR_N_ROUNDS } from '../../../services/core/dir/shared-random.js';
import type { Vote } from '../../../services/core/dir/vote.js';
import { SharedRandomState } from '../../../services/directory/sr-state.js';

const I = 10; // voting interval, seconds
const RUN_MS = 2 * SR_N_ROUNDS * I * 1000;
const ids = [0, 1, 2].map(() => toHex(ed25519PublicFromSeed(randomBytes(32)))).sort();

/** The fields a vote and a consensus share: empty, valid from `validAfterMs` for three intervals. */
const emptyDocument = (validAfterMs: number) => ({
  validAfterMs,
  freshUntilMs: validAfterMs + I * 1000,
  validUntilMs: validAfterMs + 3 * I * 1000,
  votingIntervalSec: I,
  knownFlags: [],
  params: {},
  relays: [],
});

function voteOf(
  author: string,
  validAfterMs: number,
  fields: ReturnType<SharedRandomState['voteFields']>,
): Vote {
  return {
    authority: author,
    publishedMs: validAfterMs,
    ...emptyDocument(validAfterMs),
    ...fields,
  };
}

/** Runs `rounds` voting rounds from `startMs`; `voters` decides who votes (and is heard) each round. */
function simulate(
  states: SharedRandomState[],
  startMs: number,
  rounds: number,
  voters: (round: number) => number[] = () => states.map((_, i) => i),
): Map<number, ReturnType<SharedRandomState['voteFields']>[]> {
  const out = new Map<number, ReturnType<SharedRandomState['voteFields']>[]>();
  for (let k = 0; k < rounds; k++) {
    const va = startMs + k * I * 1000;
    const active = voters(k);
    const fields = states.map((s) => s.voteFields(va));
    const votes = active.map((i) => voteOf(ids[i]!, va, fields[i]!));
    for (const s of states) for (const v of votes) s.observeVote(v);
    out.set(va, fields);
  }
  return out;
}

describe('SharedRandomState', () => {
  it('commits, then reveals, then all authorities compute the same SRV from the reveals', () => {
    const states = ids.map((id) => new SharedRandomState(id, ids, I));
    const start = 7 * RUN_MS; // a run boundary
    const history = simulate(states, start, 2 * SR_N_ROUNDS + 1);
    const commitRound = history.get(start)!;
    expect(commitRound.every((f) => f.srCommits.length === 1 && f.srCommits[0]!.reveal === undefined)).toBe(
      true,
    );
    expect(commitRound.every((f) => f.sharedRandCurrent === undefined)).toBe(true);
    const revealRound = history.get(start + SR_N_ROUNDS * I * 1000)!;
    expect(revealRound.every((f) => f.srCommits[0]!.reveal !== undefined)).toBe(true);
    // Commits stay the same for the whole run.
    expect(revealRound.map((f) => f.srCommits[0]!.commit)).toEqual(
      commitRound.map((f) => f.srCommits[0]!.commit),
    );

    const next = history.get(start + RUN_MS)!;
    const srv = next[0]!.sharedRandCurrent!;
    expect(srv.reveals).toBe(3);
    expect(next.every((f) => toHex(f.sharedRandCurrent!.value) === toHex(srv.value))).toBe(true);
    const expected = computeSrv(
      revealRound.map((f) => ({
        authorityId: fromHex(f.srCommits[0]!.authorityId),
        reveal: f.srCommits[0]!.reveal!,
      })),
      null,
    );
    expect(toHex(srv.value)).toBe(toHex(expected));
    expect(next[0]!.sharedRandPrevious).toBeUndefined();
    // The new run has fresh commits.
    expect(next[0]!.srCommits[0]!.commit).not.toBe(commitRound[0]!.srCommits[0]!.commit);
  });

  it('chains: the next SRV uses the current one as PREVIOUS_SRV and it moves to previous', () => {
    const states = ids.map((id) => new SharedRandomState(id, ids, I));
    const start = 3 * RUN_MS;
    const history = simulate(states, start, 4 * SR_N_ROUNDS + 1);
    const first = history.get(start + RUN_MS)![0]!.sharedRandCurrent!;
    const reveals = history.get(start + RUN_MS + SR_N_ROUNDS * I * 1000)!;
    const second = history.get(start + 2 * RUN_MS)!;
    expect(toHex(second[1]!.sharedRandPrevious!.value)).toBe(toHex(first.value));
    const expected = computeSrv(
      reveals.map((f) => ({
        authorityId: fromHex(f.srCommits[0]!.authorityId),
        reveal: f.srCommits[0]!.reveal!,
      })),
      first.value,
    );
    expect(toHex(second[2]!.sharedRandCurrent!.value)).toBe(toHex(expected));
  });

  it('omits the SRV when no more than half of the authorities revealed', () => {
    const states = ids.map((id) => new SharedRandomState(id, ids, I));
    const start = 5 * RUN_MS;
    // Only authority 0 is heard during the reveal phase.
    const history = simulate(states, start, 2 * SR_N_ROUNDS + 1, (k) => (k >= SR_N_ROUNDS ? [0] : [0, 1, 2]));
    const next = history.get(start + RUN_MS)!;
    // Authority 0 saw only its own reveal; 1 and 2 saw their own and 0's: 2 of 3 is a majority.
    expect(next[0]!.sharedRandCurrent).toBeUndefined();
    expect(next[1]!.sharedRandCurrent?.reveals).toBe(2);
    // ...but over different reveal sets, so no value has a majority in the consensus.
    expect(toHex(next[1]!.sharedRandCurrent!.value)).not.toBe(toHex(next[2]!.sharedRandCurrent!.value));
  });

  it('refuses a reveal that does not open the commit seen in the commit phase', () => {
    const s = new SharedRandomState(ids[0]!, ids, I);
    const start = 9 * RUN_MS;
    s.voteFields(start);
    const honest = makeCommit(randomBytes, fromHex(ids[1]!), start / 1000);
    s.observeVote(voteOf(ids[1]!, start, { srCommits: [{ authorityId: ids[1]!, commit: honest.commit }] }));
    expect(s.snapshot().commits).toBe(2);
    const revealVa = start + SR_N_ROUNDS * I * 1000;
    s.voteFields(revealVa);
    const swapped = makeCommit(randomBytes, fromHex(ids[1]!), start / 1000);
    s.observeVote(
      voteOf(ids[1]!, revealVa, {
        srCommits: [{ authorityId: ids[1]!, commit: swapped.commit, reveal: swapped.reveal }],
      }),
    );
    // A commit first seen in the reveal phase does not count either.
    const late = makeCommit(randomBytes, fromHex(ids[2]!), start / 1000);
    s.observeVote(
      voteOf(ids[2]!, revealVa, {
        srCommits: [{ authorityId: ids[2]!, commit: late.commit, reveal: late.reveal }],
      }),
    );
    expect(s.snapshot().reveals).toBe(1); // only its own
    s.observeVote(
      voteOf(ids[1]!, revealVa, {
        srCommits: [{ authorityId: ids[1]!, commit: honest.commit, reveal: honest.reveal }],
      }),
    );
    expect(s.snapshot().reveals).toBe(2);
  });

  it('joining in the reveal phase does not commit, and adopts the SRVs of a same-run consensus', () => {
    const s = new SharedRandomState(ids[0]!, ids, I);
    const start = 11 * RUN_MS;
    const va = start + (SR_N_ROUNDS + 2) * I * 1000;
    const value = randomBytes(32);
    /** An empty consensus carrying `value`. */
    const consensusWith = (validAfterMs: number): Consensus => ({
      ...emptyDocument(validAfterMs),
      bandwidthWeights: {},
      authorities: ids,
      sharedRandCurrent: { reveals: 3, value },
    });
    const f = s.voteFields(va, consensusWith(va - I * 1000));
    expect(f.srCommits).toEqual([]);
    expect(toHex(f.sharedRandCurrent!.value)).toBe(toHex(value));
    // A consensus from another run is not adopted.
    const t = new SharedRandomState(ids[0]!, ids, I);
    const g = t.voteFields(va + RUN_MS, consensusWith(va));
    expect(g.sharedRandCurrent).toBeUndefined();
  });

  it('ignores votes from unknown authorities and other runs', () => {
    const s = new SharedRandomState(ids[0]!, ids, I);
    const start = 13 * RUN_MS;
    s.voteFields(start);
    const stranger = toHex(ed25519PublicFromSeed(randomBytes(32)));
    const c = makeCommit(randomBytes, fromHex(stranger), start / 1000);
    s.observeVote(voteOf(stranger, start, { srCommits: [{ authorityId: stranger, commit: c.commit }] }));
    const old = makeCommit(randomBytes, fromHex(ids[1]!), (start - RUN_MS) / 1000);
    s.observeVote(voteOf(ids[1]!, start, { srCommits: [{ authorityId: ids[1]!, commit: old.commit }] }));
    s.observeVote(
      voteOf(ids[1]!, start - RUN_MS, { srCommits: [{ authorityId: ids[1]!, commit: old.commit }] }),
    );
    expect(s.snapshot().commits).toBe(1);
  });
});
