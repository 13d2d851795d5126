// The INTRODUCE2 defences' parts on their own (introduce.ts): a replay cache
// that only age empties, intro-point budgets drawn from the consensus params
// (C tor's hs_intro_* names and defaults), and the cache key.
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../../services/core/crypto.js';
import type { Introduce1 } from '../../../services/core/hs-cells.js';
import {
  INTRO_MAX_INTRODUCE2,
  INTRO_MAX_LIFETIME_SEC,
  INTRO_MIN_INTRODUCE2,
  INTRO_MIN_LIFETIME_SEC,
  IntroBudget,
  introLimitsFromParams,
  introReplayKey,
  ReplayCache,
} from '../../../services/onion-service/introduce.js';
import { seededRng } from '../../helpers/seeded-rng.js';

describe('ReplayCache', () => {
  it('keeps its first entry through 100,000 later ones (no eviction by count)', () => {
    const c = new ReplayCache(60_000);
    expect(c.addTestAndElapsed('first', 0)).toBeNull();
    for (let i = 0; i < 100_000; i++) c.addTestAndElapsed(`junk-${i}`, 1 + (i % 1000));
    expect(c.size).toBe(100_001);
    expect(c.addTestAndElapsed('first', 5_000)).toBe(5_000);
  });

  it('with horizon 0 (an intro point’s cache) forgets nothing, however old', () => {
    const c = new ReplayCache();
    c.addTestAndElapsed('a', 0);
    expect(c.addTestAndElapsed('a', 400 * 86_400_000)).toBe(400 * 86_400_000);
  });

  it('forgets an entry once it is older than the horizon, and only then', () => {
    const c = new ReplayCache(1_000);
    c.addTestAndElapsed('a', 0);
    c.addTestAndElapsed('b', 500);
    expect(c.addTestAndElapsed('a', 999)).toBe(999);
    // At 1000 'a' has aged out (and is added anew); 'b' is 500 ms old and stays.
    expect(c.addTestAndElapsed('a', 1_000)).toBeNull();
    expect(c.addTestAndElapsed('b', 1_000)).toBe(500);
    expect(c.size).toBe(2);
  });
});

describe('intro-point budget', () => {
  it('uses C tor’s defaults without params: 16384..32768 introductions, 18..24 h', () => {
    const l = introLimitsFromParams({});
    expect(l).toEqual({
      minIntroduce2: INTRO_MIN_INTRODUCE2,
      maxIntroduce2: INTRO_MAX_INTRODUCE2,
      minLifetimeMs: INTRO_MIN_LIFETIME_SEC * 1000,
      maxLifetimeMs: INTRO_MAX_LIFETIME_SEC * 1000,
    });
    expect([INTRO_MIN_INTRODUCE2, INTRO_MAX_INTRODUCE2]).toEqual([16_384, 32_768]);
    const rng = seededRng(1);
    for (let i = 0; i < 200; i++) {
      const b = new IntroBudget(l, 1_000, rng);
      expect(b.maxIntroduce2).toBeGreaterThanOrEqual(16_384);
      expect(b.maxIntroduce2).toBeLessThanOrEqual(32_768);
      expect(b.expiresAt - 1_000).toBeGreaterThanOrEqual(18 * 3600_000);
      expect(b.expiresAt - 1_000).toBeLessThanOrEqual(24 * 3600_000);
    }
  });

  it('takes hs_intro_min/max_introduce2 and _lifetime from the consensus, clamped to [0, INT32_MAX]', () => {
    const l = introLimitsFromParams({
      hs_intro_min_introduce2: 3,
      hs_intro_max_introduce2: 5,
      hs_intro_min_lifetime: 10,
      hs_intro_max_lifetime: -4,
    });
    expect(l).toEqual({ minIntroduce2: 3, maxIntroduce2: 5, minLifetimeMs: 10_000, maxLifetimeMs: 0 });
    const seen = new Set<number>();
    const rng = seededRng(2);
    for (let i = 0; i < 100; i++) seen.add(new IntroBudget(l, 0, rng).maxIntroduce2);
    expect([...seen].sort()).toEqual([3, 4, 5]);
    // max < min reads as min (C tor would assert); lifetime likewise.
    expect(new IntroBudget(l, 0, rng).expiresAt).toBe(10_000);
  });

  it('is spent after exactly its count, and expires at its time', () => {
    const b = new IntroBudget(
      { minIntroduce2: 3, maxIntroduce2: 3, minLifetimeMs: 100, maxLifetimeMs: 100 },
      0,
    );
    expect([b.spend(), b.spend(), b.spend()]).toEqual([false, false, true]);
    expect(b.introductions).toBe(3);
    expect(b.expired(99)).toBe(false);
    expect(b.expired(100)).toBe(true);
    // A budget of 0 would retire every intro point before its first introduction.
    expect(
      new IntroBudget({ minIntroduce2: 0, maxIntroduce2: 0, minLifetimeMs: 1, maxLifetimeMs: 1 }, 0)
        .maxIntroduce2,
    ).toBe(1);
  });
});

describe('introReplayKey', () => {
  it('depends on CLIENT_PK, ENCRYPTED and MAC only (the header is malleable)', () => {
    const cell: Introduce1 = {
      authKey: randomBytes(32),
      extensions: [],
      X: randomBytes(32),
      encrypted: randomBytes(200),
      mac: randomBytes(32),
    };
    const k = introReplayKey(cell);
    expect(introReplayKey({ ...cell, extensions: [{ type: 9, data: new Uint8Array(3) }] })).toBe(k);
    expect(introReplayKey({ ...cell, authKey: randomBytes(32) })).toBe(k);
    const enc = cell.encrypted.slice();
    enc[0] = (enc[0] as number) ^ 1;
    expect(introReplayKey({ ...cell, encrypted: enc })).not.toBe(k);
    expect(introReplayKey({ ...cell, mac: randomBytes(32) })).not.toBe(k);
  });
});
