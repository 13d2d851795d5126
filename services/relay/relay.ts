/**
 * The relay: accepts links, answers CREATE2 with ntor, forwards cells,
 * extends circuits, exits to targets its policy allows, serves directory
 * requests over BEGIN_DIR, and (onion-service roles) acts as intro point,
 * rendezvous point and HSDir.
 *
 * Overview: one `Relay` per node; many can share a process (the local
 * launcher and the integration tests do this). It publishes a signed
 * descriptor to every authority at start and periodically, and keeps a
 * verified copy of the consensus for BEGIN_DIR clients.
 *
 * Not in this module: cell crypto and circuit state (services/net),
 * documents (services/core/dir/), directory HTTP (net/dir-client.ts).
 */

import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { DestroyReason, destroyReasonName, type LinkMessage } from '../core/cells.js';
import { boundedParam } from '../core/consensus-param.js';
import { handshakeName } from '../core/create-handshake.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { ConsensusRelay } from '../core/dir/relay-entry.js';
import type { ExitPolicy } from '../core/exit-policy.js';
import { HS_DESC_MAX_LEN } from '../core/hs-descriptor.js';
import type { LinkSpecifier } from '../core/link-specifiers.js';
import type { NodeKeys } from '../core/node-keys.js';
import type { CircuitKeys } from '../core/ntor.js';
import { EndReason, parseBeginTarget, type RelayMessage, type StreamTarget } from '../core/relay-cell.js';
import { tor1RelayHop } from '../core/relay-crypto.js';
import {
  checkExtendSpecs,
  type ExtendRefusal,
  ExtendRefusedError,
  type ExtendTarget,
} from '../core/relay-pivot.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { Channel } from '../net/channel.js';
import { ChannelPool } from '../net/channel-pool.js';
import { type DirRequest, type DirRequestLine, type DirResponse, serveDirRequest } from '../net/dir-http.js';
import { sendmeAcceptMinVersion } from '../net/edge.js';
import type { LinkShaping } from '../net/link-delay.js';
import type { ChannelLimits } from '../net/link-handshake.js';
import { createLinkKeys, type LinkKeys } from '../net/link-keys.js';
import { DEFAULT_MAX_QUEUED_CELLS, OrCircuit, type OrCircuitOwner } from '../net/or-circuit.js';
import type { SendBlocker } from '../net/stream.js';
import { type LinkServer, linkUrl, listenLinks } from '../net/transport.js';
import type { Logger } from '../runtime/log.js';
import {
  ChannelGuard,
  DEFAULT_IDLE_CLIENT_CHANNEL_MS,
  DEFAULT_IDLE_RELAY_CHANNEL_MS,
  DEFAULT_PARTIAL_CELL_MS,
} from './channel-guard.js';
import { clientDosParams } from './client-dos.js';
import { onionskinExecutor } from './cpuworker.js';
import { type ExitGuards, openExitStream } from './exit.js';
import { type ExitSockets, processExitSockets } from './exit-sockets.js';
import { DEFAULT_MAX_ONION_QUEUE_DELAY_MS, OnionskinQueue } from './onionskin-queue.js';
import { processQueueMemory, type QueueMemory, type QueueMemorySource } from './queue-memory.js';
import { StreamDos, streamDosParams } from './stream-dos.js';

export interface RelayLimits {
  channel: Partial<ChannelLimits>;
  /**
   * Streams open at once on one circuit at this edge (default 512); over it,
   * END RESOURCELIMIT. C tor has no such cap at exits (only the 16-bit stream
   * ids; HiddenServiceMaxStreams for services); Shallot keeps one so a single
   * circuit cannot hold thousands of exit sockets.
   */
  maxStreamsPerCircuit: number;
  /** Cells a circuit may hold per direction while a link is congested; over it, DESTROY RESOURCELIMIT. */
  maxQueuedCellsPerCircuit: number;
  /** Base idle timeout of a client's channel without circuits (channel-guard.ts; C tor 180 s). */
  idleClientChannelMs: number;
  /** Base idle timeout of a listed relay's channel without circuits (C tor nf_conntimeout_relays, 3600 s). */
  idleRelayChannelMs: number;
  /** A peer stalled this long in the middle of a cell loses its link. */
  partialCellMs: number;
}

