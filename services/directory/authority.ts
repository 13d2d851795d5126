/**
 * A directory authority (dir-spec §1.4, §3): accepts relay descriptors,
 * votes with its peers on a fixed schedule, computes and signs the
 * consensus, and serves it to relays and clients over HTTP.
 *
 * Schedule of one round, as dir-spec §1.4 with testnet-short intervals
 * (valid-after VA on multiples of the voting interval I, vote delay V,
 * distribution delay D, defaults V = D = I/5: 4 s each for I = 20 s):
 *   VA-V-D  build own vote (flags per assignFlags over fresh descriptors,
 *           shared-random commit/reveal), push it to every peer (one retry)
 *   VA-D    pull the votes of peers we did not hear from, compute the
 *           consensus over the votes received, sign it, push the signature
 *   VA      publish the consensus with every signature whose digest matches
 *           ours, if more than half of all authorities signed; else keep
 *           the previous consensus (and keep collecting: a late signature
 *           that makes the majority publishes it then)
 * fresh-until = VA+I, valid-until = VA+3I. The first round is the first VA
 * that leaves V+D after start, so a new network has a consensus within
 * about 1.4 I.
 *
 * HTTP (plain, on host:port; bodies and replies are bounded):
 *   POST /tor/                                   relay descriptor upload
 *   POST /tor/post/vote                          a peer's vote
 *   POST /tor/post/consensus-signature           a peer's consensus signature
 *   GET  /tor/status-vote/current/consensus      the latest consensus (404 before one)
 *   GET  /tor/status-vote/next/vote              own vote for the coming round
 *   GET  /tor/status-vote/next/consensus-signatures  own pending consensus + signatures
 * The ops endpoints (/metrics /healthz /readyz; ready = holds an unexpired
 * consensus) are served only on the ops port (main.ts), never here: the
 * DirPort is reachable from every exit.
 *
 * Design notes:
 * - The consensus-signature document (core/dir/consensus.ts) is Tor's
 *   detached signature, one per authority. A signature for a round whose
 *   consensus this authority has not computed yet is verified over the
 *   digest it names, then queued (a few per authority) until ours exists.
 * - The authority set is `peers` plus this authority, sorted; every
 *   authority must be configured with the same set or their consensus
 *   digests differ.
 * - Descriptor uploads: newest per identity wins; re-uploading the stored
 *   one is accepted (relays retry); older ones, bad signatures, oversized
 *   or malformed documents and publication times outside the window
 *   (future skew, max age: Tor's 12 h / 24 h defaults) are refused with 400.
 * - Admission (with `probeReachability`; issue 12): a descriptor at a new
 *   address:port is "unverified" until a link handshake to that address
 *   proves the relay holds the identity (reachability.ts); it is then
 *   voted on, else dropped. Unverified descriptors are capped
 *   (`maxUnverifiedDescriptors`, 503 beyond) and tested `probeConcurrency`
 *   at a time, one test per identity; one naming an address:port where a
 *   verified relay of another identity is still connected is refused
 *   outright. So forged descriptors with no relay behind them are never
 *   listed and cost bounded memory and effort. Listed relays are re-tested
 *   before each vote in their own slots, within a deadline.
 *   Relays per address are capped (AuthDirMaxServersPerAddr), uptime for
 *   flags is this authority's own observation (admission.ts), claimed
 *   bandwidth is capped at 10 MB/s and, with `measureBandwidth`, replaced by
 *   a measurement (Measured=; the consensus clips unmeasured relays to
 *   `maxunmeasuredbw` once three authorities measure). `shallot up` runs
 *   with no per-address cap (every relay is on 127.0.0.1, as C tor's
 *   TestingTorNetwork sets AuthDirMaxServersPerAddr 0): there the
 *   handshake, not the address, keeps forgeries out.
 * - Peer documents are verified before anything else answers them: a vote's
 *   signature (decodeVote), a consensus signature over the digest it names
 *   (before it is queued or answered "already have it").
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import type { Registry } from 'prom-client';
import { compareBytes, fromHex, toHex } from '../core/bytes.js';
import type { HandshakeName } from '../core/create-handshake.js';
import { ed25519PublicFromSeed } from '../core/crypto.js';
import {
  type Consensus,
  type ConsensusSignature,
  consensusDigest,
  consensusSignatureValid,
  decodeSignatureDocument,
  decodeSignedConsensus,
  encodeSignatureDocument,
  encodeSignedConsensus,
  MAX_SIGNATURE_BYTES,
  signConsensus,
  verifyConsensus,
} from '../core/dir/consensus.js';
import { descriptorDigest, type RelayDescriptor, verifyRelayDescriptor } from '../core/dir/descriptor.js';
import { MAX_DESCRIPTOR_BYTES, MAX_RELAYS } from '../core/dir/fields.js';
import { assignFlags, credibleBandwidth, FLAGS, voteRelayFromDescriptor } from '../core/dir/flags.js';
import { decodeVote, encodeVote, type Vote } from '../core/dir/vote.js';
import { computeConsensus, lowMedian } from '../core/dir/voting.js';
import { ShallotError } from '../core/errors.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import type { Logger } from '../net/log.js';
import {
  DEFAULT_MAX_SERVERS_PER_ADDR,
  DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
  omitAsSybil,
  RunHistory,
  testnetMinUptime,
} from './admission.js';
import { type AuthorityEndpoint, httpRequest, MAX_CONSENSUS_BYTES } from './dir-client.js';
import { type ProbeResult, type ProbeTarget, ReachabilityTester } from './reachability.js';
import { SharedRandomState } from './sr-state.js';

export const VOTE_PATH = '/tor/post/vote';
export const SIGNATURE_PATH = '/tor/post/consensus-signature';
export const NEXT_VOTE_PATH = '/tor/status-vote/next/vote';
export const NEXT_SIGNATURES_PATH = '/tor/status-vote/next/consensus-signatures';

const MAX_VOTE_BYTES = MAX_CONSENSUS_BYTES;
/** Verified signatures (on digests other than ours, or before ours exists) queued per authority and round. */
const MAX_QUEUED_SIGNATURES = 4;
/**
 * Descriptors awaiting their reachability test. Not a C tor option (C tor
 * stores any descriptor and tests later); sized so `shallot up` with 1000
 * relays starting at once is admitted without retries.
 */
