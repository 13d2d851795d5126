// test/bench/soak-failures.ts: the soak row's failure columns, counts by
// target and reason (commonest first) and the first failures by start time.
import { describe, expect, it } from 'vitest';
import {
  failuresByReason,
  LISTED_FAILURES,
  type SoakFailure,
  summariseFailures,
} from '../../bench/soak-failures.js';

const f = (t: number, target: SoakFailure['target'], reason: string, ms = 100): SoakFailure => ({
  t,
  at: new Date(1_700_000_000_000 + t * 1000).toISOString(),
  target,
  reason,
  ms,
});

describe('soak failures', () => {
  it('says none without failures', () => {
    expect(summariseFailures([])).toEqual({ byReason: 'none', times: 'none' });
    expect(failuresByReason([])).toEqual({});
  });

  it('counts by target and reason, commonest first, ties by name', () => {
    const failures = [
      f(3, 'exit', 'connect_timeout'),
      f(1, 'onion', 'socks_f3_onion_rend_failed'),
      f(2, 'onion', 'socks_f3_onion_rend_failed'),
      f(4, 'exit', 'connection_reset'),
    ];
    expect(Object.entries(failuresByReason(failures))).toEqual([
      ['onion socks_f3_onion_rend_failed', 2],
      ['exit connect_timeout', 1],
      ['exit connection_reset', 1],
    ]);
    expect(summariseFailures(failures).byReason).toBe(
      'onion socks_f3_onion_rend_failed x2, exit connect_timeout x1, exit connection_reset x1',
    );
  });

  it('lists the first failures in start order with their durations, then how many more', () => {
    const many = Array.from({ length: LISTED_FAILURES + 3 }, (_, i) =>
      f(100 - i, i % 2 ? 'exit' : 'onion', 'proxy_closed', 1000 + i),
    );
    const { times } = summariseFailures(many);
    const last = LISTED_FAILURES + 2;
    const parts = times.split('; ');
    expect(parts).toHaveLength(LISTED_FAILURES + 1);
    // The earliest start (the last one pushed) comes first.
    expect(parts[0]).toBe(
      `${(100 - last).toFixed(1)} s ${last % 2 ? 'exit' : 'onion'} proxy_closed (${1000 + last} ms)`,
    );
    expect(parts.at(-1)).toBe('+3 more');
    const ts = parts.slice(0, -1).map((p) => Number.parseFloat(p));
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
  });

  it('no "more" suffix when every failure is listed', () => {
    const { times } = summariseFailures([f(5.25, 'onion', 'read_timeout', 60_000.4)]);
    expect(times).toBe('5.3 s onion read_timeout (60000 ms)');
  });
});
