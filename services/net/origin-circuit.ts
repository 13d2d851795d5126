/**
 * Origin circuits (tor-spec §5, §6): circuits this node built, as a client
 * or as an onion service.
 *
 * Overview: `OriginCircuit.create` sends CREATE2 (ntor, or ntor-v3 by option) to the
 * first hop;
 * `extend` sends EXTEND2 inside RELAY_EARLY to the last hop (at most 8
 * RELAY_EARLY cells per circuit). Relay cells are encrypted for a chosen
 * hop and peeled on the way back; the edge (edge.ts) at the last hop runs
 * streams and SENDME windows. An onion-service virtual hop can be added on
 * top (rend-spec-v3 §4.2) once hs-ntor has produced its keys.
 *
 * Design notes: everything the circuit learns arrives through `onCell`;
 * control messages (EXTENDED2, onion-service cells, BEGIN on a rendezvous
 * circuit) are delivered to waiters or emitted as events, so the client and
 * the onion service stay thin.
 *
 * Not in this module: waiting for control messages (message-waiters.ts),
 * the errors (circuit-error.ts), what a hop is (hop-target.ts).
 */

import { CELL_BODY_LEN, DestroyReason, type LinkMessage } from '../core/cells.js';
import { type ClientHandshake, type HandshakeName, startClientHandshake } from '../core/create-handshake.js';
import { legacyIdFromEd25519, type Rng, randomBytes } from '../core/crypto.js';
import { relayLinkSpecifiers } from '../core/link-specifiers.js';
import type { CircuitKeys } from '../core/ntor.js';
import { EndReason, formatBeginTarget, MAX_RELAY_EARLY, type RelayMessage } from '../core/relay-cell.js';
import { ClientCircuitCrypto, type HopCrypto, tor1Hop } from '../core/relay-crypto.js';
import type { Channel, CircuitCellHandler } from './channel.js';
import { CircuitError, StreamRefusedError } from './circuit-error.js';
import { CircuitEdge, decodeRelayCell, encodeRelayCell } from './edge.js';
import type { HopTarget } from './hop-target.js';
import { MessageWaiters } from './message-waiters.js';
import type { RelayStream } from './stream.js';
import { TypedEmitter } from './typed-emitter.js';

/** The body of a cell being sent: the channel copies it into its link's batch before `send` returns. */
const sendScratch = new Uint8Array(CELL_BODY_LEN);

export interface OriginCircuitEvents {
  destroyed: { reason: number; remote: boolean };
  /** A relay message this circuit's owner must handle (onion-service cells, BEGIN). */
  message: { hop: number; streamId: number; msg: RelayMessage };
}

export interface OriginCircuitOptions {
  rng?: Rng;
  maxStreams?: number;
  /** The CREATE2/EXTEND2 handshake for every hop (default ntor, HTYPE 2). */
  handshake?: HandshakeName;
  /** Lowest circuit SENDME version accepted (consensus sendme_accept_min_version; default 1). */
  sendmeAcceptMinVersion?: number;
}

export class OriginCircuit extends TypedEmitter<OriginCircuitEvents> implements CircuitCellHandler {
  readonly hops: HopTarget[] = [];
  private crypto = new ClientCircuitCrypto();
  /** The layers in `crypto`, kept so TRUNCATE can drop the far ones. */
  private readonly layers: HopCrypto[] = [];
  private edge: CircuitEdge;
  private edgeHop = -1;
  private relayEarlyLeft = MAX_RELAY_EARLY;
  private readonly waiters = new MessageWaiters();
  private createWaiter: {
    handshake: ClientHandshake;
    resolve: () => void;
    reject: (e: Error) => void;
  } | null = null;
  private destroyedReason: number | null = null;
  private readonly rng: Rng;
  private readonly maxStreams: number;
  private readonly handshake: HandshakeName;
  private readonly sendmeMinVersion: number | undefined;
  /** When this circuit was opened (for idle expiry and metrics). */
  readonly createdAt = Date.now();
  /** Streams ever opened on this circuit (for dirtiness rules). */
  streamsOpened = 0;
  /** KH of each ntor hop (tor-spec §5.2.2); null for virtual hops. */
  private readonly khs: (Uint8Array | null)[] = [];

