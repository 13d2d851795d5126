/**
 * One consensus per process for every relay it runs (issue 17): the relays
 * of a worker thread, a relay pool (pool.ts) or the one-process network
 * share one fetch schedule, one verified and parsed document and one index
 * by identity, instead of each relay fetching, verifying and holding its
 * own copy (dir-spec §4.4: relays are directory caches; what they cache is
 * the same document).
 *
 * Overview:
 * - Schedule (dir-spec §5.1, "Downloading networkstatus documents"):
 *   without a live consensus, fetch at once; otherwise "at a randomly
 *   chosen time in the first half-interval after its current consensus
 *   stops being fresh" (`cacheConsensusFetchTime`), the interval being
 *   fresh-until minus valid-after. Several processes therefore spread
 *   their fetches over half an interval instead of all asking at once.
 * - A failed fetch, or one that brought nothing newer once the held
 *   consensus is due, is retried after `retryDelayMs`: 1 s doubling to at
 *   most half an interval (and 60 s; 2 s while no live consensus is held),
 *   each delay jittered to 50-100 %, as
 *   C tor's exponential download backoff with jitter
 *   (download_status_increment_failure) rather than a fixed retry.
 * - `refresh()` fetches for a relay that met an identity its consensus
 *   does not list (network-view.ts): coalesced with a fetch in flight, and
 *   while a live consensus is held at most one such on-demand fetch per
 *   `minRefreshMs` for the whole process, so hostile EXTEND2s cannot make
 *   a relay a consensus-download amplifier against the authorities. The
 *   schedule's own fetches do not count against it: they did, so the
 *   first miss after bootstrap was refused its fetch and the relay refused
 *   EXTEND2s to a relay that had just joined for seconds. A refresh asked
 *   for sooner is refused at once (answered false) rather than held until
 *   the window ends: the authorities publish once per voting interval, so
 *   a second fetch within seconds rarely brings anything, and holding
 *   every refused EXTEND2 (a hostile one, or one to a relay just delisted)
 *   for up to `minRefreshMs` slowed refusals from milliseconds to seconds.
 * - A consensus older than the held one (a lagging authority) is never
 *   installed, so the view never goes back in time.
 * - `sharedConsensusCache` hands out one cache per authority set per
 *   process (per worker thread: module state is per thread), started by
 *   the first relay and stopped when the last one releases it.
 *
 * Not in this module: fetching and verifying (net/dir-client.ts
 * fetchConsensus, passed in as the fetcher); what relays do with a new
 * consensus (publisher.ts).
 */
import { toHex } from '../core/bytes.js';
import { randomBytes } from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { ConsensusRelay } from '../core/dir/relay-entry.js';
import { uniformFraction } from '../core/random.js';

export interface FetchedConsensus {
  consensus: Consensus;
  /** The document as served, kept for BEGIN_DIR clients. */
  raw: Uint8Array;
}

export type ConsensusFetcher = () => Promise<FetchedConsensus>;

export interface ConsensusCacheOptions {
  now?: () => number;
  /** Uniform in [0, 1): where in each fetch window and retry delay (default the OS CSPRNG). */
  uniform?: () => number;
  /** On-demand refreshes at most this often per cache (default 5 s). */
  minRefreshMs?: number;
}

/** The held consensus and its index by lowercase hex identity. */
export interface HeldConsensus extends FetchedConsensus {
  byId: ReadonlyMap<string, ConsensusRelay>;
}

/** Retries start at 1 s and double (C tor's schedules start near 0 and grow exponentially). */
const RETRY_BASE_MS = 1_000;
/** And never wait more than this, so a network that comes back is seen within a minute. */
const RETRY_MAX_MS = 60_000;
/**
 * Without a live consensus ("tries to fetch it immediately", dir-spec
 * §5.1) retries stay this short: a relay without one refuses every EXTEND2
 * (network-view.ts), so at bootstrap the first consensus must reach it
 * within seconds. One fetch per process, so this costs the authorities
 * little.
 */
const NO_LIVE_RETRY_MAX_MS = 2_000;
const DEFAULT_MIN_REFRESH_MS = 5_000;

/**
 * dir-spec §5.1: a directory cache fetches the next consensus at a random
 * time in the first half-interval after `c` stops being fresh;
 * `fraction` is uniform in [0, 1).
 */
export function cacheConsensusFetchTime(
  c: Pick<Consensus, 'validAfterMs' | 'freshUntilMs'>,
  fraction: number,
): number {
  const interval = Math.max(0, c.freshUntilMs - c.validAfterMs);
  return Math.floor(c.freshUntilMs + (fraction * interval) / 2);
}

/**
 * The wait before retry number `failures` (0 for the first): 1 s doubling,
 * at most half a voting interval and 60 s (2 s without a `live`
 * consensus), jittered to 50-100 % by
 * `fraction` so processes that failed together do not retry together.
 */
export function retryDelayMs(failures: number, intervalMs: number, fraction: number, live = true): number {
  const cap = live ? Math.max(RETRY_BASE_MS, Math.min(RETRY_MAX_MS, intervalMs / 2)) : NO_LIVE_RETRY_MAX_MS;
  const full = Math.min(cap, RETRY_BASE_MS * 2 ** Math.min(failures, 30));
  return Math.round(full * (0.5 + fraction / 2));
}

