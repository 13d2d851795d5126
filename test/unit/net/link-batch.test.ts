// A link's send batch (services/net/link-batch.ts): the cells reserved in one
// turn go out as few writes as possible, none over MAX_BATCH, in order, and a
// closed link takes nothing (tor-spec §3: how cells are grouped into writes
// carries no meaning, so only order and completeness are checked).
import { describe, expect, it } from 'vitest';
import { concat } from '../../../services/core/bytes.js';
import { LinkBatch, MAX_BATCH } from '../../../services/net/link-batch.js';

const turn = () => new Promise((r) => setImmediate(r));

function recorder() {
  const writes: Buffer[] = [];
  let open = true;
  const batch = new LinkBatch(
    () => open,
    (b) => writes.push(b),
  );
  return { batch, writes, close: () => (open = false) };
}

/** Reserves `n` cells of 514 bytes, each filled with its index, as a relay forwarding a burst would. */
function burst(batch: LinkBatch, n: number, from = 0): Uint8Array[] {
  const cells: Uint8Array[] = [];
  for (let i = from; i < from + n; i++) {
    const out = batch.reserve(514);
    if (!out) throw new Error('closed');
    out.fill(i & 0xff);
    out[0] = i >> 8;
    cells.push(out.slice());
  }
  return cells;
}

describe('LinkBatch', () => {
  it("one turn's cells go out once, at the end of the turn, in order", async () => {
    const { batch, writes } = recorder();
    const cells = burst(batch, 20);
    expect(writes).toHaveLength(0);
    expect(batch.length).toBe(20 * 514);
    await turn();
    expect(writes).toHaveLength(1);
    expect(Buffer.compare(writes[0]!, concat(...cells))).toBe(0);
    expect(batch.length).toBe(0);
  });

  it('a burst over MAX_BATCH is written as it fills: every write at most MAX_BATCH, nothing lost or reordered', async () => {
    const { batch, writes } = recorder();
    const n = Math.ceil((3.5 * MAX_BATCH) / 514);
    const cells = burst(batch, n);
    // Full batches left during the turn (a relay forwards what it has without waiting for the window's end).
    expect(writes.length).toBeGreaterThanOrEqual(3);
    await turn();
    for (const w of writes) expect(w.length).toBeLessThanOrEqual(MAX_BATCH);
    expect(Buffer.compare(Buffer.concat(writes), concat(...cells))).toBe(0);
    // The next busy turn starts big enough for its cells without regrowing from 4 KiB.
    const next = burst(batch, 40, n);
    await turn();
    expect(Buffer.compare(writes.at(-1)!, concat(...next))).toBe(0);
  });

  it('a closed link reserves nothing and writes nothing', async () => {
    const { batch, writes, close } = recorder();
    burst(batch, 3);
    close();
    expect(batch.reserve(514)).toBeNull();
    await turn();
    expect(writes).toHaveLength(0);
  });
});
