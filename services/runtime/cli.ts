/**
 * Process plumbing shared by every service entry (`services/<name>/main.ts`):
 * option parsers with clear errors, graceful shutdown on SIGTERM/SIGINT
 * within a grace period, and running `main` only when executed directly.
 */
import { realpathSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { HANDSHAKES, type HandshakeName } from '../core/create-handshake.js';
import { applyLinkFaults, parseLinkFaultTable } from '../net/link-faults.js';
import { isLogLevel, type Logger, type LogLevel } from './log.js';

export function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
    }
    return n;
  };
}

export function secondsOption(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
}

/**
 * `--handshake`: the CREATE2/EXTEND2 handshake a client uses for every hop
 * (SHALLOT_HANDSHAKE as fallback). Relays answer both.
 */
export function handshakeOption(): Option {
  return new Option('--handshake <name>', 'circuit handshake: ntor (HTYPE 2) or ntor-v3 (HTYPE 3)')
    .choices(HANDSHAKES)
    .env('SHALLOT_HANDSHAKE')
    .default('ntor' satisfies HandshakeName);
}

/**
 * `--vanguards-lite` / `--no-vanguards-lite`: layer-2 vanguards for
 * onion-service circuits (prop 333); SHALLOT_VANGUARDS_LITE=1 turns them on
 * by default, the flags win.
 */
export function vanguardsLiteOption(): Option {
  return new Option(
    '--vanguards-lite',
    "onion-service circuits take their second hop from 4 slowly rotating layer-2 relays (prop 333, Tor's default): G-L2-M-target",
  ).default(process.env.SHALLOT_VANGUARDS_LITE === '1');
}

export function noVanguardsLiteOption(): Option {
  return new Option('--no-vanguards-lite', 'turn vanguards-lite off (overrides SHALLOT_VANGUARDS_LITE)');
}

/** True while process `pid` exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Integer environment fallback, or `fallback` when unset. */
export function envInt(name: string, fallback: number): number;
export function envInt(name: string): number | undefined;
export function envInt(name: string, fallback?: number): number | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
}

/** What `addOpsOptions` adds to a command's parsed options. */
export interface OpsOptions {
  opsHost?: string;
  opsPort?: number;
  logLevel: string;
}

/**
 * The options every service process ends with: where to serve /metrics,
 * /healthz and /readyz (only when --ops-port is given) and how much to log,
 * with SHALLOT_OPS_HOST / SHALLOT_OPS_PORT / SHALLOT_LOG_LEVEL fallbacks.
 * Without `defaultOpsHost` the service falls back to its own --host.
 */
export function addOpsOptions(program: Command, defaultOpsHost?: string): Command {
  const env = process.env;
  return program
    .option(
      '--ops-host <host>',
      'address for /metrics /healthz /readyz',
      env.SHALLOT_OPS_HOST ?? defaultOpsHost,
    )
    .option(
      '--ops-port <port>',
      '/metrics /healthz /readyz port',
      intOption('ops port', 0, 65535),
      envInt('SHALLOT_OPS_PORT'),
    )
    .option('--log-level <level>', 'debug, info, warn, error, silent', env.SHALLOT_LOG_LEVEL ?? 'info');
}

/** The parsed --log-level, or a usage error from `program`. */
export function logLevelOption(program: Command, level: string): LogLevel {
  if (!isLogLevel(level)) program.error(`unknown log level ${level}`);
  return level;
}

/**
 * Stops the process cleanly on SIGTERM/SIGINT: runs `stop`, exits 0, or
 * exits 1 if it takes longer than `graceMs` (a pod's grace period is 30 s).
 */
