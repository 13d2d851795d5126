/**
 * A small benchmark harness: runs a function repeatedly for a time budget
 * (and at most a number of operations) after a warm-up, and reports
 * operations per second plus latency quantiles. Results are figures to read
 * and compare, never assertions.
 *
 * Latency of fast synchronous operations is measured per batch (a batch
 * lasts about BATCH_TARGET_MS) and divided by the batch size, because timing
 * a 2 µs call with performance.now() would mostly measure the timer. Slow
 * operations get a batch of one, so their quantiles are true per-call ones.
 */
import { performance } from 'node:perf_hooks';

export interface BenchResult {
  name: string;
  /** What one operation is ("cell", "handshake", …). */
  unit: string;
  /** Operations per second. */
  perSecond: number;
  ops: number;
  seconds: number;
  /** Payload bytes per second, when each operation moves `bytesPerOp` bytes. */
  bytesPerSecond?: number;
  /** Per-operation latency quantiles in milliseconds. */
  p50Ms?: number;
  p90Ms?: number;
  p99Ms?: number;
  /** Set when latencies are batch averages rather than single calls. */
  batch?: number;
  /** Set instead of figures when the benchmark could not run. */
  skipped?: string;
  extra?: Record<string, number | string>;
  /** Samples over time (the soak bench), for the JSON report only. */
  series?: unknown[];
  /** Failed requests one by one (the soak bench: reason, time), for the JSON report only. */
  failures?: unknown[];
}

export interface BenchOptions {
  unit?: string;
  /** Bytes of payload per operation, for MB/s. */
  bytesPerOp?: number;
  /** Measuring time after warm-up. */
  budgetMs?: number;
  /** Hard cap on measured operations. */
  maxOps?: number;
  /** Warm-up: whichever comes first of this many ms and `warmupOps` operations. */
  warmupMs?: number;
  warmupOps?: number;
}

const BATCH_TARGET_MS = 0.05;

/** The q-quantile of an ascending array (nearest-rank). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

function summarize(
  name: string,
  lat: number[],
  ops: number,
  seconds: number,
  opts: BenchOptions,
  batch: number,
): BenchResult {
  lat.sort((a, b) => a - b);
  const r: BenchResult = {
    name,
    unit: opts.unit ?? 'op',
    perSecond: ops / seconds,
    ops,
    seconds,
    p50Ms: quantile(lat, 0.5),
    p90Ms: quantile(lat, 0.9),
    p99Ms: quantile(lat, 0.99),
  };
  if (batch > 1) r.batch = batch;
  if (opts.bytesPerOp !== undefined) r.bytesPerSecond = (ops * opts.bytesPerOp) / seconds;
  return r;
}

/** A result from latencies measured one by one (ms), e.g. downloads or connections timed by the caller. */
export function fromLatencies(
  name: string,
  unit: string,
  timesMs: readonly number[],
  bytesPerOp?: number,
): BenchResult {
  const seconds = timesMs.reduce((a, b) => a + b, 0) / 1000;
  return summarize(
    name,
    [...timesMs],
    timesMs.length,
    seconds,
    bytesPerOp === undefined ? { unit } : { unit, bytesPerOp },
    1,
  );
}

/** Times a synchronous operation. */
export function benchSync(name: string, fn: () => void, opts: BenchOptions = {}): BenchResult {
  const budget = opts.budgetMs ?? 1000;
  const maxOps = opts.maxOps ?? 5_000_000;
  const warmupMs = opts.warmupMs ?? 150;
  const warmupOps = opts.warmupOps ?? 100_000;

  // Warm-up doubles as calibration of the batch size.
  let warm = 0;
  const w0 = performance.now();
  while (warm < warmupOps && performance.now() - w0 < warmupMs) {
    fn();
    warm++;
  }
  const perOpMs = (performance.now() - w0) / Math.max(1, warm);
  const batch = Math.max(1, Math.min(10_000, Math.floor(BATCH_TARGET_MS / Math.max(perOpMs, 1e-6))));

  const lat: number[] = [];
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < budget && ops < maxOps) {
    const t = now;
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = performance.now();
    lat.push((now - t) / batch);
  }
  return summarize(name, lat, ops, (now - start) / 1000, opts, batch);
}

/** Times an async operation one at a time, recording each latency. */
export async function benchAsync(
  name: string,
  fn: () => Promise<void>,
  opts: BenchOptions = {},
): Promise<BenchResult> {
  const budget = opts.budgetMs ?? 3000;
  const maxOps = opts.maxOps ?? 10_000;
  const warmupMs = opts.warmupMs ?? 500;
  const warmupOps = opts.warmupOps ?? 3;
  const w0 = performance.now();
  for (let i = 0; i < warmupOps && performance.now() - w0 < warmupMs; i++) await fn();
  const lat: number[] = [];
  const start = performance.now();
  while (performance.now() - start < budget && lat.length < maxOps) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  return summarize(name, lat, lat.length, (performance.now() - start) / 1000, opts, 1);
}

/** A row for a benchmark that could not run, with the reason. */
export function skipped(name: string, reason: string): BenchResult {
  return { name, unit: '-', perSecond: Number.NaN, ops: 0, seconds: 0, skipped: reason };
}

/* ------------------------------------------------------------ formatting */

function fmtRate(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  if (x >= 100) return x.toFixed(0);
  return x.toFixed(2);
}

export function fmtLatency(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : 1)} µs`;
  if (ms < 1000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function fmtMB(bps: number | undefined): string {
  return bps === undefined || !Number.isFinite(bps) ? '-' : (bps / 1e6).toFixed(1);
}

const COLUMNS = ['benchmark', 'ops/s', 'unit', 'MB/s', 'p50', 'p90', 'p99', 'n'] as const;

/** One line, for progress output. */
export function formatResult(r: BenchResult): string {
  if (r.skipped) return `${r.name}: not available (${r.skipped})`;
  if (r.extra && !Number.isFinite(r.perSecond)) {
    return `${r.name}: ${Object.entries(r.extra)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`;
  }
  const mb = r.bytesPerSecond === undefined ? '' : `  ${fmtMB(r.bytesPerSecond)} MB/s`;
  const extra = Object.entries(r.extra ?? {})
    .map(([k, v]) => `  ${k} ${v}`)
    .join('');
  return `${r.name}: ${fmtRate(r.perSecond)} ${r.unit}/s${mb}  p50 ${fmtLatency(r.p50Ms)}  p90 ${fmtLatency(r.p90Ms)}  p99 ${fmtLatency(r.p99Ms)}${extra}`;
}

/** A fixed-width table of all results; skipped rows say why. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows: string[][] = results.map((r) =>
    r.skipped
      ? [r.name, 'n/a', '', '', '', '', '', '']
      : [
          r.name,
          fmtRate(r.perSecond),
          r.unit,
          fmtMB(r.bytesPerSecond),
          fmtLatency(r.p50Ms),
          fmtLatency(r.p90Ms),
          fmtLatency(r.p99Ms),
          String(r.ops),
        ],
  );
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, c) => (c === 0 || c === 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join('  ');
  const out = [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const [i, row] of rows.entries()) {
    out.push(line(row));
    const r = results[i]!;
    if (r.skipped) out.push(`    not available: ${r.skipped}`);
    else if (r.extra) out.push(`    ${formatResult(r).slice(r.name.length + 2)}`);
  }
  return out.join('\n');
}
