/**
 * A directory authority (dir-spec §1.4, §3): accepts relay descriptors,
 * votes with its peers on a fixed schedule, computes and signs the
 * consensus, and serves it to relays and clients over HTTP. This file is
 * the lifecycle and the schedule; the parts live beside it:
 *   descriptors.ts   descriptor store, reachability admission, vote entries
 *   descriptor-options.ts  its options and refusals
 *   authority-metrics.ts   consensus series and refusal counts
 *   round.ts         votes and signatures per round, when to publish (pure)
 *   schedule.ts      the first round, the steps' timers
 *   http.ts          the DirPort's routes and body limits
 *   peers.ts         pushing and pulling votes and signatures
 *   config.ts        options, the schedule's delays, the authority set
 *   reachability.ts  the link-handshake test and bandwidth scanner
 *   sr-state.ts      shared-random commits and reveals
 *
 * Schedule of one round, as dir-spec §1.4 with testnet-short intervals
 * (valid-after VA on multiples of the voting interval I, vote delay V,
 * distribution delay D, defaults V = D = I/5: 4 s each for I = 20 s):
 *   VA-V-D  build own vote (flags per assignFlags over fresh descriptors,
 *           shared-random commit/reveal), push it to every peer (one retry)
 *   VA-D    pull the votes of peers we did not hear from, compute the
 *           consensus over the votes received, sign it, push the signature
 *   VA      publish the consensus with every signature whose digest matches
 *           ours, if more than half of all authorities signed; else take
 *           the one the peers published if a majority signed it (C tor's
 *           authorities fetch the consensus they lack), or keep the
 *           previous one (and keep collecting: a late signature that makes
 *           the majority publishes ours then)
 * fresh-until = VA+I, valid-until = VA+3I. The first round is the first VA
 * that leaves V+D after start, so a new network has a consensus within
 * about 1.4 I; until then a newly started authority serves its peers'
 * consensus, if they have one. A starved loop runs the steps late but in this order, never
 * one before the previous one is done (the publish step once found no
 * consensus while the consensus step still fetched votes, and the round was
 * lost): C tor's dirvote_act runs them one after another too.
 *
 * The ops endpoints (/metrics /healthz /readyz; ready = holds an unexpired
 * consensus) are served by the shared ops server on the ops port only
 * (main.ts), never on the DirPort: it is reachable from every exit.
 *
 * Design notes:
 * - The authority set is `peers` plus this authority, sorted; every
 *   authority must be configured with the same set or their consensus
 *   digests differ.
 * - With `probeReachability` (issue 12) forged descriptors are never listed
 *   and cost bounded memory and effort (descriptors.ts). `shallot up` sets
 *   no per-address cap (as C tor's TestingTorNetwork: AuthDirMaxServersPerAddr
 *   0): there the handshake, not the address, keeps forgeries out.
 * - Peer documents are verified before anything else answers them: a vote's
 *   signature (decodeVote), a consensus signature over the digest it names
 *   (round.ts, before it is queued or answered "already have it").
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import { toHex } from '../core/bytes.js';
import { ed25519PublicFromSeed } from '../core/crypto.js';
import {
  type Consensus,
  decodeSignatureDocument,
  decodeSignedConsensus,
  encodeSignatureDocument,
  signConsensus,
  verifyConsensus,
} from '../core/dir/consensus.js';
import { FLAGS } from '../core/dir/flags.js';
import { decodeVote, encodeVote, type Vote } from '../core/dir/vote.js';
import { computeConsensus } from '../core/dir/voting.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { type AuthorityEndpoint, MAX_CONSENSUS_BYTES } from '../net/dir-client.js';
import type { Logger } from '../runtime/log.js';
import { countRefusal, recordConsensus, recordConsensusAge } from './authority-metrics.js';
import {
  type AuthorityComponents,
  type AuthorityOptions,
  DEFAULT_PROBE_CONCURRENCY,
  resolveAuthorities,
  resolveTiming,
  type Timing,
} from './config.js';
import { DescriptorStore } from './descriptors.js';
import {
  createDirServer,
  type DirRoutes,
  MAX_VOTE_BYTES,
  SIGNATURE_PATH,
  type UploadKind,
  VOTE_PATH,
} from './http.js';
import { PeerExchange } from './peers.js';
import { ReachabilityTester } from './reachability.js';
import { VotingRounds } from './round.js';
import { firstValidAfter, StepTimers } from './schedule.js';
import { SharedRandomState } from './sr-state.js';

/** Attempts after the first to take a round's consensus from the peers (takePeersConsensus). */
const PEER_CONSENSUS_TRIES = 2;
/** The clock skew allowed on a peer's consensus, as the network's clients allow (client.ts). */
const PEER_SKEW_MS = 5_000;

