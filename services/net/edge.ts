/**
 * The edge of a circuit: where streams begin and end, and where the
 * circuit-level SENDME windows live (tor-spec §7.3–7.4). A client's circuit
 * has one edge at its last hop (or its onion-service virtual hop); an exit
 * or an onion service has one at its own end.
 *
 * Overview: DATA counts against the circuit package window (1000, +100 per
 * SENDME) and the stream windows (stream.ts). Every 100 DATA cells received
 * we answer with an authenticated SENDME v1 carrying the running digest of
 * the cell that triggered it; we remember the digest of every 100th DATA
 * cell we send and close the circuit if a SENDME does not match (tor-spec
 * §7.3.1).
 * A circuit SENDME older than `sendmeAcceptMinVersion` (prop 289; C tor's
 * consensus param sendme_accept_min_version, 1 on the live network) or newer
 * than we know closes the circuit too (C tor sendme.c
 * cell_version_can_be_handled). Stream-level SENDMEs carry no payload and
 * stay unauthenticated, as in Tor.
 *
 * Half-closed streams (tor-spec §6.3, C tor's half_edge): a stream that
 * sent END first leaves the stream table at once (its slot counts no more)
 * and its id waits in `halfClosed` for the peer's END, so in-flight DATA,
 * SENDME and END for it are dropped quietly and the id is not reused early;
 * an id whose END never comes is forgotten after HALF_CLOSED_MS.
 *
 * Not in this module: crypto and cell framing (the circuit passes in
 * `EdgeIo`), stream semantics (stream.ts).
 */
import { boundedParam } from '../core/consensus-param.js';
import { ctEqual, type Rng } from '../core/crypto.js';
import { InvalidError } from '../core/errors.js';
import {
  CIRCWINDOW_INCREMENT,
  CIRCWINDOW_START,
  decodeRelayCellBody,
  decodeRelayMessage,
  EndReason,
  encodeRelayCellBody,
  encodeRelayMessage,
  RELAY_DATA_MAX,
  RelayCommand,
  type RelayMessage,
} from '../core/relay-cell.js';
import { RelayStream, type SendBlocker, type StreamHost } from './stream.js';

/** prop 289: the highest SENDME version this code can check (C tor SENDME_MAX_SUPPORTED_VERSION). */
export const SENDME_MAX_SUPPORTED_VERSION = 1;
/**
 * Lowest circuit SENDME version accepted. C tor's code default is 0, but the
 * consensus has set sendme_accept_min_version=1 since 0.4.1 was the oldest
 * supported release; Shallot defaults to what the network enforces.
 */
export const SENDME_ACCEPT_MIN_VERSION_DEFAULT = 1;

/** The consensus param sendme_accept_min_version, clamped to [0, 255] as C tor does. */
export function sendmeAcceptMinVersion(params: Readonly<Record<string, number>> | undefined): number {
  return boundedParam(params ?? {}, 'sendme_accept_min_version', SENDME_ACCEPT_MIN_VERSION_DEFAULT, 0, 255);
}

/** How long a half-closed stream id waits for the peer's END before it may be reused. */
export const HALF_CLOSED_MS = 60_000;

/**
 * A relay message as the plaintext cell body an edge sends (random padding
 * from `rng`), before encryption; written into `out` when given (a reused
 * buffer for a body the link copies at once).
 */
export function encodeRelayCell(streamId: number, msg: RelayMessage, rng: Rng, out?: Uint8Array): Uint8Array {
  const { command, data } = encodeRelayMessage(msg);
  return encodeRelayCellBody({ command, streamId, data }, rng, out);
}

/**
 * `encodeRelayCell` into the body `reserve` hands out (a cell in the link's
 * send batch, reserveFixedCell), or null when it hands out none. Checked
 * before anything is reserved: a reserved body is sent whatever it holds,
 * so it must be written whole once taken.
 */
export function encodeRelayCellInto(
  streamId: number,
  msg: RelayMessage,
  rng: Rng,
  reserve: () => Uint8Array | null,
): Uint8Array | null {
  const { command, data } = encodeRelayMessage(msg);
  if (data.length > RELAY_DATA_MAX) {
    throw new InvalidError('relay cell', 'data over 498 bytes', { length: data.length });
  }
  const out = reserve();
  return out && encodeRelayCellBody({ command, streamId, data }, rng, out);
}

