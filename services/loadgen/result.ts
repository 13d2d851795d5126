/**
 * The outcome of a load run as data: per-request records in, the summary
 * that `--out` writes (and the table and HTML report show) out.
 *
 * Overview: `buildResult` is pure (records, scraped deltas and times in;
 * LoadResult out) so the figures can be tested without a network.
 *
 * Design notes: latencies are milliseconds, all measured on the load
 * generator from the moment the SOCKS CONNECT request is sent: `connect`
 * ends at the proxy's success reply (circuit and stream setup, or for a
 * .onion the whole descriptor/introduction/rendezvous dance), `ttfb` at
 * the first response byte and `ttlb` at the last. That is OnionPerf's
 * convention, so the figures compare with Tor's.
 */
import type { Pause } from './backoff.js';
import type { LoadOptions } from './options.js';
import { type Distribution, distribution, type Spread, type Summary, summarize } from './stats.js';

/** What one request did. Times are ms since the run started; latencies in ms. */
export interface RequestRecord {
  i: number;
  size: number;
  startMs: number;
  endMs: number;
  ok: boolean;
  /** Failure reason when not ok. */
  reason?: string;
  connectMs?: number;
  ttfbMs?: number;
  ttlbMs?: number;
  /** Body bytes received. */
  bytes: number;
  /** How long the request waited for a backoff pause before it started (absent: none). */
  backoffMs?: number;
}

/** One second of the run. */
export interface TimelineSample {
  /** Seconds since the start (start of the one-second window). */
  t: number;
  started: number;
  ok: number;
  failed: number;
  /** Requests in flight at the end of the window. */
  inFlight: number;
  /** Body bytes of the requests that ended in the window. */
  bytes: number;
  /** Milliseconds of the window the run spent in a backoff pause (0..1000). */
  backoffMs: number;
  connectP50Ms: number | null;
  ttlbP50Ms: number | null;
}

export interface LatencySummary {
  connect: Summary;
  ttfb: Summary;
  ttlb: Summary;
}

export interface QuantileSummary {
  /** Observations in the window. */
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  /** From the histogram's _sum and _count; null without observations. */
  mean: number | null;
}

export interface CircuitBuildSummary extends QuantileSummary {
  byPurpose: Record<string, QuantileSummary>;
}

/** The network the run went through, as far as the run can tell (null: not known). */
export interface NetworkInfo {
  /** Relays in the network: `shallot up`'s node list, else the authorities' consensus, else relays scraped. */
  relays: number | null;
  /** `shallot up`'s mode (one-process, process-per-node). */
  mode: string | null;
  /** CREATE2 handshakes the relays processed (shallot_relay_onionskins_total), by type. */
  handshakes: Record<string, number> | null;
  /** Shallot's version (the load generator's package). */
  version: string;
  /** The target's onion service as `shallot up` names it, and its instance count. */
  onionService: { name: string; instances: number } | null;
}

/** How a multi-instance onion service shared the run (from the service's metrics). */
export interface InstanceSpread {
  /** The `service` label the figures are restricted to (null: every service scraped). */
  service: string | null;
  /** Established intro points per instance after the run (shallot_hs_intro_points{service_instance}). */
  introPoints: Record<string, number>;
  /** INTRODUCE2 accepted per instance; null when the counter has no service_instance label. */
  introductions: Spread | null;
  /** Rendezvous circuits completed per instance; null when the counter has no service_instance label. */
  rendezvous: Spread | null;
  /** Why a figure is missing, for the report. */
  notes: string[];
}

/** Backoff while requests kept failing (backoff.ts). */
export interface BackoffSummary {
  baseMs: number;
  maxMs: number;
  /** Every pause (ms since the start), up to MAX_SAMPLES. */
  pauses: Pause[];
  totalMs: number;
  longestMs: number;
}

