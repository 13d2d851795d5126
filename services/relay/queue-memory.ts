/**
 * MaxMemInQueues (tor(1); C tor relay.c `cell_queues_check_size` and
 * circuitlist.c `circuits_handle_oom`): one cap on the memory a process
 * holds for what outsiders send it — cells in circuit queues, link send
 * buffers and (unlike C tor) each open circuit's own state — shared by
 * every relay in it. Over the cap, the circuits whose queued data is
 * oldest are closed (DESTROY RESOURCELIMIT) until the total is under 90 %
 * of it, as C tor does; if that is not enough, circuits of the channel
 * holding the most are closed, newest first, until it is. So neither a
 * reader that stops reading nor a peer that opens idle circuits can grow
 * the process until the kernel kills it.
 *
 * Overview: relays register their circuits and channels; a check runs every
 * CHECK_MS while any relay is registered (C tor checks on every queued cell;
 * a timer is cheaper in JavaScript and a second of growth is bounded by the
 * per-circuit queue cap, each link's send-buffer cap and the onionskin
 * queue's rate).
 *
 * Design notes: the default is C tor's: 3/4 of the memory the process may
 * use — the cgroup's limit in a container, else the machine's RAM — capped
 * at 8 GiB and at least 256 MiB. `--max-mem-in-queues` (MiB) overrides it.
 * Counting circuits deviates from C tor: there a circuit costs ~1-2 KiB and
 * the OOM handler ignores it, but here one costs 10-16 KiB
 * (CIRCUIT_STATE_BYTES) and a channel may hold 131,072 of them
 * (net/link-handshake.ts), i.e. ~2 GiB from one peer that the circuit
 * creation DoS defence does not charge below 3 connections (client-dos.ts).
 * The second pass picks the channel with the most circuits whoever is on
 * the other end — a listed relay's channel is no safer than a client's: a
 * relay carrying that many circuits is where the load comes from, and its
 * newest circuits are the ones least likely to carry data yet.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { CELL_BODY_LEN, DestroyReason } from '../core/cells.js';
import type { Channel } from '../net/channel.js';
import type { OrCircuit } from '../net/or-circuit.js';

/** What the handler reads of a relay-side circuit (net/or-circuit.ts OrCircuit). */
export type OomCircuit = Pick<OrCircuit, 'queuedCells' | 'queuedSince' | 'createdAt' | 'isOpen' | 'close'> & {
  /** The channel the circuit was created on: the peer that made it. */
  readonly prevChannel: object;
};

/** Why the handler closed a circuit (the reason label of shallot_relay_oom_closed_total). */
export type OomReason = 'queued_cells' | 'circuit_count';

export interface QueueMemorySource {
  circuits(): Iterable<OomCircuit>;
  channels(): Iterable<Pick<Channel, 'link'>>;
  /** A circuit was closed by the handler (for the relay's metric). */
  onOom(circ: OomCircuit, reason: OomReason): void;
}

const MIB = 1024 * 1024;
/** One queued cell on a v4+ link: CircID (4 bytes), command, body. */
const CELL_LEN = 4 + 1 + CELL_BODY_LEN;
const CHECK_MS = 1_000;
/**
 * What one idle relay-side circuit holds (OrCircuit, its CircuitEdge, the
 * AES-CTR and SHA-1 digest states of RelayHopCrypto, its channel's map
 * entry): 16 KiB of RSS per circuit with 5,000 circuits, 14 KiB with
 * 10,000, 10 KiB with 20,000 (V8 and malloc grow in steps), on one wss
 * channel to an in-process relay after a warm-up, client side subtracted
 * (test/bench/circuit-memory.ts, `MALLOC_ARENA_MAX=2 node --expose-gc`);
 * 4.2-4.3 KiB of it is JS heap plus external at every count, the rest
 * native (OpenSSL contexts) and allocator overhead. RSS is what the kernel
 * kills on; the high end keeps the cap on the safe side.
 */
export const CIRCUIT_STATE_BYTES = 16 * 1024;

/** The memory this process may use: the cgroup (v2, then v1) limit, else RAM. */
function memoryLimit(): number {
  for (const f of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number(readFileSync(f, 'utf8').trim());
      if (Number.isFinite(v) && v > 0 && v < totalmem()) return v;
    } catch {
      // Not in a cgroup with a limit: fall through.
    }
  }
  return totalmem();
}

