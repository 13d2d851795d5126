/**
 * What the /metrics scraped before and after a load run say about it:
 * circuit builds and the onion connect split into phases (client), how
 * rendezvous and introductions spread over relays and over the instances
 * of a multi-instance onion service, and the network's settings for the
 * report header.
 *
 * Overview: `scrapedFigures` is pure (two snapshots per source in, the
 * metrics-derived fields of the result out), so each figure is tested
 * with synthetic samples.
 *
 * Design notes:
 * - Intro spread counts INTRODUCE1 only over relays that are intro points
 *   (shallot_relay_intro_total{event="established"} ever counted, or an
 *   INTRODUCE1 during the run): a client introduces only through the intro
 *   points in the descriptor, so counting every relay made an even load
 *   look uneven (issue 13: max/mean 3.7 over 15 relays with 3 intro points).
 *   A relay counts as an intro point for any service: relays' counters do
 *   not say whose intro point they are.
 * - Per-instance figures come from the onion service's own metrics, whose
 *   `service_instance` label names the instance (Prometheus owns
 *   `instance`); a counter without that label is reported as missing, not
 *   guessed.
 */
import type { UpState } from './network-state.js';
import type {
  CircuitBuildSummary,
  InstanceSpread,
  NetworkInfo,
  QuantileSummary,
  ScrapedFigures,
} from './result.js';
import {
  counterDeltaBy,
  deltaSum,
  hasLabel,
  histogramDelta,
  histogramLabelValues,
  labelValues,
  type Snapshot,
} from './scrape.js';
import { type Bucket, histogramQuantile, type Spread, spread } from './stats.js';

const EMPTY: Snapshot = { series: new Map(), errors: [] };
const toMs = (s: number | null) => (s === null ? null : s * 1000);

/** Quantiles (ms) of a histogram delta; `sumSec` is the delta of its _sum. */
export function quantiles(buckets: Bucket[], sumSec: number | null = null): QuantileSummary {
  const count = buckets.find((b) => b.le === Number.POSITIVE_INFINITY)?.count ?? 0;
  return {
    count,
    p50: toMs(histogramQuantile(0.5, buckets)),
    p90: toMs(histogramQuantile(0.9, buckets)),
    p99: toMs(histogramQuantile(0.99, buckets)),
    p999: toMs(histogramQuantile(0.999, buckets)),
    mean: count > 0 && sumSec !== null ? (sumSec * 1000) / count : null,
  };
}

/** Before and after snapshots of one source. */
export type Pair = [before: Snapshot, after: Snapshot];

function histogramSummary([b, a]: Pair, name: string, where: Record<string, string> = {}): QuantileSummary {
  return quantiles(histogramDelta(b, a, name, where), deltaSum(b, a, `${name}_sum`, where));
}

/** Each value of `label` on histogram `name`, summarized, those observed during the run only. */
function histogramBy(p: Pair, name: string, label: string): Record<string, QuantileSummary> {
  const out: Record<string, QuantileSummary> = {};
  for (const v of histogramLabelValues(p[1], name, label)) {
    const q = histogramSummary(p, name, { [label]: v });
    if (q.count > 0) out[v] = q;
  }
  return out;
}

/** Positions of shallot_client_circuit_hops_total (build-metrics.ts hopPosition). */
export const HOP_POSITIONS = ['guard', 'middle', 'exit', 'last'] as const;

/** Circuits built through each relay per position, as the client saw them; positions with none left out. */
function relayUse([b, a]: Pair): Record<string, Spread> | null {
  const out: Record<string, Spread> = {};
  for (const position of HOP_POSITIONS) {
    const s = spread(counterDeltaBy(b, a, 'shallot_client_circuit_hops_total', 'relay', { position }));
    if (s.total > 0) out[position] = s;
  }
  return Object.keys(out).length > 0 ? out : null;
}

/** Order of the onion connect phases (services/client/onion.ts). */
export const ONION_PHASES = ['descriptor', 'introduction', 'rendezvous', 'stream'] as const;

export interface ScrapeInput {
  target: { host: string; onion: boolean };
  /** Relay (and service, authority) /metrics; null when none was scraped. */
  relays: Pair | null;
  client: Pair | null;
  up: UpState | null;
  /** The network's name when the run started its own client (a C tor network). */
  networkName?: string | null;
  version: string;
}

export type { ScrapedFigures };

function introPointSpread([b, a]: Pair, relayNames: readonly string[]): Spread {
  const name = 'shallot_relay_intro_total';
  const introduce1 = counterDeltaBy(b, a, name, 'relay', { event: 'introduce1' });
  // Ever established, not just during the run: a long-lived intro point carries this run's load too.
  const established = counterDeltaBy(EMPTY, a, name, 'relay', { event: 'established' });
  const introPoints = relayNames.filter((r) => (established[r] ?? 0) > 0 || (introduce1[r] ?? 0) > 0);
  const counts: Record<string, number> = {};
  for (const r of introPoints) counts[r] = introduce1[r] ?? 0;
  return spread(counts, introPoints);
}