  private constructor(
    readonly channel: Channel,
    readonly circId: number,
    opts: OriginCircuitOptions,
  ) {
    super();
    this.rng = opts.rng ?? randomBytes;
    this.maxStreams = opts.maxStreams ?? 256;
    this.handshake = opts.handshake ?? 'ntor';
    this.sendmeMinVersion = opts.sendmeAcceptMinVersion;
    this.edge = this.makeEdge();
    channel.on('drain', this.onDrain);
  }

  get isOpen(): boolean {
    return this.destroyedReason === null && this.channel.isOpen;
  }

  get length(): number {
    return this.crypto.length;
  }

  /** KH from the last hop's ntor handshake: an onion service MACs ESTABLISH_INTRO with it (rend-spec-v3 §3.1.1). */
  get lastHopKh(): Uint8Array | null {
    return this.khs[this.crypto.length - 1] ?? null;
  }

  /** Streams open at the edge now. */
  get streamCount(): number {
    return this.edge.streamCount;
  }

  /** Streams that sent END and wait for the peer's (edge.ts). */
  get halfClosedStreams(): number {
    return this.edge.halfClosedCount;
  }

  /** Opens a circuit to `first` over `channel` with CREATE2. */
  static async create(
    channel: Channel,
    first: HopTarget,
    opts: OriginCircuitOptions = {},
  ): Promise<OriginCircuit> {
    // Before anything is registered: a bad target key throws here and leaves nothing behind.
    const handshake = startClientHandshake(opts.handshake ?? 'ntor', opts.rng ?? randomBytes, first);
    const circId = channel.allocateCircId();
    const circ = new OriginCircuit(channel, circId, opts);
    if (!channel.register(circId, circ)) {
      channel.off('drain', circ.onDrain);
      throw new CircuitError(DestroyReason.RESOURCELIMIT, 'too many circuits on channel', 'limit');
    }
    const done = new Promise<void>((resolve, reject) => {
      circ.createWaiter = { handshake, resolve, reject };
    });
    channel.send(circId, { type: 'CREATE2', htype: handshake.htype, hdata: handshake.hdata });
    await done;
    circ.hops.push(first);
    return circ;
  }

  /** Extends the circuit by one hop with EXTEND2 (in RELAY_EARLY). */
  async extend(next: HopTarget): Promise<void> {
    if (this.relayEarlyLeft <= 0)
      throw new CircuitError(DestroyReason.PROTOCOL, 'out of RELAY_EARLY cells', 'limit');
    const handshake = startClientHandshake(this.handshake, this.rng, next);
    const specs = relayLinkSpecifiers({
      address: next.address,
      port: next.port,
      // tor-spec §5.1.2: the legacy id is required, and a C tor relay finds its peer by it.
      legacyId: next.legacyId ?? legacyIdFromEd25519(next.identity),
      ed25519Id: next.identity,
    });
    const last = this.crypto.length - 1;
    const reply = this.waitFor((hop, m) => hop === last && m.type === 'EXTENDED2');
    this.sendRelay(last, 0, { type: 'EXTEND2', specs, htype: handshake.htype, hdata: handshake.hdata }, true);
    const { msg } = await reply;
    if (msg.type !== 'EXTENDED2')
      throw new CircuitError(DestroyReason.PROTOCOL, 'unexpected reply to EXTEND2');
    let keys: CircuitKeys;
    try {
      keys = handshake.finish(msg.hdata);
    } catch (e) {
      this.destroy(DestroyReason.PROTOCOL);
      throw new CircuitError(
        DestroyReason.PROTOCOL,
        `EXTENDED2 handshake failed: ${(e as Error).message}`,
        'protocol',
      );
    }
    this.addLayer(tor1Hop(keys));
    this.hops.push(next);
    this.khs[this.crypto.length - 1] = keys.kh;
    this.setEdge(this.crypto.length - 1);
  }

  /** Adds an onion-service virtual hop (rend-spec-v3 §4.2) with keys from hs-ntor. */
  addVirtualHop(hop: HopCrypto, label: HopTarget): void {
    this.addLayer(hop);
    this.khs[this.crypto.length - 1] = null;
    this.hops.push(label);
    this.setEdge(this.crypto.length - 1);
  }

  private addLayer(hop: HopCrypto): void {
    this.crypto.addHop(hop);
    this.layers.push(hop);
  }

