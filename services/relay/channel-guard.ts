/**
 * What a relay holds against each inbound connection (C tor dos.c and
 * channel housekeeping): the connection and circuit-creation limits of
 * client-dos.ts, and the timeouts that close links nobody uses.
 *
 * Overview: `accept` counts a new link against its client before its
 * handshake and says whether the connection defence lets it stay;
 * `adopt` follows the channel once its handshake is done (a peer that
 * authenticated as a relay the consensus lists is exempt from then on, as
 * C tor exempts known relays); `onCreate` judges each CREATE2; `sweep`
 * (every few seconds) closes channels that carried no circuit for the idle
 * timeout and channels stalled in the middle of a cell.
 *
 * Design notes:
 * - Idle timeout, as C tor's `channelpadding_get_channel_idle_timeout`
 *   (channelpadding.c): a client's (non-canonical) channel closes after
 *   180 s plus up to half again at random without circuits, a listed
 *   relay's after 3/4 of `nf_conntimeout_relays` (consensus param, default
 *   3600 s, bounded 60 s to a week) plus up to half of it at random, so
 *   45–75 min by default. The random part keeps closes from lining up.
 *   `idleClientMs` sets the client base; `idleRelayMs` reads the relay
 *   base when a channel turns out to be a listed relay's, so a network
 *   voting the param (`shallot up --consensus-params`) closes relays'
 *   idle channels sooner (fewer file descriptors at thousands of relays).
 * - Partial cells: a cell is at most 514 bytes or a variable cell of a few
 *   KiB, which a live peer finishes in milliseconds; a peer that stops
 *   mid-cell for `partialCellMs` (30 s) is holding the buffer, not talking.
 */
import { boundedParam } from '../core/consensus-param.js';
import { randomBytes } from '../core/crypto.js';
import { uniformFraction } from '../core/random.js';
import type { Channel } from '../net/channel.js';
import type { Link } from '../net/transport.js';
import { type CircuitVerdict, type ClientConn, ClientDos, type ClientDosParams } from './client-dos.js';

export interface ChannelGuardOptions {
  /** The address the relay advertises (connections from it are keyed one by one, client-dos.ts). */
  ownAddress: string;
  params: () => ClientDosParams;
  /** Whether an authenticated peer identity is a relay the consensus lists. */
  isListedRelay?: (identity: Uint8Array) => Promise<boolean>;
  idleClientMs: number;
  /** The base idle timeout of a listed relay's channel now (the consensus's nf_conntimeout_relays). */
  idleRelayMs: () => number;
  partialCellMs: number;
  /** Counts what was refused or closed, by defense name. */
  refused: (
    defense: 'conn_concurrent' | 'conn_rate' | 'circuit_rate' | 'idle_channel' | 'partial_cell',
  ) => void;
  now?: () => number;
  /** Uniform in [0, 1) for the idle-timeout jitter (default from the OS CSPRNG); tests pass a seeded one. */
  uniform?: () => number;
}

interface Tracked {
  conn: ClientConn;
  exempt: boolean;
  idleSince: number | null;
  idleLimitMs: number;
}

export const DEFAULT_IDLE_CLIENT_CHANNEL_MS = 180_000;
export const DEFAULT_IDLE_RELAY_CHANNEL_MS = 3_600_000;
export const DEFAULT_PARTIAL_CELL_MS = 30_000;

export class ChannelGuard {
  private readonly dos: ClientDos;
  private readonly byLink = new WeakMap<Link, ClientConn>();
  private readonly channels = new Map<Channel, Tracked>();
  private readonly now: () => number;
  private readonly uniform: () => number;

  constructor(private readonly o: ChannelGuardOptions) {
    this.now = o.now ?? Date.now;
    this.uniform = o.uniform ?? (() => uniformFraction(randomBytes));
    this.dos = new ClientDos(o.ownAddress, this.now, this.uniform);
  }

