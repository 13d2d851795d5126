/**
 * Waiters for an origin circuit's control messages (EXTENDED2, CONNECTED,
 * the onion-service cells of rend-spec-v3 §3-4): each takes the first relay
 * message its match accepts, or fails when its time runs out or the
 * circuit closes. Messages nobody waits for go to the circuit's owner as
 * events (origin-circuit.ts).
 */
import { DestroyReason } from '../core/cells.js';
import type { RelayMessage } from '../core/relay-cell.js';
import { CircuitError } from './circuit-error.js';

type Match = (hop: number, msg: RelayMessage, streamId: number) => boolean;

interface Waiter {
  match: Match;
  resolve: (m: { hop: number; msg: RelayMessage }) => void;
  reject: (e: Error) => void;
}

export class MessageWaiters {
  private waiters: Waiter[] = [];

  /** Resolves with the next message `match` accepts; rejects after `timeoutMs`. */
  add(match: Match, timeoutMs: number): Promise<{ hop: number; msg: RelayMessage }> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(
          new CircuitError(
            DestroyReason.TIMEOUT,
            `timed out after ${timeoutMs} ms waiting on circuit`,
            'timeout',
          ),
        );
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Hands `msg` to the first waiter that matches it; false when none does. */
  deliver(hop: number, streamId: number, msg: RelayMessage): boolean {
    const w = this.waiters.find((x) => x.match(hop, msg, streamId));
    if (!w) return false;
    this.waiters = this.waiters.filter((x) => x !== w);
    w.resolve({ hop, msg });
    return true;
  }

  /** Fails every waiter (the circuit closed). */
  rejectAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
