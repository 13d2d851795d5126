/**
 * An authority's side of the exchange with its peers (dir-spec §3.4.1
 * votes, §3.10 detached signatures): push our vote and signature to every
 * peer, pull the votes and signatures we did not receive, and the
 * consensus they published when we could not publish it ourselves.
 *
 * Design notes: a push is retried once after a short pause when the peer
 * could not be reached; a refusal (non-200) is logged and not retried, as
 * it will not change. Every request is bounded in size (MAX_CONSENSUS_BYTES)
 * and in time by what it carries (sizedTimeoutMs): a 5,000-relay vote is
 * 2.2 MiB and the peer spends about 0.3 s checking it (npm run bench), so
 * a flat timeout either fails large networks or waits long on small ones.
 * What comes back is verified by the caller (round.ts) or here (a vote's
 * signature and author).
 *
 * Not in this module: the DirPort that answers these requests (http.ts),
 * when they happen (authority.ts).
 */
import { decodeSignedConsensus, type SignedConsensus } from '../core/dir/consensus.js';
import { decodeVote, type Vote } from '../core/dir/vote.js';
import {
  type AuthorityEndpoint,
  CONSENSUS_PATH,
  httpRequest,
  MAX_CONSENSUS_BYTES,
} from '../net/dir-client.js';
import { whileHeld } from '../net/link-faults.js';
import type { Logger } from '../runtime/log.js';
import type { Timing } from './config.js';
import { MAX_VOTE_BYTES, NEXT_SIGNATURES_PATH, NEXT_VOTE_PATH, VOTE_PATH } from './http.js';

/**
 * Time allowed per MiB a request moves: sending it and the peer's parsing
 * and signature check (about 0.13 s per MiB unloaded, 0.35 s on a loaded
 * host in npm run bench), with room to spare.
 */
export const MS_PER_MIB = 1000;

/**
 * A request's timeout that fits its document: `baseMs` (what a small one
 * needs) plus MS_PER_MIB per MiB of `bytes`, at most `capMs` (the part of
 * the schedule it must fit in), never below `baseMs`.
 */
export function sizedTimeoutMs(baseMs: number, bytes: number, capMs: number): number {
  return Math.round(Math.max(baseMs, Math.min(capMs, baseMs + (bytes / (1 << 20)) * MS_PER_MIB)));
}

export class PeerExchange {
  constructor(
    private readonly ctx: {
      log: Logger;
      peers: readonly AuthorityEndpoint[];
      authorityIds: readonly string[];
      timing: Timing;
      stopped: () => boolean;
      /** Its link-fault name: while a pause holds it (link-faults.ts whileHeld) it sends nothing, as a hung node. */
      node: string | undefined;
    },
  ) {}

  /** POSTs `body` to `path` on every peer. */
  async pushAll(path: string, body: Uint8Array, what: string): Promise<void> {
    await Promise.all(this.ctx.peers.map((p) => this.push(p, path, body, what)));
  }

  private async push(peer: AuthorityEndpoint, path: string, body: Uint8Array, what: string): Promise<void> {
    const { log, timing } = this.ctx;
    // A vote must arrive within the vote delay (peers pull missing ones then), a signature within the distribution delay.
    const timeoutMs = sizedTimeoutMs(
      Math.max(500, Math.min(5000, timing.distDelayMs / 2)),
      body.length,
      path === VOTE_PATH ? timing.voteDelayMs : timing.distDelayMs,
    );
    for (let attempt = 0; attempt < 2 && !this.ctx.stopped(); attempt++) {
      try {
        if (this.ctx.node) await whileHeld(this.ctx.node, null);
        const r = await httpRequest(peer.url, 'POST', path, { body, timeoutMs });
        if (r.status === 200) return;
        // A refusal will not change on retry.
        log.warn(`peer refused our ${what}`, {
          peer: peer.url,
          status: r.status,
          reply: Buffer.from(r.body.subarray(0, 200)).toString('latin1'),
        });
        return;
      } catch (e) {
        if (attempt === 1)
          log.warn(`could not send ${what}`, { peer: peer.url, error: (e as Error).message });
        else await new Promise((res) => setTimeout(res, Math.min(500, timing.voteDelayMs / 4)).unref());
      }
    }
  }

