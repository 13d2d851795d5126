/**
 * Backoff for `shallot load` when requests keep failing, so a dead proxy,
 * network or target is probed a few times a second at most instead of
 * being hammered hundreds of times a second (issue 13).
 *
 * Overview: after k consecutive failures the next request may start only
 * `min(max, base · 2^(k-1))` ms after the last failure ended, and while
 * failures are consecutive only one request is in flight (a probe: the
 * half-open state of a circuit breaker), so the delay paces the whole run,
 * not each worker. The first success resets both. Each pause is kept as an
 * interval so the report can draw it on the timeline.
 *
 * Design notes: doubling with a cap is the shape of C tor's download
 * backoff (dlstatus.c, download_status_increment_failure); without its
 * random jitter, since one load generator has no herd to spread and a
 * deterministic schedule is easier to read in a report. The defaults: base
 * 100 ms is well above a loopback round trip, so even a proxy that refuses
 * at once sees at most ~10 attempts/s; the cap of 5 s means a recovery is
 * noticed within 5 s, short against the 30 s stalls the report must show.
 *
 * Not in this module: the clock and the waiting (loadgen.ts passes times in).
 */

export const BACKOFF_BASE_MS = 100;
export const DEFAULT_BACKOFF_MAX_SEC = 5;

/** The pause after `failures` consecutive failures (0 for none or when `maxMs` is 0). */
export function backoffDelayMs(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0 || maxMs <= 0) return 0;
  // 2^(k-1) overflows to Infinity for large k; min() still gives the cap.
  return Math.min(maxMs, baseMs * 2 ** (failures - 1));
}

/** A pause the run took, ms since its start. */
export interface Pause {
  startMs: number;
  endMs: number;
}

export class Backoff {
  /** Consecutive failures so far (0 after any success). */
  failures = 0;
  /** No request may start before this time (ms since the run started). */
  untilMs = 0;
  /** A probe is in flight while failures are consecutive. */
  probing = false;
  readonly pauses: Pause[] = [];

  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
  ) {}

  /** How long a worker must wait at `nowMs` before starting (Infinity: wait for the probe to end). */
  waitMs(nowMs: number): number {
    if (this.failures === 0 || this.maxMs <= 0) return 0;
    if (this.probing) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.untilMs - nowMs);
  }

  /** A request starts now; during a failure streak it is the probe. */
  started(): void {
    if (this.failures > 0 && this.maxMs > 0) this.probing = true;
  }

  /** A request ended at `nowMs`. Returns the pause it caused (0 for none). */
  ended(ok: boolean, nowMs: number): number {
    this.probing = false;
    if (ok) {
      this.failures = 0;
      this.untilMs = 0;
      // A request from before the streak succeeded: the pause ends here.
      const last = this.pauses[this.pauses.length - 1];
      if (last && last.endMs > nowMs) last.endMs = Math.max(last.startMs, nowMs);
      return 0;
    }
    this.failures++;
    const delay = backoffDelayMs(this.failures, this.baseMs, this.maxMs);
    if (delay === 0) return 0;
    const until = Math.max(this.untilMs, nowMs + delay);
    const last = this.pauses[this.pauses.length - 1];
    // Failures of requests already in flight extend the pause rather than start another.
    if (last && last.endMs >= nowMs) last.endMs = Math.max(last.endMs, until);
    else this.pauses.push({ startMs: nowMs, endMs: until });
    this.untilMs = until;
    return delay;
  }
}
