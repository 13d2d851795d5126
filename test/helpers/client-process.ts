// A Shallot client as its own process (dist/services/client/main.js), the
// way a user or a pod runs one: a fresh data dir, SOCKS and ops ports of
// its own, its log in a file; ready when its /readyz says so, polled like a
// kubelet's readinessProbe. For the slow suites that start clients against
// a running network (fresh-client, onion-dead-relays).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type AuthorityEndpoint, formatAuthorityList } from '../../services/net/dir-client.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { CLIENT_MAIN } from './ctor-run.js';

export interface ClientProcess {
  /** host:port of its SOCKS listener. */
  socks: string;
  ops: number;
  log: string;
  child: ChildProcess;
}

/** Starts a client under `dataDir/<name>`, logging at info to `dataDir/<name>.log`. */
export async function spawnClient(o: {
  dataDir: string;
  name: string;
  authorities: readonly AuthorityEndpoint[];
  extra?: string[];
}): Promise<ClientProcess> {
  const socksPort = await ephemeralPort();
  const ops = await ephemeralPort();
  const log = path.join(o.dataDir, `${o.name}.log`);
  const child = spawn(
    process.execPath,
    [
      CLIENT_MAIN,
      '--authorities',
      formatAuthorityList(o.authorities),
      '--socks-port',
      String(socksPort),
      '--ops-port',
      String(ops),
      '--data-dir',
      path.join(o.dataDir, o.name),
      '--log-level',
      'info',
      ...(o.extra ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = createWriteStream(log);
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return { socks: `127.0.0.1:${socksPort}`, ops, log, child };
}

/** Polls /readyz every second (a readinessProbe with periodSeconds 1); the time it first said ready. */
export async function readyAt(c: ClientProcess, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${c.ops}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return performance.now();
    if (c.child.exitCode !== null) throw new Error(`client exited: ${await readFile(c.log, 'utf8')}`);
    if (Date.now() > end) throw new Error('client not ready in time');
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** SIGTERM to every child still running, then waits for each to exit. */
export async function endChildren(children: readonly ChildProcess[]): Promise<void> {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const exited = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) c.kill('SIGTERM');
  await Promise.all(exited);
}
