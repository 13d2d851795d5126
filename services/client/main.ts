/**
 * Process entry for a client: SOCKS4/4a/5 on 127.0.0.1 in front of a
 * Shallot network, or of a C tor network given by its torrc DirAuthority
 * lines, and optionally an HTTP CONNECT tunnel port (C tor HTTPTunnelPort,
 * off unless asked for, as in C tor).
 *
 *   node dist/services/client/main.js --authorities "id@host:port,..." \
 *     [--socks-port 9050] [--http-tunnel-port 9080] [--data-dir D] [--ops-port M]
 *   node dist/services/client/main.js --tor-authorities torrc [...]
 */
import { Command } from 'commander';
import type { HandshakeName } from '../core/create-handshake.js';
import type { DirAuthority } from '../core/ctor/dir-authority.js';
import { createRegistry } from '../metrics/metrics.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import type { LinkShaping } from '../net/link-delay.js';
import { authoritiesOption } from '../runtime/authorities-option.js';
import {
  addOpsOptions,
  envInt,
  handshakeOption,
  intOption,
  logLevelOption,
  noVanguardsLiteOption,
  type OpsOptions,
  onShutdown,
  runIfMain,
  vanguardsLiteOption,
} from '../runtime/cli.js';
import { readClientAuthKeys } from '../runtime/client-auth-files.js';
import { createLogger } from '../runtime/log.js';
import { serveOpsIfAsked } from '../runtime/ops-server.js';
import { linkShaping, namedShaping, networkModelFrom } from '../runtime/shaping-options.js';
import { ShallotClient } from './client.js';
import { startHttpTunnelServer } from './http-tunnel.js';
import { networkChoice, torAuthoritiesOption } from './tor-authorities.js';

const env = process.env;

