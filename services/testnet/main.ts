#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --initial-old-space-size=64
/**
 * The `shallot` command: `up` starts a local network on 127.0.0.1,
 * `status` shows it, `load` drives traffic through it, `fault` stops, kills,
 * pauses or restarts one of its nodes, `client-auth` makes
 * client-authorization keys for onion services.
 */
import { availableParallelism, constants } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { generateClientAuthKey } from '../core/client-auth.js';
import { randomBytes } from '../core/crypto.js';
import { decodeOnionAddress } from '../core/onion-address.js';
import { registerLoadCommand } from '../loadgen/command.js';
import {
  handshakeOption,
  intOption,
  noVanguardsLiteOption,
  runIfMain,
  vanguardsLiteOption,
} from '../runtime/cli.js';
import { writeClientAuthFiles } from '../runtime/client-auth-files.js';
import { isLogLevel, type LogLevel } from '../runtime/log.js';
import { parseParams } from '../runtime/params-option.js';
import { registerFaultCommand } from './fault-command.js';
import { defaultBootstrapTimeout, defaultVotingInterval } from './launch.js';
import { startTorLoadClient } from './load-client.js';
import { Progress } from './progress.js';
import { status } from './status.js';
import { readySummary } from './summary.js';
import { type RunningNetwork, type UpOptions, up } from './up.js';

function logLevel(v: string): LogLevel {
  if (!isLogLevel(v)) throw new InvalidArgumentError('one of debug, info, warn, error, silent');
  return v;
}

