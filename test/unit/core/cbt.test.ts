import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CBT_DEFAULTS,
  CircuitBuildTimeout,
  cbtParamsFrom,
  fitPareto,
  paretoQuantile,
} from '../../../services/core/cbt.js';
import { InvalidError } from '../../../services/core/errors.js';
import { seededUniform } from '../../helpers/seeded-rng.js';

/** Inverse-CDF Pareto sample. */
const pareto = (xm: number, alpha: number, u: number) => xm / (1 - u) ** (1 / alpha);

/** Saved state with these build times (-1: timed out) and the 60 s defaults. */
const fromTimes = (times: number[]) =>
  CircuitBuildTimeout.fromState({
    version: 1,
    times,
    recent: [],
    baseTimeoutMs: 60_000,
    baseCloseMs: 60_000,
  });

/** A build that timed out and was then abandoned at the close timeout (the order CircuitManager reports them in, here with the abandon first so the count is easy to follow). */
function abandon(c: CircuitBuildTimeout): void {
  c.addAbandoned();
  c.countTimeout();
}

function filled(times: number[]): CircuitBuildTimeout {
  const c = new CircuitBuildTimeout();
  for (const t of times) c.addBuildTime(t);
  return c;
}

describe('before enough builds', () => {
  it('uses 60 s for timeout and close until 100 builds, and asks for test circuits', () => {
    const c = new CircuitBuildTimeout();
    for (let i = 0; i < 99; i++) c.addBuildTime(500);
    expect(c.timeoutMs()).toBe(60_000);
    expect(c.closeMs()).toBe(60_000);
    expect(c.needsTestCircuits()).toBe(true);
    expect(c.paretoFit()).toBeUndefined();
    c.addBuildTime(500);
    expect(c.needsTestCircuits()).toBe(false);
    expect(c.timeoutMs()).toBeLessThan(60_000);
    expect(c.paretoFit()).toBeDefined();
  });

  it('launches test circuits every 10 s with at most 10 open, only while learning', () => {
    const c = new CircuitBuildTimeout();
    expect(c.shouldLaunchTestCircuit(0, undefined, 0)).toBe(true);
    expect(c.shouldLaunchTestCircuit(9_999, 0, 0)).toBe(false);
    expect(c.shouldLaunchTestCircuit(10_000, 0, 9)).toBe(true);
    expect(c.shouldLaunchTestCircuit(10_000, 0, 10)).toBe(false);
    for (let i = 0; i < 100; i++) c.addBuildTime(800);
    expect(c.shouldLaunchTestCircuit(100_000, 0, 0)).toBe(false);
  });

  it('only 3-hop times feed the history', () => {
    const c = new CircuitBuildTimeout();
    c.addBuildTime(100, 4);
    c.addBuildTime(100, 1);
    expect(c.count).toBe(0);
    c.addBuildTime(100);
    expect(c.count).toBe(1);
  });

  it('keeps only the last 1000 builds', () => {
    const c = filled(Array.from({ length: 1200 }, (_, i) => i));
    expect(c.count).toBe(1000);
    expect(c.state().times[0]).toBe(200);
  });

  it('rejects negative or non-finite build times', () => {
    const c = new CircuitBuildTimeout();
    expect(() => c.addBuildTime(-1)).toThrow(InvalidError);
    expect(() => c.addBuildTime(Number.NaN)).toThrow(InvalidError);
  });
});

describe('Pareto fit', () => {
  it('matches a hand computation (two bins)', () => {
    // Bins 100 and 200, 100 each: Xm = (1005*100 + 2005*100)/200 = 1505;
    // times below Xm count as Xm, so alpha = 200 / (100 ln(2000/1505)).
    const times = [...Array(100).fill(1000), ...Array(100).fill(2000)];
    const f = fitPareto(times)!;
    expect(f.xm).toBe(1505);
    expect(f.alpha).toBeCloseTo(200 / (100 * Math.log(2000 / 1505)), 10);
  });

  it('takes Xm from the 10 fullest bins only, ties to the faster bin', () => {
    // 11 bins with 2 each plus one bin with 5: the slowest 2-count bin drops out.
    const times = [
      ...Array.from({ length: 11 }, (_, i) => [i * 10, i * 10 + 1]).flat(),
      ...Array(5).fill(200),
    ];
    const f = fitPareto(times)!;
    const kept = [...Array.from({ length: 9 }, (_, i) => (i * 10 + 5) * 2), 205 * 5];
    expect(f.xm).toBeCloseTo(kept.reduce((a, b) => a + b, 0) / (9 * 2 + 5), 12);
  });

  it('censors abandoned builds at the largest observed time', () => {
    const times = [...Array(100).fill(1000), ...Array(100).fill(2000), -1, -1];
    const f = fitPareto(times)!;
    expect(f.xm).toBe(1505);
    expect(f.alpha).toBeCloseTo(202 / (102 * Math.log(2000 / 1505)), 10);
  });

  it('gives an unbounded alpha when every time is at or below Xm', () => {
    const f = fitPareto(Array(100).fill(1000))!;
    expect(f.xm).toBe(1005);
    expect(f.alpha).toBe(Number.POSITIVE_INFINITY);
    expect(fitPareto([-1, -1])).toBeUndefined();
  });

  const cases = [
    { xm: 1000, alpha: 2 },
    { xm: 3000, alpha: 1.5 },
    { xm: 500, alpha: 3 },
    { xm: 2000, alpha: 1.2 },
  ];
  it.each(cases)('recovers Xm=$xm alpha=$alpha from 1000 synthetic builds', ({ xm, alpha }) => {
    for (const seed of [1, 2, 3]) {
      const u = seededUniform(seed);
      const c = filled(Array.from({ length: 1000 }, () => pareto(xm, alpha, u())));
      const f = c.paretoFit()!;
      // The mode-bin Xm sits just above the true Xm (the density falls from Xm),
      // which pulls alpha upwards: C tor's estimator, so the tolerance is one-sided-ish.
      expect(f.xm).toBeGreaterThanOrEqual(xm * 0.98);
      expect(f.xm).toBeLessThanOrEqual(xm * 1.15);
      expect(Math.abs(f.alpha - alpha) / alpha).toBeLessThan(0.4);
      // What matters is the 80th percentile: within 10% of the true one.
      const truth = paretoQuantile({ xm, alpha }, 0.8);
      expect(Math.abs(c.timeoutMs() - truth) / truth).toBeLessThan(0.1);
    }
  });
});

