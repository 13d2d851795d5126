/**
 * Circuit build and onion connect time by location under a network model
 * (issue 18): the client's location, and for circuits the locations of the
 * path's hops, as labels, so a dashboard shows what a path across regions
 * costs next to the model's latency (metrics/model-series.ts).
 *
 * Overview: `circuitBuilt(path, seconds)` observes
 * shallot_circuit_build_path_seconds{location, path="eu>eu>asia"}, and
 * `onionConnected(seconds)` shallot_onion_connect_location_seconds{location};
 * without a model neither observes anything (the plain
 * shallot_circuit_build_seconds and shallot_onion_connect_seconds always do).
 * The client places relays with the same model the relays were placed by
 * (by nickname, core/network-model.ts locationOf), so it needs no message
 * from them.
 *
 * Design notes: the path label is bounded. Its values are at most
 * locations^hops, but a large model would still mean thousands of series,
 * so past MAX_PATH_LABELS distinct paths a client files new ones under
 * path="other" (Prometheus's advice: keep a label's values bounded).
 */
import { pathLocations } from '../core/network-model.js';
import type { Metrics } from '../metrics/metrics.js';
import { recordNetworkModel } from '../metrics/model-series.js';
import type { LinkShaping } from '../net/link-delay.js';

/** Distinct path labels one client reports before it files new paths under "other". */
export const MAX_PATH_LABELS = 64;

export class LocationMetrics {
  private readonly paths = new Set<string>();

  constructor(
    private readonly m: Metrics,
    private readonly shaping: LinkShaping | null,
  ) {
    if (shaping?.model) recordNetworkModel(m.model, shaping.model);
  }

  /** The client's location, or null without a model. */
  get location(): string | null {
    return this.shaping?.model ? this.shaping.location : null;
  }

  /** The label a path of these relays (by nickname) is filed under. */
  pathLabel(nicknames: readonly string[]): string {
    const model = this.shaping?.model;
    if (!model) return 'unknown';
    const p = pathLocations(model, nicknames);
    if (this.paths.has(p)) return p;
    if (this.paths.size >= MAX_PATH_LABELS) return 'other';
    this.paths.add(p);
    return p;
  }

  circuitBuilt(hops: readonly { nickname: string }[], seconds: number): void {
    const location = this.location;
    if (location === null) return;
    const path = this.pathLabel(hops.map((h) => h.nickname));
    this.m.client.circuitBuildPath.labels({ location, path }).observe(seconds);
  }

  onionConnected(seconds: number): void {
    const location = this.location;
    if (location === null) return;
    this.m.client.onionConnectLocation.labels({ location }).observe(seconds);
  }
}