  get trackedClients(): number {
    return this.dos.trackedClients;
  }

  /** A new inbound link, before its handshake: false when the connection defence closes it. */
  accept(link: Link): boolean {
    const { verdict, conn } = this.dos.onConnection(link.remoteAddress, this.o.params());
    link.on('close', () => conn.release());
    if (verdict !== 'allow') {
      this.o.refused(verdict === 'close-concurrent' ? 'conn_concurrent' : 'conn_rate');
      return false;
    }
    this.byLink.set(link, conn);
    return true;
  }

  /** The link's channel finished its handshake. */
  adopt(ch: Channel): void {
    const conn = this.byLink.get(ch.link);
    if (!conn) return;
    const t: Tracked = {
      conn,
      exempt: false,
      idleSince: null,
      idleLimitMs: clientIdleLimit(this.o.idleClientMs, this.uniform()),
    };
    this.channels.set(ch, t);
    ch.on('closed', () => this.channels.delete(ch));
    const id = ch.peerIdentity;
    if (id && this.o.isListedRelay) {
      this.o.isListedRelay(id).then(
        (listed) => {
          if (!listed || !this.channels.has(ch)) return;
          // A known relay: its connection no longer counts against the address, and it idles as relays do.
          t.exempt = true;
          t.idleLimitMs = relayIdleLimit(this.o.idleRelayMs(), this.uniform());
          conn.release();
        },
        () => {},
      );
    }
  }

  /** A CREATE2 on `ch`: refused while its client is marked by the circuit-creation defence. */
  onCreate(ch: Channel): CircuitVerdict {
    const t = this.channels.get(ch);
    if (!t || t.exempt) return 'allow';
    const v = this.dos.onCreate(t.conn.key, this.o.params());
    if (v === 'refuse') this.o.refused('circuit_rate');
    return v;
  }

  /** Closes idle channels and channels stalled mid-cell; forgets idle client addresses. */
  sweep(): void {
    const now = this.now();
    for (const [ch, t] of this.channels) {
      const partial = ch.partialCellSince;
      if (partial !== null && now - partial > this.o.partialCellMs) {
        this.o.refused('partial_cell');
        ch.close('stalled in the middle of a cell');
        continue;
      }
      if (ch.circuitCount > 0) {
        t.idleSince = null;
        continue;
      }
      t.idleSince ??= now;
      if (now - t.idleSince > t.idleLimitMs) {
        this.o.refused('idle_channel');
        ch.close('idle: no circuits');
      }
    }
    this.dos.sweep();
  }
}

/** A client channel's idle limit: the base plus up to half of it (`u` uniform in [0, 1)). */
export function clientIdleLimit(base: number, u: number): number {
  return base + Math.floor(u * (base / 2));
}

/** A listed relay's idle limit: 3/4 of the base plus up to half of it (`u` uniform in [0, 1)). */
export function relayIdleLimit(base: number, u: number): number {
  return Math.floor((base * 3) / 4) + Math.floor(u * (base / 2));
}

/** C tor's bounds on nf_conntimeout_relays (channelpadding.c CONNTIMEOUT_RELAYS_MIN/MAX), seconds. */
const CONNTIMEOUT_RELAYS_MIN_S = 60;
const CONNTIMEOUT_RELAYS_MAX_S = 7 * 24 * 60 * 60;

/** A listed relay's idle base: the consensus's nf_conntimeout_relays within C tor's bounds, else `fallbackMs`. */
export function relayIdleBaseMs(params: Readonly<Record<string, number>>, fallbackMs: number): number {
  if (params.nf_conntimeout_relays === undefined) return fallbackMs;
  const s = boundedParam(
    params,
    'nf_conntimeout_relays',
    fallbackMs / 1000,
    CONNTIMEOUT_RELAYS_MIN_S,
    CONNTIMEOUT_RELAYS_MAX_S,
  );
  return s * 1000;
}
