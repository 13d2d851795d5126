/**
 * Inline SVG charts for the HTML load report that read a run as a whole:
 * latency histogram and CDF with p50/p90/p99/p99.9 marked, throughput per
 * second, each failure as a bar from its start to its end with backoff
 * pauses shaded, and the onion connect split into phases.
 *
 * Design notes: every time axis runs from 0 to the run's elapsed time, not
 * to the last event, so a stall at the end (no request started, none
 * finished) is drawn as the empty stretch it was (issue 13: a 30 s stall
 * was invisible). No scripts: hover text is SVG <title>. Values from the
 * run (reasons, labels) are escaped.
 *
 * Not in this module: the page around the charts (report.ts).
 */
import type { Pause } from './backoff.js';
import type { QuantileSummary, RequestRecord, TimelineSample } from './result.js';
import type { Distribution, Summary } from './stats.js';

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );
}

/** A "nice" axis step (1, 2 or 5 × 10^k) giving about `ticks` ticks up to `max`. */
export function niceStep(max: number, ticks = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

const f1 = (v: number) => v.toFixed(1);

interface Frame {
  X: (v: number) => number;
  Y: (v: number) => number;
  /** Plot area: left, top, width, height. */
  l: number;
  t: number;
  w: number;
  h: number;
  parts: string[];
}

/**
 * The svg element, grid, ticks and axis labels; callers push marks into
 * `parts` and close it. Every chart of the report draws its axes here.
 */
export function frame(o: {
  width: number;
  height: number;
  xMax: number;
  yMax: number;
  xLabel: string;
  yLabel: string;
  aria: string;
  cls: string;
  yFormat?: (v: number) => string;
  /** Room right of the plot; the default fits the legend and "p99.9 1234.5 ms". */
  marginRight?: number;
}): Frame {
  const m = { l: 60, r: o.marginRight ?? 130, t: 16, b: 40 };
  const w = o.width - m.l - m.r;
  const h = o.height - m.t - m.b;
  const xStep = niceStep(o.xMax);
  const yStep = niceStep(o.yMax);
  const xTop = Math.max(xStep, Math.ceil(o.xMax / xStep - 1e-9) * xStep);
  const yTop = Math.max(yStep, Math.ceil(o.yMax / yStep - 1e-9) * yStep);
  const X = (v: number) => m.l + (v / xTop) * w;
  const Y = (v: number) => m.t + h - (v / yTop) * h;
  const yFmt = o.yFormat ?? ((v: number) => String(+v.toPrecision(6)));
  const parts = [
    `<svg class="${o.cls}" xmlns="http://www.w3.org/2000/svg" width="${o.width}" height="${o.height}" viewBox="0 0 ${o.width} ${o.height}" role="img" aria-label="${escapeHtml(o.aria)}">`,
  ];
  for (let v = 0; v <= yTop + 1e-9; v += yStep)
    parts.push(
      `<line x1="${m.l}" x2="${m.l + w}" y1="${f1(Y(v))}" y2="${f1(Y(v))}" stroke="#ddd"/>`,
      `<text x="${m.l - 6}" y="${f1(Y(v) + 4)}" text-anchor="end" font-size="11">${yFmt(v)}</text>`,
    );
  for (let v = 0; v <= xTop + 1e-9; v += xStep)
    parts.push(
      `<line x1="${f1(X(v))}" x2="${f1(X(v))}" y1="${m.t + h}" y2="${m.t + h + 4}" stroke="#333"/>`,
      `<text x="${f1(X(v))}" y="${m.t + h + 16}" text-anchor="middle" font-size="11">${+v.toPrecision(6)}</text>`,
    );
  parts.push(
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + h}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${m.l + w}" y1="${m.t + h}" y2="${m.t + h}" stroke="#333"/>`,
    `<text x="${m.l + w / 2}" y="${o.height - 6}" text-anchor="middle" font-size="12">${escapeHtml(o.xLabel)}</text>`,
    `<text x="14" y="${m.t + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${m.t + h / 2})">${escapeHtml(o.yLabel)}</text>`,
  );
  return { X, Y, l: m.l, t: m.t, w, h, parts };
}

function legend(f: Frame, items: readonly (readonly [string, string])[]): void {
  items.forEach(([label, color], n) => {
    const y = f.t + 10 + n * 18;
    f.parts.push(
      `<rect x="${f.l + f.w + 16}" y="${y - 8}" width="10" height="10" fill="${color}"/>`,
      `<text x="${f.l + f.w + 32}" y="${y + 1}" font-size="12">${escapeHtml(label)}</text>`,
    );
  });
}

/** The percentiles every latency chart marks. */
export const MARKS = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p999', 'p99.9'],
] as const;