  /**
   * TRUNCATE (tor-spec §5.4): asks hop `keep - 1` to drop everything after
   * it and resolves on its TRUNCATED; the circuit can then be extended again.
   */
  async truncate(keep: number): Promise<void> {
    if (!Number.isInteger(keep) || keep < 1 || keep >= this.crypto.length) {
      throw new CircuitError(
        DestroyReason.INTERNAL,
        `cannot truncate ${this.crypto.length} hops to ${keep}`,
        'protocol',
      );
    }
    const hop = keep - 1;
    const reply = this.waitFor((h, m) => h === hop && m.type === 'TRUNCATED');
    this.sendControl({ type: 'TRUNCATE' }, hop);
    await reply;
    const crypto = new ClientCircuitCrypto();
    this.layers.splice(keep);
    for (const l of this.layers) crypto.addHop(l);
    this.crypto = crypto;
    this.hops.splice(keep);
    this.khs.splice(keep);
    if (this.edgeHop >= keep) this.setEdge(hop);
  }

  private setEdge(hop: number): void {
    this.edge.closeAll(EndReason.DESTROY);
    this.edgeHop = hop;
    this.edge = this.makeEdge();
  }

  private makeEdge(): CircuitEdge {
    return new CircuitEdge(
      {
        send: (streamId, msg) => this.sendRelay(this.edgeHop, streamId, msg),
        lastSentDigest: () => this.crypto.forwardDigest(this.edgeHop),
        lastReceivedDigest: () => this.crypto.backwardDigest(this.edgeHop),
        linkWritable: () => this.channel.writable,
        protocolViolation: () => this.destroy(DestroyReason.PROTOCOL),
      },
      this.maxStreams,
      this.sendmeMinVersion,
    );
  }

  /** Encrypts a relay message for `hop` and sends it. */
  sendRelay(hop: number, streamId: number, msg: RelayMessage, early = false): void {
    if (!this.isOpen) return;
    // One reused body: the channel copies it into the link's batch before send returns (issue 16).
    const body = encodeRelayCell(streamId, msg, this.rng, sendScratch);
    this.crypto.encryptForward(body, hop);
    if (early && this.relayEarlyLeft > 0) {
      this.relayEarlyLeft -= 1;
      this.channel.send(this.circId, { type: 'RELAY_EARLY', body });
    } else {
      this.channel.send(this.circId, { type: 'RELAY', body });
    }
  }

  /** Sends a circuit-control message (StreamID 0) to the last hop. */
  sendControl(msg: RelayMessage, hop = this.crypto.length - 1): void {
    this.sendRelay(hop, 0, msg);
  }

  /** Resolves with the next relay message matching `match`; rejects if the circuit dies or time runs out. */
  waitFor(
    match: (hop: number, msg: RelayMessage, streamId: number) => boolean,
    timeoutMs = 30_000,
  ): Promise<{ hop: number; msg: RelayMessage }> {
    if (!this.isOpen) return Promise.reject(new CircuitError(this.destroyedReason ?? 0, 'circuit is closed'));
    return this.waiters.add(match, timeoutMs);
  }

  /** Opens a stream to host:port (or ":port" on a rendezvous circuit) through the edge hop. */
  async openStream(target: { host: string; port: number }, timeoutMs = 30_000): Promise<RelayStream> {
    return this.beginStream({ type: 'BEGIN', target: formatBeginTarget(target), flags: 0 }, timeoutMs);
  }

  /** Opens a BEGIN_DIR stream to the edge hop's directory service. */
  async openDirStream(timeoutMs = 30_000): Promise<RelayStream> {
    return this.beginStream({ type: 'BEGIN_DIR' }, timeoutMs);
  }

  private async beginStream(begin: RelayMessage, timeoutMs: number): Promise<RelayStream> {
    const stream = this.edge.newStream();
    if (!stream) throw new CircuitError(0, 'too many streams on circuit', 'limit');
    this.streamsOpened += 1;
    const id = stream.streamId;
    const reply = this.waitFor(
      (hop, m, streamId) =>
        hop === this.edgeHop && streamId === id && (m.type === 'CONNECTED' || m.type === 'END'),
      timeoutMs,
    );
    // CONNECTED and an END with an error reason can come in one link read
    // (edge.ts marks the stream open at CONNECTED): the stream's 'error' then
    // fires before this await resumes, when no caller listens yet. The caller
    // sees `destroyed` instead.
    const beforeCaller = () => {};
    stream.on('error', beforeCaller);
    this.edge.sendStreamMessage(id, begin);
    let res: { msg: RelayMessage };
    try {
      res = await reply;
    } catch (e) {
      stream.destroy();
      throw e;
    } finally {
      stream.off('error', beforeCaller);
    }
    if (res.msg.type === 'END') {
      this.edge.streamClosed(id);
      throw new StreamRefusedError(res.msg.reason);
    }
    return stream;
  }

