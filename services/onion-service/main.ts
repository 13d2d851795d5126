/**
 * Process entry for one onion-service instance with its own embedded client:
 *
 *   node dist/services/onion-service/main.js --key-file D/identity.key \
 *     --authorities "id@host:port,..." [--backend host:port|builtin] \
 *     [--instance NAME] [--intro-points 3] [--virtual-port 80] [--ops-port M]
 *
 * On a C tor network, `--tor-authorities FILE` (torrc DirAuthority lines)
 * replaces --authorities: intro points, HSDirs and rendezvous points are
 * then C tor relays.
 *
 * Prints the onion address on stdout once the identity is loaded (the key
 * file is created, mode 0600, on first start). Several processes started
 * with the same key file and different --instance names share the service
 * (see instances.ts): they meet in the key file's directory, or --data-dir;
 * on hosts without a shared directory (pods), over HTTP instead
 * (instance-peers.ts): each serves its record on --instance-port and fetches
 * its peers' from --instance-peers host:port,... and/or every address of
 * --instance-peers-dns name:port (a headless Service).
 * The key file may also be C tor's `hs_ed25519_secret_key` (the service
 * keeps C tor's address); `--export-hs-dir DIR` writes the identity as a C
 * tor HiddenServiceDir (secret key, public key, hostname) and exits.
 * Every flag has a SHALLOT_* environment fallback. SIGTERM stops the
 * service (intro circuits closed, instance record removed), then the client.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ShallotClient } from '../client/client.js';
import { networkChoice, torAuthoritiesOption } from '../client/tor-authorities.js';
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
import { readAuthorizedClients } from '../runtime/client-auth-files.js';
import { createLogger } from '../runtime/log.js';
import { serveOpsIfAsked } from '../runtime/ops-server.js';
import { namedShaping, networkModelFrom, onionShaping } from '../runtime/shaping-options.js';
import type { Backend } from './backend.js';
import { loadOrCreateIdentityKey, writeHsDir } from './identity.js';
import {
  type InstancePeersOptions,
  type PeerAddress,
  parsePeerAddress,
  parsePeerList,
} from './instance-peers.js';
import { isValidInstanceName } from './instances.js';
import { serviceClientOptions } from './own-client.js';
import { OnionService } from './service.js';

const env = process.env;

/** "builtin" or "host:port" (IPv6 hosts in brackets). */
export function parseBackend(spec: string): Backend {
  if (spec === 'builtin') return { type: 'builtin' };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(spec);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError('want "builtin" or host:port');
  return { type: 'tcp', host: (m[1] ?? m[2]) as string, port };
}