/** Bars of a latency histogram with dashed lines at p50/p90/p99/p99.9 (from `s`, all requests). */
export function histogramSvg(d: Distribution, s: Summary, what: string, width = 760, height = 280): string {
  const f = frame({
    width,
    height,
    xMax: Math.max(1, d.bins[d.bins.length - 1]?.toMs ?? 1),
    yMax: Math.max(1, ...d.bins.map((b) => b.count)),
    xLabel: `${what} (ms)`,
    yLabel: 'requests',
    aria: `${what} histogram`,
    cls: 'histogram',
  });
  const bars = d.bins.map(
    (b) =>
      `<rect x="${f1(f.X(b.fromMs))}" y="${f1(f.Y(b.count))}" width="${f1(Math.max(0.5, f.X(b.toMs) - f.X(b.fromMs) - 1))}" height="${f1(f.t + f.h - f.Y(b.count))}"><title>${f1(b.fromMs)}-${f1(b.toMs)} ms: ${b.count}</title></rect>`,
  );
  f.parts.push(`<g class="bins" fill="#1f77b4">${bars.join('')}</g>`);
  MARKS.forEach(([key, label], n) => {
    const v = s[key];
    if (v === null) return;
    const x = f1(f.X(v));
    f.parts.push(
      `<line class="mark-${label}" x1="${x}" x2="${x}" y1="${f.t}" y2="${f.t + f.h}" stroke="#d62728" stroke-dasharray="4 3"><title>${label} ${f1(v)} ms</title></line>`,
      `<text x="${f.l + f.w + 16}" y="${f.t + 10 + n * 18}" font-size="12" fill="#d62728">${label} ${f1(v)} ms</text>`,
    );
  });
  f.parts.push('</svg>');
  return f.parts.join('\n');
}

export interface CdfSeries {
  label: string;
  color: string;
  d: Distribution;
  s: Summary;
}

/** Cumulative distribution of each series (percent of requests at or below x ms), p50/p90/p99/p99.9 dotted. */
export function cdfSvg(series: readonly CdfSeries[], width = 760, height = 300): string {
  const xMax = Math.max(1, ...series.flatMap((k) => k.d.cdf.map((c) => c.ms)));
  const f = frame({
    width,
    height,
    xMax,
    yMax: 100,
    xLabel: 'latency (ms)',
    yLabel: 'requests at or below (%)',
    aria: 'latency CDF',
    cls: 'cdf',
  });
  for (const k of series) {
    if (k.d.cdf.length === 0) continue;
    const pts = k.d.cdf.map((c) => `${f1(f.X(c.ms))},${f1(f.Y(c.p))}`).join(' ');
    const dots = MARKS.flatMap(([key, label]) => {
      const v = k.s[key];
      const p = label === 'p99.9' ? 99.9 : Number(label.slice(1));
      return v === null
        ? []
        : [
            `<circle class="mark-${label}" cx="${f1(f.X(v))}" cy="${f1(f.Y(p))}" r="3.5"><title>${escapeHtml(k.label)} ${label} ${f1(v)} ms</title></circle>`,
          ];
    });
    f.parts.push(
      `<g class="cdf-${escapeHtml(k.label)}" fill="${k.color}"><polyline points="${pts}" fill="none" stroke="${k.color}" stroke-width="2"/>${dots.join('')}</g>`,
    );
  }
  legend(
    f,
    series.map((k) => [k.label, k.color] as const),
  );
  f.parts.push('</svg>');
  return f.parts.join('\n');
}

function pauseRects(f: Frame, pauses: readonly Pause[], elapsedSec: number): string {
  const rects = pauses.map((p) => {
    const a = Math.min(elapsedSec, p.startMs / 1000);
    const b = Math.min(elapsedSec, p.endMs / 1000);
    return `<rect x="${f1(f.X(a))}" y="${f.t}" width="${f1(Math.max(1, f.X(b) - f.X(a)))}" height="${f.h}"><title>backoff ${f1(a)}-${f1(b)} s (${f1(p.endMs - p.startMs)} ms)</title></rect>`;
  });
  return `<g class="backoff" fill="#ffdd57" fill-opacity="0.45">${rects.join('')}</g>`;
}