/** How often the channel guard looks for idle and stalled channels. */
const SWEEP_MS = 5_000;

export interface RelayOptions {
  nickname: string;
  /** Address to bind and advertise. */
  host: string;
  /** Link port; 0 picks a free one. */
  port: number;
  /** `wss` (true, default) or plain `ws` for debugging. */
  tls: boolean;
  keys: NodeKeys;
  exitPolicy: ExitPolicy;
  limits?: Partial<RelayLimits>;
  /** Network-model latency and BandwidthRate on this relay's links, both ways they are opened (net/link-delay.ts). */
  shaping?: LinkShaping | null;
}

export interface RelayComponents extends ExitGuards {
  logger: Logger;
  registry: Registry;
  rng?: Rng;
  /** Answers directory requests on BEGIN_DIR streams (consensus cache, HSDir). */
  directory?: (req: DirRequest, circ: OrCircuit) => Promise<DirResponse> | DirResponse;
  /** Handles onion-service relay cells (intro point, rendezvous point). */
  onionRoles?: (circ: OrCircuit, streamId: number, msg: RelayMessage) => boolean;
  /** The params of the latest verified consensus (DoS* limits); none: Shallot's defaults. */
  consensusParams?: () => Record<string, number>;
  /** The MaxMemInQueues handler to register with (default: the process-wide one, queue-memory.ts). */
  queueMemory?: QueueMemory;
  /** The exit socket cap to draw from (default: the process-wide one, exit-sockets.ts). */
  exitSockets?: ExitSockets;
  /**
   * Whether the consensus lists an EXTEND2 target at that identity, address
   * and ORPort (core/relay-pivot.ts): null to go ahead, else why not.
   * RelayNode supplies it; a bare Relay (in-process tests) extends wherever
   * the specifiers say.
   */
  checkExtend?: (target: ExtendTarget) => Promise<ExtendRefusal | null>;
  /** The consensus entry for a relay identity: undefined when unlisted, null with no consensus. */
  listedRelay?: (identity: Uint8Array) => Promise<ConsensusRelay | undefined | null>;
}

const DEFAULT_LIMITS: RelayLimits = {
  channel: {},
  maxStreamsPerCircuit: 512,
  maxQueuedCellsPerCircuit: DEFAULT_MAX_QUEUED_CELLS,
  idleClientChannelMs: DEFAULT_IDLE_CLIENT_CHANNEL_MS,
  idleRelayChannelMs: DEFAULT_IDLE_RELAY_CHANNEL_MS,
  partialCellMs: DEFAULT_PARTIAL_CELL_MS,
};

export class Relay implements OrCircuitOwner {
  private server: LinkServer | null = null;
  private keys: NodeKeys;
  private linkKeys: LinkKeys;
  private readonly pool: ChannelPool;
  private readonly circuits = new Set<OrCircuit>();
  private readonly inbound = new Set<Channel>();
  private readonly limits: RelayLimits;
  private readonly rng: Rng;
  private readonly m: Metrics['relay'];
  private readonly label: { relay: string };
  private readonly streamDos = new StreamDos();
  private readonly guard: ChannelGuard;
  private readonly onionskins: OnionskinQueue;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly queueMemory: QueueMemory;
  private readonly memorySource: QueueMemorySource = {
    circuits: () => this.circuits,
    channels: () => new Set([...this.inbound, ...this.pool.channels()]),
    onOom: () => this.m.dosRefusals.labels({ ...this.label, defense: 'oom' }).inc(),
  };

