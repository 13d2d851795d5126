// MaxMemInQueues (relay/queue-memory.ts) over fake sources: each circuit's
// state counts, C tor's queued-data rule runs first, then the channel
// holding the most circuits loses its newest ones until under 90 % of the cap.
import { describe, expect, it } from 'vitest';
import { DestroyReason } from '../../../services/core/cells.js';
import {
  CIRCUIT_STATE_BYTES,
  type OomCircuit,
  type OomReason,
  QueueMemory,
  type QueueMemorySource,
} from '../../../services/relay/queue-memory.js';

const CELL_LEN = 514;

interface Fake extends OomCircuit {
  name: string;
  closedWith: number | null;
  partner: Fake | null;
}

function circuit(
  name: string,
  prevChannel: object,
  createdAt: number,
  queued = 0,
  queuedSince: number | null = null,
) {
  const c: Fake = {
    name,
    prevChannel,
    createdAt,
    queuedCells: queued,
    queuedSince,
    closedWith: null,
    /** Closed along with this one (a rendezvous splice). */
    partner: null as Fake | null,
    get isOpen() {
      return c.closedWith === null;
    },
    close(reason: number) {
      if (c.closedWith !== null) return;
      c.closedWith = reason;
      c.partner?.close(DestroyReason.DESTROYED);
    },
  };
  return c;
}

function source(circs: Fake[], buffered = 0) {
  const closed: { name: string; reason: OomReason }[] = [];
  const s: QueueMemorySource = {
    // Closed circuits leave the relay's set, as Relay.onClosed does.
    circuits: () => circs.filter((c) => c.closedWith === null),
    channels: () => [{ link: { bufferedAmount: buffered } } as never],
    onOom: (c, reason) => closed.push({ name: (c as Fake).name, reason }),
  };
  return { s, closed };
}