/** Requests finished per second, ok and failed stacked, over the whole run; backoff pauses shaded. */
export function throughputSvg(
  timeline: readonly TimelineSample[],
  elapsedSec: number,
  pauses: readonly Pause[],
  width = 760,
  height = 280,
): string {
  const xMax = Math.max(1, elapsedSec, timeline.length);
  const f = frame({
    width,
    height,
    xMax,
    yMax: Math.max(1, ...timeline.map((t) => t.ok + t.failed)),
    xLabel: 's since run start',
    yLabel: 'requests finished per second',
    aria: 'throughput over time',
    cls: 'throughput',
  });
  f.parts.push(pauseRects(f, pauses, xMax));
  const bar = (t: TimelineSample, from: number, n: number, cls: string, color: string) =>
    n === 0
      ? ''
      : `<rect class="${cls}" x="${f1(f.X(t.t))}" y="${f1(f.Y(from + n))}" width="${f1(Math.max(0.5, f.X(t.t + 1) - f.X(t.t) - 1))}" height="${f1(f.Y(from) - f.Y(from + n))}" fill="${color}"><title>${t.t}-${t.t + 1} s: ${n} ${cls}, ${t.started} started, ${t.inFlight} in flight</title></rect>`;
  f.parts.push(
    `<g class="per-second">${timeline.map((t) => bar(t, 0, t.ok, 'ok', '#2ca02c') + bar(t, t.ok, t.failed, 'failed', '#d62728')).join('')}</g>`,
  );
  legend(f, [
    ['ok', '#2ca02c'],
    ['failed', '#d62728'],
    ['backoff', '#ffdd57'],
  ]);
  f.parts.push('</svg>');
  return f.parts.join('\n');
}

/** At most this many lanes; more overlapping failures share the last one. */
const MAX_LANES = 24;

/**
 * Each failed request as a bar from its start to its end (its duration),
 * in lanes so overlapping failures stay apart; backoff pauses shaded.
 */
export function failureTimelineSvg(
  samples: readonly RequestRecord[],
  elapsedSec: number,
  pauses: readonly Pause[],
  width = 760,
): string {
  const fails = samples.filter((s) => !s.ok).sort((a, b) => a.startMs - b.startMs);
  const laneEnds: number[] = [];
  const lanes = fails.map((s) => {
    let k = laneEnds.findIndex((end) => end <= s.startMs);
    if (k < 0) k = laneEnds.length < MAX_LANES ? laneEnds.length : MAX_LANES - 1;
    laneEnds[k] = Math.max(laneEnds[k] ?? 0, s.endMs);
    return k;
  });
  const n = Math.max(1, laneEnds.length);
  const xMax = Math.max(1, elapsedSec);
  const f = frame({
    width,
    height: 70 + n * 12,
    xMax,
    yMax: n,
    xLabel: 's since run start',
    yLabel: 'failures',
    aria: 'failures over time',
    cls: 'failure-timeline',
    yFormat: () => '',
  });
  f.parts.push(pauseRects(f, pauses, xMax));
  const bars = fails.map((s, j) => {
    const a = s.startMs / 1000;
    const b = Math.min(xMax, s.endMs / 1000);
    const y = f.Y(lanes[j]! + 1) + 2;
    return `<rect class="failure" x="${f1(f.X(a))}" y="${f1(y)}" width="${f1(Math.max(2, f.X(b) - f.X(a)))}" height="${f1(Math.max(2, f.Y(0) - f.Y(1) - 4))}"><title>#${s.i} ${escapeHtml(s.reason ?? 'unknown')}: ${f1(a)}-${f1(b)} s (${f1(s.endMs - s.startMs)} ms)</title></rect>`;
  });
  f.parts.push(`<g class="failures" fill="#d62728">${bars.join('')}</g>`);
  legend(f, [
    ['failed request', '#d62728'],
    ['backoff', '#ffdd57'],
  ]);
  f.parts.push('</svg>');
  return f.parts.join('\n');
}

const PHASE_COLORS = ['#9467bd', '#1f77b4', '#ff7f0e', '#2ca02c', '#8c564b'];

/** One stacked bar: the mean time of each onion connect phase, in order. */
export function phasesSvg(phases: readonly (readonly [string, QuantileSummary])[], width = 760): string {
  const total = phases.reduce((sum, [, q]) => sum + (q.mean ?? 0), 0);
  const m = { l: 20, r: 20, t: 10 };
  const w = width - m.l - m.r;
  const parts = [
    `<svg class="phases" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${60 + phases.length * 18}" viewBox="0 0 ${width} ${60 + phases.length * 18}" role="img" aria-label="onion connect phases">`,
  ];
  let x = m.l;
  phases.forEach(([name, q], n) => {
    const color = PHASE_COLORS[n % PHASE_COLORS.length]!;
    const len = total > 0 ? ((q.mean ?? 0) / total) * w : 0;
    parts.push(
      `<rect class="phase-${escapeHtml(name)}" x="${f1(x)}" y="${m.t}" width="${f1(len)}" height="24" fill="${color}"><title>${escapeHtml(name)}: mean ${f1(q.mean ?? 0)} ms</title></rect>`,
      `<rect x="${m.l}" y="${m.t + 36 + n * 18}" width="10" height="10" fill="${color}"/>`,
      `<text x="${m.l + 16}" y="${m.t + 45 + n * 18}" font-size="12">${escapeHtml(name)}: mean ${f1(q.mean ?? 0)} ms (${total > 0 ? (((q.mean ?? 0) / total) * 100).toFixed(0) : 0}%)</text>`,
    );
    x += len;
  });
  parts.push('</svg>');
  return parts.join('\n');
}
