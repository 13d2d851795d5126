/**
 * What an authority's bandwidth scanner measured of each relay (the
 * authorities' scanner of dir-spec §3.4.1 `Measured=`): the last few
 * measurements per relay, whose low median the vote carries, and when to
 * measure a relay again.
 *
 * Design notes:
 * - MEASUREMENTS_KEPT samples, so one noisy sample does not decide.
 * - One measurement per relay in flight; a result that arrives after the
 *   relay's descriptor was replaced or dropped is not kept; a failed one is
 *   retried at the next vote.
 * - Re-measuring is paced by the network's size (`remeasureMs`).
 *
 * Not in this module: the measurement itself (reachability.ts measure),
 * capping it at what the relay claims and voting it (descriptors.ts
 * voteRelays, core/dir/flags.ts credibleBandwidth).
 */
import { lowMedian } from '../core/dir/voting.js';
import type { Metrics } from '../metrics/metrics.js';

/** Measurements of a relay kept; their median is voted, so one noisy sample does not decide. */
export const MEASUREMENTS_KEPT = 3;

export class RelayMeasurements {
  /** The last MEASUREMENTS_KEPT measurements of each relay (the vote carries their median). */
  private readonly measured = new Map<string, { samples: number[]; atMs: number }>();
  private readonly measuring = new Set<string>();

  constructor(
    private readonly c: {
      now: () => number;
      metrics: Metrics['directory'];
      /** The authority's name, as its metrics label it. */
      name: string;
      intervalMs: number;
      /** How many relays the authority holds descriptors of. */
      relayCount: () => number;
    },
  ) {}

  /** The low median of `id`'s kept measurements (bytes/s), or undefined before the first. */
  median(id: string): number | undefined {
    const m = this.measured.get(id);
    return m ? lowMedian(m.samples) : undefined;
  }

  forget(id: string): void {
    this.measured.delete(id);
  }

  /**
   * Measures `id` with `run` unless a measurement is in flight or fresh;
   * the result is kept only while `current()` (the measured descriptor is
   * still the relay's).
   */
  async measure(id: string, run: () => Promise<number | undefined>, current: () => boolean): Promise<void> {
    const have = this.measured.get(id);
    if (this.measuring.has(id)) return;
    if (have && this.c.now() - have.atMs < this.remeasureMs) return;
    this.measuring.add(id);
    try {
      const bw = await run();
      this.c.metrics.bandwidthMeasurements.inc({
        authority: this.c.name,
        result: bw === undefined ? 'failed' : 'ok',
      });
      if (bw !== undefined && current()) {
        const samples = [...(have?.samples ?? []), bw].slice(-MEASUREMENTS_KEPT);
        this.measured.set(id, { samples, atMs: this.c.now() });
      }
    } finally {
      this.measuring.delete(id);
    }
  }

  /**
   * How often a relay is re-measured: every two voting intervals in a small
   * network, less often in a large one so the scanner moves at most
   * MEASURE_BYTES a second (64 KiB/s) per authority. Re-measuring is the
   * larger part of an idle network's work (issue 17: 12 one-hop circuits
   * and fetches a second at 1,000 relays with 250 ms); sbws, the scanner
   * C tor's bandwidth authorities read, measures each relay every few hours.
   */
  private get remeasureMs(): number {
    return Math.max(2 * this.c.intervalMs, 1000 * this.c.relayCount());
  }
}
