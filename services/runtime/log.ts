/**
 * A small leveled logger: one line per event, `time level node: message {fields}`.
 * Services take it as a component so tests can capture or silence it. The
 * operator writes JSON lines instead (operator/log.ts) with the same levels.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
/** Each level's rank: a logger at level L writes what ranks at or above L. */
export const LOG_LEVEL_ORDER: Readonly<Record<LogLevel, number>> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 100,
};

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(name: string): Logger;
}

export function isLogLevel(s: string): s is LogLevel {
  return s in LOG_LEVEL_ORDER;
}

export function createLogger(
  name: string,
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Logger {
  const at = LOG_LEVEL_ORDER[level];
  const log = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVEL_ORDER[lvl] < at) return;
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    write(`${new Date().toISOString()} ${lvl.padEnd(5)} ${name}: ${msg}${extra}`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (child) => createLogger(`${name}/${child}`, level, write),
  };
}

export const silentLogger: Logger = createLogger('', 'silent');
