// test/bench/scale-faults.ts, the judging half of `bench:scale --load
// --faults`: which relays are faulted, what each consensus should list,
// when faulted relays left and came back, and when the phase fails.
import { describe, expect, it } from 'vitest';
import { parsePromText } from '../../../services/loadgen/prom-text.js';
import { snapshotOf } from '../../../services/loadgen/scrape.js';
import {
  allowedFailureShare,
  type ConsensusSample,
  circuitOutcomes,
  type FaultWindow,
  faultOutcomes,
  faultShare,
  graceIntervals,
  judgeSamples,
  phaseProblems,
  planFaults,
} from '../../bench/scale-faults.js';

const relayNames = (n: number, without: string[] = []) =>
  new Set(Array.from({ length: n }, (_, i) => `relay${i}`).filter((x) => !without.includes(x)));
const sample = (validAfterMs: number, missing: string[] = [], n = 10): ConsensusSample => ({
  atMs: validAfterMs + 1000,
  validAfterMs,
  running: relayNames(n, missing),
});

describe('planFaults', () => {
  it('faults 1 % of the relays, spread evenly, killed, paused and stopped in turn', () => {
    const plan = planFaults(1000);
    expect(plan).toHaveLength(10);
    const idx = plan.map((f) => Number(f.target.slice('relay'.length)));
    expect(idx).toEqual([50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
    expect(plan.map((f) => f.kind)).toEqual([
      'kill',
      'pause',
      'stop',
      'kill',
      'pause',
      'stop',
      'kill',
      'pause',
      'stop',
      'kill',
    ]);
    // shallot up makes relay0..relay(exits-1) the exits, one in ten: the plan hits one of them.
    expect(idx.filter((i) => i < 100)).toEqual([50]);
    expect(planFaults(2000)).toHaveLength(20);
  });

  it('faults at least two (one killed, one paused), never more relays than there are, distinct', () => {
    expect(planFaults(100)).toEqual([
      { target: 'relay25', kind: 'kill' },
      { target: 'relay75', kind: 'pause' },
    ]);
    expect(planFaults(1)).toEqual([{ target: 'relay0', kind: 'kill' }]);
    expect(planFaults(0)).toEqual([]);
    const all = planFaults(7, 1);
    expect(new Set(all.map((f) => f.target)).size).toBe(7);
    expect(planFaults(30, 0.1)).toEqual([
      { target: 'relay5', kind: 'kill' },
      { target: 'relay15', kind: 'pause' },
      { target: 'relay25', kind: 'stop' },
    ]);
  });
});

// relay2 killed at 100 s and never back; relay5 paused from 100 to 200 s; 40 s of grace.
const S = 1000;
const faults: FaultWindow[] = [
  { target: 'relay2', kind: 'kill', startMs: 100 * S, endMs: null },
  { target: 'relay5', kind: 'pause', startMs: 100 * S, endMs: 200 * S },
];
const samples = [
  sample(90 * S),
  sample(110 * S),
  sample(150 * S, ['relay2', 'relay5']),
  sample(210 * S, ['relay2', 'relay5']),
  sample(250 * S, ['relay2', 'relay7']),
];

describe('judgeSamples', () => {
  const v = judgeSamples(10, faults, samples, 40 * S, 80 * S);

  it('expects the size minus the faulted relays down at valid-after', () => {
    expect(v.map((x) => x.expected)).toEqual([10, 8, 8, 9, 9]);
    expect(v.map((x) => x.running)).toEqual([10, 10, 8, 8, 8]);
    expect(v.map((x) => x.down)).toEqual([0, 2, 2, 1, 1]);
    expect(v.map((x) => x.validAfterSec)).toEqual([10, 30, 70, 130, 170]);
  });

  it('a consensus within the grace of a fault starting or healing is not settled', () => {
    expect(v.map((x) => x.settled)).toEqual([true, false, true, false, true]);
    expect(v[1]?.downListed).toEqual(['relay2', 'relay5']);
    expect(v[3]?.healedMissing).toEqual(['relay5']);
  });

  it('names a relay never faulted that is not Running', () => {
    expect(v.map((x) => x.healthyMissing)).toEqual([[], [], [], [], ['relay7']]);
    // A relay that is in no consensus at all is missing too.
    const absent = judgeSamples(
      3,
      [],
      [{ atMs: 0, validAfterMs: 0, running: new Set(['relay0', 'relay1']) }],
      0,
      0,
    );
    expect(absent[0]?.healthyMissing).toEqual(['relay2']);
  });

  it('grace is the failed rounds an authority needs to drop a relay, plus its vote and the consensus', () => {
    expect(graceIntervals()).toBe(4);
  });
});

describe('faultOutcomes', () => {
  it('times the drop and the return from valid-after, whatever order the samples came in', () => {
    const o = faultOutcomes(faults, [...samples].reverse(), 80 * S);
    expect(o).toEqual([
      {
        target: 'relay2',
        kind: 'kill',
        startSec: 20,
        heldSec: null,
        droppedAfterSec: 50,
        relistedAfterSec: null,
      },
      {
        target: 'relay5',
        kind: 'pause',
        startSec: 20,
        heldSec: 100,
        droppedAfterSec: 50,
        relistedAfterSec: 50,
      },
    ]);
  });

  it('a relay never dropped is not "listed again"; one dropped and never back has no return time', () => {
    const neverDropped = faultOutcomes(faults, [sample(110 * S), sample(210 * S)], 0);
    expect(neverDropped.map((x) => [x.droppedAfterSec, x.relistedAfterSec])).toEqual([
      [null, null],
      [null, null],
    ]);
    const gone = faultOutcomes(faults, [sample(150 * S, ['relay5']), sample(250 * S, ['relay5'])], 0);
    expect(gone[1]).toMatchObject({ droppedAfterSec: 50, relistedAfterSec: null });
  });

  it('a drop seen only after the heal does not count as a drop during the fault', () => {
    const late = faultOutcomes([faults[1] as FaultWindow], [sample(150 * S), sample(210 * S, ['relay5'])], 0);
    expect(late[0]?.droppedAfterSec).toBeNull();
  });
});

describe('phaseProblems', () => {
  const clean = {
    samples: judgeSamples(10, faults, samples.slice(0, 4), 40 * S, 0),
    outcomes: faultOutcomes(faults, samples, 0),
    load: [{ target: 'web', requests: 100, failed: 1, allowedShare: 0.03 }],
  };

  it('passes a run where only faulted relays left, settled counts matched and load stayed within the share', () => {
    expect(phaseProblems(clean)).toEqual([]);
  });

  it('fails on a healthy relay lost, a settled count off, a paused relay not back, a killed one never dropped', () => {
    const p = phaseProblems({
      samples: judgeSamples(10, faults, samples, 40 * S, 0),
      outcomes: faultOutcomes(
        faults,
        [sample(110 * S), sample(150 * S, ['relay5']), sample(250 * S, ['relay5'])],
        0,
      ),
      load: [],
    });
    expect(p).toEqual([
      '1 healthy relays lost Running (relay7)',
      '1 settled consensuses off the expected count (8 for 9)',
      'relay2 (kill) stayed down yet was never dropped from Running',
      'relay5 (pause) was dropped and never listed Running again after it healed',
    ]);
  });

  it('fails load beyond its allowed share, or with no request at all', () => {
    const p = phaseProblems({
      ...clean,
      load: [
        { target: 'onion', requests: 100, failed: 7, allowedShare: 0.06 },
        { target: 'web', requests: 0, failed: 0, allowedShare: 0.03 },
        { target: 'web', requests: 100, failed: 3, allowedShare: 0.03 },
      ],
    });
    expect(p).toEqual([
      "load onion: 7 of 100 failed (7.0 %), beyond the faulted relays' share (6.0 %)",
      'load web: no request ran',
    ]);
  });
});

describe('faultShare and allowedFailureShare', () => {
  it('is the chance that a path of `hops` random relays meets a faulted one', () => {
    expect(faultShare(0, 1000, 3)).toBe(0);
    expect(faultShare(10, 1000, 3)).toBeCloseTo(1 - 0.99 ** 3, 12);
    expect(faultShare(20, 2000, 6)).toBeCloseTo(1 - 0.99 ** 6, 12);
    expect(faultShare(5, 3, 3)).toBe(1);
    expect(faultShare(1, 0, 3)).toBe(0);
  });

  it("never goes below what shallot load's own default bar lets pass (1 %)", () => {
    expect(allowedFailureShare(0, 1000, 3)).toBeCloseTo(0.01, 12);
    expect(allowedFailureShare(10, 1000, 6)).toBeCloseTo(1 - 0.99 ** 6, 12);
  });
});

describe('circuitOutcomes', () => {
  const snap = (text: string) => snapshotOf(parsePromText(text));
  it('counts builds by purpose and outcome between two scrapes, and failures by reason', () => {
    const before = snap(
      [
        'shallot_circuits_total{purpose="exit",outcome="success",node="shallot"} 10',
        'shallot_circuits_total{purpose="exit",outcome="failure",node="shallot"} 1',
        'shallot_circuit_failures_total{purpose="exit",reason="timeout",node="shallot"} 1',
      ].join('\n'),
    );
    const after = snap(
      [
        'shallot_circuits_total{purpose="exit",outcome="success",node="shallot"} 40',
        'shallot_circuits_total{purpose="exit",outcome="failure",node="shallot"} 3',
        'shallot_circuits_total{purpose="onion-rend",outcome="success",node="shallot"} 18',
        'shallot_circuit_failures_total{purpose="exit",reason="timeout",node="shallot"} 2',
        'shallot_circuit_failures_total{purpose="exit",reason="connectfailed",node="shallot"} 1',
        'shallot_circuit_failures_total{purpose="hsdir",reason="noroute",node="shallot"} 0',
      ].join('\n'),
    );
    const c = circuitOutcomes(before, after);
    expect(c.byPurpose).toEqual({
      exit: { success: 30, failure: 2 },
      'onion-rend': { success: 18, failure: 0 },
    });
    expect([c.success, c.failure]).toEqual([48, 2]);
    expect(c.ratio).toBeCloseTo(48 / 50, 12);
    expect(c.failuresByReason).toEqual({ timeout: 1, connectfailed: 1 });
  });

  it('has no ratio without builds (an unreachable launcher scrapes as nothing)', () => {
    const c = circuitOutcomes(snap(''), snap(''));
    expect(c).toEqual({ success: 0, failure: 0, ratio: null, byPurpose: {}, failuresByReason: {} });
  });
});
