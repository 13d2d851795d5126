/**
 * A load run's self-contained HTML report (`shallot load --html`): the
 * network's settings, latency percentiles to p99.9 with histogram and CDF,
 * throughput and failures over the whole run (backoff pauses shaded), the
 * onion connect split into phases, and load spread over rendezvous
 * points, intro points and service instances (charts.ts draws most charts;
 * the latency scatter and share bars are here).
 *
 * Design notes: the HTML has no scripts, fonts or links to fetch, so it
 * opens from a CI artifact or an air-gapped machine the same; every value
 * taken from the run (relay nicknames, reasons, the target) is escaped.
 */
import {
  cdfSvg,
  escapeHtml,
  failureTimelineSvg,
  frame,
  histogramSvg,
  phasesSvg,
  throughputSvg,
} from './charts.js';
import {
  connectLabel,
  fmtBytes,
  fmtMs,
  fmtRatio,
  LATENCY_HEAD,
  pct,
  phaseEntries,
  quantileRow,
  summaryRow,
  verdict,
  writeText,
} from './report.js';
import type { LoadResult, RequestRecord } from './result.js';
import { ONION_PHASES } from './scraped.js';
import type { Spread } from './stats.js';

const SERIES = [
  { key: 'connectMs', label: 'connect', color: '#1f77b4' },
  { key: 'ttfbMs', label: 'ttfb', color: '#ff7f0e' },
  { key: 'ttlbMs', label: 'ttlb', color: '#2ca02c' },
] as const;

/**
 * Latency (ms) of each request against its start time (s); failures as red
 * crosses on the x axis. The x axis runs to `elapsedSec` at least, so a
 * stall after the last request started still shows.
 */
