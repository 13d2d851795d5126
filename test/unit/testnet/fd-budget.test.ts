// testnet/fd-budget.ts: reading the open-file limit from /proc/<pid>/limits
// and judging a shared-process network against it (refuse below the idle
// need, warn below the need under load).
import { describe, expect, it } from 'vitest';
import {
  BASE_FDS,
  IDLE_FDS_PER_RELAY,
  judgeFdBudget,
  LOADED_FDS_PER_RELAY,
  openFileLimit,
  parseOpenFileLimit,
} from '../../../services/testnet/fd-budget.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             95712                95712                processes
Max open files            20000                40000                files
Max locked memory         8388608              8388608              bytes
`;

describe('open-file limit', () => {
  it('reads the soft limit of /proc/<pid>/limits', () => {
    expect(parseOpenFileLimit(LIMITS)).toBe(20_000);
  });

  it('says nothing for an unlimited, missing, truncated or garbled line', () => {
    expect(parseOpenFileLimit(LIMITS.replace('20000', 'unlimited'))).toBeNull();
    expect(parseOpenFileLimit(LIMITS.replace(/^Max open files.*$/m, ''))).toBeNull();
    expect(parseOpenFileLimit('Max open files')).toBeNull();
    expect(parseOpenFileLimit('Max open files            -1 5 files\n')).toBeNull();
    expect(parseOpenFileLimit('')).toBeNull();
    expect(parseOpenFileLimit('\u0000'.repeat(10_000))).toBeNull();
  });

  it("reads this process's own limit on Linux", () => {
    const limit = openFileLimit();
    if (process.platform === 'linux') expect(limit).toBeGreaterThan(0);
    else expect(limit).toBeNull();
  });
});

describe('judgeFdBudget', () => {
  const idle = (relays: number) => relays * IDLE_FDS_PER_RELAY + BASE_FDS;
  const loaded = (relays: number) => relays * LOADED_FDS_PER_RELAY + BASE_FDS;

  it('passes a network that fits under load, and any network when the limit is unknown', () => {
    expect(judgeFdBudget(1000, loaded(1000))).toEqual({ verdict: 'ok' });
    expect(judgeFdBudget(5000, null)).toEqual({ verdict: 'ok' });
  });

  it('warns when sustained load would fill the table (2,000 relays at 20,000: EMFILE seen)', () => {
    const b = judgeFdBudget(2000, 20_000);
    expect(b.verdict).toBe('warn');
    expect(b.verdict !== 'ok' && b.message).toMatch(
      /^warning: 2000 relays .* up to 20500 under sustained load.*20000/,
    );
    expect(judgeFdBudget(1000, loaded(1000) - 1).verdict).toBe('warn');
  });

  it('refuses a network that cannot idle within the limit, saying what to do', () => {
    expect(judgeFdBudget(1000, idle(1000)).verdict).toBe('warn');
    const b = judgeFdBudget(1000, idle(1000) - 1);
    expect(b.verdict).toBe('refuse');
    expect(b.verdict !== 'ok' && b.message).toMatch(/about 7500 open files idle.*7499.*ulimit -n/);
  });
});
