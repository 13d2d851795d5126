/**
 * A small benchmark harness: runs a function repeatedly for a time budget
 * after a warm-up, and reports operations per second plus per-op latency
 * quantiles. Results are figures to read and compare, never assertions.
 */
import { performance } from 'node:perf_hooks';

export interface BenchResult {
  name: string;
  unit: string;
  /** Operations (or units, e.g. cells or bytes) per second. */
  perSecond: number;
  ops: number;
  seconds: number;
  medianMs?: number;
  p95Ms?: number;
  extra?: Record<string, number | string>;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** Times a synchronous operation; `unitsPerOp` scales the rate (e.g. cells per call). */
export function benchSync(
  name: string,
  fn: () => void,
  opts: { unit?: string; unitsPerOp?: number; budgetMs?: number } = {},
): BenchResult {
  const budget = opts.budgetMs ?? 1000;
  for (let i = 0; i < 50; i++) fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < budget) {
    for (let i = 0; i < 20; i++) fn();
    ops += 20;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  const units = ops * (opts.unitsPerOp ?? 1);
  return { name, unit: opts.unit ?? 'ops', perSecond: units / seconds, ops, seconds };
}

/** Times an async operation one at a time, recording each latency. */
export async function benchAsync(
  name: string,
  fn: () => Promise<void>,
  opts: { unit?: string; budgetMs?: number; maxOps?: number; warmup?: number } = {},
): Promise<BenchResult> {
  const budget = opts.budgetMs ?? 3000;
  const maxOps = opts.maxOps ?? 10_000;
  for (let i = 0; i < (opts.warmup ?? 3); i++) await fn();
  const lat: number[] = [];
  const start = performance.now();
  while (performance.now() - start < budget && lat.length < maxOps) {
    const t = performance.now();
    await fn();
    lat.push(performance.now() - t);
  }
  const seconds = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return {
    name,
    unit: opts.unit ?? 'ops',
    perSecond: lat.length / seconds,
    ops: lat.length,
    seconds,
    medianMs: quantile(lat, 0.5),
    p95Ms: quantile(lat, 0.95),
  };
}

export function formatResult(r: BenchResult): string {
  const rate = r.perSecond >= 100 ? r.perSecond.toFixed(0) : r.perSecond.toFixed(2);
  const lat =
    r.medianMs === undefined ? '' : `  median ${r.medianMs.toFixed(2)} ms  p95 ${r.p95Ms?.toFixed(2)} ms`;
  const extra = r.extra
    ? `  ${Object.entries(r.extra)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`
    : '';
  return `${r.name.padEnd(46)} ${rate.padStart(12)} ${r.unit}/s${lat}${extra}`;
}