describe('QueueMemory', () => {
  it('counts each circuit state, its queued cells and link buffers in total()', () => {
    const ch = {};
    const qm = new QueueMemory(1 << 30);
    qm.add(source([circuit('a', ch, 1), circuit('b', ch, 2, 3, 5)], 1000).s);
    expect(qm.total()).toBe(2 * CIRCUIT_STATE_BYTES + 3 * CELL_LEN + 1000);
    expect(qm.check()).toBe(0);
    expect(qm.lastTotal).toBe(qm.total());
  });

  it('closes nothing at the cap, and idle circuits over it', () => {
    const ch = {};
    const circs = Array.from({ length: 10 }, (_, i) => circuit(`c${i}`, ch, i));
    const qm = new QueueMemory(10 * CIRCUIT_STATE_BYTES);
    const { s, closed } = source(circs);
    qm.add(s);
    expect(qm.check()).toBe(0);
    circs.push(circuit('c10', ch, 10));
    // 11 circuits over a cap of 10: down to at most 9 (90 %), newest first.
    expect(qm.check()).toBe(2);
    expect(closed).toEqual([
      { name: 'c10', reason: 'circuit_count' },
      { name: 'c9', reason: 'circuit_count' },
    ]);
    expect(
      circs.filter((c) => c.closedWith !== null).every((c) => c.closedWith === DestroyReason.RESOURCELIMIT),
    ).toBe(true);
    expect(qm.total()).toBeLessThanOrEqual(0.9 * qm.maxBytes);
    qm.remove(s);
  });

  it('takes from the channel holding the most circuits, newest first, whoever holds it', () => {
    const hog = {}; // e.g. a listed relay's channel: no exemption
    const small = {};
    const circs = [
      ...Array.from({ length: 6 }, (_, i) => circuit(`small${i}`, small, i)),
      // Created in one millisecond: creation (iteration) order decides the newest.
      ...Array.from({ length: 30 }, (_, i) => circuit(`hog${i}`, hog, 100)),
    ];
    const qm = new QueueMemory(20 * CIRCUIT_STATE_BYTES);
    const { s, closed } = source(circs);
    qm.add(s);
    // 36 circuits, target 18: the hog goes from 30 to 12, the small channel keeps its 6.
    expect(qm.check()).toBe(18);
    expect(closed.map((c) => c.name)).toEqual(Array.from({ length: 18 }, (_, i) => `hog${29 - i}`));
    expect(circs.filter((c) => c.name.startsWith('small')).every((c) => c.closedWith === null)).toBe(true);
    qm.remove(s);
  });

  it('levels the biggest holders down together once they are the same size', () => {
    const a = {};
    const b = {};
    const circs = [
      ...Array.from({ length: 10 }, (_, i) => circuit(`a${i}`, a, i)),
      ...Array.from({ length: 8 }, (_, i) => circuit(`b${i}`, b, i)),
    ];
    // Over a cap of 16 (target 14.4): 18 -> 14, first a to 8, then one each.
    const qm = new QueueMemory(16 * CIRCUIT_STATE_BYTES);
    const { s, closed } = source(circs);
    qm.add(s);
    expect(qm.check()).toBe(4);
    const left = (p: string) => circs.filter((c) => c.name.startsWith(p) && c.closedWith === null).length;
    expect([left('a'), left('b')]).toEqual([7, 7]);
    expect(closed.slice(0, 2).map((c) => c.name)).toEqual(['a9', 'a8']);
    qm.remove(s);
  });

  it('closes circuits with the oldest queued data first (C tor) and counts circuits only if that is not enough', () => {
    const ch = {};
    const other = {};
    const circs = [
      circuit('old-queue', other, 1, 100, 10),
      circuit('new-queue', other, 2, 100, 20),
      ...Array.from({ length: 4 }, (_, i) => circuit(`idle${i}`, ch, 3 + i)),
    ];
    const cap = 6 * CIRCUIT_STATE_BYTES + 200 * CELL_LEN - 1;
    const qm = new QueueMemory(cap);
    const { s, closed } = source(circs);
    qm.add(s);
    // Closing the oldest queue frees 100 cells and a circuit: under 90 %, nothing else goes.
    expect(qm.check()).toBe(1);
    expect(closed).toEqual([{ name: 'old-queue', reason: 'queued_cells' }]);
    qm.remove(s);

    // A cap the queued circuits cannot cover: both go, then the biggest holder's newest.
    const circs2 = [
      circuit('q1', other, 1, 10, 10),
      circuit('q2', other, 2, 10, 20),
      ...Array.from({ length: 10 }, (_, i) => circuit(`idle${i}`, ch, 3 + i)),
    ];
    const qm2 = new QueueMemory(5 * CIRCUIT_STATE_BYTES);
    const src2 = source(circs2);
    qm2.add(src2.s);
    qm2.check();
    expect(src2.closed.slice(0, 2)).toEqual([
      { name: 'q1', reason: 'queued_cells' },
      { name: 'q2', reason: 'queued_cells' },
    ]);
    expect(src2.closed.slice(2).every((c) => c.reason === 'circuit_count')).toBe(true);
    expect(src2.closed[2]?.name).toBe('idle9');
    expect(qm2.total()).toBeLessThanOrEqual(0.9 * qm2.maxBytes);
    qm2.remove(src2.s);
  });

  it('shares one cap across sources (relays in one process)', () => {
    const a = source(Array.from({ length: 3 }, (_, i) => circuit(`a${i}`, {}, i)));
    const bCh = {};
    const b = source(Array.from({ length: 5 }, (_, i) => circuit(`b${i}`, bCh, i)));
    const qm = new QueueMemory(7 * CIRCUIT_STATE_BYTES);
    qm.add(a.s);
    qm.add(b.s);
    // 8 over 7, target 6.3: b's channel (5 circuits) loses its two newest.
    expect(qm.check()).toBe(2);
    expect(a.closed).toEqual([]);
    expect(b.closed.map((c) => c.name)).toEqual(['b4', 'b3']);
    qm.remove(a.s);
    qm.remove(b.s);
  });

  it('does not count a circuit closed along with one it closed (a splice), and counts the memory freed', () => {
    const hog = {};
    const circs = Array.from({ length: 10 }, (_, i) => circuit(`h${i}`, hog, i));
    // The two newest are spliced: closing h9 closes h8 too.
    circs[9]!.partner = circs[8]!;
    const qm = new QueueMemory(9 * CIRCUIT_STATE_BYTES);
    const { s, closed } = source(circs);
    qm.add(s);
    // 10 over 9, target 8.1: h9 goes and takes h8 with it, which is enough.
    expect(qm.check()).toBe(1);
    expect(closed.map((c) => c.name)).toEqual(['h9']);
    expect(circs[8]!.closedWith).toBe(DestroyReason.DESTROYED);
    expect(circs.filter((c) => c.closedWith === null)).toHaveLength(8);
    qm.remove(s);
  });
});
