// Vanguards-lite layer-2 set (prop 333): lifetimes max(X,X) in [1, 12] days,
// filling to 4 from usable relays, replacing expired and delisted members.
import { describe, expect, it } from 'vitest';
import type { PathRelay } from '../../../services/core/path.js';
import { relayIdHex } from '../../../services/core/path.js';
import { updateVanguards, VANGUARDS_LITE, vanguardLifetimeMs } from '../../../services/core/vanguards.js';
import { seededRng } from '../../helpers/seeded-rng.js';

const DAY = 24 * 3600_000;
const relay = (i: number, flags = ['Running', 'Valid', 'Stable']): PathRelay => ({
  identity: new Uint8Array(32).fill(i),
  address: `10.0.0.${i}`,
  flags,
  bandwidth: 1000,
  family: [],
});
const relays = Array.from({ length: 10 }, (_, i) => relay(i + 1));

describe('vanguards-lite', () => {
  it('lifetimes are max(X, X) over [1, 12] days: within bounds, mean near 8.3 days', () => {
    const rng = seededRng(5);
    const xs = Array.from({ length: 4000 }, () => vanguardLifetimeMs(rng));
    for (const x of xs) {
      expect(x).toBeGreaterThanOrEqual(DAY);
      expect(x).toBeLessThanOrEqual(12 * DAY);
    }
    // E[max of two uniforms on [1, 12]] = 1 + 11 * 2/3 = 8.33 days; a plain uniform would give 6.5.
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length / DAY;
    expect(mean).toBeGreaterThan(8.0);
    expect(mean).toBeLessThan(8.7);
  });

  it('fills to 4 distinct usable relays and keeps them while they live', () => {
    const rng = seededRng(6);
    const withBad = [...relays, relay(20, ['Running', 'Valid']), relay(21, ['Valid', 'Stable'])];
    const set = updateVanguards([], withBad, { nowMs: 0, rng });
    expect(set).toHaveLength(VANGUARDS_LITE.count);
    expect(new Set(set.map((v) => v.id)).size).toBe(4);
    const bad = new Set([relayIdHex(relay(20)), relayIdHex(relay(21))]);
    for (const v of set) expect(bad.has(v.id)).toBe(false);
    const minExpiry = Math.min(...set.map((v) => v.expiresAt));
    expect(updateVanguards(set, withBad, { nowMs: minExpiry - 1, rng })).toBe(set);
  });

  it('replaces an expired member and one that left the consensus, keeping the rest', () => {
    const rng = seededRng(7);
    const set = updateVanguards([], relays, { nowMs: 0, rng });
    const [first, second, ...rest] = set;
    const expired = [{ ...first!, expiresAt: 10 }, second!, ...rest];
    const listed = relays.filter((r) => relayIdHex(r) !== second!.id);
    const next = updateVanguards(expired, listed, { nowMs: 11, rng });
    expect(next).toHaveLength(4);
    // The expired one may be drawn again, but only as a new member with a new lifetime.
    expect(next.find((v) => v.expiresAt === 10)).toBeUndefined();
    for (const v of next) expect(v.expiresAt).toBeGreaterThan(11);
    expect(next.map((v) => v.id)).not.toContain(second!.id);
    for (const v of rest) expect(next).toContain(v);
  });

  it('keeps a member that lost a flag while it is listed (flags are checked per path)', () => {
    const rng = seededRng(9);
    const set = updateVanguards([], relays, { nowMs: 0, rng });
    const demoted = relays.map((r) =>
      relayIdHex(r) === set[0]!.id ? { ...r, flags: ['Running', 'Valid'] } : r,
    );
    expect(updateVanguards(set, demoted, { nowMs: 1, rng })).toBe(set);
  });

  it('holds fewer than 4 when the network has fewer usable relays', () => {
    expect(updateVanguards([], relays.slice(0, 2), { nowMs: 0, rng: seededRng(8) })).toHaveLength(2);
    expect(updateVanguards([], [], { nowMs: 0, rng: seededRng(8) })).toEqual([]);
  });
});
