/**
 * Streams (tor-spec §6.2–6.3, §7.4): one TCP-like byte stream multiplexed
 * on a circuit, exposed as a node Duplex so it pipes to sockets.
 *
 * Overview: writes are cut into RELAY_DATA cells of at most 498 bytes and
 * sent while the stream's package window (500, +50 per SENDME) and the
 * circuit's allow it. Received DATA is pushed to the reader; a stream
 * SENDME goes back only once the reader has taken the data (the window is
 * <= 450 and fewer than 10 cells' worth is queued), so a slow reader stops
 * the sender instead of growing our buffers: memory per stream stays
 * bounded by the window.
 *
 * Delivery is coalesced: the DATA cells that arrive in one turn of the event
 * loop (a link message carries up to 256 KiB of cells) reach the reader as
 * one chunk, pushed from a microtask. Pushed cell by cell, a stream piped
 * to a socket made one write() system call per 498 bytes, a quarter of a
 * relay's CPU time in a download (issue 16).
 *
 * Closing (tor-spec §6.3): an END closes the stream both ways, as C tor
 * treats it. The side that sends END first frees the stream's slot at once
 * and keeps its id half-closed until the peer's END (edge.ts); the side that
 * receives END answers with its own END, so neither side waits forever for
 * the other (an onion service that closed 256 streams first, unanswered,
 * refused every stream after them).
 *
 * Not in this module: circuit windows and crypto (the circuit owns them,
 * reached through `StreamHost`).
 */
import { Duplex } from 'node:stream';
import { ShallotError } from '../core/errors.js';
import {
  EndReason,
  RELAY_DATA_MAX,
  type RelayMessage,
  STREAMWINDOW_INCREMENT,
  STREAMWINDOW_START,
} from '../core/relay-cell.js';

/**
 * What held a stream's sender back: its own package window (tor-spec §7.4),
 * the circuit's (§7.3), or a congested link under the circuit (ws/TLS
 * buffer over LINK_HIGH_WATER, or cells queued behind one at a relay).
 */
export type SendBlocker = 'stream-window' | 'circuit-window' | 'link';

/** What a stream needs from its circuit. */
export interface StreamHost {
  sendStreamMessage(streamId: number, msg: RelayMessage): void;
  /** Why the circuit cannot take DATA now (its package window is empty or its link congested), or null if it can. */
  sendBlocker(): Exclude<SendBlocker, 'stream-window'> | null;
  /**
   * Called when a sender that had to wait may send again (or its stream
   * ends), with what held it and for how long: measures whether flow
   * control idles the path (issue 16). Per wait, never per cell.
   */
  onSendBlocked?(reason: SendBlocker, seconds: number): void;
  /** The stream is over here; `awaitingEnd`: we sent END first and the peer's END is still due. */
  streamClosed(streamId: number, awaitingEnd?: boolean): void;
}

export class StreamClosedError extends ShallotError {
  constructor(
    readonly reason: number,
    message: string,
  ) {
    super('ERR_STREAM_CLOSED', message, { reason });
  }
}

const QUEUED_LIMIT = 10 * RELAY_DATA_MAX;

export class RelayStream extends Duplex {
  private packageWindow = STREAMWINDOW_START;
  private deliverWindow = STREAMWINDOW_START;
  private blocked: { data: Uint8Array; cb: (err?: Error | null) => void } | null = null;
  /** What `blocked` waits for and since when (performance.now(), ms). */
  private blockedBy: SendBlocker = 'stream-window';
  private blockedAt = 0;
  private endSent = false;
  private endReceived = false;
  private released = false;
  /** DATA received this turn, pushed to the reader as one chunk by `flushInbound`. */
  private inbound: Uint8Array[] = [];
  private inboundBytes = 0;
  /** Set when the peer ended the stream; the END reason (DONE = 6 for a clean close). */
  endReason: number | null = null;
  /**
   * False while our BEGIN awaits CONNECTED: a refusal then belongs to whoever
   * awaits the BEGIN, so the stream closes without an 'error' nobody listens to.
   */
  connected = true;