function peerList(v: string): PeerAddress[] {
  try {
    return parsePeerList(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function peerAddress(v: string): PeerAddress {
  try {
    return parsePeerAddress(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** HTTP instance sharing when a port or peers are given (flags, else SHALLOT_INSTANCE_PEERS / _DNS). */
export function instancePeersOf(
  o: {
    instanceHost: string;
    instancePort?: number;
    instancePeers?: PeerAddress[];
    instancePeersDns?: PeerAddress;
  },
  e: NodeJS.ProcessEnv = env,
): InstancePeersOptions | undefined {
  const peers =
    o.instancePeers ?? (e.SHALLOT_INSTANCE_PEERS ? peerList(e.SHALLOT_INSTANCE_PEERS) : undefined);
  const dns =
    o.instancePeersDns ??
    (e.SHALLOT_INSTANCE_PEERS_DNS ? peerAddress(e.SHALLOT_INSTANCE_PEERS_DNS) : undefined);
  if (o.instancePort === undefined) {
    // Fetching peers without serving our own record would leave this instance out of theirs.
    if (peers || dns) throw new InvalidArgumentError('--instance-peers(-dns) needs --instance-port');
    return undefined;
  }
  return {
    listen: { host: o.instanceHost, port: o.instancePort },
    ...(peers ? { peers } : {}),
    ...(dns ? { dns } : {}),
  };
}

/** What net/link-faults.ts accepts as a node name. */
const LINK_NODE_NAME = /^[a-z0-9-]{1,63}$/;

function instanceName(v: string): string {
  if (!isValidInstanceName(v)) throw new InvalidArgumentError('letters, digits, ".", "_" and "-" (max 64)');
  return v;
}

export async function main(argv: string[]): Promise<void> {
  const program: Command = new Command()
    .name('shallot-onion-service')
    .description('A Shallot v3 onion service (one instance) with an embedded client')
    .option(
      '--key-file <file>',
      "identity key file (created 0600 if missing), or C tor's hs_ed25519_secret_key",
      env.SHALLOT_KEY_FILE,
    )
    .option(
      '--export-hs-dir <dir>',
      'write the identity as a C tor HiddenServiceDir, print the address, exit',
    )
    .addOption(authoritiesOption())
    .addOption(torAuthoritiesOption())
    .option('--backend <spec>', '"builtin" or host:port to splice streams to', parseBackend, undefined)
    .option('--instance <name>', 'instance name (instances share the key file)', instanceName, undefined)
    .option(
      '--fault-token-file <file>',
      "serve PUT /link-faults on the ops port to callers with this token, and name this instance's links by --instance (the operator: pause)",
      env.SHALLOT_FAULT_TOKEN_FILE,
    )
    .option(
      '--data-dir <dir>',
      'where instances meet (default: the key file directory)',
      env.SHALLOT_DATA_DIR,
    )
    .option(
      '--instance-host <host>',
      'address to serve this instance record on (with --instance-port)',
      env.SHALLOT_INSTANCE_HOST ?? '127.0.0.1',
    )
    .option(
      '--instance-port <port>',
      'share instance records over HTTP on this port instead of the data directory',
      intOption('instance port', 0, 65535),
      envInt('SHALLOT_INSTANCE_PORT'),
    )
    .option('--instance-peers <host:port,...>', 'other instances to fetch records from', peerList)
    .option(
      '--instance-peers-dns <name:port>',
      'a name resolving to every instance (headless Service) and their --instance-port',
      peerAddress,
    )
    .option('--name <name>', 'service name for logs and metric labels', env.SHALLOT_NAME)
    .option(
      '--intro-points <n>',
      'introduction points of this instance',
      intOption('intro points', 1, 20),
      envInt('SHALLOT_INTRO_POINTS', 3),
    )
    .option(
      '--virtual-port <port>',
      'onion port clients connect to',
      intOption('virtual port', 1, 65535),
      envInt('SHALLOT_VIRTUAL_PORT', 80),
    )
    .option('--no-testnet', 'live-network time periods (1440 min) instead of the voting-interval ones')
    .option(
      '--authorized-clients-dir <dir>',
      'only clients with a key in <dir>/*.auth ("descriptor:x25519:<base32>", as Tor) may connect',
      env.SHALLOT_AUTHORIZED_CLIENTS_DIR,
    )
    .option(
      '--network-model <file>',
      "network model (JSON) whose latency this instance's links get",
      env.SHALLOT_NETWORK_MODEL,
    )
    .option(
      '--location <name>',
      "this service's location in the model (default: the model's placement of --name)",
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
      keyFile?: string;
      exportHsDir?: string;
      authorities?: AuthorityEndpoint[];
      torAuthorities?: DirAuthority[];
      backend?: Backend;
      instance?: string;
      dataDir?: string;
      instanceHost: string;
      instancePort?: number;
      instancePeers?: PeerAddress[];
      instancePeersDns?: PeerAddress;
      name?: string;
      introPoints: number;
      virtualPort: number;
      testnet: boolean;
      authorizedClientsDir?: string;
      handshake: HandshakeName;
      vanguardsLite: boolean;
      tls: boolean;
      faultTokenFile?: string;
      networkModel?: string;
      location?: string;
    } & OpsOptions
  >();
  if (!o.keyFile) program.error('--key-file (or SHALLOT_KEY_FILE) is required');
  if (o.exportHsDir) {
    const dir = o.exportHsDir;
    const address = await loadOrCreateIdentityKey(o.keyFile)
      .then(({ key }) => writeHsDir(dir, key))
      .catch((e: Error) => program.error(e.message));
    process.stdout.write(`${address}\n`);
    return;
  }
  // On a C tor network the embedded client reads C tor's directory and dials raw TLS (client.ts);
  // descriptors go to C tor HSDirs the same way, over BEGIN_DIR.
  const network = networkChoice(program, o);
  const logLevel = logLevelOption(program, o.logLevel);
  if (env.SHALLOT_TESTNET === '0' || env.SHALLOT_TESTNET === 'false') o.testnet = false;
  let backend: Backend = { type: 'builtin' };
  let instance = 'default';
  let instancePeers: InstancePeersOptions | undefined;
  try {
    instancePeers = instancePeersOf(o);
    backend = o.backend ?? parseBackend(env.SHALLOT_BACKEND ?? 'builtin');
    instance = o.instance ?? instanceName(env.SHALLOT_INSTANCE ?? 'default');
  } catch (e) {
    program.error((e as Error).message);
  }
  let authorizedClients: Uint8Array[] | undefined;
  if (o.authorizedClientsDir !== undefined) {
    authorizedClients = await readAuthorizedClients(o.authorizedClientsDir).catch((e: Error) =>
      program.error(e.message),
    );
    // Asked for client authorization but given no client: refuse rather than publish to anyone.
    if (authorizedClients.length === 0)
      program.error(`no *.auth files in ${o.authorizedClientsDir}: no client could connect`);
  }
  const name = o.name ?? 'onion';
  const logger = createLogger(`hs/${name}/${instance}`, logLevel);
  const registry = createRegistry({ node: `${name}-${instance}`, role: 'onion-service' });
  // A NetworkFault pause finds this instance's links by its name (net/link-faults.ts): its pod's name.
  const linkName = o.faultTokenFile && LINK_NODE_NAME.test(instance) ? instance : null;
  if (o.faultTokenFile && !linkName)
    logger.warn('instance name is no link name (a-z, 0-9, "-", max 63): link faults will not find it', {
      instance,
    });
  let shaping: LinkShaping | null = null;
  try {
    shaping = onionShaping(
      name,
      linkName ?? `${name}-${instance}`,
      networkModelFrom(o.networkModel, env.SHALLOT_NETWORK_MODEL_JSON),
      o.location,
    );
  } catch (e) {
    program.error((e as Error).message);
  }
  if (!shaping && linkName) shaping = namedShaping(linkName);
  const client = new ShallotClient(
    { logger: logger.child('client'), registry },
    serviceClientOptions(network, {
      tls: o.tls,
      handshake: o.handshake,
      vanguardsLite: o.vanguardsLite,
      shaping,
    }),
  );
  const service = new OnionService(
    { logger, registry, client },
    {
      name,
      instance,
      identityKeyFile: o.keyFile,
      ...(authorizedClients ? { authorizedClients } : {}),
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ...(instancePeers ? { instancePeers } : {}),
      numIntroPoints: o.introPoints,
      backend,
      virtualPort: o.virtualPort,
      testnet: o.testnet,
    },
  );
  await client.start();
  await service.start();
  process.stdout.write(`${service.onionAddress}\n`);
  if (instancePeers) logger.info('instance records served', { port: service.instancePeersPort });
  const ops = await serveOpsIfAsked(logger, {
    host: o.opsHost ?? '127.0.0.1',
    port: o.opsPort,
    registry,
    ...(o.faultTokenFile ? { faultTokenFile: o.faultTokenFile } : {}),
    health: () => service.health(),
  });
  onShutdown(logger, async () => {
    await service.stop();
    await Promise.all([client.stop(), ops?.close()]);
  });
}

runIfMain(import.meta.url, main);
