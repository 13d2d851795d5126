/**
 * The operator's logger: one JSON object per line on stderr (what log
 * collectors in a cluster expect), with the services' levels and level
 * filter (services/runtime/log.ts, which writes text lines).
 */
import {
  isLogLevel,
  LOG_LEVEL_ORDER,
  type LogLevel,
  type Logger as ServiceLogger,
} from '../services/runtime/log.js';

export { isLogLevel, type LogLevel };

/** The services' logger without child loggers: the operator logs as one component. */
export type Logger = Omit<ServiceLogger, 'child'>;

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const at =
    (lvl: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      if (LOG_LEVEL_ORDER[lvl] < LOG_LEVEL_ORDER[level]) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields })}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = createLogger('silent');