  /**
   * Each peer's signed vote for `va` (GET next/vote), when it is by that
   * peer and for that round; `expectedBytes` (our own vote's size: peers
   * list about the same relays) sizes the timeout, within 3/4 of the
   * distribution delay so the consensus is still computed and signed in time.
   */
  async fetchVotes(
    va: number,
    from: readonly AuthorityEndpoint[],
    expectedBytes: number,
    onVote: (vote: Vote, raw: Uint8Array) => void,
  ): Promise<void> {
    const { distDelayMs } = this.ctx.timing;
    const timeoutMs = sizedTimeoutMs(Math.max(300, distDelayMs / 2), expectedBytes, (distDelayMs * 3) / 4);
    await this.fetchEach(from, NEXT_VOTE_PATH, MAX_VOTE_BYTES, timeoutMs, 'vote', (p, body) => {
      const vote = decodeVote(body, { maxBytes: MAX_VOTE_BYTES, authorityIds: this.ctx.authorityIds });
      if (vote.authority === p.identity && vote.validAfterMs === va) onVote(vote, body);
    });
  }

  /**
   * Each peer's pending consensus with its signatures (GET
   * next/consensus-signatures), signatures unchecked; `expectedBytes` (a
   * consensus's size) sizes the timeout, within half an interval.
   */
  async fetchSignatures(
    from: readonly AuthorityEndpoint[],
    expectedBytes: number,
    onDocument: (doc: SignedConsensus) => void,
  ): Promise<void> {
    const timeoutMs = this.documentTimeoutMs(expectedBytes);
    await this.fetchEach(
      from,
      NEXT_SIGNATURES_PATH,
      MAX_CONSENSUS_BYTES,
      timeoutMs,
      'signatures',
      (_, body) => onDocument(decodeSignedConsensus(body, MAX_CONSENSUS_BYTES)),
    );
  }

  /**
   * Each peer's published consensus (GET consensus), undecoded and
   * unverified, for an authority that missed a round; `expectedBytes` (a
   * consensus's size) sizes the timeout, as for signatures.
   */
  async fetchPublished(expectedBytes: number, onDocument: (raw: Uint8Array) => void): Promise<void> {
    const timeoutMs = this.documentTimeoutMs(expectedBytes);
    await this.fetchEach(
      this.ctx.peers,
      CONSENSUS_PATH,
      MAX_CONSENSUS_BYTES,
      timeoutMs,
      'consensus',
      (_, body) => onDocument(body),
    );
  }

  /** A consensus-sized GET's timeout: a quarter interval (0.3-2 s), more for a large document, at most half an interval. */
  private documentTimeoutMs(expectedBytes: number): number {
    const { intervalMs } = this.ctx.timing;
    return sizedTimeoutMs(Math.max(300, Math.min(2000, intervalMs / 4)), expectedBytes, intervalMs / 2);
  }

  /** GETs `path` from each peer at once; a 200 body goes to `take`, failures are logged at debug. */
  private async fetchEach(
    from: readonly AuthorityEndpoint[],
    path: string,
    maxBytes: number,
    timeoutMs: number,
    what: string,
    take: (peer: AuthorityEndpoint, body: Uint8Array) => void,
  ): Promise<void> {
    await Promise.all(
      from.map(async (p) => {
        try {
          if (this.ctx.node) await whileHeld(this.ctx.node, null);
          const res = await httpRequest(p.url, 'GET', path, { timeoutMs, maxBytes });
          if (res.status === 200) take(p, res.body);
        } catch (e) {
          this.ctx.log.debug(`could not fetch ${what}`, { peer: p.url, error: (e as Error).message });
        }
      }),
    );
  }
}
