import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import { InvalidError } from '../../../services/core/errors.js';
import {
  decodeGuardState,
  effectiveReachability,
  emptyGuardState,
  encodeGuardState,
  GUARD_DEFAULTS,
  type GuardState,
  markGuardFailure,
  markGuardSuccess,
  maxSampleSize,
  pickGuard,
  primaryGuards,
  retryDelayMs,
  updateSample,
} from '../../../services/core/guards.js';
import type { PathRelay } from '../../../services/core/path.js';
import { seededRng } from '../../helpers/seeded-rng.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const DAY = 86_400_000;
const MIN = 60_000;
const T0 = 1_700_000_000_000;

function relay(i: number, flags = ['Guard', 'Running', 'Valid', 'Stable', 'Fast']): PathRelay {
  const identity = new Uint8Array(32);
  identity[0] = i >> 8;
  identity[1] = i & 0xff;
  return { identity, address: `10.${i & 0xff}.0.1`, flags, bandwidth: 1000, family: [] };
}
const hex = (r: PathRelay) => toHex(r.identity);
const guardsN = (n: number) => Array.from({ length: n }, (_, i) => relay(i + 1));

describe('sampling (guard-spec §4.5)', () => {
  it('max sample is min(20% of guards, 60), at least 20', () => {
    expect(maxSampleSize(10)).toBe(20);
    expect(maxSampleSize(150)).toBe(30);
    expect(maxSampleSize(1000)).toBe(60);
  });

  it('samples every guard of a small testnet and makes three primaries', () => {
    const net = [...guardsN(5), relay(100, ['Running', 'Valid']), relay(101, ['Guard', 'Running'])];
    const s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    expect(s.sampled.map((g) => g.id).sort()).toEqual(guardsN(5).map(hex).sort());
    expect(primaryGuards(s)).toHaveLength(3);
    expect(new Set(primaryGuards(s)).size).toBe(3);
    // Added dates are randomised into the last GUARD_LIFETIME/10.
    for (const g of s.sampled) {
      expect(g.addedAt).toBeLessThanOrEqual(T0);
      expect(g.addedAt).toBeGreaterThan(T0 - GUARD_DEFAULTS.guardLifetimeMs / 10);
    }
  });

  it('stops at 20 usable filtered guards and grows when guards fail', () => {
    const net = guardsN(400);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(2));
    expect(s.sampled).toHaveLength(20);
    for (const g of s.sampled.slice(0, 5)) s = markGuardFailure(s, g.id, T0);
    s = updateSample(s, net, { nowMs: T0 }, seededRng(3));
    expect(s.sampled).toHaveLength(25);
    expect(new Set(s.sampled.map((g) => g.id)).size).toBe(25);
  });

  it('never exceeds the maximum sample size', () => {
    const net = guardsN(150); // max 30
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(4));
    for (const g of s.sampled) s = markGuardFailure(s, g.id, T0);
    s = updateSample(s, net, { nowMs: T0 }, seededRng(5));
    expect(s.sampled).toHaveLength(30);
  });

  it('respects the caller filter and samples by guard bandwidth', () => {
    const net = guardsN(40);
    net[0]!.bandwidth = 1_000_000;
    const counts = { heavy: 0 };
    for (let seed = 0; seed < 50; seed++) {
      const s = updateSample(
        emptyGuardState(),
        net,
        { nowMs: T0, minFilteredSample: 1, filter: (r) => r !== net[1] },
        seededRng(seed),
      );
      expect(s.sampled.map((g) => g.id)).not.toContain(hex(net[1]!));
      if (s.sampled[0]!.id === hex(net[0]!)) counts.heavy++;
    }
    // r1 has ~96% of the guard bandwidth.
    expect(counts.heavy).toBeGreaterThan(40);
  });
});