/** C tor's default MaxMemInQueues. */
export function defaultMaxMemInQueues(): number {
  return Math.min(8 * 1024 * MIB, Math.max(256 * MIB, Math.floor((memoryLimit() * 3) / 4)));
}

export class QueueMemory {
  private readonly sources = new Set<QueueMemorySource>();
  private timer: NodeJS.Timeout | null = null;

  /** The total the last check saw (the shallot_relay_queued_bytes gauge). */
  lastTotal = 0;

  constructor(public maxBytes: number = defaultMaxMemInQueues()) {}

  add(source: QueueMemorySource): void {
    this.sources.add(source);
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), CHECK_MS);
      this.timer.unref();
    }
  }

  remove(source: QueueMemorySource): void {
    this.sources.delete(source);
    if (this.sources.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Bytes held now: each circuit's state and queued cells plus every link's unsent bytes. */
  total(): number {
    let bytes = 0;
    for (const s of this.sources) {
      for (const c of s.circuits()) bytes += CIRCUIT_STATE_BYTES + c.queuedCells * CELL_LEN;
      for (const ch of s.channels()) bytes += ch.link.bufferedAmount;
    }
    return bytes;
  }

  /** Runs the handler once: returns how many circuits it closed. */
  check(): number {
    let total = this.total();
    this.lastTotal = total;
    if (total <= this.maxBytes) return 0;
    const target = this.maxBytes * 0.9;
    const all: { c: OomCircuit; s: QueueMemorySource }[] = [];
    for (const s of this.sources) for (const c of s.circuits()) all.push({ c, s });
    let closed = 0;
    const close = ({ c, s }: { c: OomCircuit; s: QueueMemorySource }, reason: OomReason) => {
      total -= CIRCUIT_STATE_BYTES + c.queuedCells * CELL_LEN;
      // Closed along with one closed here (a rendezvous splice): freed, but not this handler's close.
      if (!c.isOpen) return;
      c.close(DestroyReason.RESOURCELIMIT);
      s.onOom(c, reason);
      closed++;
    };
    // C tor's rule: the circuits whose queued data is oldest first.
    const queued = all.filter(({ c }) => c.queuedSince !== null);
    queued.sort((a, b) => (a.c.queuedSince ?? 0) - (b.c.queuedSince ?? 0));
    const gone = new Set<OomCircuit>();
    for (const q of queued) {
      if (total <= target) return closed;
      close(q, 'queued_cells');
      gone.add(q.c);
    }
    if (total <= target) return closed;
    closeByChannel(
      all.filter(({ c }) => !gone.has(c)),
      () => total <= target,
      (q) => close(q, 'circuit_count'),
    );
    return closed;
  }
}

/**
 * Closes circuits of the channel holding the most (ties: the first found),
 * its newest first, one at a time until `done`: the biggest holder shrinks
 * to the next one's size before that one loses any.
 */
function closeByChannel<T extends { c: OomCircuit }>(items: T[], done: () => boolean, close: (q: T) => void) {
  const byChannel = new Map<object, T[]>();
  for (const q of items) {
    const list = byChannel.get(q.c.prevChannel);
    if (list) list.push(q);
    else byChannel.set(q.c.prevChannel, [q]);
  }
  // Oldest first within a channel (stable: creation order for equal times), so pop() is the newest.
  const groups = [...byChannel.values()].sort((a, b) => b.length - a.length);
  for (const g of groups) g.sort((a, b) => a.c.createdAt - b.c.createdAt);
  while (!done() && groups.length > 0) {
    const g = groups[0]!;
    const q = g.pop();
    if (!q) break;
    close(q);
    // Keep groups sorted by size, largest first: move the shrunk one down past bigger ones.
    let i = 0;
    while (i + 1 < groups.length && groups[i + 1]!.length > g.length) {
      groups[i] = groups[i + 1]!;
      i++;
    }
    groups[i] = g;
  }
}

/** The process's one handler, shared by its relays (MaxMemInQueues is per tor process). */
export const processQueueMemory = new QueueMemory();
