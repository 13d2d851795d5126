/**
 * Retrying the service's rendezvous circuit (rend-spec-v3 §3.4; C tor
 * hs_circuit.c `hs_circ_retry_service_rendezvous_point`).
 *
 * Overview: when the circuit to the client's rendezvous point fails to
 * build (a DESTROY on the way, or the circuit manager giving up on it), the
 * service launches another circuit to the same rendezvous point, with the
 * same cookie and handshake, as C tor does from `circuit_build_failed`. The
 * retries are bounded two ways, both C tor's:
 * - attempts: `hs_service_max_rdv_failures` (consensus param, default 2,
 *   bounds 1..10; C tor hs_get_service_max_rend_failures) builds in all;
 * - time: no attempt is launched after MAX_REND_TIMEOUT (30 s) from the
 *   INTRODUCE2. Here an attempt still building then is also given up: the
 *   client stops waiting for RENDEZVOUS2 30 s after its INTRODUCE_ACK
 *   (client/onion.ts `rendezvousTimeoutMs`), so a later RENDEZVOUS1 would
 *   find no cookie at the rendezvous point. The service's deadline starts
 *   at INTRODUCE2, after the client's INTRODUCE_ACK timer, so it ends first
 *   (inner < outer).
 *
 * Not in this module: the circuit itself (introduce-handler.ts) and the build
 * timeouts of onion-service circuits, which the circuit manager applies
 * (core/cbt.ts `hsTimeoutMs`/`hsCloseMs`, as C tor's `hs_circ_has_timed_out`).
 *
 * Design notes: C tor relaunches at once; here a retry waits a short,
 * doubling backoff (250 ms, 500 ms, ... within the deadline) so a failure
 * caused by a brief CPU stall on a loaded host is not repeated by an
 * immediate retry. No jitter: the attempts are few and the deadline short.
 */

import { boundedParam } from '../core/consensus-param.js';
import { ShallotError } from '../core/errors.js';

/** C tor MAX_REND_TIMEOUT: seconds a service keeps trying to reach a rendezvous point. */
export const MAX_REND_TIMEOUT_MS = 30_000;
/** C tor MAX_REND_FAILURES_DEFAULT / _MIN / _MAX for `hs_service_max_rdv_failures`. */
export const MAX_REND_FAILURES_DEFAULT = 2;
const MAX_REND_FAILURES_MIN = 1;
const MAX_REND_FAILURES_MAX = 10;
/** First retry's wait; each further retry doubles it (a deviation from C tor, see the header). */
export const REND_RETRY_BACKOFF_MS = 250;

export interface RendRetryPolicy {
  /** Builds in all, the first included. */
  maxAttempts: number;
  /** From the INTRODUCE2 to the last moment an attempt may still be building. */
  timeoutMs: number;
}

/** The policy the consensus sets (C tor hs_get_service_max_rend_failures). */
export function rendRetryPolicy(params: Readonly<Record<string, number>> | undefined): RendRetryPolicy {
  return {
    maxAttempts: boundedParam(
      params ?? {},
      'hs_service_max_rdv_failures',
      MAX_REND_FAILURES_DEFAULT,
      MAX_REND_FAILURES_MIN,
      MAX_REND_FAILURES_MAX,
    ),
    timeoutMs: MAX_REND_TIMEOUT_MS,
  };
}

/** The wait before attempt `n` (n >= 2). */
export function rendRetryDelayMs(n: number): number {
  return REND_RETRY_BACKOFF_MS * 2 ** (n - 2);
}

export class RendezvousTimeoutError extends ShallotError {
  constructor(ms: number) {
    super('ERR_REND_TIMEOUT', `no rendezvous circuit within ${ms} ms`);
  }
}

export interface RetryHooks<T> {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** A result that arrives after the attempt was given up (deadline): release it. */
  discard: (late: T) => void;
  /** Called before each retry (attempt >= 2) with the previous attempt's error. */
  onRetry?: (attempt: number, error: unknown) => void;
}

/**
 * Runs `attempt` until one succeeds, at most `policy.maxAttempts` times and
 * within `policy.timeoutMs` from now; rejects with the last error (or
 * RendezvousTimeoutError at the deadline).
 */
export async function withRendezvousRetries<T>(
  attempt: () => Promise<T>,
  policy: RendRetryPolicy,
  hooks: RetryHooks<T>,
): Promise<T> {
  const deadline = hooks.now() + policy.timeoutMs;
  let last: unknown = new RendezvousTimeoutError(policy.timeoutMs);
  for (let n = 1; n <= policy.maxAttempts; n++) {
    if (n > 1) {
      const wait = rendRetryDelayMs(n);
      // No attempt is launched past the deadline (C tor: expiry_time).
      if (hooks.now() + wait >= deadline) break;
      hooks.onRetry?.(n, last);
      await hooks.sleep(wait);
    }
    const left = deadline - hooks.now();
    if (left <= 0) break;
    const p = attempt();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), left);
    });
    try {
      const r = await Promise.race([p, expired]);
      if (r !== 'expired') return r;
      p.then(hooks.discard, () => {});
      throw new RendezvousTimeoutError(policy.timeoutMs);
    } catch (e) {
      if (e instanceof RendezvousTimeoutError) throw e;
      last = e;
    } finally {
      clearTimeout(timer);
    }
  }
  throw last;
}
