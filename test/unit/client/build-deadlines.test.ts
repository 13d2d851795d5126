// One build attempt's clocks (client/build-deadlines.ts, path-spec §2.4):
// the soft timeout marks the attempt timed out and lets it go on; the close
// timeout and a hop that leaves its CREATE2/EXTEND2 unanswered abandon it
// with a CircuitError of kind 'timeout' after the builder's callback; a new
// hop replaces the previous hop's timer; clear stops them all.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BuildDeadlines } from '../../../services/client/build-deadlines.js';
import { HopSilentError } from '../../../services/client/build-race.js';
import { CircuitError } from '../../../services/net/circuit-error.js';

const hop = (nickname: string) => ({ id: `${nickname}-id`, nickname });

function deadlines(softMs = 100, closeMs = 1_000, hopMs = 300) {
  const calls: string[] = [];
  const d = new BuildDeadlines({
    softMs,
    closeMs,
    hopMs,
    onSoftTimeout: () => calls.push(`soft timedOut=${d.timedOut}`),
    onClose: () => calls.push('close'),
    onHopSilent: (h) => calls.push(`silent ${h.nickname}`),
  });
  let rejection: unknown;
  d.abandoned.catch((e) => {
    calls.push('abandoned');
    rejection = e;
  });
  return { d, calls, rejection: () => rejection };
}

describe('BuildDeadlines', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('the soft timeout only marks the attempt; the close timeout abandons it', async () => {
    const { d, calls, rejection } = deadlines();
    await vi.advanceTimersByTimeAsync(99);
    expect(d.timedOut).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(['soft timedOut=true']);
    await vi.advanceTimersByTimeAsync(900);
    expect(calls).toEqual(['soft timedOut=true', 'close', 'abandoned']);
    expect(rejection()).toBeInstanceOf(CircuitError);
    expect((rejection() as CircuitError).kind).toBe('timeout');
    expect((rejection() as Error).message).toContain('1000 ms');
  });

  it('a silent hop abandons the attempt; each watch restarts the timer for the new hop', async () => {
    const { d, calls, rejection } = deadlines(10_000, 20_000);
    d.watch(hop('guard'));
    await vi.advanceTimersByTimeAsync(299);
    d.watch(hop('middle'));
    await vi.advanceTimersByTimeAsync(299);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(['silent middle', 'abandoned']);
    expect((rejection() as Error).message).toBe('middle did not answer');
    // Named by id, so a request whose last hop it is fails without another attempt (build-race.ts).
    expect(rejection()).toBeInstanceOf(HopSilentError);
    expect((rejection() as HopSilentError).hopId).toBe('middle-id');
    d.clear();
  });

  it('clear stops every timer', async () => {
    const { d, calls } = deadlines();
    d.watch(hop('guard'));
    d.clear();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toEqual([]);
    expect(d.timedOut).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
