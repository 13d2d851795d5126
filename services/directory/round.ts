/**
 * An authority's voting rounds as a pure state machine (dir-spec §1.4 voting
 * timeline, §3.4.1 votes, §3.10 detached signatures, §3.11 publishing):
 * which votes and consensus signatures it holds per round, and when a
 * round's consensus may be served.
 *
 * Overview:
 * - `prepare(va)` makes `va` the round being prepared: votes are accepted
 *   for it and the round after (a peer whose clock runs ahead), and only
 *   it and the round before are kept (late signatures).
 * - `acceptVote` stores one verified vote per authority and round; the same
 *   bytes again are a no-op, different ones are refused.
 * - `setConsensus` records this authority's consensus and signature; peer
 *   signatures that arrived earlier were queued (a few per authority,
 *   verified over the digest they name) and join if the digest matches.
 * - `acceptSignature` / `addPulledSignatures` add peers' signatures.
 * - `publish(va, nowMs)` serves the round's consensus once more than half
 *   of all authorities signed it and VA has come, never replacing a newer
 *   one; more signatures later re-encode the served document.
 * - `adopt` serves a newer consensus a peer published (a round this
 *   authority missed).
 *
 * Design notes: no sockets, timers or clocks here; the authority passes the
 * time in and does the HTTP (authority.ts, http.ts), so every rule above is
 * unit-tested directly. Documents are verified before they get here
 * (decodeVote) or here by their signature alone (`consensusSignatureValid`).
 *
 * Not in this module: computing the consensus (core/dir/voting.ts), the
 * schedule (authority.ts, schedule.ts), the shared-random state (sr-state.ts).
 */
import { fromHex, toHex } from '../core/bytes.js';
import {
  type Consensus,
  type ConsensusSignature,
  consensusDigest,
  consensusSignatureValid,
  encodeSignedConsensus,
  type SignedConsensus,
} from '../core/dir/consensus.js';
import type { Vote } from '../core/dir/vote.js';
import { ShallotError } from '../core/errors.js';

/** Verified signatures (on digests other than ours, or before ours exists) queued per authority and round. */
export const MAX_QUEUED_SIGNATURES = 4;

export interface StoredVote {
  vote: Vote;
  raw: Uint8Array;
}

interface QueuedSignature {
  digestHex: string;
  signature: ConsensusSignature;
}

interface Round {
  validAfterMs: number;
  votes: Map<string, StoredVote>;
  consensus: Consensus | null;
  digestHex: string | null;
  signatures: Map<string, ConsensusSignature>;
  /** Verified signatures that arrived before our consensus was computed. */
  queued: Map<string, QueuedSignature[]>;
}

/** The consensus being served, with the signatures in its encoding. */
export interface ServedConsensus {
  consensus: Consensus;
  digest: Uint8Array;
  raw: Uint8Array;
  signatures: number;
}

/** A vote or consensus signature from a peer that is refused (counted by reason). */
export class PeerDocumentError extends ShallotError {
  constructor(
    readonly reason: 'unknown-authority' | 'bad-signature' | 'no-round' | 'other-digest' | 'queue-full',
    message: string,
  ) {
    super('ERR_PEER_DOCUMENT', message, { reason });
  }
}

/** The `reason` label a refused peer document is counted under. */
export function peerRefusalReason(e: unknown): string {
  if (e instanceof PeerDocumentError) return e.reason;
  if (e instanceof ShallotError && e.context.reason === 'unknown-authority') return 'unknown-authority';
  if (e instanceof ShallotError && e.code === 'ERR_CRYPTO') return 'bad-signature';
  return 'invalid';
}

/** A verified vote this authority will not store for a round. */
export class VoteRefusedError extends ShallotError {
  constructor(message: string) {
    super('ERR_VOTE_REFUSED', message);
  }
}

/**
 * What `publish` did: nothing (no majority, not due, or older than what is
 * served), nothing new, re-encoded the served round with more signatures, or
 * served a new round.
 */
export type PublishOutcome = 'not-publishable' | 'unchanged' | 'updated' | 'published';

export class VotingRounds {
  private readonly rounds = new Map<number, Round>();
  private nextVa = 0;
  private served: ServedConsensus | null = null;