const KNOWN_RELAY_COMMANDS = new Set<number>(Object.values(RelayCommand));

/**
 * A recognized (decrypted) cell body as stream id and message, or null when
 * it does not decode: the circuit closes with a protocol error then. A
 * command no Tor version we know assigns gives `msg: null`, to be dropped:
 * C tor's handle_relay_cell_command logs "unknown relay command" and drops
 * the cell, so a newer peer's messages do not close the circuit.
 */
export function decodeRelayCell(body: Uint8Array): { streamId: number; msg: RelayMessage | null } | null {
  try {
    const cell = decodeRelayCellBody(body);
    if (!KNOWN_RELAY_COMMANDS.has(cell.command)) return { streamId: cell.streamId, msg: null };
    return { streamId: cell.streamId, msg: decodeRelayMessage(cell.command, cell.data) };
  } catch {
    return null;
  }
}

/** How the edge reaches its circuit. */
export interface EdgeIo {
  send(streamId: number, msg: RelayMessage): void;
  /** Running digest (20 bytes) after the last cell sent toward the peer edge. */
  lastSentDigest(): Uint8Array;
  /** Running digest (20 bytes) after the last cell received from the peer edge. */
  lastReceivedDigest(): Uint8Array;
  /** False while the link under the circuit is congested. */
  linkWritable(): boolean;
  /** Tear the circuit down for a protocol violation. */
  protocolViolation(why: string): void;
}

export class CircuitEdge implements StreamHost {
  readonly streams = new Map<number, RelayStream>();
  private packageWindow = CIRCWINDOW_START;
  private deliverWindow = CIRCWINDOW_START;
  private readonly sendmeDigests: Uint8Array[] = [];
  private nextStreamId = 1;
  /** Ids of streams that sent END first, with the time they may be forgotten (insertion order = deadline order). */
  private readonly halfClosed = new Map<number, number>();

  constructor(
    private readonly io: EdgeIo,
    private readonly maxStreams: number,
    private readonly minSendmeVersion: number = SENDME_ACCEPT_MIN_VERSION_DEFAULT,
    /** Told how long each of this edge's stream senders waited, and for what (stream.ts). */
    readonly onSendBlocked?: (reason: SendBlocker, seconds: number) => void,
  ) {}

  get streamCount(): number {
    return this.streams.size;
  }

  /** Streams that sent END and still wait for the peer's. */
  get halfClosedCount(): number {
    this.reapHalfClosed();
    return this.halfClosed.size;
  }

  private reapHalfClosed(): void {
    const now = Date.now();
    for (const [id, until] of this.halfClosed) {
      if (until > now) return;
      this.halfClosed.delete(id);
    }
  }

  /** True when the per-circuit stream cap is reached: a new stream would be refused. */
  get streamsFull(): boolean {
    return this.streams.size >= this.maxStreams;
  }

  /* ---- StreamHost ---- */

  sendStreamMessage(streamId: number, msg: RelayMessage): void {
    this.io.send(streamId, msg);
    if (msg.type === 'DATA') {
      this.packageWindow -= 1;
      // The peer answers the 100th, 200th, … DATA cell with a SENDME carrying its digest.
      if (this.packageWindow % CIRCWINDOW_INCREMENT === 0) this.sendmeDigests.push(this.io.lastSentDigest());
    }
  }

  canSendData(): boolean {
    return this.sendBlocker() === null;
  }

  sendBlocker(): 'circuit-window' | 'link' | null {
    if (this.packageWindow <= 0) return 'circuit-window';
    return this.io.linkWritable() ? null : 'link';
  }

  streamClosed(streamId: number, awaitingEnd = false): void {
    this.streams.delete(streamId);
    this.halfClosed.delete(streamId);
    if (awaitingEnd) this.halfClosed.set(streamId, Date.now() + HALF_CLOSED_MS);
  }

  /* ---- streams ---- */