  constructor(
    private readonly c: RelayComponents,
    readonly opts: RelayOptions,
  ) {
    this.keys = opts.keys;
    this.rng = c.rng ?? randomBytes;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.linkKeys = createLinkKeys(
      { seed: opts.keys.identitySeed, public: opts.keys.identity },
      { rng: this.rng },
    );
    this.pool = new ChannelPool({
      keys: this.linkKeys,
      tls: opts.tls,
      limits: this.limits.channel,
      rng: this.rng,
      shaping: opts.shaping ?? null,
      onChannel: (ch) => this.watchChannel(ch, 'outbound'),
    });
    this.m = metricsFor(c.registry).relay;
    this.label = { relay: opts.nickname };
    this.queueMemory = c.queueMemory ?? processQueueMemory;
    const params = () => this.c.consensusParams?.() ?? {};
    this.guard = new ChannelGuard({
      ownAddress: opts.host,
      params: () => clientDosParams(params()),
      ...(c.listedRelay ? { isListedRelay: async (id: Uint8Array) => !!(await c.listedRelay?.(id)) } : {}),
      idleClientMs: this.limits.idleClientChannelMs,
      idleRelayMs: this.limits.idleRelayChannelMs,
      partialCellMs: this.limits.partialCellMs,
      refused: (defense) => this.m.dosRefusals.labels({ ...this.label, defense }).inc(),
    });
    // Seeded RNGs (tests replaying handshakes) need the handshake on this thread.
    const exec = onionskinExecutor(this.rng, this.rng !== randomBytes);
    this.onionskins = new OnionskinQueue(exec.execute, exec.concurrency, () =>
      boundedParam(params(), 'MaxOnionQueueDelay', DEFAULT_MAX_ONION_QUEUE_DELAY_MS, 0, 2 ** 31 - 1),
    );
  }

  get nickname(): string {
    return this.opts.nickname;
  }

  get identity(): Uint8Array {
    return this.keys.identity;
  }

  /** For signing descriptors; never leaves the process. */
  get identitySeed(): Uint8Array {
    return this.keys.identitySeed;
  }

  get linkUrl(): string {
    return linkUrl(this.opts.host, this.port, this.opts.tls);
  }

  get ntorKey(): Uint8Array {
    return this.keys.onionKeys[0]!.public;
  }

  get port(): number {
    if (!this.server) throw new Error('relay not started');
    return this.server.port;
  }

  get activeCircuits(): number {
    return this.circuits.size;
  }

  /** Streams open at this relay's edges (exit and BEGIN_DIR streams). */
  get activeStreams(): number {
    let n = 0;
    for (const c of this.circuits) n += c.edge.streamCount;
    return n;
  }

  /** Streams at this relay's edges that sent END and wait for the client's. */
  get halfClosedStreams(): number {
    let n = 0;
    for (const c of this.circuits) n += c.edge.halfClosedCount;
    return n;
  }

  /** Replaces the node keys (onion-key rotation); circuits keep their keys. */
  setKeys(keys: NodeKeys): void {
    this.keys = keys;
  }

  async start(): Promise<void> {
    this.server = await listenLinks(
      {
        host: this.opts.host,
        port: this.opts.port,
        tls: this.opts.tls ? this.linkKeys.tls : null,
        shaping: this.opts.shaping ?? null,
      },
      (link) => {
        if (!this.guard.accept(link)) {
          link.destroy();
          return;
        }
        Channel.respond(link, {
          keys: this.linkKeys,
          address: this.opts.host,
          limits: this.limits.channel,
          rng: this.rng,
        }).then(
          (ch) => {
            this.inbound.add(ch);
            ch.on('closed', () => this.inbound.delete(ch));
            this.pool.adopt(ch);
            this.guard.adopt(ch);
            this.watchChannel(ch, 'inbound');
          },
          (e: Error) => this.c.logger.debug('inbound link handshake failed', { error: e.message }),
        );
      },
    );
    this.sweepTimer = setInterval(() => {
      this.guard.sweep();
      this.m.dosClients.labels(this.label).set(this.guard.trackedClients);
      this.m.queueMemory.set(this.queueMemory.lastTotal);
      this.m.edgeStreams.labels({ ...this.label, state: 'open' }).set(this.activeStreams);
      this.m.edgeStreams.labels({ ...this.label, state: 'half_closed' }).set(this.halfClosedStreams);
    }, SWEEP_MS);
    this.sweepTimer.unref();
    this.queueMemory.add(this.memorySource);
    this.c.logger.info(`relay ${this.opts.nickname} listening`, { port: this.server.port });
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.queueMemory.remove(this.memorySource);
    for (const circ of [...this.circuits]) circ.close(DestroyReason.HIBERNATING);
    for (const ch of this.inbound) ch.close('relay shutting down');
    this.pool.closeAll();
    await this.server?.close();
    this.server = null;
  }