export const DEFAULT_MAX_UNVERIFIED_DESCRIPTORS = 1024;
/** Reachability tests and measurements in flight at once. */
export const DEFAULT_PROBE_CONCURRENCY = 16;
/** Measurements of a relay kept; their median is voted, so one noisy sample does not decide. */
const MEASUREMENTS_KEPT = 3;

/** Bytes of an oversized body read and discarded (so the client sees the 400) before hanging up. */
const MAX_DRAIN_BYTES = 1 << 20;

export interface AuthorityComponents {
  logger: Logger;
  registry: Registry;
  /** Wall clock in ms; timers are real, this only moves the schedule's notion of now. */
  now?: () => number;
}

export interface AuthorityOptions {
  identitySeed: Uint8Array;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Every authority; this one may be included. */
  peers: AuthorityEndpoint[];
  votingIntervalSec: number;
  /** Default: a fifth of the interval. */
  voteDelaySec?: number;
  /** Default: a fifth of the interval. */
  distDelaySec?: number;
  /** TestingTorNetwork flag thresholds (assignFlags). */
  testnet: boolean;
  params?: Record<string, number>;
  /** Metric label; default the first 8 hex digits of the identity. */
  name?: string;
  /** Lowercase hex ids to mark BadExit. */
  badExits?: string[];
  /** Future publication times accepted (Tor ROUTER_ALLOW_SKEW: 12 h). */
  descriptorSkewMs?: number;
  /** Oldest publication time accepted and voted Running (Tor: 24 h). */
  descriptorMaxAgeMs?: number;
  /**
   * Test each relay by a link handshake to its address:orPort with its
   * identity checked (C tor's reachability test) and list only relays that
   * pass (see the module notes). Off by default: unit tests post
   * descriptors of relays that do not exist.
   */
  probeReachability?: boolean;
  /** C tor AuthDirMaxServersPerAddr: relays listed per address, 0 = no limit (default 2, C tor's). */
  maxServersPerAddr?: number;
  /** C tor AuthDirMaxServersPerAuthAddr: relays listed on an authority's address (default 5, C tor's). */
  maxServersPerAuthAddr?: number;
  /** Unverified descriptors stored at once (default DEFAULT_MAX_UNVERIFIED_DESCRIPTORS). */
  maxUnverifiedDescriptors?: number;
  /** Reachability tests and measurements in flight (default DEFAULT_PROBE_CONCURRENCY). */
  probeConcurrency?: number;
  /** Measure reachable relays (reachability.ts) and vote Measured= (default: with probeReachability). */
  measureBandwidth?: boolean;
  /**
   * Testnet flag thresholds: seconds this authority has seen a relay
   * reachable before it votes Stable, Guard, HSDir (default
   * testnetMinUptime: Guard after a vote delay, Stable and HSDir at once as
   * C tor's TestingTorNetwork). Live rules (testnet false) ignore this.
   */
  minUptimeSec?: { stable: number; guard: number; hsdir: number };
  /** Dial wss when a descriptor has no link URL (default true). */
  tls?: boolean;
  /** CREATE2 handshake of the scanner's one-hop circuits (default ntor; use the network's). */
  handshake?: HandshakeName;
}

export type DescriptorRefusal =
  | 'invalid'
  | 'not-newer'
  | 'too-many-relays'
  | 'unverified-full'
  | 'address-taken'
  | 'unreachable'
  | 'wrong-identity';

/** A relay descriptor this authority will not store (or dropped after its reachability test). */
export class DescriptorRefusedError extends ShallotError {
  constructor(
    readonly reason: DescriptorRefusal,
    message: string,
    /** HTTP status: 503 when it may succeed later. */
    readonly status = 400,
  ) {
    super('ERR_DESCRIPTOR_REFUSED', message, { reason });
  }
}

/** A configuration problem found at construction. */
export class AuthorityConfigError extends ShallotError {
  constructor(message: string) {
    super('ERR_AUTHORITY_CONFIG', message);
  }
}

interface StoredDescriptor {
  desc: RelayDescriptor;
  raw: Uint8Array;
  digestHex: string;
  /** A handshake at this descriptor's address:orPort proved its identity (always true without probing). */
  verified: boolean;
}

const whereOf = (d: RelayDescriptor) => `${d.address}:${d.orPort}`;
const probeTarget = (d: RelayDescriptor): ProbeTarget => ({
  nickname: d.nickname,
  identity: d.identity,
  ntorOnionKey: d.ntorOnionKey,
  address: d.address,
  orPort: d.orPort,
  ...(d.linkUrl !== undefined ? { linkUrl: d.linkUrl } : {}),
});

interface StoredVote {
  vote: Vote;
  raw: Uint8Array;
}

interface Round {
  validAfterMs: number;
  votes: Map<string, StoredVote>;
  consensus: Consensus | null;
  digestHex: string | null;
  signatures: Map<string, ConsensusSignature>;
  /** Verified signatures that arrived before our consensus was computed. */
  queued: Map<string, QueuedSignature[]>;
  published: boolean;
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

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The request body was not read to the end (oversized). */
    readonly unread = false,
  ) {
    super(message);
  }
}

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };
const OCTETS = { 'content-type': 'application/json' };