describe('expiry (guard-spec §4.7)', () => {
  it('drops a guard unlisted for more than 20 days', () => {
    const net = guardsN(5);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const gone = net[0]!;
    const rest = net.slice(1);
    s = updateSample(s, rest, { nowMs: T0 }, seededRng(2));
    const g = s.sampled.find((x) => x.id === hex(gone))!;
    expect(g.listed).toBe(false);
    expect(g.filtered).toBe(false);
    expect(primaryGuards(s)).not.toContain(hex(gone));
    // unlistedSince is randomised up to 4 days into the past.
    expect(g.unlistedSince).toBeGreaterThan(T0 - 4 * DAY);
    s = updateSample(s, rest, { nowMs: T0 + 15 * DAY }, seededRng(3));
    expect(s.sampled.map((x) => x.id)).toContain(hex(gone));
    s = updateSample(s, rest, { nowMs: T0 + 20 * DAY + 1 }, seededRng(4));
    expect(s.sampled.map((x) => x.id)).not.toContain(hex(gone));
  });

  it('relisting clears unlistedSince', () => {
    const net = guardsN(3);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    s = updateSample(s, net.slice(1), { nowMs: T0 }, seededRng(2));
    s = updateSample(s, net, { nowMs: T0 + 30 * DAY }, seededRng(3));
    const g = s.sampled.find((x) => x.id === hex(net[0]!))!;
    expect(g.listed).toBe(true);
    expect(g.unlistedSince).toBeUndefined();
  });

  it('drops unconfirmed guards after 120 days; confirmed ones only once confirmed over 60 days ago', () => {
    const net = guardsN(3);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const [a, b] = s.sampled.map((g) => g.id);
    s = markGuardSuccess(s, a!, T0 + 100 * DAY);
    // The sample refills from the same three relays, so an expired guard comes back as a new entry.
    const entry = (st: GuardState, id: string) => st.sampled.find((g) => g.id === id)!;
    s = updateSample(s, net, { nowMs: T0 + 121 * DAY }, seededRng(2));
    expect(entry(s, a!).addedAt).toBeLessThanOrEqual(T0);
    expect(entry(s, a!).confirmedIdx).toBe(0);
    expect(entry(s, b!).addedAt).toBeGreaterThan(T0 + 100 * DAY);
    s = updateSample(s, net, { nowMs: T0 + 161 * DAY }, seededRng(3));
    expect(entry(s, a!).addedAt).toBeGreaterThan(T0 + 100 * DAY);
    expect(entry(s, a!).confirmedIdx).toBeUndefined();
  });
});

describe('primary guards and picking (guard-spec §4.6, §4.9)', () => {
  it('puts confirmed guards first, in confirmation order', () => {
    const net = guardsN(10);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const notPrimary = s.sampled.filter((g) => !s.primary.includes(g.id)).map((g) => g.id);
    s = markGuardSuccess(s, notPrimary[1]!, T0);
    s = markGuardSuccess(s, notPrimary[0]!, T0 + 1);
    const oldPrimary = s.primary;
    s = updateSample(s, net, { nowMs: T0 + 2 }, seededRng(2));
    expect(primaryGuards(s)).toEqual([notPrimary[1], notPrimary[0], oldPrimary[0]]);
  });

  it('keeps existing primaries stable across updates', () => {
    const net = guardsN(10);
    const s1 = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const s2 = updateSample(s1, net, { nowMs: T0 + DAY }, seededRng(99));
    expect(primaryGuards(s2)).toEqual(primaryGuards(s1));
  });

  it('picks the first live primary, moves on when it fails, and retries after 10 minutes', () => {
    const net = guardsN(10);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const [p0, p1] = primaryGuards(s);
    expect(pickGuard(s, { nowMs: T0 })).toEqual({ id: p0, usableOnCompletion: true, kind: 'primary' });
    s = markGuardFailure(s, p0!, T0);
    expect(pickGuard(s, { nowMs: T0 + 1 })?.id).toBe(p1);
    expect(pickGuard(s, { nowMs: T0 + 10 * MIN - 1 })?.id).toBe(p1);
    expect(pickGuard(s, { nowMs: T0 + 10 * MIN })?.id).toBe(p0);
    s = markGuardSuccess(s, p0!, T0 + 10 * MIN);
    const g = s.sampled.find((x) => x.id === p0)!;
    expect(g.reachable).toBe('yes');
    expect(g.failingSince).toBeUndefined();
    expect(g.confirmedIdx).toBe(0);
  });

  it('honours usable() and falls back to confirmed, then sampled guards', () => {
    const net = guardsN(10);
    let s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const primary = new Set(primaryGuards(s));
    const others = s.sampled.filter((g) => !primary.has(g.id)).sort((a, b) => a.sampledIdx - b.sampledIdx);
    for (const id of primary) s = markGuardFailure(s, id, T0);
    expect(pickGuard(s, { nowMs: T0 })).toEqual({
      id: others[0]!.id,
      usableOnCompletion: false,
      kind: 'sampled',
    });
    s = markGuardSuccess(s, others[3]!.id, T0);
    for (const id of primary) s = markGuardFailure(s, id, T0); // still down
    expect(pickGuard(s, { nowMs: T0 })).toEqual({
      id: others[3]!.id,
      usableOnCompletion: false,
      kind: 'confirmed',
    });
    const pick = pickGuard(s, { nowMs: T0, usable: (id) => id !== others[3]!.id });
    expect(pick?.kind).toBe('sampled');
    expect(pickGuard(s, { nowMs: T0, usable: () => false })).toBeUndefined();
  });

  it('chooses among the first nUse live primaries for directory fetches', () => {
    const net = guardsN(10);
    const s = updateSample(emptyGuardState(), net, { nowMs: T0 }, seededRng(1));
    const rng = seededRng(2);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(pickGuard(s, { nowMs: T0, nUse: 3, rng })!.id);
    expect([...seen].sort()).toEqual([...primaryGuards(s)].sort());
  });
});

