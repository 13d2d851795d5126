/**
 * Circuit build timeout learning (path-spec §2.4; C tor `circuitstats.c`).
 *
 * Overview: record how long 3-hop circuits take to build, fit a Pareto
 * distribution to the last 1000 times, and time out builds slower than the
 * 80th percentile (abandon them at the 99th). Before 100 builds the timeout
 * is 60 s and the client should launch test circuits to learn faster.
 *
 * Not in this module: timers and the test-circuit launcher (the client owns
 * them); this class only answers "how long?" and "should I test now?".
 *
 * Design notes:
 * - Two timeouts, as C tor's `circuit_expire_building`: a build slower than
 *   `timeoutMs()` has *timed out* (`countTimeout()`: the caller launches
 *   another build but lets this one go on, C tor's MEASURE_TIMEOUT
 *   purpose), and one still unfinished at `closeMs()` (at least 60 s) is
 *   *abandoned* (`addAbandoned()`); in the fit an abandoned build counts as
 *   a right-censored observation at the largest time seen, as C tor's
 *   CBT_BUILD_ABANDONED does. A timed-out build that completes adds its real
 *   time. So a learned timeout of a few ms on loopback makes a burst of CPU
 *   load launch extra builds, never fail a request by itself.
 * - Hidden-service circuits (`hsCloseMs`): C tor flags a timed-out
 *   intro/rendezvous circuit `hs_circ_has_timed_out` and closes it only at
 *   MAX(2 * close + 1 s, SocksTimeout); `hsTimeoutMs` adds C tor's 1 s to the
 *   scaled soft timeout of those longer circuits.
 * - The network-change rule looks at the last 20 circuits (successes and
 *   timeouts); callers should report only circuits whose first hop
 *   completed, as C tor's `timeouts_after_firsthop` does.
 * - On a reset the history is cleared and the timeout goes back to 60 s,
 *   or doubles if it was already at least 60 s — so a client still learning
 *   moves to 120 s (C tor `circuit_build_times_network_check_changed`).
 *
 * Consensus parameters (`setParams`, dir-spec §3.4.1, C tor's names and
 * bounds): cbtmintimeout (floor on the learned timeout, default 10 ms),
 * cbtinitialtimeout (60 s), cbtrecentcount (20), cbtmaxtimeouts (18).
 *
 * Limitations: no cbtquantile/cbtclosequantile/cbtnummodes overrides; no
 * network-liveness gate (C tor ignores timeouts while no cell arrives on
 * any channel; here every channel is on loopback).
 */
import { boundedParam } from './consensus-param.js';
import { InvalidError } from './errors.js';

export const CBT_DEFAULTS = {
  maxObservations: 1000,
  binWidthMs: 10,
  numModes: 10,
  minCircuits: 100,
  quantile: 0.8,
  closeQuantile: 0.99,
  recentCircuits: 20,
  maxRecentTimeouts: 18,
  initialTimeoutMs: 60_000,
  minTimeoutMs: 10,
  testCircuitIntervalMs: 10_000,
  maxOpenTestCircuits: 10,
} as const;

/** Sentinel for an abandoned (timed-out) build in the history. */
const ABANDONED = -1;

/** Largest build time accepted (C tor CBT_BUILD_TIME_MAX is INT32_MAX ms). */
const MAX_BUILD_MS = 2 ** 31 - 1;

export interface CbtState {
  version: 1;
  /** Build times in ms, oldest first; -1 marks an abandoned build. */
  times: number[];
  /** Last circuits for the network-change rule, oldest first; true = timed out. */
  recent: boolean[];
  /** Timeout and close times used until enough builds are recorded. */
  baseTimeoutMs: number;
  baseCloseMs: number;
}

/** The consensus-tunable part of CBT_DEFAULTS (C tor `circuitstats.c` names in `setParams`). */
export interface CbtParams {
  minTimeoutMs: number;
  initialTimeoutMs: number;
  recentCircuits: number;
  maxRecentTimeouts: number;
}

/** CbtParams from consensus params, each within C tor's bounds, else C tor's default. */
export function cbtParamsFrom(params: Record<string, number>): CbtParams {
  const recentCircuits = boundedParam(params, 'cbtrecentcount', CBT_DEFAULTS.recentCircuits, 3, 1000);
  return {
    minTimeoutMs: boundedParam(params, 'cbtmintimeout', CBT_DEFAULTS.minTimeoutMs, 10, 2 ** 31 - 1),
    initialTimeoutMs: boundedParam(
      params,
      'cbtinitialtimeout',
      CBT_DEFAULTS.initialTimeoutMs,
      10,
      2 ** 31 - 1,
    ),
    recentCircuits,
    // C tor clamps cbtmaxtimeouts to [3, 10000]; more than the window can never trigger.
    maxRecentTimeouts: Math.min(
      boundedParam(params, 'cbtmaxtimeouts', CBT_DEFAULTS.maxRecentTimeouts, 3, 10_000),
      recentCircuits,
    ),
  };
}

