/**
 * One turn's link writes coalesced into one buffer (tor-spec §3: cells
 * follow one another on the connection, so how they are grouped into
 * writes carries no meaning). Both link kinds use it: WebSocket links
 * (transport.ts) send a batch as one message, raw TLS links
 * (tls-transport.ts) as one socket write.
 *
 * Design notes: callers write cells straight into the batch (`reserve`), so
 * a cell costs no buffer of its own and no copy at send time (issue 16). A
 * batch that was handed to `write` is never touched again: the next one is
 * a new buffer, since ws and the socket keep theirs until written.
 */

/** A batch is written once it reaches this size, far below MAX_WS_MESSAGE even with one more write. */
export const MAX_BATCH = 256 * 1024;
/** A batch starts this big and doubles as a turn's writes fill it (a few cells: one small buffer). */
const FIRST_BATCH = 4 * 1024;
/**
 * A busy link's next batch starts at the size its last one reached, so a
 * 256 KiB batch is one allocation rather than seven doublings (4 KiB up)
 * and their copies. Every batch is a fresh off-heap buffer, and their
 * total is what drives V8's full collections on a relay (issue 16); a link
 * that goes quiet shrinks back with its next small batch.
 */
function startSize(lastLen: number): number {
  let size = FIRST_BATCH;
  while (size < lastLen && size < MAX_BATCH) size *= 2;
  return size;
}

export class LinkBatch {
  private batch: Buffer | null = null;
  private len = 0;
  /** Bytes in the last batch handed to `write`. */
  private lastLen = 0;
  private flushScheduled = false;

  /**
   * @param isOpen whether the link can still write; a closed link reserves nothing and flushes nothing.
   * @param write hands one batch to the link (it keeps the buffer).
   */
  constructor(
    private readonly isOpen: () => boolean,
    private readonly write: (batch: Buffer) => void,
  ) {}

  /** Bytes reserved but not yet handed to `write`. */
  get length(): number {
    return this.len;
  }

  /**
   * `n` bytes at the end of this turn's batch for the caller to fill at once
   * (before it reserves again or yields), or null when the link is closed.
   */
  reserve(n: number): Uint8Array | null {
    if (!this.isOpen()) return null;
    // A tick's writes can exceed what the peer accepts in one message (a
    // burst of 10,000 cells is 5 MB; MAX_WS_MESSAGE is 4 MiB): a batch goes
    // out as soon as it is big enough, so no message ever goes over the limit.
    if (this.len > 0 && this.len + n > MAX_BATCH) this.flush();
    const need = this.len + n;
    if (!this.batch || need > this.batch.length) {
      let size = Math.max(this.batch ? this.batch.length : startSize(this.lastLen), FIRST_BATCH);
      while (size < need) size *= 2;
      const next = Buffer.allocUnsafe(Math.min(size, Math.max(MAX_BATCH, need)));
      if (this.batch) this.batch.copy(next, 0, 0, this.len);
      this.batch = next;
    }
    const view = this.batch.subarray(this.len, need);
    this.len = need;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return view;
  }

  /** Hands what is batched to `write` now (the end of a turn, or a close). */
  flush(): void {
    this.flushScheduled = false;
    if (this.len === 0 || !this.batch || !this.isOpen()) return;
    const batch = this.batch.subarray(0, this.len);
    this.lastLen = this.len;
    this.batch = null;
    this.len = 0;
    this.write(batch);
  }
}
