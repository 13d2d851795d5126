// Silent by default; SHALLOT_TEST_LOG=debug|info prints node logs while debugging a test.
import { createLogger, isLogLevel, type Logger, silentLogger } from '../../services/runtime/log.js';

export function testLogger(name: string): Logger {
  const level = process.env.SHALLOT_TEST_LOG;
  return level && isLogLevel(level) ? createLogger(name, level) : silentLogger;
}