describe('thresholds', () => {
  it('timeout = Xm/(1-0.8)^(1/alpha) and close = max(Xm/(0.01)^(1/alpha), 60 s) when no cap binds', () => {
    const times = [...Array(100).fill(1000), ...Array(100).fill(2000), 50_000];
    const c = filled(times);
    const f = fitPareto(times)!;
    expect(c.timeoutMs()).toBe(Math.round(f.xm / 0.2 ** (1 / f.alpha)));
    expect(c.closeMs()).toBe(Math.round(Math.max(f.xm / 0.01 ** (1 / f.alpha), 60_000)));
  });

  it('caps the timeout at the largest observed time', () => {
    const c = filled(Array(100).fill(1000));
    expect(c.timeoutMs()).toBe(1000); // Xm = 1005 > every time
    expect(c.closeMs()).toBe(60_000);
  });

  it('caps close at twice the largest observed time', () => {
    // 10 fast, one slow, 89 abandoned: a heavy tail (alpha ~0.5).
    const times = [...Array(10).fill(1000), 31_000, ...Array(89).fill(-1)];
    const c = fromTimes(times);
    const f = c.paretoFit()!;
    expect(f.alpha).toBeLessThan(1);
    expect(c.timeoutMs()).toBe(31_000);
    expect(c.closeMs()).toBe(62_000);
  });

  it('scales by N(N+1)/12 for other circuit lengths', () => {
    const c = filled(Array.from({ length: 200 }, (_, i) => 1000 + (i % 50) * 20));
    const t = c.timeoutMs();
    expect(c.scaledTimeoutMs(3)).toBe(t);
    expect(c.scaledTimeoutMs(4)).toBe(Math.round((t * 20) / 12));
    expect(c.scaledTimeoutMs(1)).toBe(Math.round((t * 2) / 12));
    expect(c.scaledCloseMs(4)).toBe(Math.round((c.closeMs() * 20) / 12));
  });

  it('always keeps 10 ms <= timeout <= max observed, and close >= max(timeout, 60 s), <= max(2x max, 60 s)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 200_000 }), fc.constant(-1)), {
          minLength: 100,
          maxLength: 300,
        }),
        (times) => {
          fc.pre(times.some((t) => t >= 0));
          const c = fromTimes(times);
          const max = Math.max(...times);
          expect(c.timeoutMs()).toBeGreaterThanOrEqual(CBT_DEFAULTS.minTimeoutMs);
          expect(c.timeoutMs()).toBeLessThanOrEqual(Math.max(max, CBT_DEFAULTS.minTimeoutMs));
          expect(c.closeMs()).toBeGreaterThanOrEqual(Math.max(c.timeoutMs(), 60_000));
          expect(c.closeMs()).toBeLessThanOrEqual(Math.max(2 * max, 60_000));
        },
      ),
    );
  });
});

describe('network change reset', () => {
  it('resets after 18 of the last 20 circuits time out, not 17', () => {
    const c = filled(Array(200).fill(1000));
    expect(c.timeoutMs()).toBe(1000);
    for (let i = 0; i < 17; i++) abandon(c);
    expect(c.count).toBe(217); // 17 of the last 20
    c.addBuildTime(1000); // still 17
    expect(c.count).toBe(218);
    abandon(c); // 18 of the last 20
    expect(c.count).toBe(0);
    expect(c.timeoutMs()).toBe(60_000);
    expect(c.needsTestCircuits()).toBe(true);
  });

  it('doubles timeout and close when already at or above 60 s', () => {
    const c = new CircuitBuildTimeout();
    for (let i = 0; i < 18; i++) abandon(c);
    expect(c.timeoutMs()).toBe(120_000);
    expect(c.closeMs()).toBe(120_000);
    expect(c.count).toBe(0);
    for (let i = 0; i < 18; i++) abandon(c);
    expect(c.timeoutMs()).toBe(240_000);
  });
});