export interface LoadResult {
  version: 1;
  config: Omit<LoadOptions, 'progress' | 'progressIntervalSec'> & {
    targetKind: 'onion' | 'exit';
    targetHost: string;
    targetPort: number;
    /** Every /metrics URL scraped for relay counters. */
    relayMetricsUrls: string[];
  };
  started: string;
  finished: string;
  elapsedSec: number;
  /** True when the run was cut short (signal). */
  interrupted: boolean;
  /** Why the run stopped before its bound, besides a signal (null: it did not). */
  stoppedEarly: string | null;
  counts: { requests: number; ok: number; failed: number; bytes: number };
  /** ok / requests (1 when no request ran). */
  successRatio: number;
  throughput: { requestsPerSec: number; bytesPerSec: number };
  /** Milliseconds. */
  latency: LatencySummary;
  /** Histogram and CDF of each latency, from every request (not the subsample). */
  distribution: { connect: Distribution; ttfb: Distribution; ttlb: Distribution };
  backoff: BackoffSummary;
  latencyBySize: Record<string, LatencySummary>;
  failuresByReason: Record<string, number>;
  /** Hex SHA-256 per size from the target's /sha256/<n>; null where it could not be fetched. */
  checksums: Record<string, string | null>;
  /** From the client's /metrics: shallot_circuit_build_seconds over the run (ms). */
  circuitBuild: CircuitBuildSummary | null;
  /** From the client's /metrics: shallot_onion_connect_seconds over the run (ms). */
  clientOnionConnect: QuantileSummary | null;
  /** From the client's /metrics: shallot_onion_connect_phase_seconds{phase} over the run (ms). */
  onionConnectPhases: Record<string, QuantileSummary> | null;
  /** From the client's /metrics: shallot_client_rendezvous_chosen_total deltas per relay. */
  clientRendezvousChosen: Spread | null;
  /**
   * From the client's /metrics: shallot_client_circuit_hops_total deltas per
   * relay, by position (guard, middle, exit, last); positions without
   * circuits during the run are left out. What the client saw: on a C tor
   * network, whose relays' metrics cannot be scraped, the per-relay view.
   */
  clientRelayUse: Record<string, Spread> | null;
  /** From the relays' /metrics: shallot_relay_rendezvous_total{event="joined"} deltas. */
  rendezvousSpread: Spread | null;
  /**
   * From the relays' /metrics: shallot_relay_intro_total{event="introduce1"}
   * deltas over the relays that are intro points (event="established" ever
   * counted), not all relays: only those can carry introductions.
   */
  introSpread: Spread | null;
  instanceSpread: InstanceSpread | null;
  network: NetworkInfo;
  timeline: TimelineSample[];
  /** Per-request records (every request up to MAX_SAMPLES, else an even subsample). */
  samples: RequestRecord[];
  warnings: string[];
}

export const MAX_SAMPLES = 10_000;

function latencyOf(records: readonly RequestRecord[]): LatencySummary {
  const ok = records.filter((r) => r.ok);
  return {
    // Connect time counts for every request whose stream opened, even if the body then failed.
    connect: summarize(records.flatMap((r) => (r.connectMs !== undefined ? [r.connectMs] : []))),
    ttfb: summarize(ok.flatMap((r) => (r.ttfbMs !== undefined ? [r.ttfbMs] : []))),
    ttlb: summarize(ok.flatMap((r) => (r.ttlbMs !== undefined ? [r.ttlbMs] : []))),
  };
}

/** Per-second windows from the records' start and end times. */
export function timelineOf(
  records: readonly RequestRecord[],
  elapsedMs: number,
  pauses: readonly Pause[] = [],
): TimelineSample[] {
  const windows = Math.max(1, Math.ceil(elapsedMs / 1000));
  const out: TimelineSample[] = [];
  const connects: number[][] = [];
  const ttlbs: number[][] = [];
  for (let k = 0; k < windows; k++) {
    out.push({
      t: k,
      started: 0,
      ok: 0,
      failed: 0,
      inFlight: 0,
      bytes: 0,
      backoffMs: 0,
      connectP50Ms: null,
      ttlbP50Ms: null,
    });
    connects.push([]);
    ttlbs.push([]);
  }
  const at = (ms: number) => Math.min(windows - 1, Math.max(0, Math.floor(ms / 1000)));
  for (const r of records) {
    out[at(r.startMs)]!.started++;
    const e = at(r.endMs);
    out[e]!.bytes += r.bytes;
    if (r.ok) out[e]!.ok++;
    else out[e]!.failed++;
    if (r.connectMs !== undefined) connects[e]!.push(r.connectMs);
    if (r.ok && r.ttlbMs !== undefined) ttlbs[e]!.push(r.ttlbMs);
    // In flight at the end of window k: started by then, not yet finished.
    for (let k = at(r.startMs); k < windows; k++) {
      const edge = (k + 1) * 1000;
      if (r.startMs < edge && r.endMs >= edge) out[k]!.inFlight++;
      else if (r.endMs < edge) break;
    }
  }
  for (const p of pauses) {
    for (let k = at(p.startMs); k <= at(p.endMs); k++) {
      const overlap = Math.min(p.endMs, (k + 1) * 1000) - Math.max(p.startMs, k * 1000);
      if (overlap > 0) out[k]!.backoffMs += overlap;
    }
  }
  for (let k = 0; k < windows; k++) {
    out[k]!.connectP50Ms = summarize(connects[k]!).p50;
    out[k]!.ttlbP50Ms = summarize(ttlbs[k]!).p50;
  }
  return out;
}