export interface ParetoFit {
  xm: number;
  alpha: number;
}

export class CircuitBuildTimeout {
  private times: number[] = [];
  private recent: boolean[] = [];
  private baseTimeoutMs: number = CBT_DEFAULTS.initialTimeoutMs;
  private baseCloseMs: number = CBT_DEFAULTS.initialTimeoutMs;
  private cache: { timeout: number; close: number; fit: ParetoFit | undefined } | undefined;
  private p: CbtParams = { ...CBT_DEFAULTS };

  /** Applies consensus parameters (`cbtParamsFrom`); a changed initial timeout applies while learning. */
  setParams(p: CbtParams): void {
    if (this.baseTimeoutMs === this.p.initialTimeoutMs && this.baseCloseMs === this.p.initialTimeoutMs) {
      this.baseTimeoutMs = p.initialTimeoutMs;
      this.baseCloseMs = p.initialTimeoutMs;
    }
    this.p = { ...p };
    while (this.recent.length > p.recentCircuits) this.recent.shift();
    this.cache = undefined;
  }

  /**
   * A circuit of `hops` hops built in `ms`. Only 3-hop times feed the fit.
   * `timedOut`: it had passed `timeoutMs()` (and was counted then), so it
   * does not count as a success for the network-change rule.
   */
  addBuildTime(ms: number, hops = 3, timedOut = false): void {
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidError('build time', 'not a non-negative number');
    if (hops === 3) this.pushTime(Math.min(Math.round(ms), MAX_BUILD_MS));
    if (!timedOut) this.pushRecent(false);
  }

  /** A build passed the timeout (C tor `circuit_build_times_count_timeout`); it may still complete. */
  countTimeout(): void {
    this.pushRecent(true);
    this.checkNetworkChanged();
  }

  /** A timed-out build was still unfinished at the close timeout (C tor `circuit_build_times_count_close`). */
  addAbandoned(): void {
    this.pushTime(ABANDONED);
  }

  /** Number of build outcomes in the history (completed and abandoned). */
  get count(): number {
    return this.times.length;
  }

  /** True until enough builds are recorded to fit (C tor `circuit_build_times_needs_circuits`). */
  needsTestCircuits(): boolean {
    return this.times.length < CBT_DEFAULTS.minCircuits;
  }

  /** Whether to launch a test circuit now: while learning, every 10 s, at most 10 open. */
  shouldLaunchTestCircuit(
    nowMs: number,
    lastLaunchMs: number | undefined,
    openTestCircuits: number,
  ): boolean {
    return (
      this.needsTestCircuits() &&
      openTestCircuits < CBT_DEFAULTS.maxOpenTestCircuits &&
      (lastLaunchMs === undefined || nowMs - lastLaunchMs >= CBT_DEFAULTS.testCircuitIntervalMs)
    );
  }

  /** The fitted Pareto parameters, or undefined before 100 builds. */
  paretoFit(): ParetoFit | undefined {
    return this.compute().fit;
  }

  /** Time after which a 3-hop build counts as timed out. */
  timeoutMs(): number {
    return this.compute().timeout;
  }

  /** Time after which a timed-out build is abandoned. */
  closeMs(): number {
    return this.compute().close;
  }

  /** path-spec §2.4: other lengths scale by N(N+1)/12 (1 for three hops). */
  scaledTimeoutMs(hops: number): number {
    return Math.round((this.timeoutMs() * hops * (hops + 1)) / 12);
  }

  scaledCloseMs(hops: number): number {
    return Math.round((this.closeMs() * hops * (hops + 1)) / 12);
  }

  /** Soft timeout of an onion-service circuit: the scaled timeout plus C tor's 1 s (`fourhop_cutoff`, `c_intro_cutoff`). */
  hsTimeoutMs(hops: number): number {
    return this.scaledTimeoutMs(hops) + 1000;
  }

  /** C tor `hs_extremely_old_cutoff`: a timed-out onion-service circuit is closed at MAX(2 * close + 1 s, SocksTimeout). */
  hsCloseMs(socksTimeoutMs: number): number {
    return Math.max(2 * this.closeMs() + 1000, socksTimeoutMs);
  }

  state(): CbtState {
    return {
      version: 1,
      times: [...this.times],
      recent: [...this.recent],
      baseTimeoutMs: this.baseTimeoutMs,
      baseCloseMs: this.baseCloseMs,
    };
  }

