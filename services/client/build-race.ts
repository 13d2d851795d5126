/**
 * One circuit for a request, from up to N build attempts (path-spec §2.4:
 * a build past the learned timeout is not abandoned; C tor launches
 * another circuit for the request beside it and keeps the slow one until
 * the close timeout): an attempt that fails or passes the learned timeout
 * launches the next, the first circuit to open serves the request, and any
 * that opens later is closed. A missing consensus or a path that cannot
 * exist fails at once: another attempt would meet the same. So does a
 * requested last hop (HSDir, introduction or rendezvous point) that left
 * its CREATE2/EXTEND2 unanswered: every attempt ends at that relay. The
 * caller decides what next, as C tor's do: an onion client moves on to
 * another HSDir (C tor's requery period), intro point or rendezvous point;
 * a service builds to the client's rendezvous point again up to its retry
 * count (hs_circ_retry_service_rendezvous_point,
 * onion-service/rendezvous-retry.ts).
 *
 * Limitations: the hop timer blames the hop being extended to, so a middle
 * that froze while extending to the last hop is taken for the last hop's
 * silence and the caller moves on one relay early (C tor's directory fetch
 * through a frozen middle fails the same way, whichever hop stalled).
 *
 * Not in this module: one attempt (circuit-manager.ts buildOnce) and its
 * timers (build-deadlines.ts).
 */
import { DestroyReason, destroyReasonName } from '../core/cells.js';
import { ShallotError } from '../core/errors.js';
import { PathError } from '../core/path.js';
import { CircuitError } from '../net/circuit-error.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { NoConsensusError } from './circuit-options.js';

/** An attempt given up because `hopId` left its CREATE2 or EXTEND2 unanswered. */
export class HopSilentError extends CircuitError {
  constructor(
    readonly hopId: string,
    nickname: string,
  ) {
    super(DestroyReason.TIMEOUT, `${nickname} did not answer`, 'timeout');
  }
}

/** What a build attempt tells `build` when it passes the learned timeout. */
export interface SoftTimeout {
  /** The guard whose CREATE2 was still unanswered, if any: the next attempt avoids it. */
  slowGuard: string | null;
}

/**
 * Runs `attempt` up to `maxAttempts` times as described above; `attempt`
 * gets the guards to avoid (those whose CREATE2 went unanswered in an
 * earlier attempt) and calls `onSoftTimeout` when it passes the learned
 * timeout. `lastHopId`: the relay every attempt ends at, if the request
 * named one.
 */
export function raceBuilds(
  maxAttempts: number,
  attempt: (
    avoidGuards: ReadonlySet<string>,
    onSoftTimeout: (t: SoftTimeout) => void,
  ) => Promise<OriginCircuit>,
  lastHopId?: string,
): Promise<OriginCircuit> {
  return new Promise((resolve, reject) => {
    let launched = 0;
    let pending = 0;
    let settled = false;
    let last: unknown;
    const avoid = new Set<string>();
    const launch = (): void => {
      launched++;
      pending++;
      const onSoftTimeout = (t: SoftTimeout): void => {
        if (t.slowGuard) avoid.add(t.slowGuard);
        if (!settled && launched < maxAttempts) launch();
      };
      attempt(new Set(avoid), onSoftTimeout).then(
        (circ) => {
          pending--;
          if (settled) circ.destroy(DestroyReason.FINISHED);
          else {
            settled = true;
            resolve(circ);
          }
        },
        (e: unknown) => {
          pending--;
          last = e;
          if (settled) return;
          const lastHopSilent = e instanceof HopSilentError && e.hopId === lastHopId;
          if (e instanceof NoConsensusError || e instanceof PathError || lastHopSilent) {
            settled = true;
            reject(e);
          } else if (launched < maxAttempts) launch();
          else if (pending === 0) {
            settled = true;
            reject(last);
          }
        },
      );
    };
    launch();
  });
}

/** The `reason` label of a failed build (shallot_circuit_failures_total). */
export function failureReason(e: unknown): string {
  if (e instanceof CircuitError)
    return e.context.kind === 'destroyed' ? destroyReasonName(e.reason) : String(e.context.kind);
  if (e instanceof ShallotError) return e.code.replace(/^ERR_/, '').toLowerCase();
  return 'error';
}