export function onShutdown(logger: Logger, stop: () => Promise<unknown>, graceMs = 10_000): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), graceMs);
    force.unref();
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error('shutdown failed', { error: String(e) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * Error codes of one socket or link (a peer's bad WebSocket frame, a TLS
 * alert, a reset): whatever connection raised them is already closing, so
 * if one escapes its handler the process can safely go on without it.
 */
const CONNECTION_ERROR =
  /^(WS_ERR_|ERR_SSL_|ERR_TLS_|ERR_STREAM_|ECONNRESET$|EPIPE$|ETIMEDOUT$|ECONNREFUSED$|ECONNABORTED$|EHOSTUNREACH$|ENETUNREACH$)/;

/** Whether an uncaught error concerns only one connection (see CONNECTION_ERROR). */
function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_ERROR.test(code);
}

/**
 * The last resort behind every handler (issue 12: one malformed frame
 * ended a whole network). A connection's error that escaped is logged and
 * the process lives on; anything else may have left state half-changed, so
 * it is logged with its stack and the process exits 70 (EX_SOFTWARE) for its
 * supervisor (the launcher, or Kubernetes) to restart, as C tor does on an
 * assertion failure.
 */
function installLastResort(name: string): void {
  const report = (what: string, e: unknown) => {
    if (isConnectionError(e)) {
      process.stderr.write(`${name}: ${what} on one connection, kept running: ${String(e)}\n`);
      return;
    }
    process.stderr.write(`${name}: ${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(70);
  };
  process.on('uncaughtException', (e) => report('uncaught error', e));
  process.on('unhandledRejection', (e) => report('unhandled rejection', e));
}

/** Names the fd of the launcher's pipe in a node `shallot up` started (see watchLauncher). */
export const LAUNCHER_FD_ENV = 'SHALLOT_LAUNCHER_FD';

/**
 * A node started by `shallot up --process-per-node` holds the read end of a
 * pipe whose write end only the launcher has. When the launcher dies, by any
 * signal (kill -9 cannot be caught), the pipe reaches end-of-file: the node
 * then stops as on SIGTERM, and exits within LAUNCHER_GONE_EXIT_MS even if
 * its clean stop hangs, so no node outlives its network.
 */
const LAUNCHER_GONE_EXIT_MS = 3_000;

function watchLauncher(name: string): void {
  const fd = Number(process.env[LAUNCHER_FD_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return;
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  const gone = () => {
    process.stderr.write(`${name}: the launcher is gone; stopping\n`);
    setTimeout(() => process.exit(1), LAUNCHER_GONE_EXIT_MS).unref();
    process.kill(process.pid, 'SIGTERM');
  };
  pipe.once('end', gone);
  pipe.once('error', gone);
  // The launcher also writes the link-fault table down the pipe, one JSON line each time it changes.
  const lines = new LauncherLines((msg) => {
    const table = parseLinkFaultTable((msg as { linkFaults?: unknown }).linkFaults);
    if (table) applyLinkFaults(table);
  });
  pipe.on('data', (d: Buffer) => lines.push(d));
  // The pipe alone must not keep a node running.
  pipe.unref();
}

/** Longest line the launcher's pipe may carry: a fault table for thousands of nodes fits. */
export const MAX_LAUNCHER_LINE = 1 << 20;

/**
 * Splits what the launcher writes on the pipe into JSON lines; a line that
 * is not JSON or grows past MAX_LAUNCHER_LINE is dropped (the next whole
 * table replaces it), never fatal.
 */
export class LauncherLines {
  private buf = '';
  private skipping = false;
  constructor(private readonly onMessage: (msg: unknown) => void) {}

  push(d: Buffer | string): void {
    let text = this.buf + d.toString();
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      try {
        this.onMessage(JSON.parse(line));
      } catch {
        // Not JSON: ignored.
      }
    }
    if (text.length > MAX_LAUNCHER_LINE) {
      this.skipping = true;
      text = '';
    }
    this.buf = text;
  }
}

/** Runs `main` when `moduleUrl` is the script node was started with (not when a test imports it). */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<void>): void {
  // npm runs bins through symlinks: compare real paths.
  const script = process.argv[1];
  if (script && moduleUrl === pathToFileURL(realpathSync(script)).href) {
    const dir = path.basename(path.dirname(realpathSync(script)));
    installLastResort(dir === 'testnet' ? 'shallot' : `shallot-${dir}`);
    watchLauncher(`shallot-${dir}`);
    main(process.argv).catch((e: unknown) => {
      // A one-line reason for users; the stack only when asked for.
      const debug = process.env.SHALLOT_DEBUG === '1';
      const text = e instanceof Error ? (debug ? (e.stack ?? e.message) : e.message) : String(e);
      process.stderr.write(`${dir === 'testnet' ? 'shallot' : `shallot-${dir}`}: ${text}\n`);
      if (!debug) process.stderr.write('(SHALLOT_DEBUG=1 shows the stack trace)\n');
      process.exit(1);
    });
  }
}