  private watchChannel(ch: Channel, direction: 'inbound' | 'outbound'): void {
    const gauge = this.m.channelsActive.labels({ ...this.label, direction });
    gauge.inc();
    ch.on('closed', () => gauge.dec());
    ch.on('cell', ({ circId, msg }) => this.onUnclaimedCell(ch, circId, msg));
    const cells = {
      in: this.m.cells.labels({ ...this.label, direction: 'in' }),
      out: this.m.cells.labels({ ...this.label, direction: 'out' }),
    };
    const bytes = {
      in: this.m.bytes.labels({ ...this.label, direction: 'in' }),
      out: this.m.bytes.labels({ ...this.label, direction: 'out' }),
    };
    // Summed here and added to the counters once per event-loop turn: a
    // counter bumped per cell (label hashing in prom-client) cost about 5 %
    // of a relay's CPU time in a download (issue 16).
    const sum = { in: { cells: 0, bytes: 0 }, out: { cells: 0, bytes: 0 } };
    let flushScheduled = false;
    const flush = () => {
      flushScheduled = false;
      for (const dir of ['in', 'out'] as const) {
        if (sum[dir].cells === 0) continue;
        cells[dir].inc(sum[dir].cells);
        bytes[dir].inc(sum[dir].bytes);
        sum[dir].cells = 0;
        sum[dir].bytes = 0;
      }
    };
    ch.onTraffic = (dir, n) => {
      sum[dir].cells += 1;
      sum[dir].bytes += n;
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };
  }

  /**
   * Cells for CircIDs without a circuit: CREATE2 opens one; the rest are
   * dropped (tor-spec §5). A CREATE2 passes the circuit-creation defence,
   * claims its CircID, and waits in the onionskin queue for a cpuworker;
   * cells that arrive for that CircID meanwhile are dropped, as C tor drops
   * cells for a circuit still in its onionskin state.
   */
  private onUnclaimedCell(ch: Channel, circId: number, msg: LinkMessage): void {
    if (msg.type !== 'CREATE2') {
      // A DESTROY for a circuit we already closed is normal; anything else is dropped.
      return;
    }
    const type = handshakeName(msg.htype);
    const count = (action: string) => this.m.onionskins.labels({ ...this.label, type, action }).inc();
    const refuse = (reason: number) => {
      ch.send(circId, { type: 'DESTROY', reason });
      this.countDestroy(reason);
    };
    if (!ch.peerCircIdValid(circId)) {
      refuse(DestroyReason.PROTOCOL);
      return;
    }
    if (this.guard.onCreate(ch) === 'refuse') {
      count('refused');
      refuse(DestroyReason.RESOURCELIMIT);
      return;
    }
    let cancelled = false;
    const claim = {
      onCell: () => {},
      onChannelClosed: () => {
        cancelled = true;
      },
    };
    if (!ch.register(circId, claim)) {
      count('dropped');
      refuse(DestroyReason.RESOURCELIMIT);
      return;
    }
    this.onionskins.add(ch, {
      req: {
        htype: msg.htype,
        hdata: msg.hdata,
        keys: {
          identity: this.keys.identity,
          onionKeys: this.keys.onionKeys.map((k) => ({ secret: k.secret, public: k.public })),
        },
      },
      done: (result) => {
        this.m.onionskinQueue.labels(this.label).set(this.onionskins.length);
        if (cancelled || !ch.isOpen) return;
        if (result instanceof Error) {
          // An unknown HTYPE and a failed handshake both end in DESTROY PROTOCOL (tor-spec §5.1.2).
          ch.unregister(circId);
          count('failed');
          refuse(DestroyReason.PROTOCOL);
          return;
        }
        this.openCircuit(ch, circId, result.keys, result.reply);
        count('processed');
      },
      shed: () => {
        if (cancelled || !ch.isOpen) return;
        ch.unregister(circId);
        count('shed');
        refuse(DestroyReason.RESOURCELIMIT);
      },
    });
    this.m.onionskinQueue.labels(this.label).set(this.onionskins.length);
  }

