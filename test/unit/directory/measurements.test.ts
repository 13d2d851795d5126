// What an authority's scanner keeps of each relay (directory/measurements.ts,
// dir-spec §3.4.1 Measured=): the low median of the last three results; one
// measurement per relay in flight; none again before the re-measure interval
// (two voting intervals, or a second per relay held); a failure is counted
// and retried at once; a result for a replaced descriptor is not kept.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MEASUREMENTS_KEPT, RelayMeasurements } from '../../../services/directory/measurements.js';
import { metricsFor } from '../../../services/metrics/metrics.js';

/** A measurement that returns `bw` (undefined: it failed). */
const result = (bw: number | undefined) => async () => bw;
/** The measured descriptor is still the relay's. */
const current = () => true;

function setup(relays = 1) {
  const clock = { ms: 1_000_000 };
  const registry = new Registry();
  const m = new RelayMeasurements({
    now: () => clock.ms,
    metrics: metricsFor(registry).directory,
    name: 'a1',
    intervalMs: 5_000,
    relayCount: () => relays,
  });
  const counted = async (result: 'ok' | 'failed') =>
    (await registry.getSingleMetric('shallot_dir_bandwidth_measurements_total')?.get())?.values.find(
      (v) => v.labels.result === result,
    )?.value ?? 0;
  return { m, clock, counted };
}

describe('RelayMeasurements', () => {
  it('votes the low median of the last three, measuring again only after two intervals', async () => {
    const { m, clock } = setup();
    expect(m.median('r1')).toBeUndefined();
    for (const bw of [100, 900, 300, 200]) {
      await m.measure('r1', result(bw), current);
      // Fresh: a second measurement now does not run.
      await m.measure('r1', result(1), current);
      clock.ms += 9_999;
      await m.measure('r1', result(1), current);
      clock.ms += 1;
    }
    expect(MEASUREMENTS_KEPT).toBe(3);
    // Kept: 900, 300, 200; their low median.
    expect(m.median('r1')).toBe(300);
    m.forget('r1');
    expect(m.median('r1')).toBeUndefined();
  });

  it('waits a second per relay held when that is longer', async () => {
    const { m, clock } = setup(60);
    await m.measure('r1', result(100), current);
    clock.ms += 59_999;
    await m.measure('r1', result(200), current);
    expect(m.median('r1')).toBe(100);
    clock.ms += 1;
    await m.measure('r1', result(200), current);
    expect(m.median('r1')).toBe(100); // low median of 100, 200
  });

  it('runs one measurement per relay at a time, keeps nothing for a replaced descriptor, counts failures', async () => {
    const { m, counted } = setup();
    let release: (bw: number) => void = () => {};
    let runs = 0;
    const slow = () => {
      runs++;
      return new Promise<number>((r) => {
        release = r;
      });
    };
    const first = m.measure('r1', slow, () => false);
    await m.measure('r1', slow, () => true);
    expect(runs).toBe(1);
    release(500);
    await first;
    expect(m.median('r1')).toBeUndefined();
    await m.measure('r2', result(undefined), current);
    expect(m.median('r2')).toBeUndefined();
    expect(await counted('failed')).toBe(1);
    expect(await counted('ok')).toBe(1);
    // A failure leaves nothing fresh: the next vote measures again.
    await m.measure('r2', result(700), current);
    expect(m.median('r2')).toBe(700);
  });
});
