// When a relay uploads its descriptor (services/relay/publisher.ts), as C
// tor's router.c: unchanged, once per 18 voting intervals (before the
// authorities' 24 drop it); to authorities that did not take it, again after
// a jittered backoff (short while a majority lacks it); and "retry fast"
// when a consensus voted two intervals after the upload does not list it,
// or lists an older one.
import { describe, expect, it } from 'vitest';
import {
  FAST_RETRY_INTERVALS,
  needsFastRetry,
  nextUploadAt,
  RETRY_MINORITY_INTERVALS,
} from '../../../services/relay/publisher.js';

const I = 10_000;
const T = 1_700_000_000_000;

describe('nextUploadAt', () => {
  const base = { publishedMs: T, lastTryMs: T, failures: 0, pending: 0, authorities: 3, intervalMs: I };

  it('refreshes an unchanged descriptor 17-18 intervals after publishing it', () => {
    for (const fraction of [0, 0.3, 0.999_999]) {
      const { atMs, retry } = nextUploadAt({ ...base, fraction });
      expect(retry).toBe(false);
      expect(atMs).toBeGreaterThan(T + 17 * I - 1);
      expect(atMs).toBeLessThanOrEqual(T + 18 * I);
    }
    // C tor's 18 h at a 1 h interval (minus at most 1 h of spread).
    expect(nextUploadAt({ ...base, intervalMs: 3600_000, fraction: 0 }).atMs).toBe(T + 18 * 3600_000);
  });

  it('takes an explicit republish period, spread by at most a quarter of it', () => {
    expect(nextUploadAt({ ...base, republishMs: 60_000, fraction: 0 }).atMs).toBe(T + 60_000);
    expect(nextUploadAt({ ...base, republishMs: 4_000, fraction: 0.99 }).atMs).toBeGreaterThanOrEqual(
      T + 3_000,
    );
  });

  it('retries authorities a majority of which lack it after 1 s doubling, at most half an interval', () => {
    const at = (failures: number) => {
      const n = nextUploadAt({ ...base, failures, pending: 2, fraction: 0.999_999 });
      expect(n.retry).toBe(true);
      return n.atMs - T;
    };
    expect([1, 2, 3, 4, 5, 9].map(at)).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('retries a minority that missed it more slowly, and always before the authorities drop it', () => {
    const at = (failures: number) => nextUploadAt({ ...base, failures, pending: 1, fraction: 0.999_999 });
    expect(at(1)).toEqual({ atMs: T + 1000, retry: true });
    expect(at(5).atMs - T).toBe(16_000);
    expect(at(30).atMs - T).toBe(RETRY_MINORITY_INTERVALS * I);
    // Retries count from the last try, the refresh from publication: a late retry gives way to the refresh.
    const late = nextUploadAt({ ...base, lastTryMs: T + 17 * I, failures: 30, pending: 1, fraction: 0 });
    expect(late.retry).toBe(false);
    expect(late.atMs).toBe(T + 18 * I);
  });

  it('without failures, pending authorities (a refused upload) do not cause retries', () => {
    expect(nextUploadAt({ ...base, pending: 3, fraction: 0 }).retry).toBe(false);
  });
});

describe('needsFastRetry', () => {
  const c = (va: number) => ({ validAfterMs: va, freshUntilMs: va + I });
  const last = { atMs: T, publishedMs: T };

  it('waits until a consensus voted FAST_RETRY_INTERVALS after the upload', () => {
    expect(FAST_RETRY_INTERVALS).toBe(2);
    expect(needsFastRetry(c(T + I), undefined, last)).toBe(false);
    expect(needsFastRetry(c(T + 2 * I - 1), undefined, last)).toBe(false);
    expect(needsFastRetry(c(T + 2 * I), undefined, last)).toBe(true);
  });

  it('uploads again when not listed or listed with an older descriptor, not when listed with ours', () => {
    const later = c(T + 5 * I);
    expect(needsFastRetry(later, undefined, last)).toBe(true);
    expect(needsFastRetry(later, { publishedMs: T - 1 }, last)).toBe(true);
    expect(needsFastRetry(later, { publishedMs: T }, last)).toBe(false);
    // An authority cannot have a newer one than we uploaded; if it lists one, there is nothing to fix.
    expect(needsFastRetry(later, { publishedMs: T + 1 }, last)).toBe(false);
  });
});
