/**
 * MaxMemInQueues (tor(1); C tor relay.c `cell_queues_check_size` and
 * circuitlist.c `circuits_handle_oom`): one cap on the bytes of cells a
 * process holds in circuit queues and link send buffers, shared by every
 * relay in it. Over the cap, the circuits whose queued data is oldest are
 * closed (DESTROY RESOURCELIMIT) until the total is under 90 % of it, so a
 * reader that stops reading (or many of them) cannot grow the process
 * until the kernel kills it.
 *
 * Overview: relays register their circuits and channels; a check runs every
 * CHECK_MS while any relay is registered (C tor checks on every queued cell;
 * a timer is cheaper in JavaScript and a second of growth is bounded by the
 * per-circuit queue cap and each link's send-buffer cap).
 *
 * Design notes: the default is C tor's: 3/4 of the memory the process may
 * use — the cgroup's limit in a container, else the machine's RAM — capped
 * at 8 GiB and at least 256 MiB. `--max-mem-in-queues` (MiB) overrides it.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { CELL_BODY_LEN, DestroyReason } from '../core/cells.js';
import type { Channel } from '../net/channel.js';
import type { OrCircuit } from '../net/or-circuit.js';

export interface QueueMemorySource {
  circuits(): Iterable<OrCircuit>;
  channels(): Iterable<Channel>;
  /** A circuit was closed by the handler (for the relay's metric). */
  onOom(circ: OrCircuit): void;
}

const MIB = 1024 * 1024;
/** One queued cell on a v4+ link: CircID (4 bytes), command, body. */
const CELL_LEN = 4 + 1 + CELL_BODY_LEN;
const CHECK_MS = 1_000;

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

  /** Bytes held now: queued cells of every circuit plus every link's unsent bytes. */
  total(): number {
    let bytes = 0;
    for (const s of this.sources) {
      for (const c of s.circuits()) bytes += c.queuedCells * CELL_LEN;
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
    const queued: { c: OrCircuit; s: QueueMemorySource }[] = [];
    for (const s of this.sources)
      for (const c of s.circuits()) if (c.queuedSince !== null) queued.push({ c, s });
    queued.sort((a, b) => (a.c.queuedSince ?? 0) - (b.c.queuedSince ?? 0));
    let closed = 0;
    for (const { c, s } of queued) {
      if (total <= target) break;
      total -= c.queuedCells * CELL_LEN;
      c.close(DestroyReason.RESOURCELIMIT);
      s.onOom(c);
      closed++;
    }
    return closed;
  }
}

/** The process's one handler, shared by its relays (MaxMemInQueues is per tor process). */
export const processQueueMemory = new QueueMemory();