describe('retry schedule', () => {
  it.each([
    [0, true, 10 * MIN],
    [6 * 3_600_000 - 1, true, 10 * MIN],
    [6 * 3_600_000, true, 90 * MIN],
    [4 * DAY, true, 4 * 60 * MIN],
    [7 * DAY, true, 9 * 60 * MIN],
    [0, false, 60 * MIN],
    [6 * 3_600_000, false, 4 * 60 * MIN],
    [4 * DAY, false, 18 * 60 * MIN],
    [7 * DAY, false, 36 * 60 * MIN],
  ])('failing for %d ms, primary=%s: retry after %d ms', (failing, primary, delay) => {
    expect(retryDelayMs(failing, primary)).toBe(delay);
  });

  it('a non-primary guard failing for a day becomes maybe after 4 hours', () => {
    const g = {
      id: 'aa',
      addedAt: 0,
      sampledIdx: 0,
      listed: true,
      filtered: true,
      reachable: 'no' as const,
      failingSince: T0 - DAY,
      lastTried: T0,
    };
    expect(effectiveReachability(g, false, T0 + 4 * 60 * MIN - 1)).toBe('no');
    expect(effectiveReachability(g, false, T0 + 4 * 60 * MIN)).toBe('maybe');
  });

  it('repeated failures keep the first failingSince', () => {
    let s = updateSample(emptyGuardState(), guardsN(3), { nowMs: T0 }, seededRng(1));
    const id = s.sampled[0]!.id;
    s = markGuardFailure(s, id, T0);
    s = markGuardFailure(s, id, T0 + DAY);
    const g = s.sampled.find((x) => x.id === id)!;
    expect(g.failingSince).toBe(T0);
    expect(g.lastTried).toBe(T0 + DAY);
  });
});

describe('purity and encoding', () => {
  it('does not mutate its input state', () => {
    const s = updateSample(emptyGuardState(), guardsN(5), { nowMs: T0 }, seededRng(1));
    const before = encodeGuardState(s);
    markGuardFailure(s, s.sampled[0]!.id, T0);
    markGuardSuccess(s, s.sampled[1]!.id, T0);
    updateSample(s, guardsN(2), { nowMs: T0 + 30 * DAY }, seededRng(2));
    expect(encodeGuardState(s)).toBe(before);
  });

  it('round-trips any reachable state', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('update', 'ok', 'fail'),
            fc.nat(30),
            fc.nat(40 * DAY),
            fc.integer({ min: 3, max: 40 }),
          ),
          { maxLength: 25 },
        ),
        fc.integer(),
        (ops, seed) => {
          const rng = seededRng(seed);
          let s: GuardState = emptyGuardState();
          let now = T0;
          for (const [op, k, dt, n] of ops) {
            now += dt;
            const id = s.sampled[k % Math.max(1, s.sampled.length)]?.id;
            if (op === 'update') s = updateSample(s, guardsN(n), { nowMs: now }, rng);
            else if (op === 'ok' && id) s = markGuardSuccess(s, id, now, k % 2 ? rng : undefined);
            else if (id) s = markGuardFailure(s, id, now);
          }
          expect(decodeGuardState(encodeGuardState(s))).toEqual(s);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('rejects malformed state with InvalidError', () => {
    const good = updateSample(emptyGuardState(), guardsN(3), { nowMs: T0 }, seededRng(1));
    const g0 = good.sampled[0]!;
    const variants: unknown[] = [
      'null',
      '[]',
      '{',
      { ...good, version: 2 },
      { ...good, sampled: 'x' },
      { ...good, sampled: [{ ...g0, id: 'XYZ' }] },
      { ...good, sampled: [{ ...g0, id: 'abc' }] },
      { ...good, sampled: [g0, g0] },
      { ...good, sampled: [{ ...g0, reachable: 'perhaps' }] },
      { ...good, sampled: [{ ...g0, addedAt: 'now' }] },
      { ...good, sampled: [{ ...g0, confirmedAt: 5 }] },
      { ...good, primary: ['ff'] },
      { ...good, primary: [g0.id, g0.id] },
      { ...good, nextSampledIdx: null },
    ];
    for (const v of variants) {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      expect(() => decodeGuardState(text)).toThrow(InvalidError);
    }
  });

  it('hostile input only raises typed errors', () => {
    const good = encodeGuardState(updateSample(emptyGuardState(), guardsN(4), { nowMs: T0 }, seededRng(1)));
    fc.assert(fc.property(fc.string(), (t) => expectOnlyTypedErrors(() => decodeGuardState(t))));
    fc.assert(
      fc.property(fc.anything(), (x) =>
        expectOnlyTypedErrors(() => decodeGuardState(JSON.stringify(x) ?? '')),
      ),
    );
    fc.assert(
      fc.property(fc.nat(good.length), fc.string({ maxLength: 3 }), (i, ins) =>
        expectOnlyTypedErrors(() => decodeGuardState(good.slice(0, i) + ins + good.slice(i + 1))),
      ),
    );
  });
});
