/**
 * Process entry for one relay:
 *
 *   node dist/services/relay/main.js --key-file F --nickname N --port P \
 *     --authorities "id@host:port,..." [--exit] [--ops-port M] \
 *     [--reentry-reject "host:port,..."] [--key-watch F2] [--fault-token-file T]
 *
 * Flags fall back to SHALLOT_* environment variables (for containers). The
 * key file is created (0600) on first start; its identity is printed. The
 * key file (or --key-watch, the operator's mounted Secret) is polled, so an
 * onion key rotated there is taken without a restart (key-watch.ts).
 * With --fault-token-file (and --ops-port) the ops endpoint also takes the
 * link-fault table from whoever holds that token (runtime/fault-route.ts:
 * the operator's NetworkFault pause, cut and slow).
 *
 * With --pool (SHALLOT_POOL) the process runs several relays instead, each
 * with the nickname, port, key file, key watch and exit role the pool names
 * (pool.ts); --key-file, --nickname, --port, --key-watch and --exit then do
 * not apply, and one identity per relay is printed, in pool order.
 */
import { Command } from 'commander';
import { toHex } from '../core/bytes.js';
import { DEFAULT_TESTNET_EXIT_POLICY, parseExitPolicy, REJECT_ALL } from '../core/exit-policy.js';
import type { NetworkModel } from '../core/network-model.js';
import { type HostPort, parseHostPortList } from '../core/relay-pivot.js';
import { createRegistry } from '../metrics/metrics.js';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import { authoritiesOption } from '../runtime/authorities-option.js';
import {
  addOpsOptions,
  envInt,
  intOption,
  logLevelOption,
  type OpsOptions,
  onShutdown,
  runIfMain,
} from '../runtime/cli.js';
import { loadOrCreateKeys } from '../runtime/key-store.js';
import { createLogger } from '../runtime/log.js';
import { serveOpsIfAsked } from '../runtime/ops-server.js';
import {
  type BandwidthLimit,
  bandwidthLimit,
  linkShaping,
  namedShaping,
  networkModelFrom,
} from '../runtime/shaping-options.js';
import { DEFAULT_IDLE_CLIENT_CHANNEL_MS } from './channel-guard.js';
import { DEFAULT_KEY_WATCH_MS } from './key-watch.js';
import { RelayNode } from './node.js';
import { attachOnionRoles } from './onion-roles.js';
import { type PoolEntry, parsePoolSpec } from './pool.js';
import { processQueueMemory } from './queue-memory.js';

const env = process.env;

