/**
 * The `load` subcommand of the `shallot` CLI (and of the standalone
 * `services/loadgen/main.ts`): option definitions and help, then
 * `runLoad`. Exit codes: 0 when the success ratio reaches --min-success
 * (default 0.99, see DEFAULTS.minSuccess), 1 below it or when the run
 * itself breaks, 2 for invalid configuration (nothing is sent). The last
 * line says which and why (report.ts `verdict`).
 *
 * Design notes: option values are validated by `resolveLoadOptions`, not
 * by commander parsers, so every configuration error exits 2 with one
 * message style; commander's own usage errors (unknown option, missing
 * value) also exit 2.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command, CommanderError } from 'commander';
import { runLoad } from './loadgen.js';
import { DEFAULTS, LoadConfigError, type LoadInput } from './options.js';
import { verdict } from './report.js';
import type { TorClientFactory } from './tor-network.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Where `shallot up` keeps its network by default. */
const DEFAULT_DATA_DIR = '.shallot';
const DEFAULT_DATA_STATE = path.join(DEFAULT_DATA_DIR, 'state.json');

const HELP_AFTER = `
Targets:
  <address>.onion[:port]   an onion service (port 80 by default)
  host:port                a destination reached through an exit relay
                           (Shallot exits allow 127.0.0.0/8 only)
  The target must speak HTTP/1.1 and serve GET /bytes/<n> (n deterministic
  bytes) and, for body checks, GET /sha256/<n> (their hex SHA-256), as the
  onion service's built-in backend and the web target of \`shallot up\` do.
  Only --mode http is supported: a plain TCP (echo) target will not work.

Measurements (milliseconds, from the moment the SOCKS CONNECT is sent):
  connect   until the proxy's success reply (for .onion: descriptor fetch,
            introduction and rendezvous; for exits: circuit and BEGIN)
  ttfb      until the first response byte
  ttlb      until the last response byte
  With --client-metrics the report adds circuit-build quantiles (from
  shallot_circuit_build_seconds buckets) and the rendezvous points the client
  chose; with --relay-metrics/--targets-file it adds how rendezvous joins and
  INTRODUCE1 cells spread over relays: share per relay, max/mean and the
  coefficient of variation (stddev/mean; 0 = perfectly even).

Failure reasons: socks_<code>_<name> for SOCKS replies (e.g.
  socks_f0_onion_desc_not_found, socks_f3_onion_rend_failed), connect_timeout,
  read_timeout, short_read, checksum_mismatch, length_mismatch, http_<status>,
  bad_response, connection_reset, proxy_unreachable, proxy_closed.

Failing loudly:
  After consecutive failures the next request waits 100 ms, doubling per
  failure up to --backoff-max, and only one request probes at a time until
  one succeeds; pauses show in the progress line, the table and the HTML
  timeline. With a count bound the run stops as soon as the success ratio can
  no longer reach --min-success (--keep-going runs every request anyway).

Exit status: 0 when the success ratio reaches --min-success (default 0.99),
  1 below it (the last line, on stderr, says why: ratio, commonest failure
  reasons, backoff, early stop), 2 for invalid options.

Examples:
  shallot up &                     # then, with the network in .shallot:
  shallot load onion -n 200 -c 8 --new-circuit --out results.json --html report.html
  shallot load web --duration 60 --rate 10
  shallot load 127.0.0.1:8080 --count 200 --concurrency 8 --size 50k,1M
  shallot load <address>.onion --duration 60 --rate 5 --new-circuit \\
    --targets-file .shallot/prometheus-targets.json --client-metrics 127.0.0.1:9101 \\
    --out results.json --html report.html
`;

const HELP_TOR = `  shallot load 127.0.0.1:8080 --tor-authorities torrc -n 100 --new-circuit   # a C tor network
`;

interface RawOptions {
  target?: string;
  dataDir?: string;
  torAuthorities?: string;
  socks?: string;
  concurrency?: string;
  rate?: string;
  duration?: string;
  count?: string;
  size?: string;
  newCircuit?: boolean;
  timeout?: string;
  mode?: string;
  verify?: boolean;
  clientMetrics?: string;
  relayMetrics?: string[];
  targetsFile?: string;
  out?: string;
  html?: string;
  metricsHost?: string;
  metricsPort?: string;
  metricsLinger?: string;
  minSuccess?: string;
  keepGoing?: boolean;
  backoffMax?: string;
  progress?: string;
  progressInterval?: string;
}

/** The LoadInput a parsed command line stands for. */
export function loadInputFromCli(target: string | undefined, raw: RawOptions): LoadInput {
  const { relayMetrics, ...rest } = raw;
  return { ...rest, target: target ?? raw.target, ...(relayMetrics ? { relayMetrics } : {}) } as LoadInput;
}

/** What the caller can add to the command: the shallot CLI starts clients on C tor networks. */
export interface LoadCommandHooks {
  torClient?: TorClientFactory;
}

