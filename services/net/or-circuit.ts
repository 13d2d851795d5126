/**
 * Relay-side circuits (tor-spec §5–6): a circuit as an onion router sees
 * it, between the previous hop's channel and, once extended, the next's.
 *
 * Overview: a forward cell from the previous hop is decrypted with our
 * layer; if it is recognized it is for us (EXTEND2, BEGIN, onion-service
 * cells…), otherwise it goes on to the next hop, or closes the circuit if
 * there is none. A backward cell from the next hop gets our layer added
 * and goes back. DESTROY travels both ways with DESTROYED as the reason for
 * forwarded ones. A rendezvous point can splice two circuits: unrecognized
 * forward cells on one leave as backward cells on the other.
 *
 * Design notes: the relay's behaviours (exit, directory, intro point,
 * rendezvous point, HSDir) sit behind `OrCircuitOwner`, so this module only
 * knows cells, crypto, windows and limits.
 */
import { DestroyReason, type LinkMessage } from '../core/cells.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { LinkSpecifier } from '../core/link-specifiers.js';
import { MAX_RELAY_EARLY, RELAY_DATA_MAX, type RelayMessage } from '../core/relay-cell.js';
import type { RelayHopCrypto } from '../core/relay-crypto.js';
import type { Channel, CircuitCellHandler } from './channel.js';
import { CircuitEdge, decodeRelayCell, encodeRelayCell, encodeRelayCellInto } from './edge.js';
import type { SendBlocker } from './stream.js';
import { TypedEmitter } from './typed-emitter.js';

export interface OrCircuitOwner {
  /** A recognized relay message for this hop. */
  onRelayMessage(circ: OrCircuit, streamId: number, msg: RelayMessage, early: boolean): void;
  /** EXTEND2: open (or reuse) a channel to the relay named by the specifiers. */
  connectNext(specs: LinkSpecifier[]): Promise<Channel>;
  onClosed(circ: OrCircuit, reason: number): void;
}

export interface OrCircuitLimits {
  maxStreams: number;
  /**
   * Cells held per direction while the outgoing link is congested (C tor's
   * per-circuit cell queue). Windows keep an honest circuit near 1000; over
   * the limit the circuit closes with RESOURCELIMIT, not the whole channel.
   */
  maxQueuedCells?: number;
  /**
   * How long an extending relay waits for the next hop's CREATED2 before
   * giving up with TRUNCATED (TIMEOUT) toward the client, so a stalled next
   * hop cannot hold the circuit (and its pending CircID) forever.
   */
  extendTimeoutMs?: number;
  /** Lowest circuit SENDME version accepted (consensus sendme_accept_min_version; default 1, edge.ts). */
  sendmeAcceptMinVersion?: number;
  /** How long this circuit's exit streams waited to send, and for what (stream.ts SendBlocker). */
  onSendBlocked?: (reason: SendBlocker, seconds: number) => void;
}

export const DEFAULT_MAX_QUEUED_CELLS = 2000;
/** Longer than any honest handshake and link setup, shorter than a client's circuit build timeout cap. */
export const DEFAULT_EXTEND_TIMEOUT_MS = 30_000;

type QueuedCell = { type: 'RELAY' | 'RELAY_EARLY'; body: Uint8Array };

export interface OrCircuitEvents {
  closed: { reason: number };
}

export class OrCircuit extends TypedEmitter<OrCircuitEvents> {
  private next: { channel: Channel; circId: number } | null = null;
  private extending = false;
  /** The next hop's CircID while its CREATED2 is awaited. */
  private pendingNext: { channel: Channel; circId: number; settle: (m: LinkMessage) => void } | null = null;
  private relayEarlyIn = 0;
  private closedReason: number | null = null;
  /** KH from this hop's ntor handshake: binds ESTABLISH_INTRO to the circuit (rend-spec-v3 §3.1.1). */
  kh: Uint8Array | null = null;
  /** The other half of a rendezvous splice. */
  private splice: OrCircuit | null = null;
  readonly edge: CircuitEdge;
  readonly createdAt = Date.now();
  private readonly maxQueuedCells: number;
  private readonly extendTimeoutMs: number;
  /** Cells waiting for the next hop's / previous hop's link to drain. */
  private readonly forwardQueue: QueuedCell[] = [];
  private readonly backwardQueue: QueuedCell[] = [];

