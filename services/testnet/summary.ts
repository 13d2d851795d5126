/**
 * The summary `shallot up` prints once the network is usable: where the
 * proxies listen, the onion addresses, curl lines to try, metrics URLs,
 * the Prometheus file_sd file, and how to inject a fault.
 */

import { clientAuthDir } from './client-auth.js';
import type { UpOptions } from './launch.js';
import type { NetworkState } from './state.js';

const MAX_METRICS_LINES = 12;

/** The summary printed once the network is usable. */
export function readySummary(
  s: NetworkState,
  o: Pick<
    UpOptions,
    'authorities' | 'relays' | 'exits' | 'socksPort' | 'httpTunnelPort' | 'clientAuth' | 'dataDir'
  >,
): string {
  const lines = [
    '',
    `Shallot testnet is up: ${o.authorities} authorities, ${o.relays} relays (${o.exits} exits), ${s.onionServices.length} onion service(s).`,
    '',
    `  SOCKS5 proxy     ${s.socks}${s.socks.endsWith(`:${o.socksPort}`) ? '' : `  (port ${o.socksPort} was taken)`}`,
  ];
  if (s.httpTunnel)
    lines.push(
      `  HTTP tunnel      ${s.httpTunnel}  (HTTP CONNECT)${o.httpTunnelPort && !s.httpTunnel.endsWith(`:${o.httpTunnelPort}`) ? `  (port ${o.httpTunnelPort} was taken)` : ''}`,
    );
  for (const svc of s.onionServices)
    lines.push(`  Onion service    http://${svc.address}/  (${svc.instances} instance(s), built-in backend)`);
  if (o.clientAuth && s.onionServices.length > 0)
    lines.push(`  Client auth      on: the SOCKS client above holds the keys (${clientAuthDir(o.dataDir)})`);
  lines.push(`  Exit target      http://${s.web}/  (a local web server reached through exits)`);
  lines.push('');
  const first = s.onionServices[0];
  if (first)
    lines.push(`  Try:  curl --socks5-hostname ${s.socks} http://${first.address}/bytes/1048576 | sha256sum`);
  lines.push(`        curl --socks5-hostname ${s.socks} http://${s.web}/bytes/1048576 | sha256sum`);
  if (first && s.httpTunnel)
    lines.push(`        curl -p -x http://${s.httpTunnel} http://${first.address}/bytes/1048576 | sha256sum`);
  lines.push(`        (compare with: curl -s http://${s.web}/sha256/1048576)`);
  lines.push('');
  lines.push('  Metrics:');
  const metrics = s.nodes.filter((n) => n.metrics);
  // --process-per-node at thousands of relays would print a line each: the file_sd file lists them all.
  for (const n of metrics.slice(0, MAX_METRICS_LINES))
    lines.push(`    http://${n.metrics}/metrics  (${n.name})`);
  if (metrics.length > MAX_METRICS_LINES)
    lines.push(`    ... and ${metrics.length - MAX_METRICS_LINES} more in the file_sd targets below`);
  lines.push(`  Prometheus file_sd targets: ${s.targetsFile}`);
  lines.push(
    `  Status: npx shallot status --data-dir ${o.dataDir}        Logs: ${o.dataDir}/${s.mode === 'process-per-node' ? 'logs/' : 'shallot.log'}`,
  );
  if (s.control)
    lines.push(
      `  Faults: npx shallot fault pause relay1 --duration 30 --data-dir ${o.dataDir}   (shallot fault --help: stop, kill, restart, cut, slow)`,
    );
  lines.push('');
  lines.push('Press Ctrl-C to stop.');
  return lines.join('\n');
}