  /** Per wait of an exit stream's sender (stream.ts), not per cell. */
  private readonly onSendBlocked = (reason: SendBlocker, seconds: number): void => {
    this.m.streamSendBlocked.labels({ ...this.label, reason }).inc(seconds);
  };

  /** The onionskin was answered: the circuit takes over its claimed CircID and CREATED2 goes back. */
  private openCircuit(ch: Channel, circId: number, keys: CircuitKeys, reply: Uint8Array): void {
    const circ = new OrCircuit(
      ch,
      circId,
      tor1RelayHop(keys),
      this,
      {
        maxStreams: this.limits.maxStreamsPerCircuit,
        maxQueuedCells: this.limits.maxQueuedCellsPerCircuit,
        sendmeAcceptMinVersion: sendmeAcceptMinVersion(this.c.consensusParams?.()),
        onSendBlocked: this.onSendBlocked,
      },
      this.rng,
    );
    ch.register(circId, circ.prevHandler);
    circ.kh = keys.kh;
    this.circuits.add(circ);
    this.m.circuitsActive.labels(this.label).set(this.circuits.size);
    ch.send(circId, { type: 'CREATED2', hdata: reply });
  }

  private countDestroy(reason: number): void {
    this.m.destroy.labels({ ...this.label, reason: destroyReasonName(reason) }).inc();
  }

  /* ---- OrCircuitOwner ---- */

  onRelayMessage(circ: OrCircuit, streamId: number, msg: RelayMessage, early: boolean): void {
    switch (msg.type) {
      case 'EXTEND2':
        // A bug here must cost one circuit, never the process (an unhandled rejection would end it).
        circ.extend(msg.specs, msg.htype, msg.hdata, early).catch(() => circ.close(DestroyReason.INTERNAL));
        return;
      case 'TRUNCATE':
        circ.truncate();
        return;
      case 'BEGIN': {
        let target: StreamTarget;
        try {
          target = parseBeginTarget(msg.target);
        } catch {
          circ.sendBackward(streamId, { type: 'END', reason: EndReason.TORPROTOCOL });
          return;
        }
        if (!this.admitStream(circ, streamId, 'BEGIN')) return;
        // The process-wide exit socket cap (exit-sockets.ts): a slot is taken
        // now and given back when the socket closes, or at once if none opened.
        const sockets = this.c.exitSockets ?? processExitSockets;
        if (!sockets.tryTake(circ)) {
          this.refuseStream(circ, streamId, 'BEGIN', 'exit_sockets');
          return;
        }
        let socketOpened = false;
        const onExitSocket = (socket: Socket) => {
          socketOpened = true;
          socket.once('close', () => sockets.release(circ));
        };
        openExitStream(circ, streamId, target, this.opts.exitPolicy, { ...this.c, onExitSocket }).then(
          ({ outcome }) => {
            if (!socketOpened) sockets.release(circ);
            this.m.streams.labels({ ...this.label, type: 'BEGIN', outcome }).inc();
            // BEGINs still resolving when the cap filled: refused at acceptStream.
            if (outcome === 'limit')
              this.m.streamRefusals.labels({ ...this.label, type: 'BEGIN', reason: 'circuit' }).inc();
          },
          () => {
            if (!socketOpened) sockets.release(circ);
            circ.sendBackward(streamId, { type: 'END', reason: EndReason.INTERNAL });
          },
        );
        return;
      }
      case 'BEGIN_DIR':
        this.beginDir(circ, streamId);
        return;
      case 'DROP':
        return;
      default:
        if (this.c.onionRoles?.(circ, streamId, msg)) return;
        // A known command that makes no sense here (CONNECTED, EXTENDED2, a
        // client's cell at a relay without that role) is dropped, as C tor
        // does. An unknown command never gets here: decodeRelayCell refuses
        // it and OrCircuit closes the circuit (DESTROY PROTOCOL), where
        // tor-spec §6.1 and C tor drop it and keep the circuit.
        return;
    }
  }