  /** Accepts a stream the far end opened with BEGIN (an onion service's rendezvous circuit). */
  acceptStream(streamId: number): RelayStream | null {
    const s = this.edge.acceptStream(streamId);
    if (s) this.edge.sendStreamMessage(streamId, { type: 'CONNECTED' });
    return s;
  }

  /** Refuses a BEGIN with END. */
  refuseStream(streamId: number, reason: number): void {
    this.sendRelay(this.edgeHop, streamId, { type: 'END', reason });
  }

  /* ---- CircuitCellHandler ---- */

  onCell(msg: LinkMessage): void {
    switch (msg.type) {
      case 'CREATED2': {
        const w = this.createWaiter;
        if (!w) {
          this.destroy(DestroyReason.PROTOCOL);
          return;
        }
        this.createWaiter = null;
        try {
          const keys = w.handshake.finish(msg.hdata);
          this.addLayer(tor1Hop(keys));
          this.khs[0] = keys.kh;
          this.edgeHop = 0;
          w.resolve();
        } catch (e) {
          this.destroy(DestroyReason.PROTOCOL);
          w.reject(
            new CircuitError(
              DestroyReason.PROTOCOL,
              `CREATED2 handshake failed: ${(e as Error).message}`,
              'protocol',
            ),
          );
        }
        return;
      }
      case 'RELAY':
      case 'RELAY_EARLY': {
        // tor-spec §5.6: a client must close a circuit on an inbound RELAY_EARLY.
        if (msg.type === 'RELAY_EARLY') {
          this.destroy(DestroyReason.PROTOCOL);
          return;
        }
        const body = msg.body;
        const rec = this.crypto.decryptBackward(body);
        if (!rec) {
          this.destroy(DestroyReason.PROTOCOL);
          return;
        }
        const cell = decodeRelayCell(body);
        if (!cell) {
          this.destroy(DestroyReason.PROTOCOL);
          return;
        }
        if (cell.msg) this.onRelayMessage(rec.hop, cell.streamId, cell.msg);
        return;
      }
      case 'DESTROY':
        this.closeLocal(msg.reason, true);
        return;
      default:
        return;
    }
  }

  private onRelayMessage(hop: number, streamId: number, msg: RelayMessage): void {
    if (hop === this.edgeHop && this.edge.handle(streamId, msg)) {
      // END also answers a pending BEGIN: let its waiter see it.
      if (msg.type !== 'END') return;
    }
    if (this.waiters.deliver(hop, streamId, msg)) return;
    if (msg.type === 'TRUNCATED') {
      // Unasked for: a hop beyond `hop` is gone. Like C tor, close the circuit, keeping the reason.
      if (this.destroyedReason === null)
        this.channel.send(this.circId, { type: 'DESTROY', reason: DestroyReason.NONE });
      this.closeLocal(msg.reason, true);
      return;
    }
    if (msg.type === 'END' || msg.type === 'SENDME' || msg.type === 'DATA') return;
    this.emit('message', { hop, streamId, msg });
  }

  onChannelClosed(): void {
    this.closeLocal(DestroyReason.CHANNEL_CLOSED, true);
  }

  /** Tears the circuit down, telling the first hop (clients send reason NONE per tor-spec §5.4). */
  destroy(reason: number = DestroyReason.NONE): void {
    if (this.destroyedReason !== null) return;
    this.channel.send(this.circId, { type: 'DESTROY', reason: DestroyReason.NONE });
    this.closeLocal(reason, false);
  }

  /** Lets blocked streams send once the link drains; removed on close so dead circuits are not kept alive. */
  private readonly onDrain = (): void => this.edge.pump();

  private closeLocal(reason: number, remote: boolean): void {
    if (this.destroyedReason !== null) return;
    this.destroyedReason = reason;
    this.channel.off('drain', this.onDrain);
    this.channel.unregister(this.circId);
    this.edge.closeAll(EndReason.DESTROY, !remote);
    const err = new CircuitError(reason, `circuit destroyed (reason ${reason})`);
    this.createWaiter?.reject(err);
    this.createWaiter = null;
    this.waiters.rejectAll(err);
    this.emit('destroyed', { reason, remote });
  }
}