describe('soft timeouts, floors and consensus parameters', () => {
  it('a timed-out build that completes adds its time but no success to the network-change window', () => {
    const c = filled(Array(200).fill(1000));
    for (let i = 0; i < 17; i++) c.countTimeout();
    // Had these counted as successes, the 18th timeout would no longer be 18 of the last 20.
    for (let i = 0; i < 3; i++) c.addBuildTime(5000, 3, true);
    expect(c.count).toBe(203);
    c.countTimeout();
    expect(c.count).toBe(0);
    expect(c.timeoutMs()).toBe(60_000);
  });

  it('countTimeout alone keeps the history; addAbandoned censors at the largest time', () => {
    const c = filled(Array(100).fill(1000));
    c.countTimeout();
    expect(c.count).toBe(100);
    c.addAbandoned();
    expect(c.count).toBe(101);
    expect(c.state().times.at(-1)).toBe(-1);
  });

  it('cbtmintimeout floors the learned timeout (loopback builds of 1-2 ms)', () => {
    const c = filled(Array.from({ length: 200 }, (_, i) => 1 + (i % 2)));
    expect(c.timeoutMs()).toBe(CBT_DEFAULTS.minTimeoutMs);
    c.setParams(cbtParamsFrom({ cbtmintimeout: 1500 }));
    expect(c.timeoutMs()).toBe(1500);
    expect(c.closeMs()).toBe(60_000);
  });

  it('reads cbt* params within C tor bounds, else the defaults', () => {
    expect(cbtParamsFrom({})).toEqual({
      minTimeoutMs: 10,
      initialTimeoutMs: 60_000,
      recentCircuits: 20,
      maxRecentTimeouts: 18,
    });
    const p = cbtParamsFrom({
      cbtmintimeout: 5,
      cbtrecentcount: 10,
      cbtmaxtimeouts: 50,
      cbtinitialtimeout: 30_000,
    });
    expect(p).toEqual({
      minTimeoutMs: 10,
      initialTimeoutMs: 30_000,
      recentCircuits: 10,
      maxRecentTimeouts: 10,
    });
  });

  it('cbtmaxtimeouts of cbtrecentcount decides the reset, and cbtinitialtimeout is where it resets to', () => {
    const c = filled(Array(200).fill(1000));
    c.setParams(cbtParamsFrom({ cbtrecentcount: 5, cbtmaxtimeouts: 3, cbtinitialtimeout: 30_000 }));
    c.countTimeout();
    c.countTimeout();
    expect(c.timeoutMs()).toBe(1000);
    c.countTimeout();
    expect(c.count).toBe(0);
    expect(c.timeoutMs()).toBe(30_000);
  });

  it('onion-service circuits: +1 s on the scaled timeout, closed at MAX(2 close + 1 s, SocksTimeout)', () => {
    const c = filled(Array(200).fill(1000));
    expect(c.hsTimeoutMs(4)).toBe(c.scaledTimeoutMs(4) + 1000);
    expect(c.hsCloseMs(120_000)).toBe(121_000);
    expect(c.hsCloseMs(10_000)).toBe(121_000);
    expect(c.hsCloseMs(200_000)).toBe(200_000);
  });
});

describe('state', () => {
  it('round-trips through JSON and keeps computing the same timeouts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constant(-1)), { maxLength: 400 }),
        (events) => {
          const c = new CircuitBuildTimeout();
          for (const e of events) e < 0 ? abandon(c) : c.addBuildTime(e);
          const d = CircuitBuildTimeout.fromState(JSON.parse(JSON.stringify(c.state())));
          expect(d.state()).toEqual(c.state());
          expect(d.timeoutMs()).toBe(c.timeoutMs());
          expect(d.closeMs()).toBe(c.closeMs());
        },
      ),
    );
  });

  it('rejects malformed state with InvalidError only', () => {
    const good = { version: 1, times: [1], recent: [false], baseTimeoutMs: 60_000, baseCloseMs: 60_000 };
    const bad: unknown[] = [
      null,
      7,
      'x',
      { ...good, version: 2 },
      { ...good, times: 'no' },
      { ...good, times: [1.5] },
      { ...good, times: [-2] },
      { ...good, times: Array(1001).fill(1) },
      { ...good, recent: [1] },
      { ...good, recent: Array(1001).fill(false) },
      { ...good, baseTimeoutMs: 0 },
      { ...good, baseCloseMs: Number.NaN },
    ];
    for (const b of bad) expect(() => CircuitBuildTimeout.fromState(b)).toThrow(InvalidError);
    fc.assert(
      fc.property(fc.anything(), (x) => {
        try {
          CircuitBuildTimeout.fromState(x);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidError);
        }
      }),
    );
  });
});