  constructor(
    readonly prevChannel: Channel,
    readonly prevCircId: number,
    private readonly hop: RelayHopCrypto,
    private readonly owner: OrCircuitOwner,
    limits: OrCircuitLimits,
    private readonly rng: Rng = randomBytes,
  ) {
    super();
    this.edge = new CircuitEdge(
      {
        send: (streamId, msg) => this.sendBackward(streamId, msg),
        lastSentDigest: () => this.hop.backwardDigest(),
        lastReceivedDigest: () => this.hop.forwardDigest(),
        linkWritable: () => this.backwardQueue.length === 0 && this.prevChannel.writable,
        protocolViolation: () => this.close(DestroyReason.PROTOCOL),
      },
      limits.maxStreams,
      limits.sendmeAcceptMinVersion,
      limits.onSendBlocked,
    );
    this.maxQueuedCells = limits.maxQueuedCells ?? DEFAULT_MAX_QUEUED_CELLS;
    this.extendTimeoutMs = limits.extendTimeoutMs ?? DEFAULT_EXTEND_TIMEOUT_MS;
    prevChannel.on('drain', this.onDrain);
  }

  /** Cells queued toward either neighbour (for tests and metrics). */
  get queuedCells(): number {
    return this.forwardQueue.length + this.backwardQueue.length;
  }

  /**
   * Since when this circuit has had cells queued without a break (null when
   * none are): the age of its oldest queued data, by which the
   * MaxMemInQueues handler picks circuits to close (C tor circuits_handle_oom).
   */
  queuedSince: number | null = null;

  private noteQueued(): void {
    this.queuedSince ??= Date.now();
  }

  /** Sends toward the next hop, queueing while its link is congested. */
  private toNext(cell: QueuedCell): void {
    const next = this.next;
    if (!next) return;
    if (this.forwardQueue.length === 0 && next.channel.writable) {
      next.channel.send(next.circId, cell);
      return;
    }
    this.forwardQueue.push(cell);
    this.noteQueued();
    if (this.forwardQueue.length > this.maxQueuedCells) this.close(DestroyReason.RESOURCELIMIT);
  }

  /** Sends toward the client, queueing while the previous hop's link is congested. */
  private toPrev(cell: QueuedCell): void {
    if (this.backwardQueue.length === 0 && this.prevChannel.writable) {
      this.prevChannel.send(this.prevCircId, cell);
      return;
    }
    this.backwardQueue.push(cell);
    this.noteQueued();
    if (this.backwardQueue.length > this.maxQueuedCells) this.close(DestroyReason.RESOURCELIMIT);
  }

  private flushQueue(queue: QueuedCell[], channel: Channel, circId: number): void {
    let n = 0;
    while (n < queue.length && channel.writable && this.isOpen) channel.send(circId, queue[n++]!);
    queue.splice(0, n);
    if (this.queuedCells === 0) this.queuedSince = null;
  }

  private readonly onNextDrain = (): void => {
    if (this.next) this.flushQueue(this.forwardQueue, this.next.channel, this.next.circId);
  };

  private setNext(next: { channel: Channel; circId: number } | null): void {
    this.next?.channel.off('drain', this.onNextDrain);
    this.forwardQueue.length = 0;
    this.next = next;
    next?.channel.on('drain', this.onNextDrain);
  }

  get isOpen(): boolean {
    return this.closedReason === null;
  }

  get hasNext(): boolean {
    return this.next !== null;
  }

  /** Handler for cells on the previous hop's channel. */
  readonly prevHandler: CircuitCellHandler = {
    onCell: (msg) => this.fromPrev(msg),
    onChannelClosed: () => this.closeFrom('prev', DestroyReason.CHANNEL_CLOSED),
  };

  private readonly nextHandler: CircuitCellHandler = {
    onCell: (msg) => this.fromNext(msg),
    onChannelClosed: () => this.closeFrom('next', DestroyReason.CHANNEL_CLOSED),
  };