export function latencyScatterSvg(
  samples: readonly RequestRecord[],
  elapsedSec = 0,
  width = 760,
  height = 320,
): string {
  const xs = samples.map((s) => s.startMs / 1000);
  const ys = samples.flatMap((s) => SERIES.map((k) => s[k.key]).filter((v): v is number => v !== undefined));
  const { X, Y, l, t, w, h, parts } = frame({
    width,
    height,
    xMax: Math.max(1, elapsedSec, ...xs),
    yMax: Math.max(1, ...ys),
    xLabel: 'request start (s since run start)',
    yLabel: 'latency (ms)',
    aria: 'latency over time',
    cls: 'scatter',
    marginRight: 110,
  });
  for (const k of SERIES) {
    const dots = samples
      .filter((s) => s[k.key] !== undefined)
      .map(
        (s) =>
          `<circle cx="${X(s.startMs / 1000).toFixed(1)}" cy="${Y(s[k.key]!).toFixed(1)}" r="2.5"><title>#${s.i} ${k.label} ${s[k.key]!.toFixed(1)} ms</title></circle>`,
      );
    parts.push(`<g class="series-${k.label}" fill="${k.color}" fill-opacity="0.75">${dots.join('')}</g>`);
  }
  const fails = samples
    .filter((s) => !s.ok)
    .map((s) => {
      const x = X(s.startMs / 1000);
      const y = t + h;
      return `<path d="M${(x - 4).toFixed(1)} ${y - 4} l8 8 m0 -8 l-8 8"><title>#${s.i} failed: ${escapeHtml(s.reason ?? 'unknown')}</title></path>`;
    });
  parts.push(`<g class="failures" stroke="#d62728" stroke-width="2">${fails.join('')}</g>`);
  const legend = [...SERIES.map((k) => [k.label, k.color] as const), ['failed', '#d62728'] as const];
  legend.forEach(([label, color], n) => {
    const y = t + 10 + n * 18;
    parts.push(
      `<rect x="${l + w + 16}" y="${y - 8}" width="10" height="10" fill="${color}"/>`,
      `<text x="${l + w + 32}" y="${y + 1}" font-size="12">${label}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Horizontal bars: each relay's share, with the even share (1/n) as a dashed line. */
export function shareBarsSvg(s: Spread, width = 760): string {
  const entries = Object.entries(s.perRelay);
  const row = 22;
  const m = { l: 140, r: 120, t: 10, b: 24 };
  const height = m.t + m.b + Math.max(1, entries.length) * row;
  const w = width - m.l - m.r;
  const maxShare = Math.max(0.01, ...entries.map(([, v]) => v), entries.length ? 1 / entries.length : 0);
  const X = (v: number) => m.l + (v / maxShare) * w;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="share per relay">`,
  ];
  entries.forEach(([name, share], n) => {
    const y = m.t + n * row;
    parts.push(
      `<text x="${m.l - 8}" y="${y + 15}" text-anchor="end" font-size="12">${escapeHtml(name)}</text>`,
      `<rect class="bar" x="${m.l}" y="${y + 3}" width="${Math.max(0, X(share) - m.l).toFixed(1)}" height="${row - 6}" fill="#1f77b4"><title>${escapeHtml(name)}: ${s.counts[name] ?? 0} (${pct(share)})</title></rect>`,
      `<text x="${(X(share) + 6).toFixed(1)}" y="${y + 15}" font-size="11">${pct(share)} (${s.counts[name] ?? 0})</text>`,
    );
  });
  if (entries.length) {
    const even = X(1 / entries.length).toFixed(1);
    parts.push(
      `<line x1="${even}" x2="${even}" y1="${m.t}" y2="${height - m.b}" stroke="#d62728" stroke-dasharray="4 3"/>`,
      `<text x="${even}" y="${height - 8}" text-anchor="middle" font-size="11" fill="#d62728">even share</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

function htmlTable(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

function spreadSection(title: string, source: string, s: Spread | null, unit = 'relays'): string {
  if (!s) return `<h2>${escapeHtml(title)}</h2><p class="muted">Not measured: ${escapeHtml(source)}</p>`;
  return `<h2>${escapeHtml(title)}</h2>
<p>${s.relays} ${unit}, ${s.total} events; max/mean <b>${fmtRatio(s.maxOverMean)}</b>, coefficient of variation <b>${fmtRatio(s.cv)}</b>.</p>
${s.total > 0 ? shareBarsSvg(s) : '<p class="muted">No events during the run.</p>'}`;
}

/** How the instances of a multi-instance onion service shared the run. */
function instanceSection(r: LoadResult): string {
  const inst = r.instanceSpread;
  const title = '<h2 id="instances">Load per service instance</h2>';
  if (!inst)
    return `${title}<p class="muted">Not measured: the targets file or --relay-metrics must include the onion service's /metrics (shallot_hs_intro_points{service_instance}).</p>`;
  const rows = Object.entries(inst.introPoints).map(([k, v]) => [
    k,
    String(v),
    inst.introductions ? String(inst.introductions.counts[k] ?? 0) : '-',
    inst.rendezvous ? String(inst.rendezvous.counts[k] ?? 0) : '-',
  ]);
  return `${title}
<p>Service ${escapeHtml(inst.service ?? '(all services scraped)')}: ${rows.length} instance(s).</p>
${htmlTable(['instance', 'intro points', 'introductions', 'rendezvous'], rows)}
${inst.introductions ? spreadSection('Introductions per instance', '', inst.introductions, 'instances') : ''}
${inst.rendezvous ? spreadSection('Rendezvous per instance', '', inst.rendezvous, 'instances') : ''}
${inst.notes.map((n) => `<p class="muted">Not measured: ${escapeHtml(n)}.</p>`).join('\n')}`;
}

/** The onion connect split into phases from the client's histogram. */
function phasesSection(r: LoadResult): string {
  const title = '<h2 id="phases">Onion connect phases</h2>';
  const phases = phaseEntries(r);
  if (!r.onionConnectPhases)
    return `${title}<p class="muted">Not measured: pass --client-metrics (shallot_onion_connect_phase_seconds).</p>`;
  if (phases.length === 0)
    return `${title}<p class="muted">No onion connects observed by the client during the run.</p>`;
  return `${title}
<p class="muted">From the client's shallot_onion_connect_phase_seconds (bucket estimates): descriptor = HSDir fetch (cache hits not counted), introduction = rendezvous point and intro circuit up to a positive INTRODUCE_ACK, rendezvous = ACK to RENDEZVOUS2, stream = BEGIN to CONNECTED. A reused rendezvous circuit has only the stream phase.</p>
${htmlTable(
  ['phase', ...LATENCY_HEAD],
  ONION_PHASES.map((k) => {
    const q = r.onionConnectPhases?.[k];
    return q ? quantileRow(k, q) : [k, `not observed during the run${k === 'descriptor' ? ' (cached)' : ''}`];
  }),
)}
${phasesSvg(phases)}`;
}

/** Rendezvous, intro and instance load (onion targets only). */
function onionSpreadSections(r: LoadResult): string {
  return [
    spreadSection('Rendezvous load per relay', 'pass --relay-metrics or --targets-file', r.rendezvousSpread),
    spreadSection(
      'Introduction load per intro point',
      'pass --relay-metrics or --targets-file',
      r.introSpread,
      'intro points',
    ),
    spreadSection(
      'Rendezvous points chosen by the client',
      'pass --client-metrics',
      r.clientRendezvousChosen,
    ),
    instanceSection(r),
  ].join('\n');
}

/** Circuits per relay at each position, as the client saw them (every target). */
function relayUseSections(r: LoadResult): string {
  if (!r.clientRelayUse)
    return '<h2>Relays used by the client</h2><p class="muted">Not measured: pass --client-metrics (shallot_client_circuit_hops_total).</p>';
  return Object.entries(r.clientRelayUse)
    .map(([position, s]) => spreadSection(`Circuits per relay as ${position} (client)`, '', s))
    .join('\n');
}

/** The whole report as one HTML document without external resources. */
export function renderHtml(r: LoadResult): string {
  const c = r.config;
  const latencyRows = [
    summaryRow(connectLabel(r), r.latency.connect),
    summaryRow('time to first byte', r.latency.ttfb),
    summaryRow('time to last byte', r.latency.ttlb),
    ...Object.entries(r.latencyBySize)
      .filter(() => Object.keys(r.latencyBySize).length > 1)
      .map(([size, l]) => summaryRow(`ttlb ${fmtBytes(Number(size))}`, l.ttlb)),
  ];
  if (r.circuitBuild) {
    latencyRows.push(quantileRow('circuit build (client metrics)', r.circuitBuild));
    for (const [p, q] of Object.entries(r.circuitBuild.byPurpose))
      latencyRows.push(quantileRow(`circuit build: ${p}`, q));
  }
  if (r.clientOnionConnect)
    latencyRows.push(quantileRow('onion connect (client metrics)', r.clientOnionConnect));
  const n = r.network;
  const networkRows: string[][] = [
    ['relays', n.relays === null ? 'unknown' : String(n.relays)],
    ['mode', n.mode ?? 'unknown (no --data-dir)'],
    [
      'handshake',
      n.handshakes
        ? Object.entries(n.handshakes)
            .map(([k, v]) => `${k} (${v} processed by relays)`)
            .join(', ')
        : 'unknown (no relay metrics)',
    ],
    ['Shallot version', n.version],
    ...(n.onionService
      ? [['onion service', `${n.onionService.name}, ${n.onionService.instances} instance(s)`]]
      : []),
  ];
  const v = verdict(r);
  const configRows: string[][] = [
    ['target', `${c.targetHost}:${c.targetPort} (${c.targetKind})`],
    ['SOCKS proxy', c.socks],
    ['concurrency', String(c.concurrency)],
    ['rate', c.rate ? `${c.rate} req/s` : 'unlimited'],
    [
      'bound',
      [c.count ? `${c.count} requests` : '', c.durationSec ? `${c.durationSec} s` : '']
        .filter(Boolean)
        .join(', '),
    ],
    ['payload sizes', c.sizes.map(fmtBytes).join(', ')],
    ['circuits', c.newCircuit ? 'new circuit per request (SOCKS auth isolation)' : 'shared within the run'],
    ['timeout', `${c.timeoutSec} s`],
    ['body check', c.verify ? 'SHA-256 against /sha256/<n>' : 'length only'],
    ['min success', `${pct(c.minSuccess)}${c.keepGoing ? ' (keep going)' : ''}`],
    ['backoff', c.backoffMaxSec > 0 ? `${r.backoff.baseMs} ms doubling to ${c.backoffMaxSec} s` : 'off'],
    ['started', r.started],
    ['finished', `${r.finished}${r.interrupted ? ' (interrupted)' : ''}`],
  ];
  const failures = Object.entries(r.failuresByReason).sort((a, b) => b[1] - a[1]);
  const timelineRows = r.timeline.map((t) => [
    String(t.t),
    String(t.started),
    String(t.ok),
    String(t.failed),
    String(t.inFlight),
    String(Math.round(t.backoffMs)),
    fmtMs(t.connectP50Ms),
    fmtMs(t.ttlbP50Ms),
  ]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shallot load report: ${escapeHtml(`${c.targetHost}:${c.targetPort}`)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 60rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.muted { color: #777; }
.big { font-size: 1.4rem; }
.pass { color: #2ca02c; } .fail { color: #d62728; }
svg { display: block; margin: 0.5rem 0 1rem; }
details { margin: 1rem 0; }
</style>
</head>
<body>
<h1>shallot load report</h1>
<p class="big">Success <b>${pct(r.successRatio)}</b> (${r.counts.ok}/${r.counts.requests}),
${fmtBytes(r.counts.bytes)} in ${r.elapsedSec.toFixed(1)} s,
${r.throughput.requestsPerSec.toFixed(1)} req/s, ${fmtBytes(r.throughput.bytesPerSec)}/s</p>
<p id="verdict" class="${v.ok ? 'pass' : 'fail'}"><b>${escapeHtml(v.line)}</b></p>
<h2 id="network">Network</h2>
${htmlTable(['setting', 'value'], networkRows)}
<h2 id="run">Run</h2>
${htmlTable(['setting', 'value'], configRows)}
<h2 id="latency">Latency (ms)</h2>
<p class="muted">Measured from the SOCKS CONNECT request: connect ends at the proxy's success reply, ttfb at the first response byte, ttlb at the last. Client-metric rows come from the client's histograms (bucket estimates).</p>
${htmlTable(['', ...LATENCY_HEAD], latencyRows)}
<h2 id="distribution">Latency distribution</h2>
<p class="muted">Every request, not a sample. Dashed lines: p50, p90, p99, p99.9.</p>
<h3>Time to last byte</h3>
${histogramSvg(r.distribution.ttlb, r.latency.ttlb, 'time to last byte')}
<h3>${escapeHtml(connectLabel(r))}</h3>
${histogramSvg(r.distribution.connect, r.latency.connect, connectLabel(r))}
<h3>CDF</h3>
${cdfSvg([
  { label: 'connect', color: '#1f77b4', d: r.distribution.connect, s: r.latency.connect },
  { label: 'ttfb', color: '#ff7f0e', d: r.distribution.ttfb, s: r.latency.ttfb },
  { label: 'ttlb', color: '#2ca02c', d: r.distribution.ttlb, s: r.latency.ttlb },
])}
<h2 id="throughput">Throughput over time</h2>
<p class="muted">Requests finished in each second of the whole run (${r.elapsedSec.toFixed(1)} s); shaded: backoff pauses after consecutive failures (${r.backoff.pauses.length}, ${(r.backoff.totalMs / 1000).toFixed(1)} s in all).</p>
${throughputSvg(r.timeline, r.elapsedSec, r.backoff.pauses)}
<h2 id="latency-time">Latency over time</h2>
${latencyScatterSvg(r.samples, r.elapsedSec)}
${r.config.targetKind === 'onion' ? phasesSection(r) : ''}
<h2 id="failures">Failures</h2>
${r.stoppedEarly ? `<p class="fail">Stopped early: ${escapeHtml(r.stoppedEarly)}.</p>` : ''}
${r.counts.failed > 0 ? `<p class="muted">Each failed request from its start to its end; shaded: backoff pauses.</p>\n${failureTimelineSvg(r.samples, r.elapsedSec, r.backoff.pauses)}` : ''}
${
  failures.length
    ? htmlTable(
        ['reason', 'count'],
        failures.map(([k, v]) => [k, String(v)]),
      )
    : '<p>None.</p>'
}
${c.targetKind === 'onion' ? onionSpreadSections(r) : ''}
${relayUseSections(r)}
<details><summary>Timeline (per second)</summary>
${htmlTable(['t (s)', 'started', 'ok', 'failed', 'in flight', 'backoff (ms)', 'connect p50', 'ttlb p50'], timelineRows)}
</details>
${r.warnings.length ? `<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : ''}
</body>
</html>
`;
}

/** Writes the HTML report to `file`, creating its directory. */
export async function writeHtmlReport(file: string, r: LoadResult): Promise<void> {
  await writeText(file, renderHtml(r));
}
