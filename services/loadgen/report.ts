/**
 * A load run's result as people read it in a terminal: the end-of-run
 * table, the verdict line against --min-success and the JSON file
 * (`--out`), and the number formats and rows the HTML report
 * (report-html.ts, `--html`) shares.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LoadResult, QuantileSummary } from './result.js';
import { ONION_PHASES } from './scraped.js';
import type { Spread, Summary } from './stats.js';

export const fmtMs = (v: number | null | undefined): string =>
  v === null || v === undefined ? '-' : v.toFixed(1);
export const fmtRatio = (v: number | null): string => (v === null ? '-' : v.toFixed(2));
export const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;

export function fmtBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths = align.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function connectLabel(r: LoadResult): string {
  return r.config.targetKind === 'onion' ? 'onion connect' : 'exit connect';
}

export const LATENCY_HEAD = ['p50', 'p90', 'p99', 'p99.9', 'mean', 'max', 'n'];

export function summaryRow(name: string, s: Summary): string[] {
  return [
    name,
    fmtMs(s.p50),
    fmtMs(s.p90),
    fmtMs(s.p99),
    fmtMs(s.p999),
    fmtMs(s.mean),
    fmtMs(s.max),
    String(s.count),
  ];
}

export function quantileRow(name: string, s: QuantileSummary): string[] {
  return [name, fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99), fmtMs(s.p999), fmtMs(s.mean), '-', String(s.count)];
}

/** The onion connect phases observed, in connect order. */
export function phaseEntries(r: LoadResult): [string, QuantileSummary][] {
  const p = r.onionConnectPhases ?? {};
  return ONION_PHASES.flatMap((k) => (p[k] ? [[k, p[k]] as [string, QuantileSummary]] : []));
}

/** The network line of the header: relays, mode, handshake, version. */
function networkText(r: LoadResult): string {
  const n = r.network;
  const hs = n.handshakes
    ? Object.entries(n.handshakes)
        .map(([k, v]) => `${k} (${v})`)
        .join(', ')
    : 'unknown';
  const svc = n.onionService ? `, onion service ${n.onionService.name} x${n.onionService.instances}` : '';
  return `relays ${n.relays ?? 'unknown'}, mode ${n.mode ?? 'unknown'}, handshake ${hs}, Shallot ${n.version}${svc}`;
}

/**
 * The run's verdict against --min-success, as the command's last line: why
 * it failed (ratio, the commonest failure reasons, an early stop) or that
 * it passed.
 */
export function verdict(r: LoadResult): { ok: boolean; line: string } {
  const min = r.config.minSuccess;
  const ratio = `success ratio ${pct(r.successRatio)} (${r.counts.ok}/${r.counts.requests})`;
  if (r.successRatio >= min) return { ok: true, line: `PASS: ${ratio}, --min-success ${pct(min)}` };
  const top = Object.entries(r.failuresByReason)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, v]) => `${k} x${v}`)
    .join(', ');
  const backoff = r.backoff.totalMs > 0 ? `; backed off ${(r.backoff.totalMs / 1000).toFixed(1)} s` : '';
  const early = r.stoppedEarly ? `; stopped early (${r.stoppedEarly})` : '';
  return {
    ok: false,
    line: `FAIL: ${ratio} is below --min-success ${pct(min)}; failures: ${top || 'none'}${backoff}${early}`,
  };
}

function spreadText(title: string, s: Spread, unit = 'relays'): string {
  const head = `${title}: ${s.relays} ${unit}, ${s.total} events, max/mean ${fmtRatio(s.maxOverMean)}, CV ${fmtRatio(s.cv)}`;
  const rows = Object.entries(s.perRelay).map(([name, share]) => [
    `  ${name}`,
    String(s.counts[name] ?? 0),
    pct(share),
    '#'.repeat(Math.round(share * 40)),
  ]);
  if (s.total === 0) return `${head} (none during the run)`;
  return `${head}\n${table(rows, ['l', 'r', 'r', 'l'])}`;
}