  constructor(
    private readonly cfg: {
      /** Lowercase hex id of this authority. */
      selfId: string;
      /** Every authority, this one included. */
      authorityIds: readonly string[];
      intervalMs: number;
    },
  ) {}

  /** The round being prepared (its VA); 0 before the first. */
  get nextValidAfterMs(): number {
    return this.nextVa;
  }

  get latest(): ServedConsensus | null {
    return this.served;
  }

  /** Makes `va` the round being prepared; keeps it and the round before it. */
  prepare(va: number): void {
    this.nextVa = va;
    this.round(va);
    for (const k of this.rounds.keys()) if (k < va - this.cfg.intervalMs) this.rounds.delete(k);
  }

  private round(va: number): Round {
    let r = this.rounds.get(va);
    if (!r) {
      r = {
        validAfterMs: va,
        votes: new Map(),
        consensus: null,
        digestHex: null,
        signatures: new Map(),
        queued: new Map(),
      };
      this.rounds.set(va, r);
    }
    return r;
  }

  /**
   * Stores a verified peer vote if it is for the round being prepared or the
   * next one. Returns false for the vote already held; throws
   * VoteRefusedError otherwise.
   */
  acceptVote(vote: Vote, raw: Uint8Array): boolean {
    const va = vote.validAfterMs;
    if (va !== this.nextVa && va !== this.nextVa + this.cfg.intervalMs) {
      throw new VoteRefusedError(`not voting on valid-after ${new Date(va).toISOString()}`);
    }
    const r = this.round(va);
    const have = r.votes.get(vote.authority);
    if (have) {
      if (Buffer.compare(have.raw, raw) === 0) return false;
      throw new VoteRefusedError('already have a different vote from this authority for this round');
    }
    if (vote.authority === this.cfg.selfId) throw new VoteRefusedError('that is my own identity');
    r.votes.set(vote.authority, { vote, raw });
    return true;
  }

  /** Stores this authority's own vote for `va`. */
  setOwnVote(va: number, vote: Vote, raw: Uint8Array): void {
    this.round(va).votes.set(this.cfg.selfId, { vote, raw });
  }

  /** This authority's vote for the round being prepared, as signed. */
  ownNextVote(): Uint8Array | null {
    return this.rounds.get(this.nextVa)?.votes.get(this.cfg.selfId)?.raw ?? null;
  }

  hasVote(va: number, authorityId: string): boolean {
    return this.rounds.get(va)?.votes.has(authorityId) ?? false;
  }

  votes(va: number): Vote[] {
    return [...(this.rounds.get(va)?.votes.values() ?? [])].map((v) => v.vote);
  }

  /**
   * Records the consensus computed for `va` and this authority's signature
   * on it; queued signatures (verified on arrival) join if their digest
   * matches. Returns the digest.
   */
  setConsensus(va: number, c: Consensus, own: ConsensusSignature): Uint8Array {
    const r = this.round(va);
    const digest = consensusDigest(c);
    r.consensus = c;
    r.digestHex = toHex(digest);
    r.signatures.set(this.cfg.selfId, own);
    for (const [id, sigs] of r.queued) {
      const good = sigs.find((q) => q.digestHex === r.digestHex);
      if (good) r.signatures.set(id, good.signature);
    }
    r.queued.clear();
    return digest;
  }

  hasConsensus(va: number): boolean {
    return this.rounds.get(va)?.consensus != null;
  }

  signatureCount(va: number): number {
    return this.rounds.get(va)?.signatures.size ?? 0;
  }

  hasSignature(va: number, authorityId: string): boolean {
    return this.rounds.get(va)?.signatures.has(authorityId) ?? false;
  }

  /** More than half of all configured authorities signed round `va`'s consensus. */
  hasMajority(va: number): boolean {
    return this.signatureCount(va) > this.cfg.authorityIds.length / 2;
  }

