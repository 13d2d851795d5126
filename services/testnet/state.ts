/**
 * The running network's description, written by `shallot up` into its data
 * directory and read by `shallot status` (and by Prometheus as file_sd).
 */

import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AuthorityEndpoint } from '../net/dir-client.js';
import { processAlive } from '../runtime/cli.js';

export interface NodeEntry {
  name: string;
  role: 'authority' | 'relay' | 'client' | 'onion-service' | 'launcher' | 'worker';
  /** host:port of /metrics, if the node serves one of its own. */
  metrics?: string;
  pid?: number;
}

export interface NetworkState {
  version: 1;
  startedAt: string;
  pid: number;
  mode: 'one-process' | 'workers' | 'process-per-node';
  authorities: AuthorityEndpoint[];
  socks: string;
  /** The client's HTTP CONNECT tunnel ("host:port"), when the launcher started one. */
  httpTunnel?: string;
  web?: string;
  onionServices: { name: string; address: string; instances: number }[];
  nodes: NodeEntry[];
  targetsFile: string;
  /** The launcher's fault control endpoint ("127.0.0.1:port", --process-per-node only; testnet/fault-control.ts). */
  control?: string;
}

export const stateFile = (dataDir: string): string => path.join(dataDir, 'state.json');
/** Absolute, so state.json stays right from any working directory (a relative --data-dir gave a relative path). */
export const targetsFile = (dataDir: string): string => path.resolve(dataDir, 'prometheus-targets.json');

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}

export async function writeState(dataDir: string, s: NetworkState): Promise<void> {
  await writeAtomic(stateFile(dataDir), `${JSON.stringify(s, null, 2)}\n`);
}

/**
 * Claims a data dir for one `shallot up` from before bootstrap until stop
 * (state.json only appears once the network is usable): `up.lock` holds the
 * launcher pid, created exclusively. A lock whose pid is gone is stale and
 * taken over; so is state.json of a launcher that died, unless nodes it
 * started are still alive. Returns the release function.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'up.lock');
  const busy = (pid: number) =>
    new Error(
      `a network from ${dataDir} is already running or starting (pid ${pid}); stop it first or use another --data-dir ` +
        `(if pid ${pid} is not Shallot, remove ${file} and ${stateFile(dataDir)})`,
    );
  // An unreadable state.json is no claim on the data dir.
  const stale = await readStateFile(dataDir).catch(() => null);
  if (stale && processAlive(stale.pid)) throw busy(stale.pid);
  const orphans = (stale?.nodes ?? []).map((n) => n.pid).filter((p): p is number => !!p && processAlive(p));
  if (orphans.length > 0)
    throw new Error(
      `nodes of an earlier network from ${dataDir} are still running (pids ${orphans.join(', ')}); stop them first`,
    );
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => rm(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (processAlive(pid)) throw busy(pid);
      await rm(file, { force: true });
    }
  }
  throw new Error(`${file}: could not take the lock`);
}

export class NoNetworkError extends Error {
  constructor(dataDir: string, why = 'no state.json') {
    super(`no running network in ${dataDir}: ${why} (start one with: npx shallot up --data-dir ${dataDir})`);
  }
}

/** state.json as written, whether or not its launcher still runs; null when there is none. */
async function readStateFile(dataDir: string): Promise<NetworkState | null> {
  let text: string;
  try {
    text = await readFile(stateFile(dataDir), 'utf8');
  } catch {
    return null;
  }
  const s = JSON.parse(text) as NetworkState;
  if (s.version !== 1) throw new Error(`${stateFile(dataDir)}: unknown state version`);
  return s;
}

/** The running network's state; NoNetworkError when there is none or its launcher has stopped. */
export async function readState(dataDir: string): Promise<NetworkState> {
  const s = await readStateFile(dataDir);
  if (!s) throw new NoNetworkError(dataDir);
  if (!processAlive(s.pid))
    throw new NoNetworkError(dataDir, `the network that wrote state.json (pid ${s.pid}) has stopped`);
  return s;
}

/** Prometheus `file_sd_configs` JSON: one target group per node. */
export async function writeTargets(dataDir: string, nodes: NodeEntry[], network: string): Promise<string> {
  const groups = nodes
    .filter((n) => n.metrics)
    // Every process labels its own metrics with node and role (createRegistry's
    // default labels); target labels of the same name would be renamed exported_*.
    .map((n) => ({ targets: [n.metrics], labels: { job: 'shallot', network } }));
  const file = targetsFile(dataDir);
  await writeAtomic(file, `${JSON.stringify(groups, null, 2)}\n`);
  return file;
}
