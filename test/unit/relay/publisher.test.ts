// When a relay uploads its descriptor (services/relay/publisher.ts), as C
// tor's router.c: unchanged, once per 18 voting intervals (before the
// authorities' 24 drop it); after an upload a majority refused, again after
// a short jittered backoff; and "retry fast" when a consensus voted two
// intervals after the upload does not list it, or lists an older one.
import { describe, expect, it } from 'vitest';
import { descriptorMaxAgeMs } from '../../../services/core/dir/descriptor.js';
import { FAST_RETRY_INTERVALS, needsFastRetry, nextUploadAt } from '../../../services/relay/publisher.js';

const I = 10_000;
const T = 1_700_000_000_000;

describe('nextUploadAt', () => {
  it('refreshes an unchanged descriptor 17-18 intervals after the last upload, inside the authorities limit', () => {
    for (const fraction of [0, 0.3, 0.999_999]) {
      const at = nextUploadAt({ lastUploadMs: T, failures: 0, intervalMs: I, fraction });
      expect(at).toBeGreaterThan(T + 17 * I - 1);
      expect(at).toBeLessThanOrEqual(T + 18 * I);
      expect(at).toBeLessThan(T + descriptorMaxAgeMs(I) - 5 * I);
    }
    // C tor's 18 h at a 1 h interval (minus at most 1 h of spread).
    const live = nextUploadAt({ lastUploadMs: T, failures: 0, intervalMs: 3600_000, fraction: 0 });
    expect(live).toBe(T + 18 * 3600_000);
  });

  it('takes an explicit republish period, spread by at most a quarter of it', () => {
    expect(
      nextUploadAt({ lastUploadMs: T, failures: 0, intervalMs: I, republishMs: 60_000, fraction: 0 }),
    ).toBe(T + 60_000);
    const late = nextUploadAt({
      lastUploadMs: T,
      failures: 0,
      intervalMs: I,
      republishMs: 4_000,
      fraction: 0.99,
    });
    expect(late).toBeGreaterThanOrEqual(T + 3_000);
  });

  it('retries a refused upload after 1 s doubling, at most half an interval', () => {
    const at = (failures: number) =>
      nextUploadAt({ lastUploadMs: T, failures, intervalMs: I, fraction: 0.999_999 }) - T;
    expect([1, 2, 3, 4, 5, 9].map(at)).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
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
