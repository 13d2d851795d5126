// An authority's schedule clock (directory/schedule.ts, dir-spec §1.4): the
// first valid-after leaves the vote and distribution delays; steps run at
// their time on the injected clock, not after a stop or a clear, and one
// that throws or rejects is logged without stopping the others.
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
    const state = { stopped: false };
    // The injected clock may differ from Node's: steps wait the difference on it.
    const now = () => Date.now() + (opts.clockOffsetMs ?? 0);
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
