// The C tor suites' common setup and runs (test/slow/ctor-*.test.ts): a C
// tor network (test/setup/ctor-testnet.ts) with a web target on 127.0.0.1
// and its DirAuthority lines in a file (the torrc lines dir-spec §3.1
// describes, as `--tor-authorities FILE` reads them), the Shallot client
// process on it, and `shallot load --tor-authorities FILE` run to its end.
// Everything runs from dist/ (npm run build) as a user runs it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { startWebTarget, type WebTarget } from '../../services/testnet/web.js';
import { type CtorTestnet, requireTor, startCtorTestnet, stopChildren } from '../setup/ctor-testnet.js';
import { collectOutput } from './up-cli.js';

const ROOT = new URL('../../', import.meta.url).pathname;
export const CLIENT_MAIN = path.join(ROOT, 'dist/services/client/main.js');
export const SHALLOT_MAIN = path.join(ROOT, 'dist/services/testnet/main.js');
export const SERVICE_MAIN = path.join(ROOT, 'dist/services/onion-service/main.js');

export interface CtorWorld {
  /** The tor binary. */
  bin: string;
  /** A temp dir of the suite's own (not the testnet's). */
  dir: string;
  web: WebTarget;
  net: CtorTestnet;
  /** The network's DirAuthority lines, one file, as users hand it to --tor-authorities. */
  authFile: string;
  /** Child processes the suite started: stopped (SIGTERM, then SIGKILL) by stop(). */
  children: ChildProcess[];
  /** Stops the children, the network and the web target; removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts the web target, then a C tor network; with `exitPorts: 'web'` its
 * exits advertise the web target's port (see ctor-testnet.ts on tor#11264).
 */
export async function startCtorWorld(
  name: string,
  opts: { relays: number; exits: number; exitPorts?: 'web' },
): Promise<CtorWorld> {
  const bin = requireTor();
  const dir = await mkdtemp(path.join(tmpdir(), `shallot-${name}-`));
  const web = await startWebTarget('127.0.0.1', await ephemeralPort());
  const children: ChildProcess[] = [];
  let net: CtorTestnet | undefined;
  const stop = async () => {
    await stopChildren(children);
    await net?.stop();
    await web.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    net = await startCtorTestnet({
      bin,
      relays: opts.relays,
      exits: opts.exits,
      ...(opts.exitPorts === 'web' ? { exitPorts: [web.port] } : {}),
    });
    const authFile = path.join(dir, 'authorities.torrc');
    await writeFile(authFile, `# the C tor testnet's authorities\n${net.dirAuthorities}\n`);
    return { bin, dir, web, net, authFile, children, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** GET /readyz on an ops port until it answers 200; rejects with the process output past `timeoutMs`. */
export async function waitReadyz(opsPort: number, out: { text: string }, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const res = await fetch(`http://127.0.0.1:${opsPort}/readyz`, {
      signal: AbortSignal.timeout(2_000),
    }).catch(() => null);
    if (res?.ok) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`not ready in ${timeoutMs} ms:\n${out.text}`);
}

export interface ClientProcess {
  child: ChildProcess;
  socksPort: number;
  opsPort: number;
  out: { text: string };
}

/** The Shallot client process (`client/main.js --tor-authorities FILE`), once /readyz says it has a consensus. */
export async function startClientProcess(world: CtorWorld, name: string): Promise<ClientProcess> {
  const socksPort = await ephemeralPort();
  const opsPort = await ephemeralPort();
  const child = spawn(
    process.execPath,
    [
      CLIENT_MAIN,
      '--tor-authorities',
      world.authFile,
      '--socks-port',
      String(socksPort),
      '--ops-port',
      String(opsPort),
      '--data-dir',
      path.join(world.dir, name),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  world.children.push(child);
  const out = collectOutput(child);
  await waitReadyz(opsPort, out, 60_000);
  return { child, socksPort, opsPort, out };
}

/** Runs a node script to its end (SIGKILL past `timeoutMs`): exit code and everything it printed. */
export async function runNodeToEnd(
  world: Pick<CtorWorld, 'children'>,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; text: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  world.children.push(child);
  const out = collectOutput(child);
  const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, text: out.text, ms: Date.now() - started };
}

/**
 * `shallot load <target> --tor-authorities FILE --new-circuit --progress none
 * --out <out>` with the count, concurrency and size given, plus `extra`
 * options; run to its end within `timeoutMs`.
 */
export function runTorLoad(
  world: Pick<CtorWorld, 'children' | 'authFile'>,
  opts: {
    target: string;
    count: number;
    concurrency: number;
    size: string;
    out: string;
    extra?: string[];
    timeoutMs: number;
  },
): Promise<{ code: number | null; text: string; ms: number }> {
  return runNodeToEnd(
    world,
    [
      SHALLOT_MAIN,
      'load',
      opts.target,
      '--tor-authorities',
      world.authFile,
      '-n',
      String(opts.count),
      '-c',
      String(opts.concurrency),
      '--size',
      opts.size,
      '--new-circuit',
      '--progress',
      'none',
      '--out',
      opts.out,
      ...(opts.extra ?? []),
    ],
    opts.timeoutMs,
  );
}
