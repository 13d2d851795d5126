// The process's shared consensus (services/relay/consensus-cache.ts):
// dir-spec §5.1's fetch window for caches, jittered exponential retries, one
// fetch for every relay of a process, coalesced and rate-limited on-demand
// refreshes, never going back to an older consensus, and the per-process
// registry. Timers are vitest's fake ones; the clock moves with them.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import {
  ConsensusCache,
  cacheConsensusFetchTime,
  type FetchedConsensus,
  retryDelayMs,
  sharedConsensusCache,
} from '../../../services/relay/consensus-cache.js';
import { testRelay } from '../../helpers/fake-consensus.js';

const I = 10_000;
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % I);

function relay(b: number): ConsensusRelay {
  return testRelay({ identity: new Uint8Array(32).fill(b), orPort: 9000 + b });
}

/** The consensus of valid-after `va`, listing relays `ids`. */
function consensus(va: number, ids: number[] = [1]): FetchedConsensus {
  const c: Consensus = {
    validAfterMs: va,
    freshUntilMs: va + I,
    validUntilMs: va + 3 * I,
    votingIntervalSec: I / 1000,
    knownFlags: ['Running', 'Valid'],
    params: {},
    relays: ids.map(relay),
    bandwidthWeights: {},
    authorities: [],
  };
  return { consensus: c, raw: new Uint8Array([va % 251]) };
}

/**
 * A fake authority: serves the consensus of the latest valid-after at or
 * before now (published on the interval), or fails while `down`; counts
 * fetches and their times.
 */
