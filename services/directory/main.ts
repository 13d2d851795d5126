/**
 * Process entry for one directory authority:
 *
 *   node dist/services/directory/main.js --key-file F --host 127.0.0.1 --port N \
 *     --authorities "id@host:port,..." --voting-interval 20 [--ops-port M]
 *
 * /metrics, /healthz and /readyz are served on the ops port only (not on
 * the DirPort, which every exit can reach). With --fault-token-file the ops
 * port also takes the link-fault table from whoever holds that token
 * (runtime/fault-route.ts, as a relay's does: the operator's NetworkFault
 * pause, cut and slow), which names this authority by --name.
 *
 * Every flag has a SHALLOT_* environment fallback (for containers). The key
 * file is created (mode 0600) on first start and the identity printed, so a
 * launcher can run `--print-identity` for each authority first and then
 * wire them together with --authorities.
 */
import { Command } from 'commander';
import { toHex } from '../core/bytes.js';
import type { HandshakeName } from '../core/create-handshake.js';
import { MAX_RELAYS } from '../core/dir/fields.js';
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
  type OpsOptions,
  onShutdown,
  runIfMain,
  secondsOption,
} from '../runtime/cli.js';
import { loadOrCreateKeys } from '../runtime/key-store.js';
import { createLogger } from '../runtime/log.js';
import { serveOpsIfAsked } from '../runtime/ops-server.js';
import { parseParams } from '../runtime/params-option.js';
import { linkShaping, namedShaping, networkModelFrom } from '../runtime/shaping-options.js';
import {
  DEFAULT_MAX_SERVERS_PER_ADDR,
  DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
  testnetMinUptime,
} from './admission.js';
import { DirectoryAuthority } from './authority.js';
import { DEFAULT_PROBE_CONCURRENCY } from './config.js';
import { DEFAULT_MAX_UNVERIFIED_DESCRIPTORS } from './descriptor-options.js';

const env = process.env;

