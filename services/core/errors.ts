/**
 * Typed errors shared by every layer.
 *
 * Each error has a stable `code` so callers and metrics can branch on it
 * without matching messages, plus optional context (field names, lengths,
 * commands) that never includes key material or client addresses.
 */

export type ErrorContext = Record<string, string | number | boolean | undefined>;

export class ShallotError extends Error {
  readonly code: string;
  readonly context: ErrorContext;

  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** Input ended before a complete value: a stream parser should wait for more bytes. */
export class TruncatedError extends ShallotError {
  constructor(what: string, needed: number, available: number) {
    super('ERR_TRUNCATED', `${what}: need ${needed} bytes, have ${available}`, { what, needed, available });
  }
}

/** Input is malformed: the peer broke the protocol, tear down what it belongs to. */
export class InvalidError extends ShallotError {
  constructor(what: string, reason: string, context: ErrorContext = {}) {
    super('ERR_INVALID', `${what}: ${reason}`, { what, ...context });
  }
}

/** A signature, MAC, handshake or certificate did not verify. */
export class CryptoError extends ShallotError {
  constructor(what: string, reason: string, context: ErrorContext = {}) {
    super('ERR_CRYPTO', `${what}: ${reason}`, { what, ...context });
  }
}

/** True for the decode errors a parser may throw on hostile input. */
export function isDecodeError(e: unknown): e is TruncatedError | InvalidError {
  return e instanceof TruncatedError || e instanceof InvalidError;
}
