/** The relay autoscaling decision: target tracking, clamping, tolerance, damping. */
import { describe, expect, it } from 'vitest';
import { circuitsActiveFromMetrics, decideRelays } from '../../../operator/autoscale.js';

const spec = { min: 2, max: 20, targetCircuitsPerRelay: 10 };
const T = 1_000_000_000;

describe('decideRelays', () => {
  it('holds without a signal, but clamps into [min, max]', () => {
    expect(
      decideRelays(spec, { current: 5, signal: null, history: [], lastScaleTime: null }, T),
    ).toMatchObject({ desired: 5, reason: 'no-signal' });
    expect(
      decideRelays(spec, { current: 1, signal: null, history: [], lastScaleTime: null }, T),
    ).toMatchObject({ desired: 2, reason: 'clamped' });
    expect(
      decideRelays(spec, { current: 30, signal: 5, history: [], lastScaleTime: null }, T).desired,
    ).toBeLessThanOrEqual(20);
  });

  it('does nothing inside the ±10% band', () => {
    expect(
      decideRelays(spec, { current: 4, signal: 10.9, history: [], lastScaleTime: null }, T),
    ).toMatchObject({ desired: 4, reason: 'within-tolerance' });
    expect(
      decideRelays(spec, { current: 4, signal: 9.1, history: [], lastScaleTime: null }, T),
    ).toMatchObject({ desired: 4 });
  });

  it('scales up toward current × signal / target, at most doubling per step, not during the up cooldown', () => {
    const d = decideRelays(spec, { current: 4, signal: 25, history: [], lastScaleTime: null }, T);
    expect(d).toMatchObject({ recommendation: 10, desired: 8, reason: 'scale-up' });
    expect(decideRelays(spec, { current: 4, signal: 13, history: [], lastScaleTime: null }, T).desired).toBe(
      6,
    );
    expect(
      decideRelays(spec, { current: 4, signal: 25, history: [], lastScaleTime: T - 30_000 }, T),
    ).toMatchObject({ desired: 4, reason: 'cooldown' });
    expect(
      decideRelays({ ...spec, max: 5 }, { current: 4, signal: 25, history: [], lastScaleTime: null }, T)
        .desired,
    ).toBe(5);
  });

  it('scales down only when the whole window agrees, one relay per step, after the down cooldown', () => {
    const low = { current: 8, signal: 2, lastScaleTime: null };
    // A recent high recommendation inside the 5-minute window blocks scale-down.
    expect(decideRelays(spec, { ...low, history: [{ time: T - 60_000, replicas: 8 }] }, T)).toMatchObject({
      desired: 8,
      reason: 'stabilizing',
    });
    // Outside the window it no longer counts.
    const d = decideRelays(
      spec,
      {
        ...low,
        history: [
          { time: T - 400_000, replicas: 8 },
          { time: T - 60_000, replicas: 3 },
        ],
      },
      T,
    );
    expect(d).toMatchObject({ desired: 7, reason: 'scale-down' });
    expect(d.history.map((h) => h.time)).toEqual([T - 60_000, T]);
    expect(decideRelays(spec, { ...low, history: [], lastScaleTime: T - 60_000 }, T)).toMatchObject({
      desired: 8,
      reason: 'cooldown',
    });
    expect(decideRelays(spec, { current: 3, signal: 0, history: [], lastScaleTime: null }, T).desired).toBe(
      2,
    );
  });
});

describe('circuitsActiveFromMetrics', () => {
  it('sums the gauge over label sets and ignores other metrics', () => {
    const text = [
      '# HELP shallot_relay_circuits_active Circuits.',
      '# TYPE shallot_relay_circuits_active gauge',
      'shallot_relay_circuits_active{relay="a",node="x y"} 3',
      'shallot_relay_circuits_active{relay="b"} 4',
      'shallot_relay_circuits_active_other 100',
      'shallot_relay_cells_total{direction="in"} 9',
    ].join('\n');
    expect(circuitsActiveFromMetrics(text)).toBe(7);
    expect(circuitsActiveFromMetrics('shallot_relay_circuits_active 5\n')).toBe(5);
    expect(circuitsActiveFromMetrics('nothing 1\n')).toBeNull();
  });
});