/** The end-of-run summary for a terminal. */
export function renderTable(r: LoadResult): string {
  const c = r.config;
  const lines: string[] = [];
  const via = c.targetKind === 'onion' ? 'onion service' : 'exit';
  lines.push(
    `shallot load: ${c.targetHost}:${c.targetPort} (${via}) via SOCKS ${c.socks}, ` +
      `${r.counts.requests} requests, concurrency ${c.concurrency}` +
      `${c.rate ? `, rate ${c.rate}/s` : ''}, ${c.newCircuit ? 'new circuit per request' : 'shared circuits'}, ` +
      `${r.elapsedSec.toFixed(1)} s${r.interrupted ? ' (interrupted)' : ''}`,
  );
  lines.push(`network: ${networkText(r)}`);
  lines.push('');
  const rows: string[][] = [['latency (ms)', ...LATENCY_HEAD]];
  rows.push(summaryRow(`${connectLabel(r)}`, r.latency.connect));
  rows.push(summaryRow('time to first byte', r.latency.ttfb));
  rows.push(summaryRow('time to last byte', r.latency.ttlb));
  const sizes = Object.keys(r.latencyBySize);
  if (sizes.length > 1) {
    for (const s of sizes) rows.push(summaryRow(`  ttlb ${fmtBytes(Number(s))}`, r.latencyBySize[s]!.ttlb));
  }
  if (r.circuitBuild) {
    rows.push(quantileRow('circuit build (client)', r.circuitBuild));
    for (const [p, q] of Object.entries(r.circuitBuild.byPurpose)) rows.push(quantileRow(`  ${p}`, q));
  }
  if (r.clientOnionConnect) rows.push(quantileRow('onion connect (client)', r.clientOnionConnect));
  for (const [p, q] of phaseEntries(r)) rows.push(quantileRow(`  ${p}`, q));
  lines.push(table(rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
  lines.push('');
  lines.push(
    `success ${r.counts.ok}/${r.counts.requests} (${pct(r.successRatio)}), ` +
      `${fmtBytes(r.counts.bytes)} received, ${r.throughput.requestsPerSec.toFixed(1)} req/s, ` +
      `${fmtBytes(r.throughput.bytesPerSec)}/s`,
  );
  const failures = Object.entries(r.failuresByReason).sort((a, b) => b[1] - a[1]);
  if (failures.length) {
    lines.push('failures by reason:');
    lines.push(
      table(
        failures.map(([k, v]) => [`  ${k}`, String(v)]),
        ['l', 'r'],
      ),
    );
  }
  if (r.backoff.totalMs > 0)
    lines.push(
      `backoff: ${r.backoff.pauses.length} pause(s), ${(r.backoff.totalMs / 1000).toFixed(1)} s in all, longest ${(r.backoff.longestMs / 1000).toFixed(1)} s`,
    );
  if (r.stoppedEarly) lines.push(`stopped early: ${r.stoppedEarly}`);
  if (r.rendezvousSpread) lines.push(spreadText('rendezvous spread (relays, joined)', r.rendezvousSpread));
  if (r.introSpread) lines.push(spreadText('intro spread (intro points, INTRODUCE1)', r.introSpread));
  const inst = r.instanceSpread;
  if (inst?.introductions)
    lines.push(spreadText('introductions per service instance', inst.introductions, 'instances'));
  if (inst?.rendezvous)
    lines.push(spreadText('rendezvous per service instance', inst.rendezvous, 'instances'));
  for (const n of inst?.notes ?? []) lines.push(`note: ${n}`);
  if (r.clientRendezvousChosen)
    lines.push(spreadText('rendezvous points chosen (client)', r.clientRendezvousChosen));
  for (const [position, s] of Object.entries(r.clientRelayUse ?? {}))
    lines.push(spreadText(`circuits per relay as ${position} (client)`, s));
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

/** Writes `text` to `file`, creating its directory. */
export async function writeText(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, text);
}

export function resultJson(r: LoadResult): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

export async function writeJsonReport(file: string, r: LoadResult): Promise<void> {
  await writeText(file, resultJson(r));
}