export async function main(argv: string[]): Promise<void> {
  const program: Command = new Command()
    .name('shallot-client')
    .description(
      'A Shallot client: SOCKS4/4a/5 (with Tor extended error codes) and an HTTP CONNECT tunnel into a Shallot network or a C tor network',
    )
    .addOption(authoritiesOption())
    .addOption(torAuthoritiesOption())
    .option('--socks-host <host>', 'SOCKS listen address', env.SHALLOT_SOCKS_HOST ?? '127.0.0.1')
    .option(
      '--socks-port <port>',
      'SOCKS port (0: any free port)',
      intOption('socks port', 0, 65535),
      envInt('SHALLOT_SOCKS_PORT', 9050),
    )
    .option(
      '--http-tunnel-port <port>',
      'HTTP CONNECT tunnel port on the SOCKS listen address (C tor HTTPTunnelPort; 0: any free port; default off)',
      intOption('http tunnel port', 0, 65535),
      envInt('SHALLOT_HTTP_TUNNEL_PORT'),
    )
    .option('--data-dir <dir>', 'where guard state persists', env.SHALLOT_DATA_DIR)
    .option(
      '--prebuild <n>',
      'clean circuits kept ready',
      intOption('prebuild', 0, 64),
      envInt('SHALLOT_PREBUILD', 2),
    )
    .option(
      '--max-circuit-dirtiness <s>',
      "a circuit takes no new stream this long after its first; closed once its streams are done (C tor MaxCircuitDirtiness; default 600, C tor's)",
      intOption('max circuit dirtiness', 1, 86_400),
      envInt('SHALLOT_MAX_CIRCUIT_DIRTINESS', 600),
    )
    .option(
      '--circuit-idle-timeout <s>',
      "clean (never used) circuits are closed this long after they opened (default 3600, C tor's upper predicted-port lifetime)",
      intOption('circuit idle timeout', 1, 86_400),
      envInt('SHALLOT_CIRCUIT_IDLE_TIMEOUT', 3600),
    )
    .option(
      '--socks-timeout <s>',
      'a SOCKS request not answered by then gets 0x06 (TTL expired) and is closed (C tor SocksTimeout; default 120)',
      intOption('socks timeout', 2, 3600),
      envInt('SHALLOT_SOCKS_TIMEOUT', 120),
    )
    .option(
      '--shutdown-delay <s>',
      'on SIGTERM/SIGINT, keep serving this long with /readyz failing before stopping (behind a Kubernetes Service, which stops sending new connections only after the pod is told to stop; default 0)',
      intOption('shutdown delay', 0, 60),
      envInt('SHALLOT_SHUTDOWN_DELAY', 0),
    )
    .option(
      '--onion-auth-dir <dir>',
      'client-authorization keys: <dir>/*.auth_private ("<address>:descriptor:x25519:<base32>", mode 600, as Tor)',
      env.SHALLOT_ONION_AUTH_DIR,
    )
    .option(
      '--network-model <file>',
      "network model (JSON) whose latency the client's links get",
      env.SHALLOT_NETWORK_MODEL,
    )
    .option(
      '--location <name>',
      'the client\'s location in the model (default: the model\'s placement of "client")',
      env.SHALLOT_LOCATION,
    )
    .addOption(handshakeOption())
    .addOption(vanguardsLiteOption())
    .addOption(noVanguardsLiteOption())
    .option('--no-tls', 'plain ws links (debugging only)');
  addOpsOptions(program, '127.0.0.1');
  program.parse(argv);
  const o = program.opts<
    {
      authorities?: AuthorityEndpoint[];
      torAuthorities?: DirAuthority[];
      socksHost: string;
      socksPort: number;
      httpTunnelPort?: number;
      dataDir?: string;
      prebuild: number;
      maxCircuitDirtiness: number;
      circuitIdleTimeout: number;
      socksTimeout: number;
      shutdownDelay: number;
      onionAuthDir?: string;
      handshake: HandshakeName;
      vanguardsLite: boolean;
      tls: boolean;
      networkModel?: string;
      location?: string;
    } & OpsOptions
  >();
  const network = networkChoice(program, o);
  const logLevel = logLevelOption(program, o.logLevel);
  const clientAuthKeys = o.onionAuthDir
    ? await readClientAuthKeys(o.onionAuthDir).catch((e: Error) => program.error(e.message))
    : undefined;
  let shaping: LinkShaping | null = null;
  try {
    // Named even without a model: link faults (net/link-faults.ts) find links by node name.
    shaping =
      linkShaping(
        'client',
        networkModelFrom(o.networkModel, env.SHALLOT_NETWORK_MODEL_JSON),
        null,
        o.location,
      ) ?? namedShaping('client');
  } catch (e) {
    program.error((e as Error).message);
  }
  const logger = createLogger('client', logLevel);
  const registry = createRegistry({ node: 'client', role: 'client' });
  const client = new ShallotClient(
    { logger, registry },
    {
      ...network,
      socksHost: o.socksHost,
      socksPort: o.socksPort,
      ...(clientAuthKeys ? { clientAuthKeys } : {}),
      socks: { socksTimeoutMs: o.socksTimeout * 1000 },
      circuits: {
        tls: o.tls,
        prebuild: o.prebuild,
        maxDirtinessMs: o.maxCircuitDirtiness * 1000,
        idleTimeoutMs: o.circuitIdleTimeout * 1000,
        socksTimeoutMs: o.socksTimeout * 1000,
        handshake: o.handshake,
        vanguardsLite: o.vanguardsLite,
        shaping,
        ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      },
    },
  );
  await client.start();
  const socks = { socksTimeoutMs: o.socksTimeout * 1000 };
  const tunnel =
    o.httpTunnelPort === undefined
      ? null
      : await startHttpTunnelServer(
          { host: o.socksHost, port: o.httpTunnelPort, ...socks },
          (req) => client.connect(req),
          { registry },
        );
  if (tunnel) logger.info('HTTP tunnel listening', { address: tunnel.address });
  let draining = false;
  const ops = await serveOpsIfAsked(logger, {
    host: o.opsHost ?? '127.0.0.1',
    port: o.opsPort,
    registry,
    // Ready with a consensus: on a Shallot network it carries every relay's
    // keys, and on a C tor network ctor-dir.ts returns one only with its
    // microdescriptors, so the client then has C tor's "minimum dir info"
    // (router_have_minimum_dir_info) and builds circuits; a request sent
    // before that waits for it (client.ts). Not ready once told to stop.
    health: () => ({ ok: true, ready: client.dir !== null && !draining }),
  });
  const delayMs = o.shutdownDelay * 1000;
  onShutdown(
    logger,
    async () => {
      // Kubernetes tells the pod to stop and takes it out of the Service's
      // endpoints at the same time; until every node's proxy has caught up,
      // new connections still arrive here. Serve them (and let streams in
      // flight finish) for the delay, reporting not ready, then stop.
      draining = true;
      if (delayMs > 0) {
        logger.info('draining before stopping', { seconds: o.shutdownDelay });
        await new Promise((r) => setTimeout(r, delayMs));
      }
      await Promise.all([tunnel?.close(), client.stop(), ops?.close()]);
    },
    delayMs + 10_000,
  );
}

runIfMain(import.meta.url, main);