export async function main(argv: string[]): Promise<void> {
  const program: Command = new Command()
    .name('shallot-relay')
    .description('A Shallot relay: forwards cells, exits where its policy allows, serves directory requests')
    .option('--key-file <file>', 'identity and onion keys (created if missing)', env.SHALLOT_KEY_FILE)
    .option('--nickname <name>', '1-19 letters and digits', env.SHALLOT_NICKNAME ?? 'shallot')
    .option('--host <host>', 'address to listen on and advertise', env.SHALLOT_HOST ?? '127.0.0.1')
    .option('--port <port>', 'link (ORPort) port', intOption('port', 0, 65535), envInt('SHALLOT_PORT', 9001))
    .addOption(authoritiesOption())
    .option('--exit', 'exit to 127.0.0.0/8 (the testnet default exit policy)', env.SHALLOT_EXIT === '1')
    .option(
      '--exit-policy <rules>',
      'exit policy, e.g. "accept 127.0.0.1:*,reject *:*"',
      env.SHALLOT_EXIT_POLICY,
    )
    .option(
      '--bandwidth <bytes>',
      'advertised bandwidth, bytes/s',
      intOption('bandwidth', 1, 2 ** 40),
      envInt('SHALLOT_BANDWIDTH', 1_000_000),
    )
    .option(
      '--bandwidth-rate <bytes>',
      'BandwidthRate: bytes/s this relay reads from all its links (C tor; at least 76800); also caps the advertised bandwidth',
      intOption('bandwidth rate', 1, 2 ** 40),
      envInt('SHALLOT_BANDWIDTH_RATE'),
    )
    .option(
      '--bandwidth-burst <bytes>',
      'BandwidthBurst: bytes the bucket holds (default: the rate, as C tor)',
      intOption('bandwidth burst', 1, 2 ** 40),
      envInt('SHALLOT_BANDWIDTH_BURST'),
    )
    .option(
      '--network-model <file>',
      "network model (JSON) whose latency this relay's links get",
      env.SHALLOT_NETWORK_MODEL,
    )
    .option(
      '--location <name>',
      "this relay's location in the model (default: the model's placement of the nickname)",
      env.SHALLOT_LOCATION,
    )
    .option(
      '--reentry-reject <list>',
      'host:port,... exits never connect to besides relays and authorities (ops ports, the SOCKS port; * for any address)',
      env.SHALLOT_REENTRY_REJECT ?? '',
    )
    .option(
      '--idle-channel-timeout <s>',
      "close a client's channel after this many seconds without circuits (plus up to half again at random; C tor: 180)",
      intOption('idle channel timeout', 1, 86_400),
      envInt('SHALLOT_IDLE_CHANNEL_TIMEOUT', DEFAULT_IDLE_CLIENT_CHANNEL_MS / 1000),
    )
    .option(
      '--max-mem-in-queues <MiB>',
      'MaxMemInQueues: over this many MiB of queued cells in the process, close the circuits with the oldest queued data (default: 3/4 of the memory limit, 256 MiB to 8 GiB)',
      intOption('max mem in queues', 1, 1 << 20),
      envInt('SHALLOT_MAX_MEM_IN_QUEUES'),
    )
    .option('--no-hsdir', 'do not offer to be an onion-service directory')
    .option(
      '--key-rotation <min>',
      'rotate the onion key every N minutes (0: never)',
      intOption('key rotation', 0, 10_080),
      envInt('SHALLOT_KEY_ROTATION', 0),
    )
    .option(
      '--key-watch <file>',
      'take onion keys rotated in this key file without restarting (default: the key file)',
      env.SHALLOT_KEY_WATCH,
    )
    .option(
      '--key-watch-interval <s>',
      'how often to look at the watched key file, seconds',
      intOption('key watch interval', 1, 3600),
      envInt('SHALLOT_KEY_WATCH_INTERVAL', DEFAULT_KEY_WATCH_MS / 1000),
    )
    .option(
      '--fault-token-file <file>',
      'serve PUT /link-faults on the ops port to callers with this token (the operator: link faults)',
      env.SHALLOT_FAULT_TOKEN_FILE,
    )
    .option(
      '--pool <json>',
      'run several relays: [{"nickname","port","keyFile","keyWatch"?,"exit"?},...] (relay/pool.ts)',
      env.SHALLOT_POOL,
    )
    .option('--no-tls', 'plain ws links (debugging only; peers must agree)');
  addOpsOptions(program);
  program.parse(argv);
  const o = program.opts<
    {
      keyFile?: string;
      nickname: string;
      host: string;
      port: number;
      authorities?: AuthorityEndpoint[];
      exit: boolean;
      exitPolicy?: string;
      reentryReject: string;
      bandwidth: number;
      bandwidthRate?: number;
      bandwidthBurst?: number;
      networkModel?: string;
      location?: string;
      hsdir: boolean;
      idleChannelTimeout: number;
      maxMemInQueues?: number;
      keyRotation: number;
      keyWatch?: string;
      keyWatchInterval: number;
      tls: boolean;
      pool?: string;
      faultTokenFile?: string;
    } & OpsOptions
  >();
  if (env.SHALLOT_TLS === '0') o.tls = false;
  let pool: PoolEntry[] | null = null;
  try {
    if (o.pool) pool = parsePoolSpec(o.pool);
  } catch (e) {
    program.error((e as Error).message);
  }
  if (!pool && !o.keyFile) program.error('--key-file (or SHALLOT_KEY_FILE) is required');
  const authorities = o.authorities ?? program.error('--authorities (or SHALLOT_AUTHORITIES) is required');
  const logLevel = logLevelOption(program, o.logLevel);
  let exitPolicy: typeof REJECT_ALL | null = null;
  let reentryReject: HostPort[] = [];
  let model: NetworkModel | null = null;
  let limit: BandwidthLimit | null = null;
  try {
    model = networkModelFrom(o.networkModel, env.SHALLOT_NETWORK_MODEL_JSON);
    limit = bandwidthLimit(o.bandwidthRate, o.bandwidthBurst);
    if (o.exitPolicy) exitPolicy = parseExitPolicy(o.exitPolicy);
    reentryReject = parseHostPortList(o.reentryReject);
  } catch (e) {
    program.error((e as Error).message);
  }
  if (o.maxMemInQueues !== undefined) processQueueMemory.maxBytes = o.maxMemInQueues * 1024 * 1024;
  const entries: PoolEntry[] = pool ?? [
    { nickname: o.nickname, port: o.port, keyFile: o.keyFile!, exit: o.exit, keyWatch: o.keyWatch },
  ];
  const logger = createLogger(o.nickname, logLevel);
  // One registry for the process: relay series carry each relay's nickname, process series (CPU, memory) are per pod.
  const registry = createRegistry({ node: o.nickname, role: 'relay' });
  const nodes: RelayNode[] = [];
  const roles: { close(): void }[] = [];
  for (const e of entries) {
    const keys = await loadOrCreateKeys(e.keyFile);
    const node = new RelayNode(
      { logger: pool ? logger.child(e.nickname) : logger, registry },
      {
        nickname: e.nickname,
        host: o.host,
        port: e.port,
        tls: o.tls,
        keys,
        exitPolicy: exitPolicy ?? (e.exit ? DEFAULT_TESTNET_EXIT_POLICY : REJECT_ALL),
        authorities,
        bandwidth: o.bandwidth,
        hsdir: o.hsdir,
        keyFile: e.keyFile,
        keyWatch: { file: e.keyWatch ?? e.keyFile, intervalMs: o.keyWatchInterval * 1000 },
        reentryReject,
        // Named even without a model: link faults (net/link-faults.ts) find links by node name.
        shaping: linkShaping(e.nickname, model, limit, o.location) ?? namedShaping(e.nickname),
        limits: { idleClientChannelMs: o.idleChannelTimeout * 1000 },
        ...(o.keyRotation > 0 ? { keyRotationMs: o.keyRotation * 60_000 } : {}),
      },
    );
    // Every relay can be an intro point, rendezvous point and HSDir, as in Tor.
    roles.push(attachOnionRoles(node));
    await node.start();
    nodes.push(node);
    process.stdout.write(`${toHex(keys.identity)}\n`);
  }
  const opsHost = o.opsHost ?? o.host;
  const ops = await serveOpsIfAsked(logger, {
    host: opsHost,
    port: o.opsPort,
    registry,
    ...(o.faultTokenFile ? { faultTokenFile: o.faultTokenFile } : {}),
    health: () => {
      const listed = nodes.every((n) => n.publisher.listed);
      return { ok: true, ready: listed, listed };
    },
  });
  // Our own /metrics and /healthz are never an exit target either; bound to
  // every address, that port on any address (core/relay-pivot.ts `*:PORT`).
  if (ops) {
    const own = { host: ['0.0.0.0', '::'].includes(opsHost) ? '*' : opsHost, port: ops.port };
    for (const n of nodes) n.rejectReentry([own]);
  }
  onShutdown(logger, () => {
    for (const r of roles) r.close();
    return Promise.all([...nodes.map((n) => n.stop()), ops?.close()]);
  });
}

runIfMain(import.meta.url, main);