  /**
   * A peer's detached signature. Its Ed25519 signature over the digest it
   * names is checked first, so nothing unverified is stored or answered
   * "already have it" (issue 12 item 7). Returns the reply text ('signature
   * accepted' when it joined a computed consensus: a late one may publish or
   * update it); throws PeerDocumentError.
   */
  acceptSignature(doc: { validAfterMs: number; digestHex: string; signature: ConsensusSignature }): string {
    const id = toHex(doc.signature.identity);
    if (!this.cfg.authorityIds.includes(id))
      throw new PeerDocumentError('unknown-authority', 'not from a configured authority');
    if (!consensusSignatureValid(fromHex(doc.digestHex), doc.signature)) {
      throw new PeerDocumentError('bad-signature', 'bad signature');
    }
    const r = this.rounds.get(doc.validAfterMs);
    if (!r) throw new PeerDocumentError('no-round', 'no such round');
    if (r.signatures.has(id)) return 'already have it';
    if (r.consensus) {
      if (doc.digestHex !== r.digestHex) {
        throw new PeerDocumentError('other-digest', 'signature is for a different consensus');
      }
      r.signatures.set(id, doc.signature);
      return 'signature accepted';
    }
    const q = r.queued.get(id) ?? [];
    if (q.some((x) => x.digestHex === doc.digestHex)) return 'already have it';
    if (q.length >= MAX_QUEUED_SIGNATURES)
      throw new PeerDocumentError('queue-full', 'too many pending signatures');
    q.push({ digestHex: doc.digestHex, signature: doc.signature });
    r.queued.set(id, q);
    return 'signature queued';
  }

  /** Adds the good signatures of configured authorities from a peer's copy of round `va`'s consensus. */
  addPulledSignatures(va: number, theirs: SignedConsensus): void {
    const r = this.rounds.get(va);
    if (!r?.consensus || toHex(theirs.digest) !== r.digestHex) return;
    const digest = fromHex(r.digestHex);
    for (const s of theirs.signatures) {
      const id = toHex(s.identity);
      if (this.cfg.authorityIds.includes(id) && !r.signatures.has(id) && consensusSignatureValid(digest, s)) {
        r.signatures.set(id, s);
      }
    }
  }

  /**
   * Serves round `va`'s consensus if it has a majority, is due (now >= VA)
   * and is not older than what is served; re-encodes it when more
   * signatures arrived.
   */
  publish(va: number, nowMs: number): PublishOutcome {
    const r = this.rounds.get(va);
    if (!r?.consensus || !this.hasMajority(va)) return 'not-publishable';
    if (nowMs < r.validAfterMs) return 'not-publishable';
    const cur = this.served;
    if (cur && cur.consensus.validAfterMs > r.validAfterMs) return 'not-publishable';
    const same = cur !== null && cur.consensus.validAfterMs === r.validAfterMs;
    if (same && cur.signatures === r.signatures.size) return 'unchanged';
    const sigs = [...r.signatures.values()].sort((a, b) => (toHex(a.identity) < toHex(b.identity) ? -1 : 1));
    const raw = encodeSignedConsensus(r.consensus, sigs);
    this.served = { consensus: r.consensus, digest: fromHex(r.digestHex!), raw, signatures: sigs.length };
    return same ? 'updated' : 'published';
  }

  /**
   * Serves a peer's published consensus, verified by the caller (signed by
   * more than half of all authorities, valid now), if it is newer than the
   * one served: an authority that missed a round, or has none yet, takes
   * its peers' as every directory cache does (C tor's authorities fetch the
   * consensus too). Returns whether it is served now.
   */
  adopt(signed: SignedConsensus, raw: Uint8Array): boolean {
    const cur = this.served;
    if (cur && cur.consensus.validAfterMs >= signed.consensus.validAfterMs) return false;
    this.served = {
      consensus: signed.consensus,
      digest: signed.digest,
      raw,
      signatures: signed.signatures.length,
    };
    return true;
  }

  /** The newest computed consensus with the signatures held so far (GET next/consensus-signatures). */
  pendingSignatures(): Uint8Array | null {
    const r = [...this.rounds.values()]
      .filter((x) => x.consensus !== null)
      .sort((a, b) => b.validAfterMs - a.validAfterMs)[0];
    if (!r?.consensus) return null;
    return encodeSignedConsensus(r.consensus, [...r.signatures.values()]);
  }
}