  constructor(
    readonly streamId: number,
    private readonly host: StreamHost,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 64 * 1024 });
  }

  /* ---- called by the circuit ---- */

  /** A DATA cell for this stream arrived. Returns false on a window violation (caller closes the circuit). */
  deliver(data: Uint8Array): boolean {
    if (this.endReceived) return true;
    this.deliverWindow -= 1;
    if (this.deliverWindow < 0) return false;
    if (this.inbound.length === 0) queueMicrotask(() => this.flushInbound());
    this.inbound.push(data);
    this.inboundBytes += data.length;
    this.considerSendme();
    return true;
  }

  /** Hands the DATA received this turn to the reader in one chunk. */
  private flushInbound(): void {
    if (this.inbound.length === 0) return;
    const parts = this.inbound;
    this.inbound = [];
    this.inboundBytes = 0;
    if (this.destroyed || this.readableEnded) return;
    const one = parts[0]!;
    this.push(
      parts.length === 1 ? Buffer.from(one.buffer, one.byteOffset, one.byteLength) : Buffer.concat(parts),
    );
  }

  /** A stream-level SENDME arrived. */
  sendmeReceived(): boolean {
    this.packageWindow += STREAMWINDOW_INCREMENT;
    if (this.packageWindow > STREAMWINDOW_START) return false;
    this.pump();
    return true;
  }

  /** The peer sent END (or the circuit died): no more data either way. */
  remoteEnd(reason: number): void {
    if (this.endReceived) return;
    this.endReceived = true;
    this.endReason = reason;
    // END answers END (the peer then forgets its half-closed id); a refused BEGIN needs no answer.
    if (!this.endSent && this.connected)
      this.host.sendStreamMessage(this.streamId, { type: 'END', reason: EndReason.DONE });
    this.endSent = true;
    this.release(false);
    this.flushInbound();
    this.push(null);
    if (!this.connected) {
      this.destroy();
    } else if (reason === EndReason.DONE) {
      // A clean close: finish our writable side quietly.
      this.unblock()?.cb(new StreamClosedError(reason, 'stream ended by peer'));
      this.destroySoon();
    } else {
      this.destroy(new StreamClosedError(reason, `stream closed by peer (END reason ${reason})`));
    }
  }

  /** Circuit window or link opened: send what is waiting. */
  pump(): void {
    const b = this.unblock();
    if (b) this.writeData(b.data, b.cb);
  }

  /** Takes the waiting write, reporting how long it waited. */
  private unblock(): { data: Uint8Array; cb: (err?: Error | null) => void } | null {
    const b = this.blocked;
    if (!b) return null;
    this.blocked = null;
    this.host.onSendBlocked?.(this.blockedBy, (performance.now() - this.blockedAt) / 1000);
    return b;
  }

  /* ---- Duplex ---- */

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.endSent) {
      cb(new StreamClosedError(EndReason.DONE, 'write after end'));
      return;
    }
    this.writeData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), cb);
  }

  private writeData(data: Uint8Array, cb: (err?: Error | null) => void): void {
    let off = 0;
    while (off < data.length) {
      const blocker = this.packageWindow <= 0 ? 'stream-window' : this.host.sendBlocker();
      if (blocker) {
        this.blocked = { data: data.subarray(off), cb };
        this.blockedBy = blocker;
        this.blockedAt = performance.now();
        return;
      }
      // A view, not a copy: the circuit encodes it into a cell body before this returns.
      const piece = data.subarray(off, off + RELAY_DATA_MAX);
      off += piece.length;
      this.packageWindow -= 1;
      this.host.sendStreamMessage(this.streamId, { type: 'DATA', data: piece });
    }
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sendEnd(EndReason.DONE);
    cb();
  }

  override _read(): void {
    // The reader wants more. Node calls _read before it removes the chunk it is
    // handing out, and not again until we push: so here the queue check must not
    // hold the SENDME back, or a reader resuming after a pause waits forever.
    this.considerSendme(true);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.unblock()?.cb(err ?? new StreamClosedError(EndReason.MISC, 'stream destroyed'));
    this.sendEnd(EndReason.MISC);
    this.release(!this.endReceived);
    cb(err);
  }

  /**
   * Sends END once (clients send only MISC/DONE per tor-spec §6.3). Sent
   * first, it closes the stream both ways here: no more is read, and the
   * slot is free while the id waits for the peer's END.
   */
  sendEnd(reason: number): void {
    if (this.endSent) return;
    this.endSent = true;
    this.host.sendStreamMessage(this.streamId, { type: 'END', reason });
    if (!this.endReceived) {
      this.release(true);
      this.flushInbound();
      this.push(null);
    }
  }

  /** Tells the host once that the stream is over here. */
  private release(awaitingEnd: boolean): void {
    if (this.released) return;
    this.released = true;
    this.host.streamClosed(this.streamId, awaitingEnd);
  }

  private destroySoon(): void {
    if (!this.writableFinished && !this.destroyed) this.end();
  }

  private considerSendme(readerWaiting = false): void {
    while (
      !this.endReceived &&
      this.deliverWindow <= STREAMWINDOW_START - STREAMWINDOW_INCREMENT &&
      (readerWaiting || this.readableLength + this.inboundBytes < QUEUED_LIMIT)
    ) {
      this.deliverWindow += STREAMWINDOW_INCREMENT;
      this.host.sendStreamMessage(this.streamId, { type: 'SENDME', version: 0 });
    }
  }
}