export async function main(argv: string[]): Promise<void> {
  const program: Command = new Command()
    .name('shallot-dirauth')
    .description('A Shallot directory authority')
    .option('--key-file <file>', 'identity key file (created if missing)', env.SHALLOT_KEY_FILE)
    .option('--print-identity', 'print the hex identity of --key-file and exit')
    .option('--host <host>', 'address to listen on', env.SHALLOT_HOST ?? '127.0.0.1')
    .option('--port <port>', 'directory HTTP port', intOption('port', 0, 65535), envInt('SHALLOT_PORT', 7000))
    .addOption(authoritiesOption('all authorities: "hexid@host:port,..."'))
    .option(
      '--voting-interval <sec>',
      'seconds between consensuses',
      intOption('voting interval', 1, 86_400),
      envInt('SHALLOT_VOTING_INTERVAL', 20),
    )
    .option(
      '--vote-delay <sec>',
      'vote delay (default interval/5)',
      secondsOption,
      envInt('SHALLOT_VOTE_DELAY'),
    )
    .option(
      '--dist-delay <sec>',
      'distribution delay (default interval/5)',
      secondsOption,
      envInt('SHALLOT_DIST_DELAY'),
    )
    .option('--no-testnet', 'use the live-network flag thresholds')
    .option(
      '--no-probe-reachability',
      'list relays without testing them (a link handshake with their identity checked); tests only',
    )
    .option(
      '--max-servers-per-addr <n>',
      'relays listed per IP address, 0 = no limit (C tor AuthDirMaxServersPerAddr)',
      intOption('max servers per addr', 0, 1_000_000),
      envInt('SHALLOT_MAX_SERVERS_PER_ADDR', DEFAULT_MAX_SERVERS_PER_ADDR),
    )
    .option(
      '--max-servers-per-auth-addr <n>',
      "relays listed on an authority's address, 0 = no limit (C tor AuthDirMaxServersPerAuthAddr)",
      intOption('max servers per auth addr', 0, 1_000_000),
      envInt('SHALLOT_MAX_SERVERS_PER_AUTH_ADDR', DEFAULT_MAX_SERVERS_PER_AUTH_ADDR),
    )
    .option(
      '--max-unverified-descriptors <n>',
      'descriptors stored while their reachability test is pending',
      intOption('max unverified descriptors', 1, MAX_RELAYS),
      envInt('SHALLOT_MAX_UNVERIFIED_DESCRIPTORS', DEFAULT_MAX_UNVERIFIED_DESCRIPTORS),
    )
    .option(
      '--probe-concurrency <n>',
      'reachability tests and bandwidth measurements in flight at once',
      intOption('probe concurrency', 1, 1024),
      envInt('SHALLOT_PROBE_CONCURRENCY', DEFAULT_PROBE_CONCURRENCY),
    )
    .option('--no-measure-bandwidth', 'vote claimed (capped) bandwidths only, no Measured=')
    .addOption(handshakeOption())
    .option(
      '--stable-min-uptime <sec>',
      'testnet: seconds this authority must have seen a relay reachable before Stable (default 0)',
      intOption('stable min uptime', 0, 30 * 86_400),
      envInt('SHALLOT_STABLE_MIN_UPTIME'),
    )
    .option(
      '--guard-min-uptime <sec>',
      'testnet: ... before Guard (default: a fifth of the voting interval)',
      intOption('guard min uptime', 0, 30 * 86_400),
      envInt('SHALLOT_GUARD_MIN_UPTIME'),
    )
    .option(
      '--hsdir-min-uptime <sec>',
      'testnet: ... before HSDir (C tor MinUptimeHidServDirectoryV2; default 0, as its TestingTorNetwork)',
      intOption('hsdir min uptime', 0, 30 * 86_400),
      envInt('SHALLOT_HSDIR_MIN_UPTIME'),
    )
    .option('--params <list>', 'consensus params "name=int,..."', env.SHALLOT_PARAMS ?? '')
    .option('--name <name>', 'name for logs and metric labels', env.SHALLOT_NAME)
    .option(
      '--network-model <file>',
      "network model (JSON) whose latency this authority's reachability links get",
      env.SHALLOT_NETWORK_MODEL,
    )
    .option(
      '--location <name>',
      "this authority's location in the model (default: the model's placement of --name)",
      env.SHALLOT_LOCATION,
    )
    .option(
      '--fault-token-file <file>',
      'serve PUT /link-faults on the ops port to callers with this token (the operator: link faults)',
      env.SHALLOT_FAULT_TOKEN_FILE,
    );
  addOpsOptions(program);
  program.parse(argv);
  const o = program.opts<
    {
      keyFile?: string;
      printIdentity?: boolean;
      host: string;
      port: number;
      authorities?: AuthorityEndpoint[];
      votingInterval: number;
      voteDelay?: number;
      distDelay?: number;
      testnet: boolean;
      probeReachability: boolean;
      maxServersPerAddr: number;
      maxServersPerAuthAddr: number;
      maxUnverifiedDescriptors: number;
      probeConcurrency: number;
      measureBandwidth: boolean;
      handshake: HandshakeName;
      stableMinUptime?: number;
      guardMinUptime?: number;
      hsdirMinUptime?: number;
      params: string;
      name?: string;
      networkModel?: string;
      location?: string;
      faultTokenFile?: string;
    } & OpsOptions
  >();
  if (env.SHALLOT_TESTNET === '0' || env.SHALLOT_TESTNET === 'false') o.testnet = false;
  if (env.SHALLOT_PROBE_REACHABILITY === '0' || env.SHALLOT_PROBE_REACHABILITY === 'false') {
    o.probeReachability = false;
  }
  if (!o.keyFile) program.error('--key-file (or SHALLOT_KEY_FILE) is required');
  const keys = await loadOrCreateKeys(o.keyFile);
  const identity = toHex(keys.identity);
  if (o.printIdentity) {
    process.stdout.write(`${identity}\n`);
    return;
  }
  const peers = o.authorities ?? program.error('--authorities (or SHALLOT_AUTHORITIES) is required');
  const logLevel = logLevelOption(program, o.logLevel);
  let params: Record<string, number>;
  try {
    params = parseParams(o.params);
  } catch (e) {
    program.error((e as Error).message);
  }
  const name = o.name ?? identity.slice(0, 8);
  // Its probe links carry its name (link faults: shallot fault cut auth0 relay3) and its model location.
  let shaping: LinkShaping;
  try {
    const model = networkModelFrom(o.networkModel, env.SHALLOT_NETWORK_MODEL_JSON);
    shaping = linkShaping(name, model, null, o.location) ?? namedShaping(name);
  } catch (e) {
    program.error((e as Error).message);
  }
  const logger = createLogger('shallot', logLevel);
  const registry = createRegistry({ node: name, role: 'authority' });
  const auth = new DirectoryAuthority(
    { logger, registry },
    {
      identitySeed: keys.identitySeed,
      host: o.host,
      port: o.port,
      peers,
      votingIntervalSec: o.votingInterval,
      voteDelaySec: o.voteDelay,
      distDelaySec: o.distDelay,
      testnet: o.testnet,
      probeReachability: o.probeReachability,
      maxServersPerAddr: o.maxServersPerAddr,
      maxServersPerAuthAddr: o.maxServersPerAuthAddr,
      maxUnverifiedDescriptors: o.maxUnverifiedDescriptors,
      probeConcurrency: o.probeConcurrency,
      measureBandwidth: o.measureBandwidth,
      handshake: o.handshake,
      minUptimeSec: {
        stable: o.stableMinUptime ?? testnetMinUptime(o.votingInterval).stable,
        guard: o.guardMinUptime ?? testnetMinUptime(o.votingInterval).guard,
        hsdir: o.hsdirMinUptime ?? testnetMinUptime(o.votingInterval).hsdir,
      },
      params,
      name,
      shaping,
    },
  );
  await auth.start();
  process.stdout.write(`${identity}\n`);
  const ops = await serveOpsIfAsked(logger, {
    host: o.opsHost ?? o.host,
    port: o.opsPort,
    registry,
    health: () => auth.health(),
    ...(o.faultTokenFile ? { faultTokenFile: o.faultTokenFile } : {}),
  });
  onShutdown(logger, () => Promise.all([auth.stop(), ops?.close()]), 5000);
}

runIfMain(import.meta.url, main);