export class DirectoryAuthority {
  readonly identityHex: string;
  private readonly log: Logger;
  private readonly metrics: Metrics['directory'];
  private readonly now: () => number;
  private readonly seed: Uint8Array;
  private readonly peers: AuthorityEndpoint[];
  private readonly authorityIds: string[];
  private readonly timing: Timing;
  private readonly name: string;
  private readonly sr: SharedRandomState;
  private readonly descriptors: DescriptorStore;
  private readonly rounds: VotingRounds;
  private readonly exchange: PeerExchange;
  private server: http.Server | null = null;
  private readonly steps: StepTimers;
  private stopped = false;
  private boundPort = 0;

  constructor(
    components: AuthorityComponents,
    private readonly opts: AuthorityOptions,
  ) {
    this.now = components.now ?? Date.now;
    this.seed = opts.identitySeed;
    this.identityHex = toHex(ed25519PublicFromSeed(opts.identitySeed));
    this.name = opts.name ?? this.identityHex.slice(0, 8);
    this.log = components.logger.child(`dirauth ${this.name}`);
    this.metrics = metricsFor(components.registry).directory;
    this.timing = resolveTiming(opts);
    this.steps = new StepTimers({ now: this.now, log: this.log, stopped: () => this.stopped });
    const { peers, authorityIds, selfListed } = resolveAuthorities(opts.peers, this.identityHex);
    if (!selfListed) {
      this.log.warn('own identity is not in the authority list; adding it', { identity: this.identityHex });
    }
    this.peers = peers;
    this.authorityIds = authorityIds;
    this.sr = new SharedRandomState(this.identityHex, this.authorityIds, opts.votingIntervalSec);
    this.rounds = new VotingRounds({
      selfId: this.identityHex,
      authorityIds: this.authorityIds,
      intervalMs: this.timing.intervalMs,
    });
    this.exchange = new PeerExchange({
      log: this.log,
      peers: this.peers,
      authorityIds: this.authorityIds,
      timing: this.timing,
      stopped: () => this.stopped,
      node: opts.shaping?.node,
    });
    this.descriptors = new DescriptorStore({
      log: this.log,
      metrics: this.metrics,
      name: this.name,
      now: this.now,
      opts,
      intervalMs: this.timing.intervalMs,
      authorityAddresses: new Set([
        opts.host,
        ...this.peers.map((p) => new URL(p.url).hostname.replace(/^\[|\]$/g, '')),
      ]),
    });
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `http://${this.opts.host}:${this.boundPort}`;
  }

  get endpoint(): AuthorityEndpoint {
    return { identity: this.identityHex, url: this.url };
  }

  /** The latest published consensus with its signatures, as served; null before the first. */
  get latestConsensus(): Uint8Array | null {
    return this.rounds.latest?.raw ?? null;
  }

  /** Ready once it holds a consensus that has not expired. */
  get ready(): boolean {
    const l = this.rounds.latest;
    return l !== null && this.now() <= l.consensus.validUntilMs;
  }