  private fromPrev(msg: LinkMessage): void {
    switch (msg.type) {
      case 'RELAY':
      case 'RELAY_EARLY': {
        const early = msg.type === 'RELAY_EARLY';
        // tor-spec §5.6: more than 8 RELAY_EARLY cells closes the circuit.
        if (early && ++this.relayEarlyIn > MAX_RELAY_EARLY) {
          this.close(DestroyReason.PROTOCOL);
          return;
        }
        const body = msg.body;
        if (this.hop.decryptForward(body)) {
          const cell = decodeRelayCell(body);
          if (!cell) {
            this.close(DestroyReason.PROTOCOL);
            return;
          }
          if (!cell.msg) return;
          if (this.edge.handle(cell.streamId, cell.msg)) return;
          this.owner.onRelayMessage(this, cell.streamId, cell.msg, early);
          return;
        }
        if (this.splice) {
          this.splice.sendRawBackward(body);
          return;
        }
        if (!this.next) {
          this.close(DestroyReason.PROTOCOL);
          return;
        }
        // tor-spec §5.6: RELAY_EARLY stays RELAY_EARLY on the way forward.
        this.toNext(early ? { type: 'RELAY_EARLY', body } : { type: 'RELAY', body });
        return;
      }
      case 'DESTROY':
        this.closeFrom('prev', DestroyReason.DESTROYED);
        return;
      case 'CREATE2':
        // A second CREATE2 on a live CircID is a protocol violation.
        this.close(DestroyReason.PROTOCOL);
        return;
      default:
        return;
    }
  }

  private fromNext(msg: LinkMessage): void {
    switch (msg.type) {
      case 'RELAY':
        this.sendRawBackward(msg.body);
        return;
      case 'RELAY_EARLY':
        // Inbound RELAY_EARLY from the next hop is forbidden.
        this.close(DestroyReason.PROTOCOL);
        return;
      case 'DESTROY': {
        // tor-spec §5.4: the next hop vanished; tell the client with TRUNCATED and keep our part.
        const next = this.next;
        this.setNext(null);
        if (next) next.channel.unregister(next.circId);
        this.sendBackward(0, { type: 'TRUNCATED', reason: msg.reason });
        return;
      }
      default:
        return;
    }
  }

  /** Adds our layer to a body and sends it toward the client. */
  private sendRawBackward(body: Uint8Array): void {
    if (!this.isOpen) return;
    this.hop.encryptBackward(body, false);
    this.toPrev({ type: 'RELAY', body });
  }

  /**
   * Originates a relay message from this hop toward the client. Sent at once
   * (the usual case), the body is encoded, sealed and encrypted in the
   * link's send batch itself: an exit's DATA cells cost no buffer and no
   * copy each (issue 16); a body that must wait in the queue gets its own.
   */
  sendBackward(streamId: number, msg: RelayMessage): void {
    if (!this.isOpen) return;
    if (this.backwardQueue.length === 0 && this.prevChannel.writable) {
      const body = encodeRelayCellInto(streamId, msg, this.rng, this.reserveBackward);
      if (body) this.hop.encryptBackward(body, true);
      return;
    }
    const body = encodeRelayCell(streamId, msg, this.rng);
    this.hop.encryptBackward(body, true);
    this.toPrev({ type: 'RELAY', body });
  }

  /** Made once, not per cell sent. */
  private readonly reserveBackward = (): Uint8Array | null => this.prevChannel.reserveRelay(this.prevCircId);