export class ConsensusCache {
  private held: HeldConsensus | null = null;
  /** When the held consensus is due to be replaced (drawn once per consensus). */
  private dueMs = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  /** When the last on-demand fetch (`refresh`) started; scheduled fetches do not count. */
  private lastOnDemandMs = Number.NEGATIVE_INFINITY;
  private attempted = false;
  private running = false;
  private readonly listeners = new Set<(c: HeldConsensus) => void>();
  private readonly now: () => number;
  private readonly uniform: () => number;
  private readonly minRefreshMs: number;
  /** Fetches started, for tests and the bench. */
  fetches = 0;

  constructor(
    private readonly fetcher: ConsensusFetcher,
    opts: ConsensusCacheOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.uniform = opts.uniform ?? (() => uniformFraction(randomBytes));
    this.minRefreshMs = opts.minRefreshMs ?? DEFAULT_MIN_REFRESH_MS;
  }

  get current(): HeldConsensus | null {
    return this.held;
  }

  get consensus(): Consensus | null {
    return this.held?.consensus ?? null;
  }

  /** Whether the held consensus is still valid (dir-spec §5.1 "live"). */
  private get live(): boolean {
    return this.held !== null && this.now() <= this.held.consensus.validUntilMs;
  }

  /** The consensus entry of `idHex` (lowercase hex identity), if listed. */
  entry(idHex: string): ConsensusRelay | undefined {
    return this.held?.byId.get(idHex);
  }

  /** Starts fetching (at once: nothing is held yet). */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.held) this.schedule(this.dueMs);
    else if (!this.inflight) void this.fetchNow();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Resolves once a first fetch has completed (whatever its outcome). */
  async ready(): Promise<void> {
    if (this.held || this.attempted) return;
    await (this.inflight ?? this.fetchNow());
  }

  /** Called with each newer consensus installed; returns the unsubscribe function. */
  subscribe(fn: (c: HeldConsensus) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Fetches now unless one is in flight (then waits for it) or, while a
   * live consensus is held, an on-demand fetch started within
   * `minRefreshMs` (scheduled fetches do not count); resolves whether this
   * call waited for a fetch.
   */
  async refresh(): Promise<boolean> {
    if (this.inflight) {
      await this.inflight;
      return true;
    }
    if (this.live && this.now() - this.lastOnDemandMs < this.minRefreshMs) return false;
    this.lastOnDemandMs = this.now();
    await this.fetchNow();
    return true;
  }

  private fetchNow(): Promise<void> {
    this.fetches++;
    const p = this.fetcher()
      .then(
        (f) => this.install(f),
        () => false,
      )
      .then((newer) => {
        this.attempted = true;
        this.inflight = null;
        this.afterAttempt(newer);
      });
    this.inflight = p;
    return p;
  }

  /** Installs `f` if newer than the held one; whether it was. */
  private install(f: FetchedConsensus): boolean {
    if (this.held && f.consensus.validAfterMs <= this.held.consensus.validAfterMs) return false;
    const byId = new Map<string, ConsensusRelay>();
    for (const r of f.consensus.relays) byId.set(toHex(r.identity), r);
    this.held = { ...f, byId };
    this.dueMs = cacheConsensusFetchTime(f.consensus, this.uniform());
    this.failures = 0;
    for (const fn of [...this.listeners]) fn(this.held);
    return true;
  }

  private afterAttempt(newer: boolean): void {
    if (!this.running) return;
    const now = this.now();
    if (this.dueMs > now) {
      this.schedule(this.dueMs);
      return;
    }
    // Nothing held, the fetch failed, or the authorities have nothing newer yet.
    const c = this.held?.consensus;
    const interval = c ? c.freshUntilMs - c.validAfterMs : RETRY_MAX_MS;
    if (!newer) this.failures++;
    const delay = retryDelayMs(Math.max(0, this.failures - 1), interval, this.uniform(), this.live);
    this.schedule(now + delay);
  }

  private schedule(atMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = null;
        if (!this.running) return;
        if (this.inflight) return; // its completion schedules the next one
        void this.fetchNow();
      },
      Math.max(0, atMs - this.now()),
    );
    this.timer.unref();
  }
}

interface Shared {
  cache: ConsensusCache;
  users: number;
}

/** This thread's caches by authority set (module state is per worker thread). */
const shared = new Map<string, Shared>();

/**
 * The process's cache for the authority set `key` (made by `make` on first
 * use and started); `release` once per acquisition stops it after the last.
 */
export function sharedConsensusCache(
  key: string,
  make: () => ConsensusCache,
): { cache: ConsensusCache; release: () => void } {
  let s = shared.get(key);
  if (!s) {
    s = { cache: make(), users: 0 };
    shared.set(key, s);
    s.cache.start();
  }
  s.users++;
  const entry = s;
  let released = false;
  return {
    cache: entry.cache,
    release: () => {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      entry.cache.stop();
      if (shared.get(key) === entry) shared.delete(key);
    },
  };
}
