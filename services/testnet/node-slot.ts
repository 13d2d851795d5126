/**
 * A node that shares a process or a worker thread with others (a directory
 * authority, an onion-service instance) as a fault target (fault.ts):
 * stopped cleanly, killed, or started again as a new object built the way
 * the first one was (same keys, name and port), as `--process-per-node`
 * starts a node again from its arguments. A relay's slot (relay-slot.ts)
 * is one of these around a relay and its onion roles, adding what a relay
 * keeps across a restart (its port, re-entry ports, rotated keys).
 *
 * Design notes: a thread cannot lose its process, so a kill does what a
 * node's peers see when its process dies: every link named after it drops
 * at once (net/link-faults.ts dropLinksOf, the sockets reset as the kernel
 * closes a dead process's, before any DESTROY, END or HTTP answer could be
 * sent), and only then is the node shut down and its state dropped; the
 * next start builds it anew, so nothing in memory survives, as after a
 * real kill. A stop is the node's own shutdown.
 */

import { dropLinksOf } from '../net/link-faults.js';

/** What a slot needs of its node. */
export interface SlotNode {
  start(): Promise<unknown>;
  /** Also what undoes a start that threw (its error ignored, the start's is the one thrown). */
  stop(): Promise<void>;
}

export class NodeSlot<T extends SlotNode> {
  private current: T | null = null;

  constructor(
    /** Its node name, as state.json, `shallot fault` and its links' x-shallot-node use. */
    readonly nickname: string,
    /** Builds the node afresh (from its key file), not started. */
    private readonly make: () => Promise<T> | T,
  ) {}

  /** The running node; null while a fault keeps it down. */
  get node(): T | null {
    return this.current;
  }

  async start(): Promise<T> {
    if (this.current) return this.current;
    const n = await this.make();
    this.current = n;
    try {
      await n.start();
    } catch (e) {
      this.current = null;
      await n.stop().catch(() => {});
      throw e;
    }
    return n;
  }

  /** Its clean shutdown. */
  async stop(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = null;
    await c.stop();
  }

  /** Every link drops at once, then the rest of it is shut down and freed. */
  async kill(): Promise<void> {
    if (!this.current) return;
    dropLinksOf(this.nickname);
    await this.stop();
  }
}
