/**
 * `shallot fault`: inject, list and heal faults on a running
 * `shallot up --process-per-node` network, through the launcher's
 * loopback control endpoint (fault-control.ts) with the token from its
 * data dir.
 */

import { type Command, InvalidArgumentError } from 'commander';
import { intOption } from '../runtime/cli.js';
import { FAULT_KINDS, FaultError, type FaultKind, type FaultRecord, MAX_FAULT_SECONDS } from './fault.js';
import { callFaultControl } from './fault-control.js';
import { readState } from './state.js';

/** The control address of the network in `dataDir`; an error naming why there is none. */
async function controlOf(dataDir: string): Promise<string> {
  const s = await readState(dataDir);
  // Nodes that share a process (one-process and thread modes) cannot be signalled one by one.
  if (!s.control)
    throw new FaultError(
      'ERR_FAULT_TARGET',
      `the network in ${dataDir} runs in ${s.mode} mode; faults need one started with --process-per-node`,
    );
  return s.control;
}

export function formatFault(f: FaultRecord): string {
  const span = f.kind === 'restart' ? '' : ` for ${f.durationSec}s (heals ${f.healsAt})`;
  return `#${f.id} ${f.kind} ${f.target}${span}${f.healedAt ? `, healed ${f.healedAt}` : ''}`;
}

function kindArg(v: string): FaultKind {
  if (!(FAULT_KINDS as readonly string[]).includes(v))
    throw new InvalidArgumentError(`one of ${FAULT_KINDS.join(', ')}, list, heal`);
  return v as FaultKind;
}

export function registerFaultCommand(program: Command): Command {
  const fault = program
    .command('fault')
    .description(
      'faults on demand on a --process-per-node network: stop, kill, pause (SIGSTOP: hangs with links open) or restart a node, healed after --duration',
    );
  fault
    .command('inject', { isDefault: true })
    .description('inject a fault: shallot fault inject pause relay3 --duration 30')
    .argument('<kind>', FAULT_KINDS.join(' | '), kindArg)
    .argument('<node>', 'a node name as shallot status shows it (auth0, relay3, client, onion0-0)')
    .option(
      '--duration <sec>',
      'seconds until the node continues or starts again (not for restart)',
      intOption('duration', 1, MAX_FAULT_SECONDS),
    )
    .option('--data-dir <dir>', 'the data dir given to shallot up', '.shallot')
    .action(async (kind: FaultKind, target: string, opts: { duration?: number; dataDir: string }) => {
      const durationSec = kind === 'restart' ? 0 : (opts.duration ?? 30);
      const f = await callFaultControl(opts.dataDir, await controlOf(opts.dataDir), 'POST', '/faults', {
        kind,
        target,
        durationSec,
      });
      process.stdout.write(`${formatFault(f as FaultRecord)}\n`);
    });
  fault
    .command('list')
    .description('faults since the network started')
    .option('--data-dir <dir>', 'the data dir given to shallot up', '.shallot')
    .action(async (opts: { dataDir: string }) => {
      const all = await callFaultControl(opts.dataDir, await controlOf(opts.dataDir), 'GET', '/faults');
      for (const f of all as FaultRecord[]) process.stdout.write(`${formatFault(f)}\n`);
    });
  fault
    .command('heal')
    .description('end a fault now')
    .argument('<id>', 'the fault number from inject or list', intOption('id', 1, 1e9))
    .option('--data-dir <dir>', 'the data dir given to shallot up', '.shallot')
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
