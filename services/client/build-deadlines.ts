/**
 * The clocks of one circuit build attempt (path-spec §2.4, core/cbt.ts):
 * the soft timeout (the learned build timeout: the attempt is counted as
 * timed out and another is launched beside it, this one going on), the
 * close timeout (the attempt is abandoned), and the answer timer of the hop
 * being created or extended to (a hop that leaves CREATE2 or EXTEND2
 * unanswered for `hopMs` stopped answering: the attempt is abandoned).
 *
 * Overview: every step of a build races `abandoned`, which rejects with a
 * CircuitError of kind 'timeout' when the close timeout or a hop's answer
 * timer fires (a HopSilentError naming the hop for the latter); the
 * callbacks let the builder count and blame first.
 *
 * Not in this module: what a timeout counts or blames, and the timeouts'
 * values (circuit-manager.ts buildOnce, core/cbt.ts), launching the next
 * attempt (build-race.ts).
 */
import { DestroyReason } from '../core/cells.js';
import { CircuitError } from '../net/circuit-error.js';
import { HopSilentError } from './build-race.js';

/** `H`: a hop as the builder knows it (a CircuitTarget); only its id and nickname are read here. */
export interface BuildDeadlineOptions<H extends { id: string; nickname: string }> {
  softMs: number;
  closeMs: number;
  /** How long a hop may leave CREATE2 or EXTEND2 unanswered. */
  hopMs: number;
  /** The soft timeout passed (`timedOut` is already true). */
  onSoftTimeout: () => void;
  /** The close timeout passed; the attempt is abandoned right after. */
  onClose: () => void;
  /** `hop` left its CREATE2 or EXTEND2 unanswered; the attempt is abandoned right after. */
  onHopSilent: (hop: H) => void;
}

export class BuildDeadlines<H extends { id: string; nickname: string }> {
  /** Rejects when the attempt is abandoned: race every step of the build against it. */
  readonly abandoned: Promise<never>;
  /** Whether the soft timeout passed. */
  timedOut = false;
  private abandon: (e: Error) => void = () => {};
  private readonly timers: NodeJS.Timeout[];
  private hopTimer: NodeJS.Timeout | undefined;

  /** Starts the soft and close timeouts. */
  constructor(private readonly o: BuildDeadlineOptions<H>) {
    this.abandoned = new Promise<never>((_, reject) => {
      this.abandon = reject;
    });
    this.abandoned.catch(() => {});
    this.timers = [
      setTimeout(() => {
        this.timedOut = true;
        o.onSoftTimeout();
      }, o.softMs),
      setTimeout(() => {
        o.onClose();
        this.abandon(
          new CircuitError(DestroyReason.TIMEOUT, `circuit build exceeded ${o.closeMs} ms`, 'timeout'),
        );
      }, o.closeMs),
    ];
  }

  /** Starts `hop`'s answer timer, replacing the previous hop's. */
  watch(hop: H): void {
    clearTimeout(this.hopTimer);
    this.hopTimer = setTimeout(() => {
      this.o.onHopSilent(hop);
      this.abandon(new HopSilentError(hop.id, hop.nickname));
    }, this.o.hopMs);
  }

  /** Stops every timer (the attempt opened or failed). */
  clear(): void {
    for (const t of [...this.timers, this.hopTimer]) clearTimeout(t);
  }
}
