// An authority's schedule clock (directory/schedule.ts, dir-spec §1.4): the
// first valid-after leaves the vote and distribution delays; steps run at
// their time on the injected clock, never before it (a Node timer that
// fires while that clock still reads a millisecond short waits the rest),
// not after a stop or a clear, and one that throws or rejects is logged
// without stopping the others.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Timing } from '../../../services/directory/config.js';
import { firstValidAfter, StepTimers } from '../../../services/directory/schedule.js';
import { silentLogger } from '../../../services/runtime/log.js';

const timing: Timing = { intervalMs: 20_000, voteDelayMs: 4_000, distDelayMs: 4_000, probeTimeoutMs: 3_000 };

describe('firstValidAfter', () => {
  it('is the first multiple of the interval at least V + D away', () => {
    expect(firstValidAfter(0, timing)).toBe(20_000);
    expect(firstValidAfter(12_000, timing)).toBe(20_000);
    expect(firstValidAfter(12_001, timing)).toBe(40_000);
    expect(firstValidAfter(40_000, timing)).toBe(60_000);
  });
});

describe('StepTimers', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  function timers(opts: { clockOffsetMs?: number } = {}) {
    const errors: string[] = [];
    const log = { ...silentLogger, error: (msg: string) => void errors.push(msg) };
    const state = { stopped: false, offsetMs: opts.clockOffsetMs ?? 0 };
    // The injected clock may differ from Node's: steps wait the difference on it.
    const now = () => Date.now() + state.offsetMs;
    return { t: new StepTimers({ now, log, stopped: () => state.stopped }), errors, state, now };
  }

  it('runs each step at its time on the injected clock, a past one at once', async () => {
    const { t, now } = timers({ clockOffsetMs: 500_000 });
    const ran: string[] = [];
    t.at(now() + 3_000, () => void ran.push('b'));
    t.at(now() + 1_000, () => void ran.push('a'));
    t.at(now() - 5_000, () => void ran.push('past'));
    await vi.advanceTimersByTimeAsync(0);
    expect(ran).toEqual(['past']);
    await vi.advanceTimersByTimeAsync(999);
    expect(ran).toEqual(['past']);
    await vi.advanceTimersByTimeAsync(1);
    expect(ran).toEqual(['past', 'a']);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(ran).toEqual(['past', 'a', 'b']);
  });

  it('never runs a step before its time on the injected clock, even when the timer fires early', async () => {
    // Node's timers count whole ms of the monotonic clock; Date.now() can read 1 ms short
    // when one fires (about 1 in 40). Here the injected clock falls 1 ms behind Node's
    // after the step is armed, so Node's timer comes due while it reads T - 1.
    const { t, state, now } = timers();
    const due = now() + 1_000;
    const seen: number[] = [];
    t.at(due, () => void seen.push(now()));
    state.offsetMs = -1;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(now()).toBe(due - 1);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual([due]);
    // Run once, not again from the first timer.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(seen).toEqual([due]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('logs a step that throws or rejects, and runs the next', async () => {
    const { t, errors, now } = timers();
    const ran: string[] = [];
    t.at(now() + 10, () => {
      throw new Error('boom');
    });
    t.at(now() + 20, async () => {
      throw new Error('later boom');
    });
    t.at(now() + 30, () => void ran.push('next'));
    await vi.advanceTimersByTimeAsync(30);
    expect(errors).toEqual(['scheduled step failed', 'scheduled step failed']);
    expect(ran).toEqual(['next']);
  });

  it('runs nothing once stopped, schedules nothing while stopped, and clear cancels steps and intervals', async () => {
    const { t, state, now } = timers();
    const ran: string[] = [];
    t.at(now() + 10, () => void ran.push('stopped before'));
    state.stopped = true;
    t.at(now() + 10, () => void ran.push('scheduled while stopped'));
    await vi.advanceTimersByTimeAsync(20);
    expect(ran).toEqual([]);
    state.stopped = false;
    t.at(now() + 10, () => void ran.push('cleared'));
    t.every(5, () => void ran.push('tick'));
    await vi.advanceTimersByTimeAsync(5);
    expect(ran).toEqual(['tick']);
    t.clear();
    await vi.advanceTimersByTimeAsync(100);
    expect(ran).toEqual(['tick']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
