/**
 * `shallot status`: what the network in a data dir is doing — consensus
 * age and signatures, relays with their flags, onion services, and circuits
 * and streams from the nodes' own metrics.
 */
import http from 'node:http';
import { toHex } from '../core/bytes.js';
import { fetchConsensus } from '../directory/dir-client.js';
import { readState } from './state.js';

function scrape(target: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${target}/metrics`, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > 8 << 20) req.destroy(new Error('metrics too large'));
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Sums a metric over all label sets in Prometheus text format. */
export function sumMetric(text: string, name: string, labelFilter?: (labels: string) => boolean): number {
  let total = 0;
  const re = new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'gm');
  for (const m of text.matchAll(re)) {
    if (labelFilter && !labelFilter(m[1] ?? '')) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) total += v;
  }
  return total;
}

export async function status(
  dataDir: string,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const state = await readState(dataDir);
  const lines: string[] = [];
  lines.push(
    `Shallot network in ${dataDir} (${state.mode}, launcher pid ${state.pid}, up since ${state.startedAt})`,
  );
  lines.push(`  SOCKS5 ${state.socks}${state.web ? `   exit target http://${state.web}/` : ''}`);
  let exit = 0;
  try {
    const { consensus, from } = await fetchConsensus(state.authorities, {
      nowMs: Date.now(),
      timeoutMs: 3_000,
      skewMs: 5_000,
    });
    const age = Math.round((Date.now() - consensus.validAfterMs) / 1000);
    lines.push(
      `  consensus from ${from}: valid-after ${new Date(consensus.validAfterMs).toISOString()} (${age} s ago), ` +
        `${consensus.relays.length} relays, ${state.authorities.length} authorities`,
    );
    lines.push('');
    lines.push('  relay        address            bandwidth  flags');
    for (const r of consensus.relays) {
      lines.push(
        `  ${r.nickname.padEnd(12)} ${`${r.address}:${r.orPort}`.padEnd(18)} ${String(r.bandwidth).padStart(9)}  ${r.flags.join(' ')}  ${toHex(r.identity).slice(0, 8)}`,
      );
    }
  } catch (e) {
    lines.push(`  consensus: unavailable (${(e as Error).message})`);
    exit = 1;
  }
  lines.push('');
  for (const s of state.onionServices)
    lines.push(`  onion service ${s.name}: ${s.address} (${s.instances} instance(s))`);
  let circuits = 0;
  let built = 0;
  let failed = 0;
  let reachable = 0;
  for (const n of state.nodes) {
    if (!n.metrics) continue;
    try {
      const text = await scrape(n.metrics);
      reachable++;
      circuits += sumMetric(text, 'shallot_relay_circuits_active');
      built += sumMetric(text, 'shallot_circuits_total', (l) => l.includes('outcome="success"'));
      failed += sumMetric(text, 'shallot_circuits_total', (l) => l.includes('outcome="failure"'));
    } catch {
      // A node that does not answer is reported by the count below.
    }
  }
  lines.push(
    `  circuits: ${circuits} open at relays; client built ${built}, failed ${failed}  (${reachable}/${state.nodes.filter((n) => n.metrics).length} metrics endpoints answered)`,
  );
  out(`${lines.join('\n')}\n`);
  return exit;
}
