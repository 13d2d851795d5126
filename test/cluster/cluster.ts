/**
 * Helpers of the cluster suite (walkthrough.test.ts): commands run the way
 * a user types them (bash, npm scripts, kubectl, helm, curl), each step
 * logged with its result, and a dump of what a failure needs (pod statuses,
 * events, the operator's log) when a step fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const CLUSTER_DIR = process.env.SHALLOT_CLUSTER_DIR ?? '/tmp/shallot-cluster';
export const NAMESPACE = 'shallot';
const TOOLS = process.env.SHALLOT_TOOLS ?? path.join(homedir(), '.cache/shallot-tools');

function nodeBin(): string {
  const bin = path.join(TOOLS, 'bin');
  const dirs = existsSync(bin) ? readdirSync(bin).filter((d) => d.startsWith('k8s-node-')) : [];
  return path.join(bin, dirs.sort().at(-1) ?? 'k8s-node-missing');
}

/** What `npm run cluster:up` tells the user to export. */
export const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  KUBECONFIG: path.join(CLUSTER_DIR, 'admin.kubeconfig'),
  PATH: `${nodeBin()}:${path.join(TOOLS, 'bin')}:${process.env.PATH}`,
  CONTAINER_ENGINE: 'podman',
};

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`\`${command}\` exited ${code}:\n${output.split('\n').slice(-30).join('\n')}`);
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Echo the output as it comes (long steps show progress). */
  echo?: boolean;
}

/** Runs a bash command line from the repository root; resolves with its output. */
export function sh(command: string, opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], {
      cwd: REPO,
      env: { ...ENV, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const take = (d: Buffer) => {
      out += d.toString();
      if (out.length > 4_000_000) out = out.slice(-2_000_000);
      if (opts.echo) process.stdout.write(d);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      out += `\n(killed after ${opts.timeoutMs} ms)`;
    }, opts.timeoutMs ?? 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new CommandError(command, code, out));
    });
  });
}

/** A long-running command (a port-forward) stopped by its own pid. */
export function background(command: string): { stop: () => void } {
  const child = spawn('bash', ['-c', `exec ${command}`], { cwd: REPO, env: ENV, stdio: 'ignore' });
  return {
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}

export const kubectl = (args: string, opts?: RunOptions) => sh(`kubectl -n ${NAMESPACE} ${args}`, opts);

export function log(line: string): void {
  process.stdout.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Pod statuses, recent events, the operator's log and every non-running pod's description. */
export async function dumpDiagnostics(): Promise<void> {
  const parts: [string, string][] = [
    ['pods', 'kubectl get pods -A -o wide'],
    ['onion resources', `kubectl -n ${NAMESPACE} get onionnetworks,onionservices,loadtests -o wide`],
    ['events', 'kubectl get events -A --sort-by=.lastTimestamp | tail -60'],
    ['operator log', `kubectl -n ${NAMESPACE} logs deploy/shallot-operator --tail=120`],
    [
      'pods not Running',
      `for p in $(kubectl -n ${NAMESPACE} get pods --no-headers | awk '$3 != "Running" && $3 != "Completed" {print $1}'); do kubectl -n ${NAMESPACE} describe pod "$p" | tail -25; done`,
    ],
  ];
  for (const [what, cmd] of parts) {
    const out = await sh(cmd, { timeoutMs: 30_000 }).catch((e: unknown) =>
      e instanceof CommandError ? e.output : String(e),
    );
    process.stdout.write(`----- ${what} (${cmd})\n${out}\n`);
  }
}

/** Runs one walkthrough step: logs its start and its result, dumps diagnostics when it fails. */
export async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  log(`STEP ${name}`);
  try {
    const result = await fn();
    log(`PASS ${name} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    return result;
  } catch (e) {
    log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${(e as Error).message}`);
    await dumpDiagnostics();
    throw e;
  }
}

/** Polls `check` once per `everyMs` until it returns a value or `ms` pass. */
export async function until<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined>,
  everyMs = 2000,
): Promise<T> {
  const end = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message.slice(0, 300);
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function jsonpath(resource: string, expr: string): Promise<string> {
  return (await kubectl(`get ${resource} -o jsonpath='${expr}'`, { timeoutMs: 30_000 })).trim();
}
