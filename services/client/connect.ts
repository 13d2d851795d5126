/**
 * What a connector is: the request a proxy listener hands the client (one
 * stream to `host:port`, under an isolation key and a deadline), and the
 * typed error it fails with. The exit path (client.ts) and the onion
 * client (onion.ts, rend-spec-v3 §3) throw `ConnectError` with a `kind`, or
 * let the circuit layer's own errors through (StreamRefusedError carries
 * the END reason of tor-spec §6.3, CircuitError a timeout or a destroy).
 *
 * Not in this module: how a failure is answered. That is the edge's
 * (connect-reply.ts, one map for SOCKS5, SOCKS4 and HTTP CONNECT), so
 * nothing behind it speaks in SOCKS reply codes.
 */

import type { Duplex } from 'node:stream';
import { ShallotError } from '../core/errors.js';
import type { SocksRequest } from '../core/socks5.js';

export interface ConnectRequest extends SocksRequest {
  /** Streams with different keys never share a circuit. */
  isolationKey: string;
  /** performance.now() by which the connector must answer (absent: no bound but its own timeouts). */
  deadline?: number;
}

export type Connector = (req: ConnectRequest) => Promise<Duplex>;

/**
 * Why a connect failed before the stream opened. The onion kinds are the
 * failures of prop 304 (socks-extensions.txt "Extended error codes"),
 * named as `shallot_onion_connects_total{outcome}` names them.
 */
export type ConnectErrorKind =
  /** The `.onion` name does not decode (length, base32, version, checksum, key). */
  | 'bad_address'
  /** No responsible HSDir has the descriptor, in either time period. */
  | 'desc_not_found'
  /** Every copy found fails to verify or decrypt. */
  | 'desc_invalid'
  /** The service requires client authorization and we hold no key for it. */
  | 'missing_client_auth'
  /** Our key does not open the descriptor. */
  | 'wrong_client_auth'
  /** No introduction point accepted INTRODUCE1. */
  | 'intro_failed'
  /** Every introduction attempt timed out. */
  | 'intro_timeout'
  /** No rendezvous point, no RENDEZVOUS2 in time, or one that does not verify. */
  | 'rend_failed'
  /** No consensus yet. */
  | 'not_bootstrapped'
  /** No exit's policy allows the destination: refused before any circuit. */
  | 'exit_policy'
  /** The request's deadline passed first. */
  | 'timeout';

export class ConnectError extends ShallotError {
  constructor(
    readonly kind: ConnectErrorKind,
    message: string,
  ) {
    super('ERR_CONNECT', message, { kind });
  }
}

/** Time left before `req.deadline` (Infinity without one). */
export function remainingMs(req: ConnectRequest): number {
  return req.deadline === undefined ? Number.POSITIVE_INFINITY : req.deadline - performance.now();
}

/**
 * `p`, or a `timeout` ConnectError once the request's deadline passes; a
 * result that arrives later goes to `late`.
 */
export function withDeadline<T>(p: Promise<T>, req: ConnectRequest, late?: (v: T) => void): Promise<T> {
  const left = remainingMs(req);
  if (left === Number.POSITIVE_INFINITY) return p;
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        expired = true;
        reject(new ConnectError('timeout', 'no answer before the SOCKS deadline'));
      },
      Math.max(0, left),
    );
  });
  void p.then((v) => expired && late?.(v)).catch(() => {});
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
