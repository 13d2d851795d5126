/**
 * The network model as Prometheus series (issue 18), so a dashboard shows
 * what latency the links were given beside what circuits then took:
 * shallot_network_model_latency_seconds{from,to} and _jitter_seconds, one
 * series per unordered pair of locations (links are symmetric,
 * core/network-model.ts).
 *
 * Not in this module: the model (core/network-model.ts), applying it
 * (net/link-delay.ts), metrics by location (client/location-metrics.ts).
 *
 * Design notes: every node that has the model sets the same values, so in
 * one process (the local launcher) they share one series and across pods
 * `max by (from, to)` gives the model. A model of more than
 * MAX_MODEL_SERIES_LOCATIONS locations is not exported pair by pair: 32
 * locations are 528 pairs, already more than a panel can show, and the CRD
 * allows 256 (32,896 pairs, on every node).
 */
import { latencyBetween, type NetworkModel } from '../core/network-model.js';
import type { Metrics } from './metrics.js';

export const MAX_MODEL_SERIES_LOCATIONS = 32;

/** Sets the model's series; false when it has too many locations to export. */
export function recordNetworkModel(m: Metrics['model'], model: NetworkModel): boolean {
  if (model.locations.length > MAX_MODEL_SERIES_LOCATIONS) return false;
  const sorted = [...model.locations].sort();
  for (const [i, from] of sorted.entries())
    for (const to of sorted.slice(i)) {
      const l = latencyBetween(model, from, to);
      m.latency.labels({ from, to }).set(l.latencyMs / 1000);
      m.jitter.labels({ from, to }).set(l.jitterMs / 1000);
    }
  return true;
}
