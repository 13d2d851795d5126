/**
 * Process entry for a client: SOCKS5 on 127.0.0.1 in front of a Shallot
 * network.
 *
 *   node dist/services/client/main.js --authorities "id@host:port,..." \
 *     [--socks-port 9050] [--data-dir D] [--ops-port M]
 */
import { Command } from 'commander';
import { parseAuthorityList } from '../directory/dir-client.js';
import { createRegistry } from '../metrics/metrics.js';
import { type OpsServer, serveOps } from '../metrics/server.js';
import { envInt, intOption, onShutdown, runIfMain } from '../net/cli.js';
import { createLogger, isLogLevel } from '../net/log.js';
import { ShallotClient } from './client.js';

const env = process.env;

export async function main(argv: string[]): Promise<void> {
  const program: Command = new Command()
    .name('shallot-client')
    .description('A Shallot client: SOCKS5 (with Tor extended error codes) into a Shallot network')
    .option('--authorities <list>', 'directory authorities: "hexid@host:port,..."', env.SHALLOT_AUTHORITIES)
    .option('--socks-host <host>', 'SOCKS listen address', env.SHALLOT_SOCKS_HOST ?? '127.0.0.1')
    .option(
      '--socks-port <port>',
      'SOCKS port (0: any free port)',
      intOption('socks port', 0, 65535),
      envInt('SHALLOT_SOCKS_PORT', 9050),
    )
    .option('--data-dir <dir>', 'where guard state persists', env.SHALLOT_DATA_DIR)
    .option(
      '--prebuild <n>',
      'clean circuits kept ready',
      intOption('prebuild', 0, 64),
      envInt('SHALLOT_PREBUILD', 2),
    )
    .option('--no-tls', 'plain ws links (debugging only)')
    .option('--ops-host <host>', 'address for /metrics and /healthz', env.SHALLOT_OPS_HOST ?? '127.0.0.1')
    .option(
      '--ops-port <port>',
      '/metrics and /healthz port',
      intOption('ops port', 0, 65535),
      envInt('SHALLOT_OPS_PORT'),
    )
    .option('--log-level <level>', 'debug, info, warn, error, silent', env.SHALLOT_LOG_LEVEL ?? 'info');
  program.parse(argv);
  const o = program.opts<{
    authorities?: string;
    socksHost: string;
    socksPort: number;
    dataDir?: string;
    prebuild: number;
    tls: boolean;
    opsHost: string;
    opsPort?: number;
    logLevel: string;
  }>();
  if (!o.authorities) program.error('--authorities (or SHALLOT_AUTHORITIES) is required');
  if (!isLogLevel(o.logLevel)) program.error(`unknown log level ${o.logLevel}`);
  let authorities: ReturnType<typeof parseAuthorityList> = [];
  try {
    authorities = parseAuthorityList(o.authorities);
  } catch (e) {
    program.error((e as Error).message);
  }
  const logger = createLogger('client', o.logLevel);
  const registry = createRegistry({ node: 'client', role: 'client' });
  const client = new ShallotClient(
    { logger, registry },
    {
      authorities,
      socksHost: o.socksHost,
      socksPort: o.socksPort,
      circuits: { tls: o.tls, prebuild: o.prebuild, ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
    },
  );
  await client.start();
  let ops: OpsServer | null = null;
  if (o.opsPort !== undefined) {
    ops = await serveOps({
      host: o.opsHost,
      port: o.opsPort,
      registry,
      health: () => ({ ok: true, ready: client.dir !== null }),
    });
    logger.info('ops endpoint', { url: ops.url });
  }
  onShutdown(logger, () => Promise.all([client.stop(), ops?.close()]));
}

runIfMain(import.meta.url, main);