export function program(): Command {
  const p = new Command()
    .name('shallot')
    .description(
      'Shallot: a private onion-routing testnet (Tor-faithful relays, onion services, SOCKS5) on your machine',
    );
  p.command('up')
    .description('start a whole network on 127.0.0.1 and keep it running until Ctrl-C')
    .option(
      '--authorities <n>',
      'directory authorities that vote on the consensus',
      intOption('authorities', 1, 9),
      3,
    )
    .option(
      '--relays <n>',
      'relays (guards and HSDirs follow the consensus testnet rules)',
      intOption('relays', 3, 5000),
      10,
    )
    .option('--exits <n>', 'relays that exit (to 127.0.0.0/8 only)', intOption('exits', 1, 5000), 3)
    .option(
      '--onion-services <n>',
      'onion services with the built-in backend',
      intOption('onion services', 0, 20),
      1,
    )
    .option(
      '--instances <n>',
      'instances per onion service (same address, load shared)',
      intOption('instances', 1, 10),
      1,
    )
    .option('--intro-points <n>', 'introduction points per instance', intOption('intro points', 1, 10), 3)
    .option(
      '--voting-interval <sec>',
      'seconds between consensuses (time periods are 24 of these; default 10, 1 more per 50 relays past 500)',
      intOption('voting interval', 5, 3600),
    )
    .option(
      '--data-dir <dir>',
      'keys, logs, state and Prometheus targets; reuse it to keep identities and onion addresses',
      '.shallot',
    )
    .option(
      '--key-rotation <min>',
      'rotate relay onion keys every N minutes (0: never)',
      intOption('key rotation', 0, 10_080),
      0,
    )
    .option(
      '--base-port <port>',
      'first port to use (taken ports are skipped; 0: any free port)',
      intOption('base port', 0, 65000),
      7100,
    )
    .option(
      '--socks-port <port>',
      'SOCKS5 port (the next free one if taken)',
      intOption('socks port', 1, 65535),
      9050,
    )
    .option(
      '--http-tunnel-port <port>',
      "the client's HTTP CONNECT tunnel port, for HTTP-proxy clients and load tools (C tor HTTPTunnelPort; the next free one if taken)",
      intOption('http tunnel port', 1, 65535),
      9080,
    )
    .option(
      '--workers <n>',
      'worker threads: one per authority, relays round-robin over N - 1 more (1: everything on one thread)',
      intOption('workers', 1, 256),
      // One per core, so the one-command network uses the whole machine (issue 16).
      availableParallelism(),
    )
    .option('--process-per-node', 'run every node as its own process instead of threads in one', false)
    .option('--log-level <level>', 'log level for node logs (written under the data dir)', logLevel, 'info')
    .addOption(handshakeOption())
    .addOption(vanguardsLiteOption())
    .addOption(noVanguardsLiteOption())
    .option(
      '--client-auth',
      "onion services admit only the network's SOCKS client (client-authorization keys under the data dir)",
      false,
    )
    .option(
      '--consensus-params <list>',
      'consensus params the authorities vote, "name=int,..." with Tor\'s names (e.g. DoSCircuitCreationBurst=30; README: Defences)',
      parseParams,
      {},
    )
    .option(
      '--max-circuit-dirtiness <s>',
      "the client's MaxCircuitDirtiness: seconds a used circuit takes new streams (and, with per-request isolation, how long each request's circuit lives)",
      intOption('max circuit dirtiness', 1, 86_400),
      600,
    )
    .option(
      '--network-model <file>',
      'network model (JSON: locations, one-way latency and jitter between them, node placement, per-node bandwidth; README: Realistic networks)',
    )
    .option(
      '--bandwidth-rate <bytes>',
      "every relay's BandwidthRate, bytes/s (C tor; at least 76800; the model's per-node entries win)",
      intOption('bandwidth rate', 1, 2 ** 40),
    )
    .option(
      '--bandwidth-burst <bytes>',
      "every relay's BandwidthBurst, bytes (default: the rate)",
      intOption('bandwidth burst', 1, 2 ** 40),
    )
    .option('--no-tls', 'plain ws links instead of wss (debugging only)')
    .option(
      '--bootstrap-timeout <sec>',
      'give up if the network is not usable by then (default 180, 0.6 more per relay past 500)',
      intOption('bootstrap timeout', 10, 3600),
    )
    .action(async (given: Omit<UpOptions, 'votingInterval' | 'bootstrapTimeout'> & Partial<UpOptions>) => {
      // Both grow with the network when not given (launch.ts).
      const opts: UpOptions = {
        ...given,
        votingInterval: given.votingInterval ?? defaultVotingInterval(given.relays),
        bootstrapTimeout: given.bootstrapTimeout ?? defaultBootstrapTimeout(given.relays),
      };
      let net: RunningNetwork | null = null;
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        if (!net) {
          // Nothing to stop in order yet: exit as the signal itself would
          // (--process-per-node nodes stop when the launcher goes, runtime/cli.ts
          // watchLauncher; the next up takes over the stale up.lock).
          process.stdout.write(`\n${signal} during bootstrap: exiting\n`);
          process.exit(128 + constants.signals[signal]);
        }
        process.stdout.write(`\n${signal}: stopping the network...\n`);
        const force = setTimeout(() => process.exit(1), 20_000);
        force.unref();
        net.stop().then(
          () => {
            process.stdout.write('stopped.\n');
            process.exit(0);
          },
          () => process.exit(1),
        );
      };
      // Before anything else: a script that sends SIGINT as soon as it reads
      // the summary or state.json must find the handlers in place (without
      // them the default action killed the network unstopped).
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      net = await up(opts, new Progress());
      process.stdout.write(`${readySummary(net.state, opts)}\n`);
    });
  p.command('status')
    .description('show the running network: consensus, relays with flags, onion services, circuits')
    .option('--data-dir <dir>', 'the data dir given to shallot up', '.shallot')
    .option('--all', 'list every relay (above 40, the default shows relays per flag and the first 20)', false)
    .action(async (opts: { dataDir: string; all: boolean }) => {
      process.exitCode = await status(opts.dataDir, undefined, opts.all);
    });
  p.command('client-auth')
    .description(
      'make a client-authorization key pair for an onion service, as Tor files: <name>.auth for the service, <name>.auth_private (0600) for the client',
    )
    .argument('<address>', 'the onion service (56 characters, ".onion" optional)')
    .option('--name <name>', "the client's name (file names)", 'client')
    .option(
      '--service-dir <dir>',
      "the service's authorized-clients directory (--authorized-clients-dir)",
      'authorized_clients',
    )
    .option('--client-dir <dir>', "the client's key directory (--onion-auth-dir)", 'onion-auth')
    .action(async (address: string, opts: { name: string; serviceDir: string; clientDir: string }) => {
      let identity: Uint8Array;
      try {
        identity = decodeOnionAddress(address);
      } catch (e) {
        throw new InvalidArgumentError(`${address}: ${(e as Error).message}`);
      }
      const files = await writeClientAuthFiles(opts, identity, generateClientAuthKey(randomBytes));
      process.stdout.write(
        `service (public key):  ${files.authFile}\nclient (private key): ${files.privateFile}\n`,
      );
    });
  registerLoadCommand(p, { torClient: startTorLoadClient });
  registerFaultCommand(p);
  return p;
}

export async function main(argv: string[]): Promise<void> {
  await program().parseAsync(argv);
}

runIfMain(import.meta.url, main);
