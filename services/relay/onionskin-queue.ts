/**
 * The queue of CREATE2 onionskins waiting for a cpuworker (C tor
 * onion_queue.c), fair between channels and shedding what waited too long.
 *
 * Overview: each channel has its own FIFO and channels are served in turn,
 * so one channel's flood of 10,000 CREATE2 cells delays another channel's
 * CREATE2 by one onionskin per flooding channel, not by the whole flood.
 * An onionskin that waited longer than `MaxOnionQueueDelay` (C tor's option
 * and consensus param, default 1750 ms) is not answered but shed: its
 * circuit gets DESTROY RESOURCELIMIT, as C tor drops a queue's head that is
 * older than the cutoff, since the client has likely given up on it.
 *
 * Design notes: C tor keeps one FIFO per handshake type and sheds only on
 * insertion; serving channels in turn is Shallot's addition, because on a
 * loopback testnet every client shares 127.0.0.1 and the per-address
 * circuit limit (client-dos.ts) cannot single out a flooding client there.
 * Memory is bounded by the channel's circuit cap (each queued onionskin
 * holds its CircID) and by shedding.
 *
 * Not in this module: the handshake itself (cpuworker.ts), CircID rules
 * and circuits (relay.ts).
 */
import type { OnionskinAnswer, OnionskinExecutor, OnionskinRequest } from './cpuworker.js';

/** C tor's MaxOnionQueueDelay default, ms. */
export const DEFAULT_MAX_ONION_QUEUE_DELAY_MS = 1750;

export interface QueuedOnionskin {
  req: OnionskinRequest;
  /** Answered: the handshake's result, or the error it failed with. */
  done(result: OnionskinAnswer | Error): void;
  /** Shed after waiting too long, or dropped with its channel. */
  shed(): void;
}

interface Entry extends QueuedOnionskin {
  at: number;
}

export class OnionskinQueue {
  /** Per-owner (channel) FIFOs in service order: the next owner to serve is first. */
  private readonly fifos = new Map<object, Entry[]>();
  private queued = 0;
  private inflight = 0;

  constructor(
    private readonly execute: OnionskinExecutor,
    private readonly concurrency: number,
    private readonly maxDelayMs: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Onionskins waiting (not yet handed to a worker). */
  get length(): number {
    return this.queued;
  }

  add(owner: object, item: QueuedOnionskin): void {
    let fifo = this.fifos.get(owner);
    if (!fifo) {
      fifo = [];
      this.fifos.set(owner, fifo);
    }
    fifo.push({ ...item, at: this.now() });
    this.queued++;
    this.pump();
  }

  /** Drops everything `owner` queued (its channel closed); each is shed. */
  dropOwner(owner: object): void {
    const fifo = this.fifos.get(owner);
    if (!fifo) return;
    this.fifos.delete(owner);
    this.queued -= fifo.length;
    for (const e of fifo) e.shed();
  }

  private pump(): void {
    while (this.inflight < this.concurrency) {
      const e = this.takeNext();
      if (!e) return;
      this.inflight++;
      this.execute(e.req).then(
        (answer) => this.finish(e, answer),
        (err: unknown) => this.finish(e, err instanceof Error ? err : new Error(String(err))),
      );
    }
  }

  private finish(e: Entry, result: OnionskinAnswer | Error): void {
    this.inflight--;
    e.done(result);
    this.pump();
  }

  /** The head of the next owner's FIFO in turn, shedding heads that waited too long. */
  private takeNext(): Entry | null {
    const maxDelay = this.maxDelayMs();
    for (;;) {
      const first = this.fifos.entries().next();
      if (first.done) return null;
      const [owner, fifo] = first.value;
      const e = fifo.shift() as Entry;
      this.queued--;
      // Re-inserting moves the owner to the back: owners are served in turn.
      this.fifos.delete(owner);
      if (fifo.length > 0) this.fifos.set(owner, fifo);
      if (this.now() - e.at > maxDelay) {
        e.shed();
        continue;
      }
      return e;
    }
  }
}