function instanceSpread([b, a]: Pair, wanted: string | null): InstanceSpread | null {
  // The `service` label as shallot up names the service; a lone service whose label differs
  // (a service started by hand under another name) is still the one.
  const names = labelValues(a, 'shallot_hs_intro_points', 'service');
  const service = wanted && names.includes(wanted) ? wanted : names.length === 1 ? names[0]! : null;
  const where: Record<string, string> = service ? { service } : {};
  const introPoints: Record<string, number> = {};
  for (const s of a.series.values()) {
    if (s.name !== 'shallot_hs_intro_points') continue;
    if (service && s.labels.service !== service) continue;
    const inst = s.labels.service_instance;
    if (inst !== undefined) introPoints[inst] = (introPoints[inst] ?? 0) + s.value;
  }
  const instances = Object.keys(introPoints);
  if (instances.length === 0) return null;
  const notes: string[] = [];
  const per = (name: string, outcome: string): Spread | null => {
    if (!hasLabel(a, name, 'service_instance')) {
      notes.push(`${name} has no service_instance label: load per instance is not measured`);
      return null;
    }
    return spread(counterDeltaBy(b, a, name, 'service_instance', { ...where, outcome }), instances);
  };
  return {
    service,
    introPoints,
    introductions: per('shallot_hs_intro_requests_total', 'accepted'),
    rendezvous: per('shallot_hs_rend_total', 'success'),
    notes,
  };
}

function networkInfo(i: ScrapeInput, relayNames: readonly string[]): NetworkInfo {
  const after = i.relays?.[1] ?? null;
  let consensusRelays: number | null = null;
  let handshakes: Record<string, number> | null = null;
  if (after) {
    for (const s of after.series.values())
      if (s.name === 'shallot_consensus_relays' && s.labels.flag === 'all')
        consensusRelays = Math.max(consensusRelays ?? 0, s.value);
    const byType: Record<string, number> = {};
    for (const s of after.series.values())
      if (s.name === 'shallot_relay_onionskins_total' && s.labels.action === 'processed' && s.value > 0)
        byType[s.labels.type ?? 'other'] = (byType[s.labels.type ?? 'other'] ?? 0) + s.value;
    if (Object.keys(byType).length > 0) handshakes = byType;
  }
  const svc = i.target.onion ? (i.up?.onionServices.find((s) => s.address === i.target.host) ?? null) : null;
  return {
    relays: i.up?.relays ?? consensusRelays ?? (relayNames.length > 0 ? relayNames.length : null),
    mode: i.up?.mode ?? i.networkName ?? null,
    handshakes,
    version: i.version,
    onionService: svc ? { name: svc.name, instances: svc.instances } : null,
  };
}

export function scrapedFigures(i: ScrapeInput): ScrapedFigures {
  const relayNames = i.relays ? labelValues(i.relays[1], 'shallot_relay_', 'relay') : [];
  // Rendezvous, intro and instance load only mean something for an onion target.
  const onionRelays = i.target.onion ? i.relays : null;
  const onionClient = i.target.onion ? i.client : null;
  let circuitBuild: CircuitBuildSummary | null = null;
  let clientOnionConnect: QuantileSummary | null = null;
  let onionConnectPhases: Record<string, QuantileSummary> | null = null;
  if (i.client) {
    circuitBuild = {
      ...histogramSummary(i.client, 'shallot_circuit_build_seconds'),
      byPurpose: histogramBy(i.client, 'shallot_circuit_build_seconds', 'purpose'),
    };
    const onion = histogramSummary(i.client, 'shallot_onion_connect_seconds');
    clientOnionConnect = onion.count > 0 || i.target.onion ? onion : null;
    if (onionClient)
      onionConnectPhases = histogramBy(onionClient, 'shallot_onion_connect_phase_seconds', 'phase');
  }
  const service = i.target.onion
    ? (i.up?.onionServices.find((s) => s.address === i.target.host)?.name ?? null)
    : null;
  return {
    circuitBuild,
    clientOnionConnect,
    onionConnectPhases,
    clientRendezvousChosen: onionClient
      ? spread(
          counterDeltaBy(onionClient[0], onionClient[1], 'shallot_client_rendezvous_chosen_total', 'relay'),
          relayNames,
        )
      : null,
    clientRelayUse: i.client ? relayUse(i.client) : null,
    rendezvousSpread: onionRelays
      ? spread(
          counterDeltaBy(onionRelays[0], onionRelays[1], 'shallot_relay_rendezvous_total', 'relay', {
            event: 'joined',
          }),
          relayNames,
        )
      : null,
    introSpread: onionRelays ? introPointSpread(onionRelays, relayNames) : null,
    instanceSpread: onionRelays ? instanceSpread(onionRelays, service) : null,
    network: networkInfo(i, relayNames),
  };
}
