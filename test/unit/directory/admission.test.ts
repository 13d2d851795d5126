// The authority's own uptime history and the per-address cap
// (services/directory/admission.ts; C tor rephist.c, voteflags.c
// dirserv_set_router_is_running, get_possible_sybil_list).
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_SERVERS_PER_ADDR,
  DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
  FAILED_ROUNDS_TO_DROP,
  omitAsSybil,
  REACHABLE_TIMEOUT_MS,
  RunHistory,
  type SybilCandidate,
} from '../../../services/directory/admission.js';
import type { ProbeResult } from '../../../services/directory/reachability.js';

describe('RunHistory', () => {
  const round = (h: RunHistory, nowMs: number, results: Record<string, ProbeResult>) =>
    h.observeRound(new Map(Object.entries(results)), nowMs);

  it('a relay never seen up is neither reachable nor up', () => {
    const h = new RunHistory();
    h.observe('a', 'timeout', 1000);
    round(h, 2000, { a: 'refused', b: 'up', c: 'up' });
    expect(h.reachable('a', 2000)).toBe(false);
    expect(h.uptimeSec('a', 2000)).toBe(0);
  });

  it('counts uptime from the first success of the current run', () => {
    const h = new RunHistory();
    h.observe('a', 'up', 0);
    round(h, 5_000, { a: 'up' });
    expect(h.uptimeSec('a', 7_000)).toBe(7);
    expect(h.reachable('a', 7_000)).toBe(true);
  });

  it(`drops Running after ${FAILED_ROUNDS_TO_DROP} failed trusted rounds in a row, whatever the failure`, () => {
    expect(FAILED_ROUNDS_TO_DROP).toBe(2);
    for (const bad of ['refused', 'wrong-identity', 'failed', 'timeout'] as const) {
      const h = new RunHistory();
      for (const id of ['a', 'b', 'c']) h.observe(id, 'up', 0);
      expect(round(h, 1_000, { a: bad, b: 'up', c: 'up' })).toEqual({
        trusted: true,
        tested: 3,
        failed: 1,
        dropped: [],
      });
      expect(h.reachable('a', 1_000)).toBe(true);
      expect(round(h, 2_000, { a: bad, b: 'up', c: 'up' }).dropped).toEqual(['a']);
      expect(h.reachable('a', 2_000)).toBe(false);
      // Back up: a new run.
      round(h, 3_000, { a: 'up', b: 'up', c: 'up' });
      expect(h.reachable('a', 3_000)).toBe(true);
      expect(h.uptimeSec('a', 4_000)).toBe(1);
    }
  });

  it('a success between failures starts the count again', () => {
    const h = new RunHistory();
    for (const id of ['a', 'b', 'c']) h.observe(id, 'up', 0);
    round(h, 1_000, { a: 'timeout', b: 'up', c: 'up' });
    round(h, 2_000, { a: 'up', b: 'up', c: 'up' });
    round(h, 3_000, { a: 'timeout', b: 'up', c: 'up' });
    expect(h.reachable('a', 3_000)).toBe(true);
    expect(h.uptimeSec('a', 3_000)).toBe(3);
  });

  it('a failure outside a round (an admission test) changes nothing', () => {
    const h = new RunHistory();
    h.observe('a', 'up', 0);
    for (const bad of ['refused', 'wrong-identity', 'failed', 'timeout'] as const) h.observe('a', bad, 1_000);
    expect(h.reachable('a', 1_000)).toBe(true);
  });

  it('trusts none of the failures of a round in which most tests failed (the authority’s own overload)', () => {
    const h = new RunHistory();
    const ids = ['a', 'b', 'c', 'd', 'e'];
    for (const id of ids) h.observe(id, 'up', 0);
    // Ten rounds of 3 in 5 timing out: nobody is dropped, and the successes still count.
    for (let i = 1; i <= 10; i++) {
      const v = round(h, i * 1000, { a: 'timeout', b: 'timeout', c: 'failed', d: 'up', e: 'up' });
      expect(v).toEqual({ trusted: false, tested: 5, failed: 3, dropped: [] });
    }
    for (const id of ids) expect(h.reachable(id, 10_000)).toBe(true);
    expect(h.uptimeSec('d', 10_000)).toBe(10);
    // Exactly half failing is still trusted.
    const v = round(h, 11_000, { a: 'timeout', b: 'timeout', d: 'up', e: 'up' });
    expect(v.trusted).toBe(true);
  });

  it(`still drops a relay whose last success is older than C tor's REACHABLE_TIMEOUT (45 min)`, () => {
    expect(REACHABLE_TIMEOUT_MS).toBe(45 * 60_000);
    const h = new RunHistory();
    h.observe('a', 'up', 0);
    round(h, REACHABLE_TIMEOUT_MS, { a: 'timeout' });
    expect(h.reachable('a', REACHABLE_TIMEOUT_MS)).toBe(true);
    expect(h.reachable('a', REACHABLE_TIMEOUT_MS + 1)).toBe(false);
  });
});

describe('omitAsSybil (AuthDirMaxServersPerAddr)', () => {
  const r = (id: string, address: string, bandwidth: number, uptimeSec = 0): SybilCandidate => ({
    id,
    address,
    bandwidth,
    uptimeSec,
  });

  it('defaults to C tor’s 2', () => {
    expect(DEFAULT_MAX_SERVERS_PER_ADDR).toBe(2);
  });

  it('keeps the best `max` per address: bandwidth, then uptime, then identity', () => {
    const relays = [
      r('a1', '10.0.0.1', 100),
      r('a2', '10.0.0.1', 300),
      r('a3', '10.0.0.1', 200, 5),
      r('a4', '10.0.0.1', 200, 9),
      r('b1', '10.0.0.2', 1),
      r('b2', '10.0.0.2', 1),
      r('b3', '10.0.0.2', 1),
    ];
    expect([...omitAsSybil(relays, 2)].sort()).toEqual(['a1', 'a3', 'b3']);
    expect([...omitAsSybil(relays, 3)].sort()).toEqual(['a1']);
  });

  it('allows AuthDirMaxServersPerAuthAddr on an authority’s address (C tor’s 5)', () => {
    expect(DEFAULT_MAX_SERVERS_PER_AUTH_ADDR).toBe(5);
    const relays = [
      ...Array.from({ length: 7 }, (_, i) => r(`a${i}`, '10.0.0.9', 10 - i)),
      ...Array.from({ length: 3 }, (_, i) => r(`b${i}`, '10.0.0.2', 10 - i)),
    ];
    const auth = { maxOnAuthority: 5, addresses: new Set(['10.0.0.9']) };
    expect([...omitAsSybil(relays, 2, auth)].sort()).toEqual(['a5', 'a6', 'b2']);
    // 0 on authorities' addresses: no limit there.
    expect([...omitAsSybil(relays, 2, { ...auth, maxOnAuthority: 0 })]).toEqual(['b2']);
  });

  it('0 means no limit (a loopback testnet)', () => {
    const many = Array.from({ length: 1000 }, (_, i) => r(`x${i}`, '127.0.0.1', i));
    expect(omitAsSybil(many, 0).size).toBe(0);
    expect(omitAsSybil(many, 2).size).toBe(998);
  });
});