class FakeAuthorities {
  down = false;
  since = T0;
  /** Serve the consensus of T0 + I whatever the time (a lagging authority). */
  lagging = false;
  times: number[] = [];
  readonly fetch = async (): Promise<FetchedConsensus> => {
    this.times.push(Date.now());
    await Promise.resolve();
    if (this.down) throw new Error('connection refused');
    const va = this.lagging ? T0 + I : Math.floor(Date.now() / I) * I;
    if (va < this.since) throw new Error('HTTP 404: no consensus yet');
    return consensus(va);
  };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 + 1_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('cacheConsensusFetchTime (dir-spec §5.1 caches)', () => {
  it('is in the first half-interval after fresh-until', () => {
    const c = consensus(T0).consensus;
    expect(cacheConsensusFetchTime(c, 0)).toBe(T0 + I);
    expect(cacheConsensusFetchTime(c, 0.5)).toBe(T0 + I + I / 4);
    expect(cacheConsensusFetchTime(c, 0.999_999)).toBeLessThan(T0 + I + I / 2);
  });
});

describe('retryDelayMs', () => {
  it('doubles from 1 s to half an interval, 60 s at most, jittered to 50-100 %', () => {
    expect([0, 1, 2, 3].map((k) => retryDelayMs(k, 3600_000, 0.999_999))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(0, 3600_000, 0)).toBe(500);
    expect(retryDelayMs(20, 3600_000, 0.999_999)).toBe(60_000);
    expect(retryDelayMs(20, 10_000, 0.999_999)).toBe(5_000);
  });

  it('stays at 2 s without a live consensus, however many failures', () => {
    expect(retryDelayMs(30, 3600_000, 0.999_999, false)).toBe(2_000);
  });
});

describe('ConsensusCache', () => {
  it('fetches at once, then once per interval inside the §5.1 window', async () => {
    const auth = new FakeAuthorities();
    const cache = new ConsensusCache(auth.fetch, { uniform: () => 0.5 });
    cache.start();
    await cache.ready();
    expect(cache.consensus?.validAfterMs).toBe(T0);
    for (let i = 0; i < 10; i++) await vi.advanceTimersByTimeAsync(I);
    cache.stop();
    // The first fetch, then one per interval, each a quarter interval after fresh-until (uniform 0.5).
    expect(auth.times.length).toBe(10);
    for (const t of auth.times.slice(1)) expect(t % I).toBe(I / 4);
    expect(cache.consensus?.validAfterMs).toBe(T0 + 9 * I);
  });

  it('retries a failed fetch with growing delays, and fast while nothing live is held', async () => {
    const auth = new FakeAuthorities();
    auth.since = T0 + 3 * I; // the network's first consensus comes later
    const cache = new ConsensusCache(auth.fetch, { uniform: () => 0.999_999 });
    cache.start();
    await vi.advanceTimersByTimeAsync(3 * I);
    // Nothing live: retries every 1-2 s, so the first consensus is taken within 2 s of its publication.
    expect(auth.times.length).toBeGreaterThanOrEqual(14);
    expect(auth.times.length).toBeLessThanOrEqual(32);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(cache.consensus?.validAfterMs).toBe(T0 + 3 * I);
    // Live but the authorities go down: 1, 2, 4 s, then half an interval.
    auth.down = true;
    const before = auth.times.length;
    await vi.advanceTimersByTimeAsync(3 * I);
    const gaps = auth.times
      .slice(before)
      .map((t, i, a) => (i === 0 ? 0 : t - (a[i - 1] as number)))
      .slice(1);
    expect(gaps.slice(0, 3)).toEqual([1000, 2000, 4000]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(I / 2);
    cache.stop();
  });

  it('never installs a consensus older than the one held', async () => {
    const auth = new FakeAuthorities();
    const cache = new ConsensusCache(auth.fetch, { uniform: () => 0 });
    const seen: number[] = [];
    cache.subscribe((c) => seen.push(c.consensus.validAfterMs));
    cache.start();
    await vi.advanceTimersByTimeAsync(3 * I);
    auth.lagging = true;
    await vi.advanceTimersByTimeAsync(3 * I);
    cache.stop();
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
    expect(cache.consensus?.validAfterMs).toBe(T0 + 3 * I);
  });

  it('coalesces on-demand refreshes and rate-limits them while a live consensus is held', async () => {
    const auth = new FakeAuthorities();
    const cache = new ConsensusCache(auth.fetch, { uniform: () => 0.5, minRefreshMs: 5_000 });
    cache.start();
    await cache.ready();
    await vi.advanceTimersByTimeAsync(6_000);
    const n = auth.times.length;
    // 100 relays miss at once: one fetch, and every one of them waited for it.
    const waited = await Promise.all(Array.from({ length: 100 }, () => cache.refresh()));
    expect(waited.every(Boolean)).toBe(true);
    expect(auth.times.length).toBe(n + 1);
    // Within minRefreshMs of that on-demand fetch: no fetch, and the caller is told so at once
    // (held until the window ends, every refused EXTEND2 took seconds).
    expect(await cache.refresh()).toBe(false);
    expect(auth.times.length).toBe(n + 1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await cache.refresh()).toBe(true);
    expect(auth.times.length).toBe(n + 2);
    cache.stop();
  });

  it("does not count the schedule's fetches against on-demand ones: the first miss after bootstrap fetches at once", async () => {
    const auth = new FakeAuthorities();
    const cache = new ConsensusCache(auth.fetch, { uniform: () => 0.5, minRefreshMs: 5_000 });
    cache.start();
    await cache.ready();
    expect(auth.times.length).toBe(1);
    expect(await cache.refresh()).toBe(true);
    expect(auth.times.length).toBe(2);
    cache.stop();
  });

  it('indexes the held consensus by identity', async () => {
    const cache = new ConsensusCache(async () => consensus(T0, [1, 2, 3]));
    cache.start();
    await cache.ready();
    cache.stop();
    expect(cache.entry('02'.repeat(32))?.orPort).toBe(9002);
    expect(cache.entry('04'.repeat(32))).toBeUndefined();
  });

  it('survives a fetcher that throws synchronously-rejected garbage and keeps retrying', async () => {
    let calls = 0;
    const cache = new ConsensusCache(async () => {
      calls++;
      throw new TypeError('not a consensus');
    });
    cache.start();
    await vi.advanceTimersByTimeAsync(10_000);
    cache.stop();
    expect(cache.consensus).toBeNull();
    expect(calls).toBeGreaterThan(3);
    const after = calls;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(after);
  });
});

describe('sharedConsensusCache', () => {
  it('gives every relay of a process one cache and one fetch schedule, stopped after the last release', async () => {
    const auth = new FakeAuthorities();
    const key = `test-${Math.random()}`;
    const made: ConsensusCache[] = [];
    const make = () => {
      const c = new ConsensusCache(auth.fetch, { uniform: () => 0.5 });
      made.push(c);
      return c;
    };
    const users = Array.from({ length: 500 }, () => sharedConsensusCache(key, make));
    await users[0]?.cache.ready();
    await vi.advanceTimersByTimeAsync(5 * I);
    expect(made.length).toBe(1);
    expect(auth.times.length).toBe(5); // the first, then one per interval for 500 relays
    for (const u of users.slice(1)) u.release();
    users[1]?.release(); // a second release of the same acquisition does nothing
    await vi.advanceTimersByTimeAsync(I);
    expect(auth.times.length).toBe(6);
    users[0]?.release();
    await vi.advanceTimersByTimeAsync(5 * I);
    expect(auth.times.length).toBe(6);
    // The next relay gets a new cache.
    const again = sharedConsensusCache(key, make);
    expect(made.length).toBe(2);
    again.release();
  });
});
