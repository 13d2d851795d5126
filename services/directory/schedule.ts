/**
 * The clock side of an authority's voting schedule (dir-spec §1.4): the
 * first valid-after a newly started authority can still vote for, and the
 * one-shot timers its round steps run on, all cancelled at once when it
 * stops.
 *
 * Not in this module: what each step does and when in a round it runs
 * (authority.ts scheduleRound), the rounds' state (round.ts), the interval
 * and delays (config.ts resolveTiming).
 *
 * Design notes: times are on the authority's injected clock, so a test's
 * fake clock moves the schedule; Node's timers only wait the difference.
 * A step never runs before its time on that clock: Node's timers count
 * whole milliseconds of the monotonic clock, so one set for Date.now()-time
 * T fires with Date.now() = T - 1 about once in 40, and the publish step
 * at VA then found its consensus not yet due and the round was lost for
 * that authority (a new network's first consensus: 404 after ready). Such
 * a timer is set again for the rest, as C tor runs a step once its time
 * has come (dirvote_act).
 * A step that throws or rejects is logged, never an unhandled rejection: the
 * next round is scheduled regardless.
 */
import type { Logger } from '../runtime/log.js';
import type { Timing } from './config.js';

/** The first VA that leaves the vote and distribution delays from `nowMs` (VA a multiple of the interval). */
export function firstValidAfter(nowMs: number, timing: Timing): number {
  const earliest = nowMs + timing.voteDelayMs + timing.distDelayMs;
  return Math.ceil(earliest / timing.intervalMs) * timing.intervalMs;
}

/** Timers that run an authority's steps until it stops. */
export class StepTimers {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly c: {
      now: () => number;
      log: Logger;
      /** Whether the authority has stopped: nothing is scheduled or run then. */
      stopped: () => boolean;
    },
  ) {}

  /** Runs `fn` once the injected clock reads `timeMs` or later (at once if that has passed), never before. */
  at(timeMs: number, fn: () => Promise<void> | void): void {
    if (this.c.stopped()) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (this.c.stopped()) return;
        // Fired early on the injected clock (see the header): wait the rest.
        if (this.c.now() < timeMs) {
          this.at(timeMs, fn);
          return;
        }
        Promise.resolve()
          .then(fn)
          .catch((e: unknown) => this.c.log.error('scheduled step failed', { error: (e as Error).message }));
      },
      Math.max(0, timeMs - this.c.now()),
    );
    this.timers.add(t);
  }

  /** Runs `fn` every `ms` until cleared, without keeping the process alive. */
  every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.add(t);
  }

  /** Cancels every timer. */
  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
