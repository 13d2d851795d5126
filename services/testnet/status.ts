/**
 * `shallot status`: what the network in a data dir is doing — consensus
 * age and signatures, relays with their flags, onion services, and circuits
 * and streams from the nodes' own metrics.
 */
import { toHex } from '../core/bytes.js';
import type { Consensus } from '../core/dir/consensus.js';
import { scrape, sumOf } from '../loadgen/scrape.js';
import { fetchConsensus } from '../net/dir-client.js';
import { readState } from './state.js';

/** Relays listed one per line up to this many; above it a flag count and the first few (issue 17: 5,000 relays). */
export const RELAY_LINES = 40;

/** The relay table: every relay with `all` or up to RELAY_LINES; otherwise relays per flag and the first RELAY_LINES / 2. */
export function relayTable(
  relays: readonly Pick<
    Consensus['relays'][number],
    'nickname' | 'address' | 'orPort' | 'bandwidth' | 'flags' | 'identity'
  >[],
  all = false,
): string[] {
  const line = (r: (typeof relays)[number]) =>
    `  ${r.nickname.padEnd(12)} ${`${r.address}:${r.orPort}`.padEnd(18)} ${String(r.bandwidth).padStart(9)}  ${r.flags.join(' ')}  ${toHex(r.identity).slice(0, 8)}`;
  const header = '  relay        address            bandwidth  flags';
  if (all || relays.length <= RELAY_LINES) return [header, ...relays.map(line)];
  const perFlag = new Map<string, number>();
  for (const r of relays) for (const f of r.flags) perFlag.set(f, (perFlag.get(f) ?? 0) + 1);
  const shown = RELAY_LINES / 2;
  return [
    `  relays per flag: ${[...perFlag].map(([f, n]) => `${f} ${n}`).join(', ')}`,
    '',
    header,
    ...relays.slice(0, shown).map(line),
    `  ... and ${relays.length - shown} more (shallot status --all lists every relay)`,
  ];
}

export async function status(
  dataDir: string,
  out: (s: string) => void = (s) => process.stdout.write(s),
  all = false,
): Promise<number> {
  const state = await readState(dataDir);
  const lines: string[] = [];
  lines.push(
    `Shallot network in ${dataDir} (${state.mode}, launcher pid ${state.pid}, up since ${state.startedAt})`,
  );
  lines.push(
    `  SOCKS5 ${state.socks}${state.httpTunnel ? `   HTTP tunnel ${state.httpTunnel}` : ''}${state.web ? `   exit target http://${state.web}/` : ''}`,
  );
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
    lines.push(...relayTable(consensus.relays, all));
  } catch (e) {
    lines.push(`  consensus: unavailable (${(e as Error).message})`);
    exit = 1;
  }
  lines.push('');
  for (const s of state.onionServices)
    lines.push(`  onion service ${s.name}: ${s.address} (${s.instances} instance(s))`);
  const targets = state.nodes.filter((n) => n.metrics).map((n) => `http://${n.metrics}/metrics`);
  // A node that does not answer is reported by the count below.
  const snap = await scrape(targets, 2_000);
  const circuits = sumOf(snap, 'shallot_relay_circuits_active');
  const built = sumOf(snap, 'shallot_circuits_total', { outcome: 'success' });
  const failed = sumOf(snap, 'shallot_circuits_total', { outcome: 'failure' });
  const reachable = targets.length - snap.errors.length;
  lines.push(
    `  circuits: ${circuits} open at relays; client built ${built}, failed ${failed}  (${reachable}/${targets.length} metrics endpoints answered)`,
  );
  out(`${lines.join('\n')}\n`);
  return exit;
}
