/**
 * `shallot up`: a whole network on 127.0.0.1 with no Kubernetes, over
 * worker threads (default, launch-workers.ts), in one thread
 * (launch-in-process.ts) or one process per node (launch-processes.ts), with bootstrap progress (progress.ts), a ready
 * summary (summary.ts) and a clean stop on Ctrl-C. This module checks the
 * options, holds the data directory's lock and removes state.json on stop.
 */

import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { judgeFdBudget, openFileLimit } from './fd-budget.js';
import { checkShaping, type RunningNetwork, type UpOptions } from './launch.js';
import { upInProcess } from './launch-in-process.js';
import { upProcesses } from './launch-processes.js';
import { upWorkers } from './launch-workers.js';
import { Progress, type ProgressSink } from './progress.js';
import { lockDataDir, stateFile } from './state.js';

export type { RunningNetwork, UpOptions } from './launch.js';

export async function up(o: UpOptions, progress: ProgressSink = new Progress()): Promise<RunningNetwork> {
  if (o.exits > o.relays) throw new Error('--exits cannot exceed --relays');
  if (o.relays < 3) throw new Error('--relays must be at least 3 (a circuit has three hops)');
  if (o.authorities < 1) throw new Error('--authorities must be at least 1');
  checkShaping(o);
  // Relays sharing this process share its descriptor table (fd-budget.ts).
  const fds = o.processPerNode ? null : judgeFdBudget(o.relays, openFileLimit());
  if (fds?.verdict === 'refuse') throw new Error(fds.message);
  if (fds?.verdict === 'warn') process.stderr.write(`${fds.message}\n`);
  // Before any key is read or made: the first authority takes a second or
  // more, and a silent start reads as a hang (issue 20 asks for a line within 2 s).
  progress.line(
    `bootstrapping: starting ${o.authorities} authorities, ${o.relays} relays, ${o.onionServices} onion service(s) from ${path.resolve(o.dataDir)}`,
  );
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  // Two networks on one data dir would share keys and overwrite each other's state.json.
  const release = await lockDataDir(o.dataDir);
  let net: RunningNetwork;
  try {
    net = await (o.processPerNode
      ? upProcesses(o, progress)
      : (o.workers ?? 1) > 1
        ? upWorkers(o, progress)
        : upInProcess(o, progress));
  } catch (e) {
    await release();
    throw e;
  }
  return {
    state: net.state,
    async stop() {
      try {
        await net.stop();
      } finally {
        // A stopped network leaves no state.json behind for status or load to mistake for a running one.
        await rm(stateFile(o.dataDir), { force: true });
        await release();
      }
    },
  };
}