/** Adds `load` to `program` and returns the subcommand. */
export function registerLoadCommand(program: Command, hooks: LoadCommandHooks = {}): Command {
  const cmd = program
    .command('load')
    .description(
      'Load-test an onion service or an exit destination through a Shallot client: latency percentiles, failures by reason, and rendezvous/intro spread across relays',
    )
    .argument(
      '[target]',
      '<address>.onion[:port] or host:port; with a data dir also "onion", "onion:<i>" or "web" (default: its first onion service)',
    )
    .option('--target <target>', 'same as the positional target')
    .option(
      '--socks <host:port>',
      `the Shallot client SOCKS5 listener (default: from --data-dir, else env SHALLOT_SOCKS, else ${DEFAULTS.socks})`,
    )
    .option(
      '--data-dir <dir>',
      'a `shallot up` data dir: SOCKS, target, --targets-file and --client-metrics default to its network (default: .shallot when it holds a running network and --socks is not given)',
    )
    .option('-c, --concurrency <n>', 'requests in flight at once', String(DEFAULTS.concurrency));
  // Always listed, so the loadgen image's entry (main.ts), which has no client to start,
  // refuses the option by name (tor-network.ts, exit 2) instead of as an unknown option.
  cmd.option(
    '--tor-authorities <file>',
    hooks.torClient
      ? "a C tor network's authorities (torrc DirAuthority lines; a whole torrc works): the run starts its own Shallot client on that network and reports the relays it used"
      : 'not in this entry (the loadgen image): run `shallot load --tor-authorities`, or a Shallot client on the C tor network and --socks',
  );
  cmd
    .option('-r, --rate <req/s>', 'start at most this many requests per second (default: unpaced)')
    .option(
      '-d, --duration <time>',
      'stop starting requests after this long (seconds, or with a unit: 20s, 5m, 1h)',
    )
    .option(
      '-n, --count <n>',
      `requests to make; with --duration, whichever ends first (default ${DEFAULTS.count} when neither is given)`,
    )
    .option(
      '-s, --size <bytes>',
      'payload size per request: 51200, 50k, 1MiB; a comma list is used round-robin',
      '50k',
    )
    .option(
      '--new-circuit',
      'a fresh SOCKS username per request, so the client builds/assigns a separate circuit each time (default: one shared isolation group for the run)',
    )
    .option(
      '-t, --timeout <time>',
      'per request, from SOCKS connect to the last byte (seconds, or 30s, 2m)',
      String(DEFAULTS.timeoutSec),
    )
    .option('--mode <mode>', 'request protocol; only "http" (GET /bytes/<n>) is supported', 'http')
    .option('--no-verify', 'skip checking bodies against GET /sha256/<n> (length is still checked)')
    .option(
      '--client-metrics <url>',
      "the client's /metrics (host:port or URL): circuit build, rendezvous choices",
    )
    .option(
      '--relay-metrics <urls>',
      "relays' /metrics, comma-separated or repeated: rendezvous and intro spread",
      collect,
    )
    .option(
      '--targets-file <file>',
      'Prometheus file_sd JSON (as `shallot up` writes) with more /metrics targets',
    )
    .option('-o, --out <file>', 'write the result as JSON')
    .option('--html <file>', 'write a self-contained HTML report (inline SVG charts)')
    .option('--metrics-port <port>', "serve the load generator's own /metrics on this port while it runs")
    .option('--metrics-host <host>', 'address for --metrics-port', DEFAULTS.metricsHost)
    .option('--metrics-linger <seconds>', 'keep /metrics up this long after the run', '0')
    .option(
      '--min-success <ratio>',
      'exit 1 when the success ratio (0..1) is below this; 0 never fails',
      String(DEFAULTS.minSuccess),
    )
    .option('--keep-going', 'run every request even once --min-success can no longer be reached')
    .option(
      '--backoff-max <seconds>',
      'longest pause after consecutive failures (0: no backoff)',
      String(DEFAULTS.backoffMaxSec),
    )
    .option('--progress <mode>', 'auto (bar on a terminal, lines otherwise), bar, lines, none', 'auto')
    .option(
      '--progress-interval <seconds>',
      'seconds between progress lines when not a terminal',
      String(DEFAULTS.progressIntervalSec),
    )
    .addHelpText('after', hooks.torClient ? HELP_AFTER + HELP_TOR : HELP_AFTER)
    .exitOverride((err: CommanderError) => {
      // Usage errors are configuration errors: exit 2. Help and version exit 0 as usual.
      if (err.exitCode !== 0) process.exit(2);
    })
    .action(async (target: string | undefined, raw: RawOptions) => {
      const ac = new AbortController();
      let signals = 0;
      const onSigint = () => {
        signals++;
        if (signals > 1) process.exit(130);
        process.stderr.write('\nstopping: waiting for requests in flight (Ctrl-C again to quit now)\n');
        ac.abort();
      };
      process.on('SIGINT', onSigint);
      process.on('SIGTERM', onSigint);
      try {
        const input = loadInputFromCli(target, raw);
        if (
          input.dataDir === undefined &&
          input.socks === undefined &&
          !input.torAuthorities &&
          existsSync(DEFAULT_DATA_STATE)
        ) {
          process.stderr.write(`using the network in ${DEFAULT_DATA_DIR} (see --data-dir)\n`);
          input.dataDir = DEFAULT_DATA_DIR;
        }
        const result = await runLoad(input, {
          signal: ac.signal,
          ...(hooks.torClient ? { torClient: hooks.torClient } : {}),
        });
        const v = verdict(result);
        if (v.ok) {
          process.stdout.write(`${v.line}\n`);
          process.exitCode = 0;
        } else {
          process.stderr.write(`${v.line}\n`);
          process.exitCode = 1;
        }
      } catch (e) {
        if (e instanceof LoadConfigError) {
          process.stderr.write(`error: ${e.message}\n`);
          process.exitCode = 2;
        } else {
          process.stderr.write(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
          process.exitCode = 1;
        }
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigint);
      }
    });
  return cmd;
}
