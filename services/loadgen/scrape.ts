/**
 * Scraping /metrics endpoints before and after a load run, and turning
 * the two snapshots into what the report needs: per-relay deltas of the
 * rendezvous and introduction counters, and the client's circuit-build
 * histogram over the run.
 *
 * Overview: `metricsUrlsFromTargets` reads the Prometheus file_sd JSON
 * that `shallot up` writes; `scrape` fetches every URL and merges the
 * samples; `relayDeltas`, `histogramDelta` and `counterDeltaBy` compare
 * two snapshots.
 *
 * Design notes: several nodes may share one process and one registry
 * (the local launcher), so the same series can appear at several URLs;
 * a snapshot keeps each series once (the first URL that reported it)
 * rather than adding copies together.
 */
import { readFile } from 'node:fs/promises';
import { parsePromText, type Sample, seriesKey } from './prom-text.js';
import { type Bucket, bucketDelta } from './stats.js';

export interface Snapshot {
  /** Series key → sample. */
  series: Map<string, Sample>;
  /** URLs that could not be scraped, with the reason. */
  errors: { url: string; error: string }[];
}

/** Config problems the user must fix (bad targets file, bad URL). */
export class ScrapeConfigError extends Error {}

interface FileSdGroup {
  targets?: unknown;
  labels?: unknown;
}

/**
 * The /metrics URLs of a Prometheus file_sd JSON document:
 * `[{"targets":["host:port"],"labels":{...}}]`. Honours the
 * `__scheme__` and `__metrics_path__` labels as Prometheus does.
 */
export function metricsUrlsFromFileSd(json: string, source = 'targets file'): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new ScrapeConfigError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(doc)) throw new ScrapeConfigError(`${source}: want a JSON array of target groups`);
  const urls: string[] = [];
  for (const g of doc as FileSdGroup[]) {
    if (typeof g !== 'object' || g === null || !Array.isArray(g.targets))
      throw new ScrapeConfigError(`${source}: each group needs a "targets" array`);
    const labels = (typeof g.labels === 'object' && g.labels !== null ? g.labels : {}) as Record<
      string,
      unknown
    >;
    const scheme = typeof labels.__scheme__ === 'string' ? labels.__scheme__ : 'http';
    const path = typeof labels.__metrics_path__ === 'string' ? labels.__metrics_path__ : '/metrics';
    for (const t of g.targets) {
      if (typeof t !== 'string' || !/^[^\s/]+:\d{1,5}$/.test(t))
        throw new ScrapeConfigError(`${source}: target ${JSON.stringify(t)} is not host:port`);
      urls.push(`${scheme}://${t}${path.startsWith('/') ? path : `/${path}`}`);
    }
  }
  return urls;
}

export async function metricsUrlsFromTargets(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ScrapeConfigError(`cannot read targets file ${file}: ${(e as Error).message}`);
  }
  return metricsUrlsFromFileSd(text, file);
}

/** `host:port` or a URL; a bare address gets http:// and /metrics. */
export function normalizeMetricsUrl(s: string): string {
  const t = s.trim();
  const withScheme = /^https?:\/\//.test(t) ? t : `http://${t}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new ScrapeConfigError(`bad metrics URL ${JSON.stringify(s)}`);
  }
  if (u.pathname === '/' && !/^https?:\/\/[^/]+\/$/.test(t)) u.pathname = '/metrics';
  return u.toString();
}

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

/** Scrapes every URL (in parallel); failures are recorded, not thrown. */
export async function scrape(urls: readonly string[], timeoutMs = 5_000): Promise<Snapshot> {
  const texts = await Promise.all(
    urls.map((url) =>
      fetchText(url, timeoutMs).then(
        (text) => ({ url, text, error: null as string | null }),
        (e: unknown) => ({ url, text: '', error: e instanceof Error ? e.message : String(e) }),
      ),
    ),
  );
  const snap: Snapshot = { series: new Map(), errors: [] };
  for (const t of texts) {
    if (t.error !== null) {
      snap.errors.push({ url: t.url, error: t.error });
      continue;
    }
    for (const s of parsePromText(t.text)) {
      const k = seriesKey(s);
      if (!snap.series.has(k)) snap.series.set(k, s);
    }
  }
  return snap;
}

/** Builds a snapshot from samples directly (tests, or metrics read in-process). */
export function snapshotOf(samples: readonly Sample[]): Snapshot {
  const snap: Snapshot = { series: new Map(), errors: [] };
  for (const s of samples) {
    const k = seriesKey(s);
    if (!snap.series.has(k)) snap.series.set(k, s);
  }
  return snap;
}

function matches(s: Sample, name: string, where: Record<string, string>): boolean {
  if (s.name !== name) return false;
  for (const [k, v] of Object.entries(where)) if (s.labels[k] !== v) return false;
  return true;
}

/**
 * `after - before` of counter `name` (restricted to series with labels
 * `where`), summed by the value of label `by`. A series missing before
 * counts from zero (prom-client creates labelled series on first use).
 */
export function counterDeltaBy(
  before: Snapshot,
  after: Snapshot,
  name: string,
  by: string,
  where: Record<string, string> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, s] of after.series) {
    if (!matches(s, name, where)) continue;
    const key = s.labels[by];
    if (key === undefined) continue;
    const prev = before.series.get(k)?.value ?? 0;
    out[key] = (out[key] ?? 0) + Math.max(0, s.value - prev);
  }
  return out;
}

/** `after - before` of metric `name` summed over every series whose labels include `where`. */
export function deltaSum(
  before: Snapshot,
  after: Snapshot,
  name: string,
  where: Record<string, string> = {},
): number {
  let total = 0;
  for (const [k, s] of after.series) {
    if (matches(s, name, where)) total += Math.max(0, s.value - (before.series.get(k)?.value ?? 0));
  }
  return total;
}

/** Whether some series of metric `name` carries label `label`. */
export function hasLabel(snap: Snapshot, name: string, label: string): boolean {
  for (const s of snap.series.values()) if (s.name === name && s.labels[label] !== undefined) return true;
  return false;
}

/** The sum of metric `name` over every series whose labels include `where`. */
export function sumOf(snap: Snapshot, name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const s of snap.series.values()) if (matches(s, name, where)) total += s.value;
  return total;
}

/** Every value of label `label` on series whose name starts with `prefix`. */
export function labelValues(snap: Snapshot, prefix: string, label: string): string[] {
  const out = new Set<string>();
  for (const s of snap.series.values()) {
    if (!s.name.startsWith(prefix)) continue;
    const v = s.labels[label];
    if (v !== undefined) out.add(v);
  }
  return [...out].sort();
}

/**
 * The buckets of histogram `name` observed between the snapshots, merged
 * over every label set matching `where` (e.g. all circuit purposes).
 */
export function histogramDelta(
  before: Snapshot,
  after: Snapshot,
  name: string,
  where: Record<string, string> = {},
): Bucket[] {
  const collect = (snap: Snapshot): Bucket[] => {
    const byLe = new Map<number, number>();
    for (const s of snap.series.values()) {
      if (!matches(s, `${name}_bucket`, where)) continue;
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      if (Number.isNaN(le)) continue;
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
    return [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  };
  return bucketDelta(collect(before), collect(after));
}

/** Values of label `label` on the buckets of histogram `name` (e.g. circuit purposes). */
export function histogramLabelValues(snap: Snapshot, name: string, label: string): string[] {
  return labelValues(snap, `${name}_bucket`, label);
}
