/**
 * The load generator's arithmetic: latency percentiles, histograms and
 * CDFs, load spread across relays (share, max/mean, coefficient of
 * variation) and quantiles estimated from Prometheus histogram buckets.
 *
 * Overview: pure functions over numbers, no I/O, so the report's figures
 * can be checked by hand in unit tests.
 *
 * Design notes:
 * - Percentiles interpolate linearly between closest ranks (numpy's and
 *   OnionPerf's default), so p50 of [1, 2] is 1.5 and small samples give
 *   smooth numbers rather than jumping between observations.
 * - Bucket quantiles follow Prometheus' `histogram_quantile`: find the
 *   bucket holding rank q·count and interpolate linearly inside it; the
 *   +Inf bucket answers with its lower bound (the largest finite `le`).
 * - Spread counts every relay known to exist, including relays with zero
 *   events, so an idle relay raises the CV as it should.
 */

/** A latency summary in milliseconds; figures are null without observations. */
export interface Summary {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  /** p99.9: one request in a thousand is slower (needs ≥1000 samples to mean much). */
  p999: number | null;
  max: number | null;
}

/** The p-th percentile (0..100) of ascending `sorted`, interpolating between closest ranks. */
export function percentile(sorted: readonly number[], p: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} outside 0..100`);
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0)
    return { count: 0, min: null, mean: null, p50: null, p90: null, p99: null, p999: null, max: null };
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: n,
    min: sorted[0]!,
    mean: sum / n,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[n - 1]!,
  };
}

/** One bar of a latency histogram: observations in [fromMs, toMs) (the last bar includes toMs). */
export interface Bin {
  fromMs: number;
  toMs: number;
  count: number;
}

/** A latency distribution as the report draws it: histogram bars and CDF points. */
export interface Distribution {
  /** `bins` equal-width bars from 0 to the largest value; empty without values. */
  bins: Bin[];
  /** The p-th percentile for p in CDF_POINTS (ascending), so the CDF is drawn from any run size. */
  cdf: { p: number; ms: number }[];
}

/** Percentiles the CDF is drawn through: every 1 %, then finer in the tail (p99.9 included). */
export const CDF_POINTS: readonly number[] = [...Array.from({ length: 100 }, (_, k) => k), 99.5, 99.9, 100];

export function distribution(values: readonly number[], bins = 40): Distribution {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { bins: [], cdf: [] };
  const max = sorted[sorted.length - 1]!;
  const width = max > 0 ? max / bins : 1;
  const out: Bin[] = Array.from({ length: bins }, (_, k) => ({
    fromMs: k * width,
    toMs: (k + 1) * width,
    count: 0,
  }));
  for (const v of sorted) out[Math.min(bins - 1, Math.floor(v / width))]!.count++;
  return { bins: out, cdf: CDF_POINTS.map((p) => ({ p, ms: percentile(sorted, p)! })) };
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/**
 * Coefficient of variation: population standard deviation over the mean.
 * Null for no values or a zero mean (no load to spread).
 */
export function coefficientOfVariation(values: readonly number[]): number | null {
  const m = mean(values);
  if (m === null || m === 0) return null;
  let sq = 0;
  for (const v of values) sq += (v - m) ** 2;
  return Math.sqrt(sq / values.length) / m;
}

/** How events spread over relays. */
export interface Spread {
  /** Events counted over all relays. */
  total: number;
  /** Relays considered, including those with no events. */
  relays: number;
  /** Each relay's events. */
  counts: Record<string, number>;
  /** Each relay's fraction of `total` (0 for all when total is 0). */
  perRelay: Record<string, number>;
  /** The busiest relay's count over the mean count; 1 is perfectly even. Null without events. */
  maxOverMean: number | null;
  /** Population stddev / mean of the counts; 0 is perfectly even. Null without events. */
  cv: number | null;
}

/**
 * Spread of `counts` over `relays` (names with no entry in `counts` count
 * as zero; names only in `counts` are added). Negative counts (a relay
 * restarted between scrapes and its counter reset) are clamped to zero.
 */
export function spread(counts: Record<string, number>, relays: Iterable<string> = []): Spread {
  const names = new Set<string>(relays);
  for (const k of Object.keys(counts)) names.add(k);
  const sortedNames = [...names].sort();
  const c: Record<string, number> = {};
  let total = 0;
  for (const k of sortedNames) {
    const v = Math.max(0, counts[k] ?? 0);
    c[k] = v;
    total += v;
  }
  const perRelay: Record<string, number> = {};
  for (const k of sortedNames) perRelay[k] = total > 0 ? c[k]! / total : 0;
  const values = sortedNames.map((k) => c[k]!);
  const m = mean(values);
  return {
    total,
    relays: sortedNames.length,
    counts: c,
    perRelay,
    maxOverMean: m ? Math.max(...values) / m : null,
    cv: total > 0 ? coefficientOfVariation(values) : null,
  };
}

/** One cumulative histogram bucket: observations ≤ `le`. */
export interface Bucket {
  le: number;
  count: number;
}

/**
 * The q-quantile (0..1) of a cumulative histogram, as Prometheus'
 * `histogram_quantile`. Buckets may come in any order; null when empty.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} outside 0..1`);
  const b = [...buckets].sort((x, y) => x.le - y.le);
  if (b.length === 0) return null;
  const total = b[b.length - 1]!.count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of b) {
    if (count >= rank && count > prevCount) {
      if (le === Number.POSITIVE_INFINITY) return prevLe;
      // Prometheus assumes the first bucket starts at 0 when its bound is positive.
      return prevLe + (le - prevLe) * ((rank - prevCount) / (count - prevCount));
    }
    if (le !== Number.POSITIVE_INFINITY) prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** Bucket-wise difference `after - before` (a histogram of what happened in between). */
export function bucketDelta(before: readonly Bucket[], after: readonly Bucket[]): Bucket[] {
  const prev = new Map(before.map((b) => [b.le, b.count]));
  return after.map((b) => ({ le: b.le, count: Math.max(0, b.count - (prev.get(b.le) ?? 0)) }));
}
