/**
 * An authority's shared-random state machine (srv-spec §2-§4, C tor
 * shared_random_state.c): which commit and reveal to put in each vote, which
 * of the other authorities' commits and reveals to believe, and the current
 * and previous shared random values (SRV) to publish.
 *
 * A protocol run is 24 voting rounds (srPhase): in the 12 commit rounds each
 * vote carries this authority's commit, in the 12 reveal rounds the commit
 * and its reveal. At the first round of the next run the new SRV is computed
 * from the reveals collected during the run (computeSrv, chained on the
 * previous SRV), the old current value becomes the previous one.
 *
 * Design notes:
 * - A reveal counts only if it opens the commit this authority saw from the
 *   same authority earlier in the run (srv-spec §3.1.2), so an authority
 *   cannot pick its reveal after seeing the others'.
 * - The new SRV is published only if more than half of the configured
 *   authorities revealed; otherwise it is omitted and clients use the
 *   disaster SRV (rend-spec-v3 §2.2.3.1). Brief choice, see the module
 *   brief; C tor publishes whatever it computed, and the consensus then
 *   keeps a value only if a majority voted the same one.
 * - State is in memory. An authority that starts mid-run adopts the values
 *   of the latest consensus of the same run (so its votes agree with the
 *   others'), and takes part in commits from the next run on.
 *
 * Not pure (it draws randomness), but it does no I/O and has no timers.
 */
import { fromHex } from '../core/bytes.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { SharedRandValue } from '../core/dir/header.js';
import {
  computeSrv,
  decodeCommit,
  makeCommit,
  SR_N_ROUNDS,
  type SrCommitment,
  srPhase,
  verifyReveal,
} from '../core/dir/shared-random.js';
import type { SrVoteCommit, Vote } from '../core/dir/vote.js';

export interface SrVoteFields {
  srCommits: SrVoteCommit[];
  sharedRandCurrent?: SharedRandValue;
  sharedRandPrevious?: SharedRandValue;
}

export class SharedRandomState {
  private runStartMs: number | null = null;
  /** This run's commitment, or null if we joined the run too late to commit. */
  private own: SrCommitment | null = null;
  private current: SharedRandValue | undefined;
  private previous: SharedRandValue | undefined;
  /** First commit seen from each authority in this run. */
  private commits = new Map<string, string>();
  /** Reveals that opened those commits. */
  private reveals = new Map<string, string>();

  constructor(
    private readonly identityHex: string,
    private readonly authorityIds: readonly string[],
    private readonly votingIntervalSec: number,
    private readonly rng: Rng = randomBytes,
  ) {}

  private get runLengthMs(): number {
    return 2 * SR_N_ROUNDS * this.votingIntervalSec * 1000;
  }

  /** Moves to the run containing `validAfterMs`, computing the new SRV at a run boundary. */
  private enterRun(validAfterMs: number, latest: Consensus | null): void {
    const { runStartMs } = srPhase(validAfterMs, this.votingIntervalSec);
    if (runStartMs === this.runStartMs) return;
    if (this.runStartMs !== null && runStartMs === this.runStartMs + this.runLengthMs) {
      const next = this.computeNext();
      this.previous = this.current;
      this.current = next;
    } else if (
      latest !== null &&
      srPhase(latest.validAfterMs, latest.votingIntervalSec).runStartMs === runStartMs
    ) {
      // Started (or resumed after a gap) mid-run: agree with the network.
      this.current = latest.sharedRandCurrent;
      this.previous = latest.sharedRandPrevious;
    } else {
      this.current = undefined;
      this.previous = undefined;
    }
    this.runStartMs = runStartMs;
    this.commits = new Map();
    this.reveals = new Map();
    // Joining in the reveal phase, the others never saw a commit from us
    // and would refuse our reveal: take part from the next run on.
    this.own =
      srPhase(validAfterMs, this.votingIntervalSec).phase === 'commit'
        ? makeCommit(this.rng, fromHex(this.identityHex), Math.floor(runStartMs / 1000))
        : null;
    if (this.own) this.commits.set(this.identityHex, this.own.commit);
  }

  /** srv-spec §3.3, if enough authorities revealed. */
  private computeNext(): SharedRandValue | undefined {
    if (this.reveals.size <= this.authorityIds.length / 2) return undefined;
    const reveals = [...this.reveals].map(([id, reveal]) => ({ authorityId: fromHex(id), reveal }));
    return { reveals: reveals.length, value: computeSrv(reveals, this.current?.value ?? null) };
  }

  /**
   * The shared-random fields of this authority's vote for `validAfterMs`.
   * `latest` is the latest consensus this authority holds, used to join a
   * run in progress.
   */
  voteFields(validAfterMs: number, latest: Consensus | null = null): SrVoteFields {
    this.enterRun(validAfterMs, latest);
    const { phase } = srPhase(validAfterMs, this.votingIntervalSec);
    const out: SrVoteFields = { srCommits: [] };
    if (this.own) {
      const commit: SrVoteCommit = { authorityId: this.identityHex, commit: this.own.commit };
      if (phase === 'reveal') {
        commit.reveal = this.own.reveal;
        this.reveals.set(this.identityHex, this.own.reveal);
      }
      out.srCommits.push(commit);
    }
    if (this.current) out.sharedRandCurrent = this.current;
    if (this.previous) out.sharedRandPrevious = this.previous;
    return out;
  }

  /**
   * Records the commit and reveal a verified vote carries from its own
   * author. Votes for other runs are ignored.
   */
  observeVote(vote: Vote): void {
    if (this.runStartMs === null || !this.authorityIds.includes(vote.authority)) return;
    const { runStartMs, phase } = srPhase(vote.validAfterMs, this.votingIntervalSec);
    if (runStartMs !== this.runStartMs) return;
    const mine = vote.srCommits.find((c) => c.authorityId === vote.authority);
    if (!mine) return;
    let tsSec: number;
    try {
      tsSec = decodeCommit(mine.commit).tsSec;
    } catch {
      return;
    }
    // srv-spec §3.1.1: a commit's timestamp is the start of its run.
    if (tsSec !== Math.floor(runStartMs / 1000)) return;
    const known = this.commits.get(vote.authority);
    if (known === undefined) {
      // Commits are only taken during the commit phase (srv-spec §3.1.1).
      if (phase !== 'commit') return;
      this.commits.set(vote.authority, mine.commit);
    } else if (known !== mine.commit) {
      return;
    }
    if (phase === 'reveal' && mine.reveal !== undefined && verifyReveal(mine.commit, mine.reveal)) {
      this.reveals.set(vote.authority, mine.reveal);
    }
  }

  /** For tests and health output. */
  snapshot(): {
    runStartMs: number | null;
    commits: number;
    reveals: number;
    current?: SharedRandValue;
    previous?: SharedRandValue;
  } {
    return {
      runStartMs: this.runStartMs,
      commits: this.commits.size,
      reveals: this.reveals.size,
      current: this.current,
      previous: this.previous,
    };
  }
}
