/**
 * A relay's cell and byte counters per channel and direction
 * (shallot_relay_cells_total, shallot_relay_bytes_total), summed as cells
 * pass and added to the counters once per event-loop turn: a counter bumped
 * per cell (label hashing in prom-client) cost about 5 % of a relay's CPU
 * time in a download (issue 16).
 */
import type { Metrics } from '../metrics/metrics.js';
import type { Channel } from '../net/channel.js';

export function countTraffic(ch: Channel, m: Metrics['relay'], label: { relay: string }): void {
  const cells = {
    in: m.cells.labels({ ...label, direction: 'in' }),
    out: m.cells.labels({ ...label, direction: 'out' }),
  };
  const bytes = {
    in: m.bytes.labels({ ...label, direction: 'in' }),
    out: m.bytes.labels({ ...label, direction: 'out' }),
  };
  // Summed here and added to the counters once per event-loop turn: a
  // counter bumped per cell (label hashing in prom-client) cost about 5 %
  // of a relay's CPU time in a download (issue 16).
  const sum = { in: { cells: 0, bytes: 0 }, out: { cells: 0, bytes: 0 } };
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    for (const dir of ['in', 'out'] as const) {
      if (sum[dir].cells === 0) continue;
      cells[dir].inc(sum[dir].cells);
      bytes[dir].inc(sum[dir].bytes);
      sum[dir].cells = 0;
      sum[dir].bytes = 0;
    }
  };
  ch.onTraffic = (dir, n) => {
    sum[dir].cells += 1;
    sum[dir].bytes += n;
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };
}