  private beginDir(circ: OrCircuit, streamId: number): void {
    const handler = this.c.directory;
    if (!handler) {
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.NOTDIRECTORY });
      this.m.streams.labels({ ...this.label, type: 'BEGIN_DIR', outcome: 'refused' }).inc();
      return;
    }
    if (!this.admitStream(circ, streamId, 'BEGIN_DIR')) return;
    const stream = circ.edge.acceptStream(streamId);
    if (!stream) {
      // The id is in use: a protocol error of the client's (tor-spec §6.2).
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.TORPROTOCOL });
      return;
    }
    this.m.streams.labels({ ...this.label, type: 'BEGIN_DIR', outcome: 'connected' }).inc();
    circ.sendBackward(streamId, { type: 'CONNECTED' });
    // The only upload a relay takes over BEGIN_DIR is an onion-service
    // descriptor (rend-spec-v3 §2.2.6, at most HS_DESC_MAX_LEN as C tor);
    // a GET has no body. C tor's dircache takes up to MAX_DIR_UL_SIZE (16 MiB)
    // for any POST; Shallot's routes need far less.
    const maxBody = (req: DirRequestLine) => (req.method === 'POST' ? HS_DESC_MAX_LEN : 0);
    void serveDirRequest(stream, (req) => handler(req, circ), maxBody).then((refusal) => {
      if (refusal) this.m.dirRefusals.labels({ ...this.label, reason: refusal.reason }).inc();
    });
  }

  /**
   * The stream-creation defences every BEGIN and BEGIN_DIR passes first
   * (C tor dos.c DoSStreamCreation*, then the per-circuit stream cap).
   * False when the stream was refused (END RESOURCELIMIT) or the circuit closed.
   */
  private admitStream(circ: OrCircuit, streamId: number, type: 'BEGIN' | 'BEGIN_DIR'): boolean {
    const verdict = this.streamDos.onBegin(circ, streamDosParams(this.c.consensusParams?.() ?? {}));
    if (verdict !== 'allow') {
      this.m.streamRefusals.labels({ ...this.label, type, reason: 'rate' }).inc();
      if (verdict === 'close') circ.close(DestroyReason.RESOURCELIMIT);
      else circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOURCELIMIT });
      return false;
    }
    if (circ.edge.streamsFull) {
      this.refuseStream(circ, streamId, type, 'circuit');
      return false;
    }
    return true;
  }

  private refuseStream(
    circ: OrCircuit,
    streamId: number,
    type: 'BEGIN' | 'BEGIN_DIR',
    reason: 'circuit' | 'exit_sockets',
  ): void {
    this.m.streamRefusals.labels({ ...this.label, type, reason }).inc();
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOURCELIMIT });
  }

  /**
   * Dials the next hop of an EXTEND2, only to a relay the consensus lists at
   * that identity, address and ORPort (core/relay-pivot.ts). A refusal
   * rejects, which OrCircuit.extend answers with DESTROY CONNECTFAILED.
   */
  async connectNext(specs: LinkSpecifier[]): Promise<Channel> {
    const target = checkExtendSpecs(specs, this.keys.identity);
    if ('refused' in target) throw this.refuseExtend(target.refused);
    const refused = await this.c.checkExtend?.(target);
    if (refused) throw this.refuseExtend(refused);
    return this.pool.get(target);
  }

  private refuseExtend(reason: ExtendRefusal): ExtendRefusedError {
    this.m.extendRefused.labels({ ...this.label, reason }).inc();
    return new ExtendRefusedError(reason);
  }

  onClosed(circ: OrCircuit, reason: number): void {
    this.circuits.delete(circ);
    this.m.circuitsActive.labels(this.label).set(this.circuits.size);
    this.countDestroy(reason);
  }
}