/** Whether `sig` is a good signature on `c` (verifyConsensus over a one-authority set). */
function signatureValid(c: Consensus, digest: Uint8Array, sig: ConsensusSignature): boolean {
  try {
    verifyConsensus(
      { consensus: c, signatures: [sig], digest },
      { authorityIds: [toHex(sig.identity)], nowMs: c.validAfterMs },
    );
    return true;
  } catch {
    return false;
  }
}

interface QueuedSignature {
  digestHex: string;
  signature: ConsensusSignature;
}

export class DirectoryAuthority {
  readonly identityHex: string;
  private readonly log: Logger;
  private readonly metrics: Metrics['directory'];
  private readonly now: () => number;
  private readonly seed: Uint8Array;
  private readonly peers: AuthorityEndpoint[];
  private readonly authorityIds: string[];
  private readonly intervalMs: number;
  private readonly voteDelayMs: number;
  private readonly distDelayMs: number;
  private readonly name: string;
  private readonly sr: SharedRandomState;
  /** Hosts of every authority (AuthDirMaxServersPerAuthAddr applies there). */
  private readonly authorityAddresses: ReadonlySet<string>;
  private readonly descriptors = new Map<string, StoredDescriptor>();
  /** Ids whose stored descriptor awaits its reachability test. */
  private readonly unverified = new Set<string>();
  /** address:orPort -> id of the verified relay there. */
  private readonly verifiedAt = new Map<string, string>();
  private readonly history = new RunHistory();
  /** The last MEASUREMENTS_KEPT measurements of each relay (the vote carries their median). */
  private readonly measured = new Map<string, { samples: number[]; atMs: number }>();
  private readonly measuring = new Set<string>();
  /** Ids whose reachability test (admit) is running. */
  private readonly admitting = new Set<string>();
  private tester: ReachabilityTester | null = null;
  private readonly rounds = new Map<number, Round>();
  private server: http.Server | null = null;
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private boundPort = 0;
  private latest: { consensus: Consensus; digest: Uint8Array; raw: Uint8Array; signatures: number } | null =
    null;
  /** The round being prepared (its VA), for accepting early and late votes. */
  private nextValidAfterMs = 0;

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
    if (!Number.isSafeInteger(opts.votingIntervalSec) || opts.votingIntervalSec < 1) {
      throw new AuthorityConfigError('voting interval must be a positive whole number of seconds');
    }
    this.intervalMs = opts.votingIntervalSec * 1000;
    this.voteDelayMs = Math.round((opts.voteDelaySec ?? opts.votingIntervalSec / 5) * 1000);
    this.distDelayMs = Math.round((opts.distDelaySec ?? opts.votingIntervalSec / 5) * 1000);
    if (
      this.voteDelayMs <= 0 ||
      this.distDelayMs <= 0 ||
      this.voteDelayMs + this.distDelayMs >= this.intervalMs
    ) {
      throw new AuthorityConfigError(
        'need 0 < vote delay, 0 < dist delay, vote delay + dist delay < interval',
      );
    }
    const byId = new Map<string, AuthorityEndpoint>();
    for (const p of opts.peers) {
      if (!/^[0-9a-f]{64}$/.test(p.identity)) throw new AuthorityConfigError(`bad peer id ${p.identity}`);
      byId.set(p.identity, p);
    }
    if (!byId.has(this.identityHex)) {
      this.log.warn('own identity is not in the authority list; adding it', { identity: this.identityHex });
    }
    this.peers = [...byId.values()].filter((p) => p.identity !== this.identityHex);
    this.authorityIds = [...new Set([...byId.keys(), this.identityHex])].sort();
    this.sr = new SharedRandomState(this.identityHex, this.authorityIds, opts.votingIntervalSec);
    this.authorityAddresses = new Set([
      opts.host,
      ...this.peers.map((p) => new URL(p.url).hostname.replace(/^\[|\]$/g, '')),
    ]);
  }

  private get probeTimeoutMs(): number {
    return Math.max(500, Math.min(3000, this.voteDelayMs * 0.8));
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
    return this.latest?.raw ?? null;
  }

  /** Ready once it holds a consensus that has not expired. */
  get ready(): boolean {
    return this.latest !== null && this.now() <= this.latest.consensus.validUntilMs;
  }

  health(): { ok: boolean; ready: boolean; [k: string]: unknown } {
    const c = this.latest?.consensus;
    return {
      ok: !this.stopped && this.server !== null,
      ready: this.ready,
      identity: this.identityHex,
      descriptors: this.descriptors.size,
      unverifiedDescriptors: this.unverified.size,
      consensusValidAfter: c ? new Date(c.validAfterMs).toISOString() : null,
      consensusRelays: c?.relays.length ?? 0,
      consensusSignatures: this.latest?.signatures ?? 0,
      sharedRandom: this.sr.snapshot().current !== undefined,
    };
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => this.handle(req, res));
    server.requestTimeout = 15_000;
    server.headersTimeout = 10_000;
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
    if (this.opts.probeReachability) {
      this.tester = new ReachabilityTester({
        timeoutMs: this.probeTimeoutMs,
        concurrency: this.opts.probeConcurrency ?? DEFAULT_PROBE_CONCURRENCY,
        tls: this.opts.tls ?? true,
        handshake: this.opts.handshake ?? 'ntor',
      });
    }
    this.scheduleRound(this.firstValidAfter());
    const ageTimer = setInterval(() => this.updateAgeMetric(), 1000);
    ageTimer.unref();
    this.timers.add(ageTimer);
    this.log.info('authority listening', {
      url: this.url,
      identity: this.identityHex,
      authorities: this.authorityIds.length,
      intervalSec: this.opts.votingIntervalSec,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.tester?.close();
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
  // Schedule

  /** The first VA that leaves the vote and distribution delays from now (dir-spec §1.4). */
  private firstValidAfter(): number {
    const earliest = this.now() + this.voteDelayMs + this.distDelayMs;
    return Math.ceil(earliest / this.intervalMs) * this.intervalMs;
  }

  private at(timeMs: number, fn: () => Promise<void> | void): void {
    if (this.stopped) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (this.stopped) return;
        Promise.resolve()
          .then(fn)
          .catch((e: unknown) => this.log.error('scheduled step failed', { error: (e as Error).message }));
      },
      Math.max(0, timeMs - this.now()),
    );
    this.timers.add(t);
  }

  private scheduleRound(va: number): void {
    // After a stall (suspended process, blocked loop) skip rounds we can no longer vote in.
    if (this.now() > va - this.distDelayMs) {
      const next = this.firstValidAfter();
      this.log.warn('missed a voting round', { validAfter: new Date(va).toISOString() });
      va = next;
    }
    this.nextValidAfterMs = va;
    this.round(va);
    this.pruneRounds(va);
    this.at(va - this.voteDelayMs - this.distDelayMs, () => this.voteStep(va));
    this.at(va - this.distDelayMs, () => this.consensusStep(va));
    this.at(va, async () => {
      this.scheduleRound(va + this.intervalMs);
      await this.publishStep(va);
    });
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
        published: false,
      };
      this.rounds.set(va, r);
    }
    return r;
  }

  /** Keeps the round being prepared and the one before it (late signatures). */
  private pruneRounds(va: number): void {
    for (const k of this.rounds.keys()) if (k < va - this.intervalMs) this.rounds.delete(k);
  }

  /** Drops expired descriptors; returns the verified ones (the only ones voted on). */
  private freshDescriptors(nowMs: number): StoredDescriptor[] {
    const maxAge = this.opts.descriptorMaxAgeMs ?? 24 * 3600_000;
    const out: StoredDescriptor[] = [];
    for (const [id, d] of this.descriptors) {
      if (d.desc.publishedMs < nowMs - maxAge) this.dropDescriptor(id);
      else if (d.verified) out.push(d);
    }
    return out;
  }

  private storeDescriptor(id: string, s: StoredDescriptor): void {
    const old = this.descriptors.get(id);
    if (old?.verified && this.verifiedAt.get(whereOf(old.desc)) === id)
      this.verifiedAt.delete(whereOf(old.desc));
    this.descriptors.set(id, s);
    if (s.verified) {
      this.unverified.delete(id);
      if (this.tester) this.verifiedAt.set(whereOf(s.desc), id);
    } else {
      this.unverified.add(id);
    }
    this.metrics.unverifiedDescriptors.set({ authority: this.name }, this.unverified.size);
  }

  private dropDescriptor(id: string): void {
    const old = this.descriptors.get(id);
    if (old && this.verifiedAt.get(whereOf(old.desc)) === id) this.verifiedAt.delete(whereOf(old.desc));
    this.descriptors.delete(id);
    this.unverified.delete(id);
    this.measured.delete(id);
    this.history.forget(id);
    this.tester?.forget(id);
    this.metrics.unverifiedDescriptors.set({ authority: this.name }, this.unverified.size);
  }

  private countProbe(result: ProbeResult): void {
    this.metrics.reachabilityProbes.inc({ authority: this.name, result });
  }

  /**
   * The reachability test of `id`'s stored descriptor: verified if the
   * handshake proves its identity at its address, else dropped (and counted
   * as a refusal). One test per identity at a time: a descriptor that
   * replaced the tested one while it ran is tested next, so re-uploads
   * cannot queue up probes.
   */
  private async admit(id: string): Promise<void> {
    const tester = this.tester;
    if (!tester || this.admitting.has(id)) return;
    this.admitting.add(id);
    try {
      for (;;) {
        const s = this.descriptors.get(id);
        if (!s || s.verified || this.stopped) return;
        const result = await tester.probe(probeTarget(s.desc));
        if (this.stopped) return;
        this.countProbe(result);
        this.history.observe(id, result, this.now());
        if (this.descriptors.get(id) !== s) continue;
        if (result === 'up') {
          s.verified = true;
          this.storeDescriptor(id, s);
          this.log.debug('relay verified', { nickname: s.desc.nickname, identity: id.slice(0, 8) });
          if (this.measures) void this.measure(id, s);
          return;
        }
        this.dropDescriptor(id);
        const reason = result === 'wrong-identity' ? 'wrong-identity' : 'unreachable';
        this.metrics.descriptorsRefused.inc({ authority: this.name, reason });
        this.log.debug('unverified descriptor dropped', { identity: id.slice(0, 8), result });
        return;
      }
    } finally {
      this.admitting.delete(id);
    }
  }

  /**
   * Re-tests verified relays (free while their channel is open) and records
   * the results. Bounded by `deadline`: a test still running then counts as
   * a timeout (forgiven within the grace), so the vote is never late.
   */
  private async reprobe(descs: readonly StoredDescriptor[], deadline: number): Promise<void> {
    const tester = this.tester;
    if (!tester) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - this.now()));
    });
    await Promise.all(
      descs.map(async (d) => {
        const result = await Promise.race([tester.probe(probeTarget(d.desc), true), late]);
        this.countProbe(result);
        this.history.observe(toHex(d.desc.identity), result, this.now());
      }),
    );
    clearTimeout(timer);
  }

  /**
   * Measures `id` (reachability.ts) unless a measurement is in flight or
   * fresh; a failed one is retried at the next vote.
   */
  private async measure(id: string, s: StoredDescriptor): Promise<void> {
    const tester = this.tester;
    const have = this.measured.get(id);
    if (!tester || this.measuring.has(id)) return;
    if (have && this.now() - have.atMs < this.remeasureMs) return;
    this.measuring.add(id);
    try {
      const bw = await tester.measure(probeTarget(s.desc));
      this.metrics.bandwidthMeasurements.inc({
        authority: this.name,
        result: bw === undefined ? 'failed' : 'ok',
      });
      if (bw !== undefined && this.descriptors.get(id) === s) {
        const samples = [...(have?.samples ?? []), bw].slice(-MEASUREMENTS_KEPT);
        this.measured.set(id, { samples, atMs: this.now() });
      }
    } finally {
      this.measuring.delete(id);
    }
  }

  private get measures(): boolean {
    return this.tester !== null && (this.opts.measureBandwidth ?? true);
  }

  /**
   * How often a relay is re-measured: every two voting intervals in a small
   * network, less often in a large one so the scanner moves at most
   * MEASURE_BYTES per 250 ms (256 KiB/s) per authority.
   */
  private get remeasureMs(): number {
    return Math.max(2 * this.intervalMs, 250 * this.descriptors.size);
  }

  /** Builds, signs and pushes this authority's vote for `va`. */
  private async voteStep(va: number): Promise<void> {
    // Votes list relays sorted by identity (dir-spec §3.4.1).
    const descs = this.freshDescriptors(this.now()).sort((a, b) =>
      compareBytes(a.desc.identity, b.desc.identity),
    );
    await this.reprobe(descs, this.now() + this.probeTimeoutMs);
    if (this.stopped) return;
    const nowMs = this.now();
    const probing = this.tester !== null;
    // Forgive timeouts for two intervals after the last success (a loaded host).
    const grace = 2 * this.intervalMs;
    const reachable = (id: string) => !probing || this.history.reachable(id, nowMs, grace);
    const measuredOf = (id: string) => {
      const m = this.measures ? this.measured.get(id) : undefined;
      return m ? lowMedian(m.samples) : undefined;
    };
    if (this.measures) for (const d of descs) void this.measure(toHex(d.desc.identity), d);
    const uptimeOf = (d: StoredDescriptor) =>
      probing ? this.history.uptimeSec(toHex(d.desc.identity), nowMs) : d.desc.uptimeSec;
    // C tor: relays beyond AuthDirMaxServersPerAddr on one address are not Running.
    const sybils = omitAsSybil(
      descs
        .filter((d) => reachable(toHex(d.desc.identity)))
        .map((d) => {
          const id = toHex(d.desc.identity);
          return {
            id,
            address: d.desc.address,
            bandwidth: credibleBandwidth(d.desc.bandwidth, measuredOf(id)),
            uptimeSec: uptimeOf(d),
          };
        }),
      this.opts.maxServersPerAddr ?? DEFAULT_MAX_SERVERS_PER_ADDR,
      {
        maxOnAuthority: this.opts.maxServersPerAuthAddr ?? DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
        addresses: this.authorityAddresses,
      },
    );
    const flags = assignFlags(
      descs.map((d) => d.desc),
      {
        nowMs,
        reachable: (id) => reachable(id) && !sybils.has(id),
        testnet: this.opts.testnet,
        badExits: this.opts.badExits,
        maxDescriptorAgeMs: this.opts.descriptorMaxAgeMs,
        ...(probing ? { uptimeSec: (id: string) => this.history.uptimeSec(id, nowMs) } : {}),
        measuredBandwidth: measuredOf,
        testnetMinUptimeSec: this.opts.minUptimeSec ?? testnetMinUptime(this.opts.votingIntervalSec),
      },
    );
    const knownFlags = FLAGS.filter((f) => f !== 'BadExit' || (this.opts.badExits?.length ?? 0) > 0);
    const sr = this.sr.voteFields(va, this.latest?.consensus ?? null);
    const vote: Vote = {
      authority: this.identityHex,
      publishedMs: nowMs,
      validAfterMs: va,
      freshUntilMs: va + this.intervalMs,
      validUntilMs: va + 3 * this.intervalMs,
      votingIntervalSec: this.opts.votingIntervalSec,
      knownFlags: [...knownFlags],
      params: { ...(this.opts.params ?? {}) },
      ...sr,
      relays: descs.map((d) => {
        const id = toHex(d.desc.identity);
        return voteRelayFromDescriptor(d.desc, d.raw, flags.get(id) ?? [], measuredOf(id));
      }),
    };
    const raw = encodeVote(vote, this.seed);
    this.round(va).votes.set(this.identityHex, { vote, raw });
    this.sr.observeVote(vote);
    this.updateVoteMetrics(descs, sybils, reachable);
    this.log.debug('voted', { validAfter: new Date(va).toISOString(), relays: vote.relays.length });
    await Promise.all(this.peers.map((p) => this.pushWithRetry(p, VOTE_PATH, raw, 'vote')));
  }

  private updateVoteMetrics(
    descs: readonly StoredDescriptor[],
    sybils: ReadonlySet<string>,
    reachable: (id: string) => boolean,
  ): void {
    const m = this.metrics;
    const a = this.name;
    const ids = descs.map((d) => toHex(d.desc.identity));
    m.voteRelaysOmitted.set({ authority: a, reason: 'sybil' }, sybils.size);
    m.voteRelaysOmitted.set(
      { authority: a, reason: 'unreachable' },
      ids.filter((id) => !reachable(id)).length,
    );
    m.bandwidthCapped.set(
      { authority: a },
      descs.filter((d) => d.desc.bandwidth > credibleBandwidth(d.desc.bandwidth)).length,
    );
  }

  private async pushWithRetry(
    peer: AuthorityEndpoint,
    path: string,
    body: Uint8Array,
    what: string,
  ): Promise<void> {
    const timeoutMs = Math.max(500, Math.min(5000, this.distDelayMs / 2));
    for (let attempt = 0; attempt < 2 && !this.stopped; attempt++) {
      try {
        const r = await httpRequest(peer.url, 'POST', path, { body, timeoutMs });
        if (r.status === 200) return;
        // A refusal will not change on retry.
        this.log.warn(`peer refused our ${what}`, {
          peer: peer.url,
          status: r.status,
          reply: Buffer.from(r.body.subarray(0, 200)).toString('latin1'),
        });
        return;
      } catch (e) {
        if (attempt === 1)
          this.log.warn(`could not send ${what}`, { peer: peer.url, error: (e as Error).message });
        else await new Promise((res) => setTimeout(res, Math.min(500, this.voteDelayMs / 4)).unref());
      }
    }
  }

  /** Pulls missing votes, computes and signs the consensus for `va`, pushes the signature. */
  private async consensusStep(va: number): Promise<void> {
    const r = this.round(va);
    const missing = this.peers.filter((p) => !r.votes.has(p.identity));
    const timeoutMs = Math.max(300, this.distDelayMs / 2);
    await Promise.all(
      missing.map(async (p) => {
        try {
          const res = await httpRequest(p.url, 'GET', NEXT_VOTE_PATH, {
            timeoutMs,
            maxBytes: MAX_VOTE_BYTES,
          });
          if (res.status !== 200) return;
          const vote = decodeVote(res.body, { maxBytes: MAX_VOTE_BYTES, authorityIds: this.authorityIds });
          if (vote.authority !== p.identity || vote.validAfterMs !== va) return;
          this.acceptVote(vote, res.body);
        } catch (e) {
          this.log.debug('could not fetch vote', { peer: p.url, error: (e as Error).message });
        }
      }),
    );
    if (this.stopped) return;
    const votes = [...r.votes.values()].map((v) => v.vote);
    let c: Consensus;
    try {
      c = computeConsensus(votes, { authorityIds: this.authorityIds, params: this.opts.params });
    } catch (e) {
      this.log.warn('could not compute a consensus', { error: (e as Error).message, votes: votes.length });
      return;
    }
    if (c.validAfterMs !== va) {
      this.log.warn('computed consensus has the wrong valid-after', { want: va, got: c.validAfterMs });
      return;
    }
    const digest = consensusDigest(c);
    const own = signConsensus(c, this.seed);
    r.consensus = c;
    r.digestHex = toHex(digest);
    r.signatures.set(this.identityHex, own);
    // Queued signatures were verified on arrival; only the digest is left to match.
    for (const [id, sigs] of r.queued) {
      const good = sigs.find((q) => q.digestHex === r.digestHex);
      if (good) r.signatures.set(id, good.signature);
    }
    r.queued.clear();
    this.log.debug('computed consensus', {
      validAfter: new Date(va).toISOString(),
      votes: votes.length,
      relays: c.relays.length,
      digest: r.digestHex.slice(0, 16),
    });
    const doc = encodeSignatureDocument(va, digest, own);
    await Promise.all(this.peers.map((p) => this.pushWithRetry(p, SIGNATURE_PATH, doc, 'signature')));
  }

  /** Publishes the consensus for `va` if a majority signed it, pulling missing signatures first if needed. */
  private async publishStep(va: number): Promise<void> {
    const r = this.rounds.get(va);
    if (!r?.consensus) {
      this.log.warn('no consensus computed for this round; keeping the previous one', {
        validAfter: new Date(va).toISOString(),
      });
      return;
    }
    if (!this.hasMajority(r)) await this.pullSignatures(r);
    if (!this.tryPublish(r)) {
      this.log.warn('consensus not signed by a majority; keeping the previous one', {
        validAfter: new Date(va).toISOString(),
        signatures: r.signatures.size,
        authorities: this.authorityIds.length,
      });
      return;
    }
    // Collect the stragglers' signatures for the served document.
    if (r.signatures.size < this.authorityIds.length) {
      void this.pullSignatures(r).then(() => this.tryPublish(r));
    }
  }

  private hasMajority(r: Round): boolean {
    return r.signatures.size > this.authorityIds.length / 2;
  }

  private async pullSignatures(r: Round): Promise<void> {
    const timeoutMs = Math.max(300, Math.min(2000, this.intervalMs / 4));
    const c = r.consensus;
    if (!c) return;
    const digest = fromHex(r.digestHex!);
    await Promise.all(
      this.peers
        .filter((p) => !r.signatures.has(p.identity))
        .map(async (p) => {
          try {
            const res = await httpRequest(p.url, 'GET', NEXT_SIGNATURES_PATH, {
              timeoutMs,
              maxBytes: MAX_CONSENSUS_BYTES,
            });
            if (res.status !== 200) return;
            const theirs = decodeSignedConsensus(res.body, MAX_CONSENSUS_BYTES);
            if (toHex(theirs.digest) !== r.digestHex) return;
            for (const s of theirs.signatures) {
              const id = toHex(s.identity);
              if (this.authorityIds.includes(id) && !r.signatures.has(id) && signatureValid(c, digest, s)) {
                r.signatures.set(id, s);
              }
            }
          } catch (e) {
            this.log.debug('could not fetch signatures', { peer: p.url, error: (e as Error).message });
          }
        }),
    );
  }

  /**
   * Serves round `r`'s consensus if it has a majority and is due (now >= VA)
   * and is not older than what is served; re-encodes it when more
   * signatures arrived. Returns whether `r` is (now) the served consensus.
   */
  private tryPublish(r: Round): boolean {
    if (this.stopped || !r.consensus || !this.hasMajority(r)) return false;
    if (this.now() < r.validAfterMs) return false;
    const cur = this.latest;
    if (cur && cur.consensus.validAfterMs > r.validAfterMs) return false;
    const same = cur !== null && cur.consensus.validAfterMs === r.validAfterMs;
    if (same && cur.signatures === r.signatures.size) return true;
    const sigs = [...r.signatures.values()].sort((a, b) => (toHex(a.identity) < toHex(b.identity) ? -1 : 1));
    const raw = encodeSignedConsensus(r.consensus, sigs);
    this.latest = { consensus: r.consensus, digest: fromHex(r.digestHex!), raw, signatures: sigs.length };
    r.published = true;
    this.updateConsensusMetrics();
    if (!same) {
      this.log.info('published consensus', {
        validAfter: new Date(r.validAfterMs).toISOString(),
        relays: r.consensus.relays.length,
        signatures: sigs.length,
      });
    }
    return true;
  }

  private updateConsensusMetrics(): void {
    const l = this.latest;
    if (!l) return;
    const m = this.metrics;
    m.consensusSignatures.set({ authority: this.name }, l.signatures);
    m.consensusRelays.set({ authority: this.name, flag: 'all' }, l.consensus.relays.length);
    for (const f of l.consensus.knownFlags) {
      m.consensusRelays.set(
        { authority: this.name, flag: f },
        l.consensus.relays.filter((x) => x.flags.includes(f)).length,
      );
    }
    this.updateAgeMetric();
  }

  private updateAgeMetric(): void {
    if (this.latest) {
      this.metrics.consensusAge.set(
        { authority: this.name },
        Math.max(0, (this.now() - this.latest.consensus.validAfterMs) / 1000),
      );
    }
  }

  // -------------------------------------------------------------------------
  // Incoming documents

  /** Stores a verified vote if it is for the round being prepared or the next one. */
  private acceptVote(vote: Vote, raw: Uint8Array): void {
    const va = vote.validAfterMs;
    if (va !== this.nextValidAfterMs && va !== this.nextValidAfterMs + this.intervalMs) {
      throw new HttpError(400, `not voting on valid-after ${new Date(va).toISOString()}`);
    }
    const r = this.round(va);
    const have = r.votes.get(vote.authority);
    if (have) {
      if (Buffer.compare(have.raw, raw) === 0) return;
      throw new HttpError(400, 'already have a different vote from this authority for this round');
    }
    if (vote.authority === this.identityHex) throw new HttpError(400, 'that is my own identity');
    r.votes.set(vote.authority, { vote, raw });
    this.sr.observeVote(vote);
    this.log.debug('vote received', { from: vote.authority.slice(0, 8), relays: vote.relays.length });
  }

  private handleDescriptor(body: Uint8Array): string {
    const nowMs = this.now();
    let desc: RelayDescriptor;
    try {
      desc = verifyRelayDescriptor(body, {
        nowMs,
        maxBytes: MAX_DESCRIPTOR_BYTES,
        maxSkewMs: this.opts.descriptorSkewMs ?? 12 * 3600_000,
        maxAgeMs: this.opts.descriptorMaxAgeMs,
      });
    } catch (e) {
      if (e instanceof ShallotError) throw new DescriptorRefusedError('invalid', e.message);
      throw e;
    }
    const id = toHex(desc.identity);
    const digestHex = toHex(descriptorDigest(body));
    const have = this.descriptors.get(id);
    if (have) {
      if (have.digestHex === digestHex) return 'already have this descriptor';
      if (have.desc.publishedMs >= desc.publishedMs) {
        throw new DescriptorRefusedError('not-newer', 'not newer than the one we have');
      }
    } else if (this.descriptors.size >= MAX_RELAYS) {
      throw new DescriptorRefusedError('too-many-relays', 'too many relays', 503);
    }
    // Same identity proven at the same address: no new test needed.
    const verified =
      this.tester === null || (have?.verified === true && whereOf(have.desc) === whereOf(desc));
    if (!verified) {
      // Only while the holder is still there (its channel open): a relay may reuse a dead one's port.
      const holder = this.verifiedAt.get(whereOf(desc));
      const held = holder !== undefined ? this.descriptors.get(holder) : undefined;
      if (holder !== id && held && this.tester?.isHeld(probeTarget(held.desc))) {
        throw new DescriptorRefusedError(
          'address-taken',
          'another relay is verified at that address and port',
        );
      }
      if (
        !this.unverified.has(id) &&
        this.unverified.size >= (this.opts.maxUnverifiedDescriptors ?? DEFAULT_MAX_UNVERIFIED_DESCRIPTORS)
      ) {
        throw new DescriptorRefusedError(
          'unverified-full',
          'too many descriptors awaiting a reachability test',
          503,
        );
      }
    }
    const stored: StoredDescriptor = { desc, raw: body, digestHex, verified };
    this.storeDescriptor(id, stored);
    this.log.debug('descriptor accepted', { nickname: desc.nickname, identity: id.slice(0, 8), verified });
    if (verified) return 'descriptor accepted';
    void this.admit(id);
    return 'descriptor accepted; reachability test pending';
  }

  /**
   * A peer's consensus signature. Its Ed25519 signature over the digest it
   * names is checked first, so nothing unverified is stored or answered
   * "already have it" (issue 12 item 7).
   */
  private handleSignature(body: Uint8Array): string {
    const doc = decodeSignatureDocument(body);
    const id = toHex(doc.signature.identity);
    if (!this.authorityIds.includes(id))
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
      // Late signatures update the served document (or publish it, if they made the majority).
      if (this.now() >= r.validAfterMs) this.tryPublish(r);
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

  private countPeerRefusal(path: string, e: unknown): void {
    const kind = path === VOTE_PATH ? 'vote' : 'signature';
    let reason = 'invalid';
    if (e instanceof PeerDocumentError) reason = e.reason;
    else if (e instanceof ShallotError && e.context.reason === 'unknown-authority')
      reason = 'unknown-authority';
    else if (e instanceof ShallotError && e.code === 'ERR_CRYPTO') reason = 'bad-signature';
    this.metrics.peerDocumentsRefused.inc({ authority: this.name, kind, reason });
  }

  // -------------------------------------------------------------------------
  // HTTP

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    const reply = (status: number, body: string | Uint8Array, headers: Record<string, string> = TEXT) => {
      if (res.headersSent) return;
      const b =
        typeof body === 'string'
          ? Buffer.from(`${body}\n`)
          : Buffer.from(body.buffer, body.byteOffset, body.length);
      res.writeHead(status, { ...headers, 'content-length': b.length }).end(b);
    };
    const fail = (e: unknown) => {
      if (e instanceof HttpError) return reply(e.status, e.message);
      if (e instanceof DescriptorRefusedError) return reply(e.status, e.message);
      if (e instanceof ShallotError) return reply(400, e.message);
      this.log.error('request failed', { path, error: (e as Error).message });
      return reply(500, 'internal error');
    };
    if (req.method === 'POST') {
      const limits: Record<string, number> = {
        '/tor/': MAX_DESCRIPTOR_BYTES,
        [VOTE_PATH]: MAX_VOTE_BYTES,
        [SIGNATURE_PATH]: MAX_SIGNATURE_BYTES,
      };
      const limit = limits[path];
      if (limit === undefined) return reply(404, 'not found');
      const isDescriptor = path === '/tor/';
      readBody(req, limit).then(
        (body) => {
          try {
            if (isDescriptor) {
              const msg = this.handleDescriptor(body);
              this.metrics.descriptors.inc({ authority: this.name, outcome: 'accepted' });
              return reply(200, msg);
            }
            if (path === VOTE_PATH) {
              const vote = decodeVote(body, { maxBytes: MAX_VOTE_BYTES, authorityIds: this.authorityIds });
              this.acceptVote(vote, body);
              return reply(200, 'vote accepted');
            }
            return reply(200, this.handleSignature(body));
          } catch (e) {
            if (isDescriptor) {
              this.metrics.descriptors.inc({ authority: this.name, outcome: 'rejected' });
              const reason = e instanceof DescriptorRefusedError ? e.reason : 'invalid';
              this.metrics.descriptorsRefused.inc({ authority: this.name, reason });
              this.log.debug('descriptor rejected', { error: (e as Error).message });
            } else {
              this.countPeerRefusal(path, e);
              this.log.warn('peer document refused', { path, error: (e as Error).message });
            }
            return fail(e);
          }
        },
        (e: unknown) => {
          if (isDescriptor) {
            this.metrics.descriptors.inc({ authority: this.name, outcome: 'rejected' });
            this.metrics.descriptorsRefused.inc({ authority: this.name, reason: 'invalid' });
          } else this.countPeerRefusal(path, e);
          fail(e);
          if (e instanceof HttpError && e.unread) drainThenClose(req);
        },
      );
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed');
    switch (path) {
      case '/tor/status-vote/current/consensus': {
        if (!this.latest) return reply(404, 'no consensus yet');
        return reply(200, this.latest.raw, OCTETS);
      }
      case NEXT_VOTE_PATH: {
        const r = this.rounds.get(this.nextValidAfterMs);
        const own = r?.votes.get(this.identityHex);
        if (!own) return reply(404, 'no vote yet');
        return reply(200, own.raw, OCTETS);
      }
      case NEXT_SIGNATURES_PATH: {
        const r = [...this.rounds.values()]
          .filter((x) => x.consensus !== null)
          .sort((a, b) => b.validAfterMs - a.validAfterMs)[0];
        if (!r?.consensus) return reply(404, 'no pending consensus');
        const sigs = [...r.signatures.values()];
        return reply(200, encodeSignedConsensus(r.consensus, sigs), OCTETS);
      }
      default:
        return reply(404, 'not found');
    }
  }
}

/**
 * Reads a request body of at most `limit` bytes. Beyond that it rejects with
 * HttpError 400 (as Tor answers a bad upload) marked `unread`.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? -1);
    if (declared > limit) {
      reject(new HttpError(400, `body of ${declared} bytes exceeds ${limit}`, true));
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const onData = (c: Buffer) => {
      total += c.length;
      if (total > limit) {
        done = true;
        req.off('data', onData);
        reject(new HttpError(400, `body exceeds ${limit} bytes`, true));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (!done) resolve(new Uint8Array(Buffer.concat(chunks)));
    });
    req.on('error', (e) => {
      if (!done) {
        done = true;
        reject(new HttpError(400, e.message));
      }
    });
  });
}

/** Discards the rest of an oversized upload (up to a cap) so the client reads our 400, then hangs up. */
function drainThenClose(req: http.IncomingMessage): void {
  let seen = 0;
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > MAX_DRAIN_BYTES) req.socket.destroy();
  });
  req.resume();
}
