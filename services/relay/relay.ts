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
 * documents (services/core/dir/), directory HTTP (net/dir-client.ts);
 * streams ending here (edge-streams.ts: exit and BEGIN_DIR), options and
 * limits (relay-options.ts), traffic counters (traffic.ts).
 */
import { DestroyReason, destroyReasonName, type LinkMessage } from '../core/cells.js';
import { boundedParam } from '../core/consensus-param.js';
import { handshakeName } from '../core/create-handshake.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { LinkSpecifier } from '../core/link-specifiers.js';
import type { NodeKeys } from '../core/node-keys.js';
import type { CircuitKeys } from '../core/ntor.js';
import type { RelayMessage } from '../core/relay-cell.js';
import { tor1RelayHop } from '../core/relay-crypto.js';
import { checkExtendSpecs, type ExtendRefusal, ExtendRefusedError } from '../core/relay-pivot.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { Channel } from '../net/channel.js';
import { ChannelPool } from '../net/channel-pool.js';
import { sendmeAcceptMinVersion } from '../net/edge.js';
import { createLinkKeys, type LinkKeys } from '../net/link-keys.js';
import { OrCircuit, type OrCircuitOwner } from '../net/or-circuit.js';
import type { SendBlocker } from '../net/stream.js';
import { type LinkServer, linkUrl, listenLinks } from '../net/transport.js';
import { ChannelGuard, relayIdleBaseMs } from './channel-guard.js';
import { clientDosParams } from './client-dos.js';
import { onionskinExecutor } from './cpuworker.js';
import { EdgeStreams } from './edge-streams.js';
import { DEFAULT_MAX_ONION_QUEUE_DELAY_MS, OnionskinQueue } from './onionskin-queue.js';
import { processQueueMemory, type QueueMemory, type QueueMemorySource } from './queue-memory.js';
import {
  DEFAULT_RELAY_LIMITS,
  type RelayComponents,
  type RelayLimits,
  type RelayOptions,
} from './relay-options.js';
import { StreamDos } from './stream-dos.js';
import { countTraffic } from './traffic.js';

/** How often the channel guard looks for idle and stalled channels. */
const SWEEP_MS = 5_000;

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
  private readonly edge: EdgeStreams;
  private readonly guard: ChannelGuard;
  private readonly onionskins: OnionskinQueue;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly queueMemory: QueueMemory;
  private readonly memorySource: QueueMemorySource = {
    circuits: () => this.circuits,
    channels: () => new Set([...this.inbound, ...this.pool.channels()]),
    onOom: (_c, reason) => {
      this.m.dosRefusals.labels({ ...this.label, defense: 'oom' }).inc();
      this.m.oomClosed.labels({ ...this.label, reason }).inc();
    },
  };

  constructor(
    private readonly c: RelayComponents,
    readonly opts: RelayOptions,
  ) {
    this.keys = opts.keys;
    this.rng = c.rng ?? randomBytes;
    this.limits = { ...DEFAULT_RELAY_LIMITS, ...opts.limits };
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
    this.edge = new EdgeStreams(c, opts.exitPolicy, this.m, this.label, new StreamDos());
    this.queueMemory = c.queueMemory ?? processQueueMemory;
    const params = () => this.c.consensusParams?.() ?? {};
    this.guard = new ChannelGuard({
      ownAddress: opts.host,
      params: () => clientDosParams(params()),
      ...(c.listedRelay ? { isListedRelay: async (id: Uint8Array) => !!(await c.listedRelay?.(id)) } : {}),
      idleClientMs: this.limits.idleClientChannelMs,
      idleRelayMs: () => relayIdleBaseMs(params(), this.limits.idleRelayChannelMs),
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
    countTraffic(ch, this.m, this.label);
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
      case 'BEGIN':
        this.edge.begin(circ, streamId, msg.target);
        return;
      case 'BEGIN_DIR':
        this.edge.beginDir(circ, streamId);
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