  health(): { ok: boolean; ready: boolean; [k: string]: unknown } {
    const c = this.rounds.latest?.consensus;
    return {
      ok: !this.stopped && this.server !== null,
      ready: this.ready,
      identity: this.identityHex,
      descriptors: this.descriptors.size,
      unverifiedDescriptors: this.descriptors.unverifiedCount,
      consensusValidAfter: c ? new Date(c.validAfterMs).toISOString() : null,
      consensusRelays: c?.relays.length ?? 0,
      consensusSignatures: this.rounds.latest?.signatures ?? 0,
      sharedRandom: this.sr.snapshot().current !== undefined,
    };
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createDirServer(this.routes(), this.log, this.opts.shaping?.node);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.error('server error', { error: e.message }));
    this.server = server;
    this.boundPort = (server.address() as net.AddressInfo).port;
    this.stopped = false;
    this.descriptors.open(
      this.opts.probeReachability
        ? new ReachabilityTester({
            timeoutMs: this.timing.probeTimeoutMs,
            concurrency: this.opts.probeConcurrency ?? DEFAULT_PROBE_CONCURRENCY,
            tls: this.opts.tls ?? true,
            handshake: this.opts.handshake ?? 'ntor',
            shaping: this.opts.shaping ?? null,
          })
        : null,
    );
    this.scheduleRound(firstValidAfter(this.now(), this.timing));
    // Its first own round is more than V + D away: serve the peers' consensus until then.
    this.takePeersConsensus(0, 0);
    this.steps.every(1000, () => this.updateAgeMetric());
    this.log.info('authority listening', {
      url: this.url,
      identity: this.identityHex,
      authorities: this.authorityIds.length,
      intervalSec: this.opts.votingIntervalSec,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.steps.clear();
    this.descriptors.close();
    const server = this.server;
    this.server = null;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  // -------------------------------------------------------------------------
  // Schedule (its timers: schedule.ts)

  private scheduleRound(va: number): void {
    // After a stall (suspended process, blocked loop) skip rounds we can no longer vote in.
    if (this.now() > va - this.timing.distDelayMs) {
      const next = firstValidAfter(this.now(), this.timing);
      this.log.warn('missed a voting round', { validAfter: new Date(va).toISOString() });
      va = next;
    }
    this.rounds.prepare(va);
    // A round's steps run in order even when a starved loop makes their times
    // pass together (C tor's dirvote_act runs them one after another): the
    // consensus is computed once our vote is built, and published once it is
    // computed, late rather than never. Pushes are not waited for.
    let built: Promise<unknown> = Promise.resolve();
    let computed: Promise<unknown> = Promise.resolve();
    this.steps.at(va - this.timing.voteDelayMs - this.timing.distDelayMs, () => {
      const vote = this.buildVote(va);
      built = vote.catch(() => null);
      return vote.then((raw) => (raw ? this.exchange.pushAll(VOTE_PATH, raw, 'vote') : undefined));
    });
    this.steps.at(va - this.timing.distDelayMs, () => {
      const step = built.then(() => this.consensusStep(va));
      computed = step.catch(() => null);
      return step.then((doc) => (doc ? this.exchange.pushAll(SIGNATURE_PATH, doc, 'signature') : undefined));
    });
    this.steps.at(va, async () => {
      // The round stays the one being prepared until its consensus is computed:
      // a late consensus step still takes the votes it fetches for it.
      await computed;
      this.scheduleRound(va + this.timing.intervalMs);
      await this.publishStep(va);
    });
  }

  /** Builds and signs this authority's vote for `va` and keeps it for the round; null once stopped. */
  private async buildVote(va: number): Promise<Uint8Array | null> {
    const entries = await this.descriptors.voteRelays(this.timing.probeTimeoutMs);
    if (this.stopped || !entries) return null;
    // From the flags on (voteRelays' own work after the re-tests is in there too): what grows with the relays.
    const started = performance.now() - (this.now() - entries.nowMs);
    const knownFlags = FLAGS.filter((f) => f !== 'BadExit' || (this.opts.badExits?.length ?? 0) > 0);
    const sr = this.sr.voteFields(va, this.rounds.latest?.consensus ?? null);
    const vote: Vote = {
      authority: this.identityHex,
      publishedMs: entries.nowMs,
      validAfterMs: va,
      freshUntilMs: va + this.timing.intervalMs,
      validUntilMs: va + 3 * this.timing.intervalMs,
      votingIntervalSec: this.opts.votingIntervalSec,
      knownFlags: [...knownFlags],
      params: { ...(this.opts.params ?? {}) },
      ...sr,
      relays: entries.relays,
    };
    const raw = encodeVote(vote, this.seed);
    this.rounds.setOwnVote(va, vote, raw);
    this.metrics.roundCompute.set(
      { authority: this.name, step: 'vote' },
      (performance.now() - started) / 1000,
    );
    this.sr.observeVote(vote);
    this.log.debug('voted', { validAfter: new Date(va).toISOString(), relays: vote.relays.length });
    return raw;
  }

  /** Pulls missing votes, computes and signs the consensus for `va`; our signature document, or null. */
  private async consensusStep(va: number): Promise<Uint8Array | null> {
    const missing = this.peers.filter((p) => !this.rounds.hasVote(va, p.identity));
    const ownBytes = this.rounds.ownNextVote()?.length ?? 0;
    await this.exchange.fetchVotes(va, missing, ownBytes, (vote, raw) => this.acceptVote(vote, raw));
    if (this.stopped) return null;
    const votes = this.rounds.votes(va);
    const started = performance.now();
    let c: Consensus;
    try {
      // A majority of votes or none: after a stall each authority held only its
      // own vote, and from any lone vote the same relay-less consensus follows,
      // which all signed (test/integration/consensus-majority).
      c = computeConsensus(votes, {
        authorityIds: this.authorityIds,
        params: this.opts.params,
        requireMajority: true,
      });
    } catch (e) {
      this.log.warn('could not compute a consensus', { error: (e as Error).message, votes: votes.length });
      return null;
    }
    if (c.validAfterMs !== va) {
      this.log.warn('computed consensus has the wrong valid-after', { want: va, got: c.validAfterMs });
      return null;
    }
    const own = signConsensus(c, this.seed);
    // Queued signatures were verified on arrival; only the digest is left to match.
    const digest = this.rounds.setConsensus(va, c, own);
    this.metrics.roundCompute.set(
      { authority: this.name, step: 'consensus' },
      (performance.now() - started) / 1000,
    );
    this.log.debug('computed consensus', {
      validAfter: new Date(va).toISOString(),
      votes: votes.length,
      relays: c.relays.length,
      digest: toHex(digest).slice(0, 16),
    });
    return encodeSignatureDocument(va, digest, own);
  }

  /** Publishes the consensus for `va` if a majority signed it, pulling missing signatures first if needed; else takes the peers'. */
  private async publishStep(va: number): Promise<void> {
    if (!this.rounds.hasConsensus(va)) {
      this.log.warn("no consensus computed for this round; taking the peers' if they published one", {
        validAfter: new Date(va).toISOString(),
      });
      this.takePeersConsensus(va, PEER_CONSENSUS_TRIES);
      return;
    }
    if (!this.rounds.hasMajority(va)) await this.pullSignatures(va);
    if (!this.tryPublish(va)) {
      this.log.warn("consensus not signed by a majority; taking the peers' if they published one", {
        validAfter: new Date(va).toISOString(),
        signatures: this.rounds.signatureCount(va),
        authorities: this.authorityIds.length,
      });
      this.takePeersConsensus(va, PEER_CONSENSUS_TRIES);
      return;
    }
    // Collect the stragglers' signatures for the served document.
    if (this.rounds.signatureCount(va) < this.authorityIds.length) {
      void this.pullSignatures(va).then(() => this.tryPublish(va));
    }
  }

  /**
   * Serves the newest consensus a peer published, verified (more than half
   * of all authorities signed it, valid now), when this authority has none
   * for round `va` (0: none at all, at start): its own round was lost (a
   * vote that came too late gave it another digest) or is still to come.
   * C tor's authorities fetch the consensus they lack as every directory
   * cache does. Peers publish at VA too, so `tries` more attempts follow a
   * half distribution delay apart while none for `va` is served.
   */
  private takePeersConsensus(va: number, tries: number): void {
    const expected = this.rounds.latest?.raw.length ?? 0;
    void this.exchange
      .fetchPublished(expected, (raw) => {
        if (this.stopped) return;
        const signed = decodeSignedConsensus(raw, MAX_CONSENSUS_BYTES);
        verifyConsensus(signed, { authorityIds: this.authorityIds, nowMs: this.now(), skewMs: PEER_SKEW_MS });
        if (!this.rounds.adopt(signed, raw)) return;
        this.updateConsensusMetrics();
        this.log.info('took the consensus its peers published', {
          validAfter: new Date(signed.consensus.validAfterMs).toISOString(),
          relays: signed.consensus.relays.length,
          signatures: signed.signatures.length,
        });
      })
      .then(() => {
        if (tries > 0 && (this.rounds.latest?.consensus.validAfterMs ?? 0) < va) {
          this.steps.at(this.now() + this.timing.distDelayMs / 2, () =>
            this.takePeersConsensus(va, tries - 1),
          );
        }
      });
  }

  private async pullSignatures(va: number): Promise<void> {
    if (!this.rounds.hasConsensus(va)) return;
    const missing = this.peers.filter((p) => !this.rounds.hasSignature(va, p.identity));
    const expected = this.rounds.latest?.raw.length ?? 0;
    await this.exchange.fetchSignatures(missing, expected, (doc) => this.rounds.addPulledSignatures(va, doc));
  }

  /** Serves round `va`'s consensus if it may be (round.ts publish); returns whether it is the served one. */
  private tryPublish(va: number): boolean {
    if (this.stopped) return false;
    const outcome = this.rounds.publish(va, this.now());
    if (outcome === 'not-publishable') return false;
    if (outcome === 'unchanged') return true;
    this.updateConsensusMetrics();
    const l = this.rounds.latest!;
    if (outcome === 'published') {
      this.log.info('published consensus', {
        validAfter: new Date(va).toISOString(),
        relays: l.consensus.relays.length,
        signatures: l.signatures,
      });
    }
    return true;
  }

  private updateConsensusMetrics(): void {
    recordConsensus(this.metrics, this.name, this.rounds.latest, this.now());
  }

  private updateAgeMetric(): void {
    recordConsensusAge(this.metrics, this.name, this.rounds.latest, this.now());
  }

  // -------------------------------------------------------------------------
  // Incoming documents (http.ts routes)

  private routes(): DirRoutes {
    return {
      upload: (kind, body) => this.upload(kind, body),
      refused: (kind, e, stage) => this.refused(kind, e, stage),
      consensus: () => this.rounds.latest?.raw ?? null,
      nextVote: () => this.rounds.ownNextVote(),
      nextSignatures: () => this.rounds.pendingSignatures(),
    };
  }

  private upload(kind: UploadKind, body: Uint8Array): string {
    switch (kind) {
      case 'descriptor': {
        const reply = this.descriptors.accept(body);
        this.metrics.descriptors.inc({ authority: this.name, outcome: 'accepted' });
        return reply;
      }
      case 'vote': {
        const vote = decodeVote(body, { maxBytes: MAX_VOTE_BYTES, authorityIds: this.authorityIds });
        this.acceptVote(vote, body);
        return 'vote accepted';
      }
      case 'signature': {
        const doc = decodeSignatureDocument(body);
        const reply = this.rounds.acceptSignature(doc);
        // Late signatures update the served document (or publish it, if they made the majority).
        if (reply === 'signature accepted') this.tryPublish(doc.validAfterMs);
        return reply;
      }
      default: {
        const never: never = kind;
        throw new Error(`unknown upload ${never}`);
      }
    }
  }

  /** Stores a verified peer vote (round.ts acceptVote) and lets the shared-random state see it. */
  private acceptVote(vote: Vote, raw: Uint8Array): void {
    if (!this.rounds.acceptVote(vote, raw)) return;
    this.sr.observeVote(vote);
    this.log.debug('vote received', { from: vote.authority.slice(0, 8), relays: vote.relays.length });
  }

  private refused(kind: UploadKind, e: unknown, stage: 'body' | 'document'): void {
    countRefusal(this.metrics, this.log, this.name, { kind, e, stage });
  }
}
