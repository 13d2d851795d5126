// The service's rendezvous retries on their own (rendezvous-retry.ts): the
// attempt count from hs_service_max_rdv_failures (C tor default 2, bounds
// 1..10), the doubling backoff, C tor's 30 s MAX_REND_TIMEOUT as a deadline
// no attempt starts after, and a build still running at the deadline given
// up and its late circuit released.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  MAX_REND_FAILURES_DEFAULT,
  MAX_REND_TIMEOUT_MS,
  RendezvousTimeoutError,
  type RendRetryPolicy,
  rendRetryDelayMs,
  rendRetryPolicy,
  withRendezvousRetries,
} from '../../../services/onion-service/rendezvous-retry.js';

describe('rendRetryPolicy', () => {
  it('follows C tor: 2 builds by default, hs_service_max_rdv_failures clamped to 1..10, 30 s', () => {
    expect(rendRetryPolicy(undefined)).toEqual({ maxAttempts: MAX_REND_FAILURES_DEFAULT, timeoutMs: 30_000 });
    expect(MAX_REND_FAILURES_DEFAULT).toBe(2);
    expect(rendRetryPolicy({ hs_service_max_rdv_failures: 5 }).maxAttempts).toBe(5);
    expect(rendRetryPolicy({ hs_service_max_rdv_failures: 0 }).maxAttempts).toBe(1);
    expect(rendRetryPolicy({ hs_service_max_rdv_failures: 99 }).maxAttempts).toBe(10);
  });

  it('doubles the backoff from 250 ms', () => {
    expect([2, 3, 4, 5].map(rendRetryDelayMs)).toEqual([250, 500, 1000, 2000]);
  });
});

describe('withRendezvousRetries', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const hooks = (discarded: string[] = [], retries: number[] = []) => ({
    now: () => Date.now(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    discard: (late: string) => {
      discarded.push(late);
    },
    onRetry: (n: number) => {
      retries.push(n);
    },
  });
  const policy = (maxAttempts: number): RendRetryPolicy => ({ maxAttempts, timeoutMs: MAX_REND_TIMEOUT_MS });

  it('a build that fails once is retried after the backoff and its circuit returned', async () => {
    const retries: number[] = [];
    const started: number[] = [];
    let calls = 0;
    const attempt = async () => {
      started.push(Date.now());
      calls++;
      if (calls === 1) throw new Error('DESTROY from the second hop');
      return 'circuit';
    };
    const t0 = Date.now();
    const p = withRendezvousRetries(attempt, policy(2), hooks([], retries));
    await vi.runAllTimersAsync();
    await expect(p).resolves.toBe('circuit');
    expect(retries).toEqual([2]);
    expect(started.map((t) => t - t0)).toEqual([0, 250]);
  });

  it('gives up after maxAttempts builds with the last error', async () => {
    let calls = 0;
    const attempt = async () => {
      calls++;
      throw new Error(`failure ${calls}`);
    };
    const p = withRendezvousRetries(attempt, policy(3), hooks());
    p.catch(() => {});
    await vi.runAllTimersAsync();
    await expect(p).rejects.toThrow('failure 3');
    expect(calls).toBe(3);
  });

  it('launches no attempt past the 30 s deadline, however many the param allows', async () => {
    let calls = 0;
    const attempt = () =>
      new Promise<string>((_, reject) => {
        calls++;
        // Each build fails after 9 s: attempts at 0, 9.25, 18.75 and 28.75 s; the next would start past 30 s.
        setTimeout(() => reject(new Error('timed out')), 9_000);
      });
    const p = withRendezvousRetries(attempt, policy(10), hooks());
    p.catch(() => {});
    await vi.runAllTimersAsync();
    await expect(p).rejects.toBeInstanceOf(RendezvousTimeoutError);
    expect(calls).toBe(4);
  });

  it('gives up a build still running at the deadline and releases its late circuit', async () => {
    const discarded: string[] = [];
    const attempt = () => new Promise<string>((resolve) => setTimeout(() => resolve('late circuit'), 45_000));
    const p = withRendezvousRetries(attempt, policy(2), hooks(discarded));
    p.catch(() => {});
    await vi.advanceTimersByTimeAsync(MAX_REND_TIMEOUT_MS);
    await expect(p).rejects.toBeInstanceOf(RendezvousTimeoutError);
    expect(discarded).toEqual([]);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(discarded).toEqual(['late circuit']);
  });
});