/** At most `max` records, evenly spaced over the run (keeps the shape of the timeline). */
export function subsample<T>(records: readonly T[], max: number): T[] {
  if (records.length <= max) return [...records];
  const step = records.length / max;
  const out: T[] = [];
  for (let k = 0; k < max; k++) out.push(records[Math.floor(k * step)]!);
  return out;
}

/** The result's fields read from the nodes' metrics and the network's state (scraped.ts computes them). */
export type ScrapedFigures = Pick<
  LoadResult,
  | 'circuitBuild'
  | 'clientOnionConnect'
  | 'onionConnectPhases'
  | 'clientRendezvousChosen'
  | 'clientRelayUse'
  | 'rendezvousSpread'
  | 'introSpread'
  | 'instanceSpread'
  | 'network'
>;

/** What a run collected; the metrics-derived fields pass through to the result as they are. */
export interface BuildInput extends ScrapedFigures, Pick<LoadResult, 'checksums' | 'stoppedEarly'> {
  options: LoadOptions;
  target: { host: string; port: number; onion: boolean };
  relayMetricsUrls: string[];
  records: readonly RequestRecord[];
  startedAt: Date;
  finishedAt: Date;
  interrupted: boolean;
  backoff: { baseMs: number; maxMs: number; pauses: readonly Pause[] };
  warnings: string[];
}

export function buildResult(b: BuildInput): LoadResult {
  const records = [...b.records].sort((x, y) => x.i - y.i);
  const ok = records.filter((r) => r.ok).length;
  const bytes = records.reduce((s, r) => s + r.bytes, 0);
  const elapsedMs = Math.max(0, b.finishedAt.getTime() - b.startedAt.getTime());
  const failuresByReason: Record<string, number> = {};
  for (const r of records) {
    if (!r.ok) failuresByReason[r.reason ?? 'unknown'] = (failuresByReason[r.reason ?? 'unknown'] ?? 0) + 1;
  }
  const bySize: Record<string, LatencySummary> = {};
  for (const size of [...new Set(b.options.sizes)]) {
    bySize[String(size)] = latencyOf(records.filter((r) => r.size === size));
  }
  const { progress: _p, progressIntervalSec: _pi, ...config } = b.options;
  const secs = elapsedMs / 1000;
  const pauses = b.backoff.pauses.map((p) => ({ ...p }));
  const pauseMs = pauses.map((p) => p.endMs - p.startMs);
  return {
    version: 1,
    config: {
      ...config,
      targetKind: b.target.onion ? 'onion' : 'exit',
      targetHost: b.target.host,
      targetPort: b.target.port,
      relayMetricsUrls: b.relayMetricsUrls,
    },
    started: b.startedAt.toISOString(),
    finished: b.finishedAt.toISOString(),
    elapsedSec: secs,
    interrupted: b.interrupted,
    stoppedEarly: b.stoppedEarly,
    counts: { requests: records.length, ok, failed: records.length - ok, bytes },
    successRatio: records.length === 0 ? 1 : ok / records.length,
    throughput: {
      requestsPerSec: secs > 0 ? records.length / secs : 0,
      bytesPerSec: secs > 0 ? bytes / secs : 0,
    },
    latency: latencyOf(records),
    distribution: {
      connect: distribution(records.flatMap((r) => (r.connectMs !== undefined ? [r.connectMs] : []))),
      ttfb: distribution(records.flatMap((r) => (r.ok && r.ttfbMs !== undefined ? [r.ttfbMs] : []))),
      ttlb: distribution(records.flatMap((r) => (r.ok && r.ttlbMs !== undefined ? [r.ttlbMs] : []))),
    },
    backoff: {
      baseMs: b.backoff.baseMs,
      maxMs: b.backoff.maxMs,
      pauses: subsample(pauses, MAX_SAMPLES),
      totalMs: pauseMs.reduce((x, y) => x + y, 0),
      longestMs: pauseMs.reduce((x, y) => Math.max(x, y), 0),
    },
    latencyBySize: bySize,
    failuresByReason,
    checksums: b.checksums,
    circuitBuild: b.circuitBuild,
    clientOnionConnect: b.clientOnionConnect,
    onionConnectPhases: b.onionConnectPhases,
    clientRendezvousChosen: b.clientRendezvousChosen,
    clientRelayUse: b.clientRelayUse,
    rendezvousSpread: b.rendezvousSpread,
    introSpread: b.introSpread,
    instanceSpread: b.instanceSpread,
    network: b.network,
    timeline: timelineOf(records, elapsedMs, pauses),
    samples: subsample(records, MAX_SAMPLES),
    warnings: b.warnings,
  };
}