  /** Allocates a stream id and registers a stream; null when the per-circuit limit is reached. */
  newStream(): RelayStream | null {
    if (this.streams.size >= this.maxStreams) return null;
    this.reapHalfClosed();
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextStreamId;
      this.nextStreamId = (this.nextStreamId % 0xffff) + 1;
      if (!this.streams.has(id) && !this.halfClosed.has(id)) {
        const s = new RelayStream(id, this);
        s.connected = false;
        this.streams.set(id, s);
        return s;
      }
    }
    return null;
  }

  /** Registers a stream the peer opened (BEGIN); null if the id is taken or the limit is hit. */
  acceptStream(streamId: number): RelayStream | null {
    if (streamId === 0 || this.streams.has(streamId) || this.streams.size >= this.maxStreams) return null;
    // The peer reusing an id we hold half-closed has seen our END: the old stream is gone for it too.
    this.halfClosed.delete(streamId);
    const s = new RelayStream(streamId, this);
    this.streams.set(streamId, s);
    return s;
  }

  /** Called after any SENDME or drain: lets blocked streams send. */
  pump(): void {
    for (const s of this.streams.values()) {
      if (!this.canSendData()) return;
      s.pump();
    }
  }

  /**
   * Handles the flow-control and stream messages of this edge. Returns false
   * for messages the circuit's owner must handle (BEGIN, CONNECTED, control).
   */
  handle(streamId: number, msg: RelayMessage): boolean {
    switch (msg.type) {
      case 'DATA': {
        this.deliverWindow -= 1;
        if (this.deliverWindow < 0) {
          this.io.protocolViolation('circuit deliver window below zero');
          return true;
        }
        if (this.deliverWindow <= CIRCWINDOW_START - CIRCWINDOW_INCREMENT) {
          this.deliverWindow += CIRCWINDOW_INCREMENT;
          this.io.send(0, { type: 'SENDME', version: 1, digest: this.io.lastReceivedDigest() });
        }
        const s = this.streams.get(streamId);
        // DATA for a stream we closed is dropped: it was in flight (tor-spec §6.3).
        if (s && !s.deliver(msg.data)) this.io.protocolViolation('stream deliver window below zero');
        return true;
      }
      case 'SENDME': {
        if (streamId === 0) {
          if (msg.version < this.minSendmeVersion || msg.version > SENDME_MAX_SUPPORTED_VERSION) {
            this.io.protocolViolation(`circuit SENDME version ${msg.version} not accepted`);
            return true;
          }
          const expected = this.sendmeDigests.shift();
          if (!expected || (msg.version === 1 && (!msg.digest || !ctEqual(msg.digest, expected)))) {
            this.io.protocolViolation('unexpected or unauthenticated circuit SENDME');
            return true;
          }
          this.packageWindow += CIRCWINDOW_INCREMENT;
          this.pump();
        } else {
          const s = this.streams.get(streamId);
          if (s && !s.sendmeReceived()) this.io.protocolViolation('stream SENDME overflow');
        }
        return true;
      }
      case 'CONNECTED': {
        // The stream is open from this cell on, not from when its opener's
        // await resumes (a later microtask): a target that speaks first and
        // closes has its DATA and END in the same link read, and an END seen
        // while `connected` was still false passed for a refused BEGIN,
        // destroying the stream with its data and leaving the application a
        // SOCKS success and nothing after it. The opener's waiter still gets
        // the cell (false).
        const s = this.streams.get(streamId);
        if (s) s.connected = true;
        return false;
      }
      case 'END': {
        const s = this.streams.get(streamId);
        if (!s) {
          // The answer to our END (or an END for a stream we never had).
          this.halfClosed.delete(streamId);
          return true;
        }
        this.streams.delete(streamId);
        s.remoteEnd(msg.reason);
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * The circuit is gone: every stream ends with the given reason, or quietly
   * (no 'error' event) when we closed the circuit ourselves.
   */
  closeAll(reason: number = EndReason.DESTROY, quiet = false): void {
    const all = [...this.streams.values()];
    this.streams.clear();
    this.halfClosed.clear();
    for (const s of all) {
      if (quiet) s.destroy();
      else s.remoteEnd(reason);
    }
  }
}