  /** Handles EXTEND2: CREATE2 to the next hop, EXTENDED2 back (tor-spec §5.1.2). */
  async extend(specs: LinkSpecifier[], htype: number, hdata: Uint8Array, early: boolean): Promise<void> {
    if (!early || this.next || this.extending) {
      this.close(DestroyReason.PROTOCOL);
      return;
    }
    this.extending = true;
    let channel: Channel;
    try {
      channel = await this.owner.connectNext(specs);
    } catch {
      this.extending = false;
      this.close(DestroyReason.CONNECTFAILED);
      return;
    }
    if (!this.isOpen) return;
    const circId = channel.allocateCircId();
    let settle: (m: LinkMessage) => void = () => {};
    const created = new Promise<LinkMessage>((resolve) => {
      settle = resolve;
    });
    const pending: CircuitCellHandler = {
      onCell: (m) => settle(m),
      onChannelClosed: () => settle({ type: 'DESTROY', reason: DestroyReason.CHANNEL_CLOSED }),
    };
    if (!channel.register(circId, pending)) {
      this.extending = false;
      this.close(DestroyReason.RESOURCELIMIT);
      return;
    }
    // If we close before CREATED2 comes back, finish() releases the next hop's CircID.
    this.pendingNext = { channel, circId, settle };
    channel.send(circId, { type: 'CREATE2', htype, hdata });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      settle({ type: 'DESTROY', reason: DestroyReason.TIMEOUT });
    }, this.extendTimeoutMs);
    const reply = await created;
    clearTimeout(timer);
    this.pendingNext = null;
    this.extending = false;
    if (timedOut && this.isOpen) {
      // The next hop still holds the circuit: tell it we gave up, so a late CREATED2 finds nothing.
      channel.send(circId, { type: 'DESTROY', reason: DestroyReason.DESTROYED });
    }
    if (!this.isOpen) {
      if (reply.type === 'CREATED2') {
        channel.send(circId, { type: 'DESTROY', reason: DestroyReason.DESTROYED });
        channel.unregister(circId);
      }
      return;
    }
    if (reply.type !== 'CREATED2') {
      channel.unregister(circId);
      const reason = reply.type === 'DESTROY' ? reply.reason : DestroyReason.PROTOCOL;
      if (reply.type !== 'DESTROY') channel.send(circId, { type: 'DESTROY', reason: DestroyReason.PROTOCOL });
      this.sendBackward(0, { type: 'TRUNCATED', reason });
      return;
    }
    if (reply.hdata.length > RELAY_DATA_MAX - 2) {
      // As C tor: a reply that cannot be formatted as EXTENDED2 closes the circuit.
      channel.unregister(circId);
      channel.send(circId, { type: 'DESTROY', reason: DestroyReason.PROTOCOL });
      this.close(DestroyReason.PROTOCOL);
      return;
    }
    channel.register(circId, this.nextHandler);
    this.setNext({ channel, circId });
    this.sendBackward(0, { type: 'EXTENDED2', hdata: reply.hdata });
  }

  /** Joins this circuit with another at a rendezvous point (rend-spec-v3 §4.2). */
  spliceWith(other: OrCircuit): void {
    this.splice = other;
    other.splice = this;
  }

  /** TRUNCATE from the client: drop the next hop, answer TRUNCATED (tor-spec §5.4). */
  truncate(): void {
    if (this.next) {
      this.next.channel.send(this.next.circId, { type: 'DESTROY', reason: DestroyReason.REQUESTED });
      this.next.channel.unregister(this.next.circId);
      this.setNext(null);
    }
    this.sendBackward(0, { type: 'TRUNCATED', reason: DestroyReason.REQUESTED });
  }

  /** Closes the circuit in both directions with `reason` toward the client. */
  close(reason: number): void {
    if (!this.isOpen) return;
    this.prevChannel.send(this.prevCircId, { type: 'DESTROY', reason });
    this.finish('both', reason);
  }

  private closeFrom(side: 'prev' | 'next', reason: number): void {
    if (!this.isOpen) return;
    if (side === 'next') {
      this.setNext(null);
      this.prevChannel.send(this.prevCircId, { type: 'DESTROY', reason: DestroyReason.DESTROYED });
    }
    this.finish(side, reason);
  }

  /** Lets blocked streams send once the link drains; removed on close so dead circuits are not kept alive. */
  private readonly onDrain = (): void => {
    this.flushQueue(this.backwardQueue, this.prevChannel, this.prevCircId);
    if (this.backwardQueue.length === 0) this.edge.pump();
  };

  private finish(from: 'prev' | 'next' | 'both', reason: number): void {
    this.closedReason = reason;
    this.prevChannel.off('drain', this.onDrain);
    this.prevChannel.unregister(this.prevCircId);
    if (this.next) {
      if (from !== 'next')
        this.next.channel.send(this.next.circId, { type: 'DESTROY', reason: DestroyReason.DESTROYED });
      this.next.channel.unregister(this.next.circId);
      this.setNext(null);
    }
    this.backwardQueue.length = 0;
    const p = this.pendingNext;
    if (p) {
      this.pendingNext = null;
      p.channel.send(p.circId, { type: 'DESTROY', reason: DestroyReason.DESTROYED });
      p.channel.unregister(p.circId);
      p.settle({ type: 'DESTROY', reason: DestroyReason.DESTROYED });
    }
    this.edge.closeAll();
    const s = this.splice;
    this.splice = null;
    if (s) {
      s.splice = null;
      s.close(DestroyReason.DESTROYED);
    }
    this.owner.onClosed(this, reason);
    this.emit('closed', { reason });
  }
}
