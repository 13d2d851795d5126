// The authority's own uptime history and the per-address cap
// (services/directory/admission.ts; C tor rephist.c, get_possible_sybil_list).
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_SERVERS_PER_ADDR,
  DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
  omitAsSybil,
  RunHistory,
  type SybilCandidate,
} from '../../../services/directory/admission.js';

describe('RunHistory', () => {
  it('a relay never seen up is neither reachable nor up', () => {
    const h = new RunHistory();
    h.observe('a', 'timeout', 1000);
    expect(h.reachable('a', 1000, 10_000)).toBe(false);
    expect(h.uptimeSec('a', 1000)).toBe(0);
  });

  it('counts uptime from the first success of the current run; timeouts are forgiven within the grace', () => {
    const h = new RunHistory();
    h.observe('a', 'up', 0);
    h.observe('a', 'up', 5_000);
    expect(h.uptimeSec('a', 7_000)).toBe(7);
    h.observe('a', 'timeout', 8_000);
    expect(h.reachable('a', 8_000, 10_000)).toBe(true);
    expect(h.reachable('a', 15_001, 10_000)).toBe(false);
    expect(h.uptimeSec('a', 8_000)).toBe(8);
  });

  it('a refusal or another identity ends the run', () => {
    for (const bad of ['refused', 'wrong-identity', 'failed'] as const) {
      const h = new RunHistory();
      h.observe('a', 'up', 0);
      h.observe('a', bad, 1_000);
      expect(h.reachable('a', 1_000, 10_000)).toBe(false);
      h.observe('a', 'up', 2_000);
      expect(h.uptimeSec('a', 3_000)).toBe(1);
    }
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
