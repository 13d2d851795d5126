/**
 * Splits a link's byte stream into cells (tor-spec §3: fixed-length cells
 * and variable-length cells, CircID 4 bytes from link version 4 on) and
 * hands them out: queued one by one while the link handshake reads them,
 * then dispatched as they arrive once the channel is open.
 *
 * Design notes: until VERSIONS is answered the CircID width is unknown, so
 * bytes behind it stay unparsed until the version is set; a variable cell
 * longer than the channel's limit or any malformed cell breaks the stream
 * for good (nothing after garbage is buffered), and the channel closes.
 */
import { concat } from '../core/bytes.js';
import { type Cell, decodeCell } from '../core/cells.js';
import { TruncatedError } from '../core/errors.js';

/** Splits the link's byte stream into cells; queues them while the handshake reads. */
export class CellReader {
  private buf: Uint8Array = new Uint8Array(0);
  private version = 0;
  private waiter: {
    resolve: (c: { cell: Cell; raw: Uint8Array }) => void;
    reject: (e: Error) => void;
  } | null = null;
  private queue: { cell: Cell; raw: Uint8Array }[] = [];
  private failed: Error | null = null;
  dispatch: ((cell: Cell) => void) | null = null;
  /** Called once if the byte stream breaks after the handshake; the channel then closes the link. */
  onFatal: ((e: Error) => void) | null = null;

  /** Decode options, made once: the loop below runs per cell (issue 16: no garbage per cell). */
  private readonly decodeOpts: { maxVariablePayload: number };

  constructor(maxVariablePayload: number) {
    this.decodeOpts = { maxVariablePayload };
  }

  push(chunk: Uint8Array): void {
    // A broken stream stays broken: never buffer what follows garbage.
    if (this.failed) return;
    this.buf = this.buf.length === 0 ? chunk : concat(this.buf, chunk);
    let off = 0;
    try {
      while (off < this.buf.length) {
        let res: { cell: Cell; consumed: number };
        try {
          res = decodeCell(this.buf, this.version, this.decodeOpts, off);
        } catch (e) {
          if (e instanceof TruncatedError) break;
          throw e;
        }
        const start = off;
        off += res.consumed;
        if (this.dispatch) this.dispatch(res.cell);
        // The handshake keeps each cell's bytes for its transcript digests (SLOG/CLOG).
        else this.deliver({ cell: res.cell, raw: this.buf.slice(start, off) });
        // Until VERSIONS is answered the CircID width is unknown: leave later bytes unparsed.
        if (this.version === 0) break;
      }
    } catch (e) {
      this.buf = new Uint8Array(0);
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.buf = off === this.buf.length ? new Uint8Array(0) : this.buf.slice(off);
    // Bytes of an unfinished cell: since when (a relay closes links that stall mid-cell).
    // A chunk that completed a cell is progress, so the clock restarts.
    if (this.buf.length === 0) this.partialSince = null;
    else if (off > 0 || this.partialSince === null) this.partialSince = Date.now();
  }

  /** When the unfinished cell now buffered began to arrive, or null when none is. */
  partialSince: number | null = null;

  get linkVersion(): number {
    return this.version;
  }

  /** Fixes the negotiated version and parses whatever arrived behind VERSIONS. */
  set linkVersion(v: number) {
    this.version = v;
    if (this.buf.length > 0) this.push(new Uint8Array(0));
  }

  private deliver(c: { cell: Cell; raw: Uint8Array }): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(c);
    } else this.queue.push(c);
  }

  fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
    }
    if (this.dispatch) this.onFatal?.(e);
  }

  next(): Promise<{ cell: Cell; raw: Uint8Array }> {
    const c = this.queue.shift();
    if (c) return Promise.resolve(c);
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Hands queued and future cells to `fn` once the handshake is over. */
  startDispatch(fn: (cell: Cell) => void): void {
    this.dispatch = fn;
    for (const c of this.queue.splice(0)) fn(c.cell);
    if (this.failed) this.onFatal?.(this.failed);
  }
}