  /** Restore from `state()` output (e.g. parsed JSON); throws InvalidError if malformed. */
  static fromState(s: unknown): CircuitBuildTimeout {
    if (typeof s !== 'object' || s === null) throw new InvalidError('cbt state', 'not an object');
    const o = s as Record<string, unknown>;
    if (o.version !== 1) throw new InvalidError('cbt state', 'unsupported version');
    const { times, recent, baseTimeoutMs, baseCloseMs } = o;
    if (!Array.isArray(times) || times.length > CBT_DEFAULTS.maxObservations)
      throw new InvalidError('cbt state', 'bad times');
    for (const t of times) {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < ABANDONED || t > MAX_BUILD_MS)
        throw new InvalidError('cbt state', 'bad build time');
    }
    // 1000: cbtrecentcount's upper bound.
    if (!Array.isArray(recent) || recent.length > 1000 || recent.some((r) => typeof r !== 'boolean'))
      throw new InvalidError('cbt state', 'bad recent list');
    for (const v of [baseTimeoutMs, baseCloseMs]) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_BUILD_MS)
        throw new InvalidError('cbt state', 'bad base timeout');
    }
    const c = new CircuitBuildTimeout();
    c.times = [...(times as number[])];
    c.recent = [...(recent as boolean[])];
    c.baseTimeoutMs = baseTimeoutMs as number;
    c.baseCloseMs = baseCloseMs as number;
    return c;
  }

  private pushTime(t: number): void {
    this.times.push(t);
    if (this.times.length > CBT_DEFAULTS.maxObservations) this.times.shift();
    this.cache = undefined;
  }

  private pushRecent(timedOut: boolean): void {
    this.recent.push(timedOut);
    if (this.recent.length > this.p.recentCircuits) this.recent.shift();
  }

  /** Reset when 18 of the last 20 circuits timed out (cbtmaxtimeouts of cbtrecentcount): the network probably changed. */
  private checkNetworkChanged(): void {
    if (this.recent.filter((x) => x).length < this.p.maxRecentTimeouts) return;
    const current = this.compute();
    if (current.timeout < this.p.initialTimeoutMs) {
      this.baseTimeoutMs = this.p.initialTimeoutMs;
      this.baseCloseMs = this.p.initialTimeoutMs;
    } else {
      // Already at or above 60 s (e.g. still learning): double, for clients on very slow networks.
      this.baseTimeoutMs = Math.min(current.timeout * 2, MAX_BUILD_MS / 2);
      this.baseCloseMs = Math.min(current.close * 2, MAX_BUILD_MS / 2);
    }
    this.times = [];
    this.recent = [];
    this.cache = undefined;
  }

  private compute(): { timeout: number; close: number; fit: ParetoFit | undefined } {
    if (this.cache) return this.cache;
    const fit = this.times.length >= CBT_DEFAULTS.minCircuits ? fitPareto(this.times) : undefined;
    if (!fit) {
      this.cache = { timeout: this.baseTimeoutMs, close: this.baseCloseMs, fit: undefined };
      return this.cache;
    }
    const maxTime = Math.max(...this.times);
    // C tor `circuit_build_times_set_timeout_worker`: cap at the largest
    // observed time; close at the 99th percentile, at most 2x that, at least 60 s.
    let timeout = Math.min(paretoQuantile(fit, CBT_DEFAULTS.quantile), maxTime);
    // cbtmintimeout: the floor (C tor `circuit_build_times_min_timeout`).
    timeout = Math.max(timeout, this.p.minTimeoutMs);
    let close = Math.min(paretoQuantile(fit, CBT_DEFAULTS.closeQuantile), 2 * maxTime);
    close = Math.max(close, this.p.initialTimeoutMs, timeout);
    this.cache = { timeout: Math.round(timeout), close: Math.round(close), fit };
    return this.cache;
  }
}

/** Pareto inverse CDF: Xm / (1-q)^(1/alpha). */
export function paretoQuantile(fit: ParetoFit, q: number): number {
  return fit.xm / (1 - q) ** (1 / fit.alpha);
}

/**
 * C tor `circuit_build_times_get_xm` / `update_alpha`: Xm is the
 * count-weighted mean of the midpoints of the `numModes` fullest 10 ms bins
 * (ties go to the faster bin); alpha is the maximum-likelihood estimate
 * with abandoned builds censored at the largest observed time. Returns
 * undefined if no build completed.
 */
export function fitPareto(
  times: readonly number[],
  numModes: number = CBT_DEFAULTS.numModes,
): ParetoFit | undefined {
  const done = times.filter((t) => t >= 0);
  if (done.length === 0) return undefined;
  const bins = new Map<number, number>();
  for (const t of done) {
    const b = Math.floor(t / CBT_DEFAULTS.binWidthMs);
    bins.set(b, (bins.get(b) ?? 0) + 1);
  }
  const top = [...bins.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, numModes);
  let num = 0;
  let den = 0;
  for (const [b, c] of top) {
    num += (b * CBT_DEFAULTS.binWidthMs + CBT_DEFAULTS.binWidthMs / 2) * c;
    den += c;
  }
  const xm = num / den;
  const maxTime = Math.max(...done);
  const abandoned = times.length - done.length;
  let a = 0;
  for (const t of done) a += Math.log(Math.max(xm, t));
  a += abandoned * Math.log(Math.max(xm, maxTime));
  const n = times.length;
  a -= n * Math.log(xm);
  // All times at or below Xm: the distribution is a spike, alpha is unbounded.
  const alpha = a > 0 ? n / a : Number.POSITIVE_INFINITY;
  return { xm, alpha };
}
