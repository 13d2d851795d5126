/**
 * What a relay is configured with: its limits (each with the C tor
 * behaviour it follows or the reason it differs), its options, and the
 * components it takes from the node around it (logger, metrics, the
 * directory and onion-service roles, the consensus checks behind EXTEND2,
 * the process-wide exit socket and queue memory caps).
 */
import type { Registry } from 'prom-client';
import type { Rng } from '../core/crypto.js';
import type { ConsensusRelay } from '../core/dir/relay-entry.js';
import type { ExitPolicy } from '../core/exit-policy.js';
import type { NodeKeys } from '../core/node-keys.js';
import type { RelayMessage } from '../core/relay-cell.js';
import type { ExtendRefusal, ExtendTarget } from '../core/relay-pivot.js';
import type { DirRequest, DirResponse } from '../net/dir-http.js';
import type { LinkShaping } from '../net/link-delay.js';
import type { ChannelLimits } from '../net/link-handshake.js';
import { DEFAULT_MAX_QUEUED_CELLS, type OrCircuit } from '../net/or-circuit.js';
import type { Logger } from '../runtime/log.js';
import {
  DEFAULT_IDLE_CLIENT_CHANNEL_MS,
  DEFAULT_IDLE_RELAY_CHANNEL_MS,
  DEFAULT_PARTIAL_CELL_MS,
} from './channel-guard.js';
import type { ExitGuards } from './exit.js';
import type { ExitSockets } from './exit-sockets.js';
import type { QueueMemory } from './queue-memory.js';

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
  /** Base idle timeout of a listed relay's channel without circuits, unless the consensus sets nf_conntimeout_relays (3600 s). */
  idleRelayChannelMs: number;
  /** A peer stalled this long in the middle of a cell loses its link. */
  partialCellMs: number;
}

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

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  channel: {},
  maxStreamsPerCircuit: 512,
  maxQueuedCellsPerCircuit: DEFAULT_MAX_QUEUED_CELLS,
  idleClientChannelMs: DEFAULT_IDLE_CLIENT_CHANNEL_MS,
  idleRelayChannelMs: DEFAULT_IDLE_RELAY_CHANNEL_MS,
  partialCellMs: DEFAULT_PARTIAL_CELL_MS,
};
