/**
 * `shallot fault`: inject, list and heal faults on a running `shallot up`
 * network (any mode), through the launcher's loopback control endpoint
 * (fault-control.ts) with the token from its data dir.
 */

import { type Command, InvalidArgumentError } from 'commander';
import { MAX_SLOW_MS } from '../net/link-faults.js';
import { intOption } from '../runtime/cli.js';
import {
  FaultError,
  type FaultKind,
  type FaultRecord,
  type FaultRequest,
  MAX_FAULT_SECONDS,
  NODE_FAULT_KINDS,
} from './fault.js';
import { callFaultControl } from './fault-control.js';
import { readState } from './state.js';

/** The control address of the network in `dataDir`; an error naming why there is none. */
async function controlOf(dataDir: string): Promise<string> {
  const s = await readState(dataDir);
  if (!s.control)
    throw new FaultError(
      'ERR_FAULT_TARGET',
      `the network in ${dataDir} (${s.mode} mode) has no fault-control endpoint; it was started by an older shallot: start it again`,
    );
  return s.control;
}

export function formatFault(f: FaultRecord): string {
  const span = f.kind === 'restart' ? '' : ` for ${f.durationSec}s (heals ${f.healsAt})`;
  const what = f.peer ? `${f.target} ${f.peer}${f.delayMs ? ` +${f.delayMs}ms` : ''}` : f.target;
  return `#${f.id} ${f.kind} ${what}${span}${f.healedAt ? `, healed ${f.healedAt}` : ''}`;
}

function kindArg(v: string): FaultKind {
  if (!(NODE_FAULT_KINDS as readonly string[]).includes(v))
    throw new InvalidArgumentError(
      `one of ${NODE_FAULT_KINDS.join(', ')} (links: shallot fault cut|slow A B)`,
    );
  return v as FaultKind;
}

const DATA_DIR = ['--data-dir <dir>', 'the data dir given to shallot up', '.shallot'] as const;
const durationOption = (what: string) =>
  [
    '--duration <sec>',
    `seconds until ${what} (default 30)`,
    intOption('duration', 1, MAX_FAULT_SECONDS),
  ] as const;

async function inject(dataDir: string, req: FaultRequest): Promise<void> {
  const f = await callFaultControl(dataDir, await controlOf(dataDir), 'POST', '/faults', req);
  process.stdout.write(`${formatFault(f as FaultRecord)}\n`);
}

export function registerFaultCommand(program: Command): Command {
  const fault = program
    .command('fault')
    .description(
      'faults on demand on a running network: stop, kill, pause or restart a node; cut or slow a link',
    )
    .addHelpText(
      'after',
      `
What each fault does, by how the network runs:
  --process-per-node: pause = SIGSTOP (the process hangs, its TCP links stay
    open), stop = SIGTERM (its own clean shutdown), kill = SIGKILL; any node
    (authN, relayN, client, onionS-I).
  --workers (the default) / one process: relays, authorities (authN) and
    onion-service instances (onionS-I); not the client. pause holds every
    link of the node (nothing in or out, delivered in order on heal; its
    timers still run) and an authority's directory HTTP (requests hang
    unanswered), stop = its clean shutdown (DESTROY on each circuit),
    kill = all its links reset at once with no DESTROY or END, as a dead
    process's sockets, then its state is dropped (no process can die here).
  stopped and killed nodes start again with the same keys when it heals;
  restart = stop then start at once.
  cut A B: every link between A and B (relays, the client, onion-service
    instances, authorities' reachability probes) resets, new ones are
    refused until it heals; slow A B --delay MS adds one-way delay both
    ways. Directory HTTP is neither cut nor slowed (it carries no names).
Faults show on the launcher's /metrics as shallot_fault_active{kind,target}.`,
    );
  fault
    .command('inject', { isDefault: true })
    .description('stop, kill, pause or restart a node: shallot fault pause relay3 --duration 30')
    .argument('<kind>', NODE_FAULT_KINDS.join(' | '), kindArg)
    .argument(
      '<node>',
      'a node name as shallot status shows it (relay3, auth0, onion0-0; with --process-per-node also client)',
    )
    .option(...durationOption('the node continues or starts again (not for restart)'))
    .option(...DATA_DIR)
    .action((kind: FaultKind, target: string, opts: { duration?: number; dataDir: string }) =>
      inject(opts.dataDir, { kind, target, durationSec: kind === 'restart' ? 0 : (opts.duration ?? 30) }),
    );
  fault
    .command('cut')
    .description('cut the links between two nodes: shallot fault cut relay1 relay4 --duration 20')
    .argument(
      '<a>',
      'a relay, authority, onion-service instance or the client (relay1, auth0, onion0-0, client)',
    )
    .argument('<b>', 'the other end')
    .option(...durationOption('links between them may form again'))
    .option(...DATA_DIR)
    .action((target: string, peer: string, opts: { duration?: number; dataDir: string }) =>
      inject(opts.dataDir, { kind: 'cut', target, peer, durationSec: opts.duration ?? 30 }),
    );
  fault
    .command('slow')
    .description(
      'slow the links between two nodes: shallot fault slow relay1 relay4 --delay 300 --duration 20',
    )
    .argument(
      '<a>',
      'a relay, authority, onion-service instance or the client (relay1, auth0, onion0-0, client)',
    )
    .argument('<b>', 'the other end')
    .requiredOption('--delay <ms>', 'extra one-way delay, each direction', intOption('delay', 1, MAX_SLOW_MS))
    .option(...durationOption('the links are as fast as before'))
    .option(...DATA_DIR)
    .action((target: string, peer: string, opts: { delay: number; duration?: number; dataDir: string }) =>
      inject(opts.dataDir, {
        kind: 'slow',
        target,
        peer,
        delayMs: opts.delay,
        durationSec: opts.duration ?? 30,
      }),
    );
  fault
    .command('list')
    .description('faults since the network started')
    .option(...DATA_DIR)
    .action(async (opts: { dataDir: string }) => {
      const all = await callFaultControl(opts.dataDir, await controlOf(opts.dataDir), 'GET', '/faults');
      for (const f of all as FaultRecord[]) process.stdout.write(`${formatFault(f)}\n`);
    });
  fault
    .command('heal')
    .description('end a fault now')
    .argument('<id>', 'the fault number from inject or list', intOption('id', 1, 1e9))
    .option(...DATA_DIR)
    .action(async (id: number, opts: { dataDir: string }) => {
      const f = await callFaultControl(
        opts.dataDir,
        await controlOf(opts.dataDir),
        'DELETE',
        `/faults/${id}`,
      );
      process.stdout.write(`${formatFault(f as FaultRecord)}\n`);
    });
  return fault;
}
