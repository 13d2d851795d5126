/**
 * Link shaping: the network model's latency and jitter, and a relay's
 * BandwidthRate/BandwidthBurst, applied where a link hands received bytes
 * to its channel (transport.ts), so a testnet on one host or in pods shows
 * real round trips and relay capacity with no NET_ADMIN and no `tc`.
 *
 * Overview: each side of a link delays what it receives by the one-way
 * latency from the peer's location to its own (core/network-model.ts) plus
 * any extra delay set for that pair (a "slow link" fault, link-faults.ts),
 * and holds everything while either end is paused (a "pause" fault of a
 * node that shares its process). Locations and node names travel in the WebSocket upgrade
 * (x-shallot-node / x-shallot-location headers, both ways). A relay's bytes
 * read from all its links then pass one shared byte bucket, as C tor
 * charges every OR connection's reads to its global read bucket
 * (connection.c connection_bucket_read_limit, token_bucket_rw_dec).
 *
 * Design notes:
 * - Order is preserved: a message never leaves before the one received
 *   before it, whatever its jitter draw (cells on a link are a byte stream,
 *   tor-spec §3; TCP would never reorder them either).
 * - Backpressure: above SHAPER_HIGH_WATER queued bytes the WebSocket is
 *   paused, as C tor stops reading a connection whose bucket is empty, so
 *   the peer's link buffer fills and its senders wait for 'drain'.
 * - Only reads are metered: every byte a relay forwards it read from a link
 *   first, so the read bucket caps what passes through it. C tor meters
 *   writes too; an exit's download bytes read from TCP are not counted here.
 *
 * Not in this module: parsing the model (core/network-model.ts), which
 * node is where (the launchers).
 */
import { drawDelay, latencyBetween, type NetworkModel } from '../core/network-model.js';
import { TokenBucket } from '../core/token-bucket.js';
import { extraDelayMs, isHeld } from './link-faults.js';

/** Queued-but-undelivered bytes above which a link stops reading. */
export const SHAPER_HIGH_WATER = 1024 * 1024;

export const NODE_HEADER = 'x-shallot-node';
export const LOCATION_HEADER = 'x-shallot-location';

/**
 * A relay's byte bucket on reads from all its links (C tor BandwidthRate /
 * BandwidthBurst), with the traffic it let through for the observed
 * bandwidth (C tor rep_hist: the best 10-second average).
 */
export class BandwidthLimiter {
  private readonly bucket: TokenBucket;
  private windowStart: number;
  private windowBytes = 0;
  /** Best average over a whole 10 s window so far, bytes/s. */
  private best = 0;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.bucket = new TokenBucket(rate, burst, now());
    this.windowStart = now();
  }

  /** Ms before anything more may be read (0 now). */
  waitMs(): number {
    return this.bucket.waitMs(this.now());
  }

  /** Charges `n` bytes read. */
  charge(n: number): void {
    const t = this.now();
    this.bucket.spend(n, t);
    this.roll(t);
    this.windowBytes += n;
  }

  /**
   * C tor rep_hist_bandwidth_assess: the highest rate over a whole 10 s
   * window; windows are fixed, so idle time after one does not dilute it.
   * Rolled on reads and on every look, so a window that ended in silence
   * still counts (C tor advances its history every second, not on traffic).
   */
  private roll(t: number): void {
    if (t - this.windowStart < OBSERVE_WINDOW_MS) return;
    this.best = Math.max(this.best, (this.windowBytes * 1000) / OBSERVE_WINDOW_MS);
    this.windowStart += Math.floor((t - this.windowStart) / OBSERVE_WINDOW_MS) * OBSERVE_WINDOW_MS;
    this.windowBytes = 0;
  }

  /** Observed bandwidth, bytes/s: the best 10 s average seen. */
  get observed(): number {
    this.roll(this.now());
    return this.best;
  }
}

const OBSERVE_WINDOW_MS = 10_000;

/** How one node shapes its links. */
export interface LinkShaping {
  /** This node's name (for extra delays between named nodes). */
  node: string;
  /** The model and this node's location in it, or null for no latency. */
  model: NetworkModel | null;
  location: string | null;
  /** The node's read bucket, or null for no limit. */
  limiter: BandwidthLimiter | null;
  /** Uniform [0, 1) for jitter (seeded in tests). */
  random?: () => number;
}

/** The peer's side as announced in the upgrade. */
export interface PeerInfo {
  node: string | null;
  location: string | null;
}

// Slow links are one of the link faults (link-faults.ts); re-exported for the shaping tests.
export { setExtraDelay } from './link-faults.js';

/** Headers a node announces itself with in the upgrade. */
export function shapingHeaders(s: LinkShaping | null | undefined): Record<string, string> {
  if (!s) return {};
  return { [NODE_HEADER]: s.node, ...(s.location ? { [LOCATION_HEADER]: s.location } : {}) };
}

/** Reads the peer's announcement from upgrade headers. */
export function peerFromHeaders(h: Record<string, string | string[] | undefined>): PeerInfo {
  const one = (v: string | string[] | undefined) => (typeof v === 'string' && v.length <= 64 ? v : null);
  return { node: one(h[NODE_HEADER]), location: one(h[LOCATION_HEADER]) };
}

/**
 * The receive side of one link: messages in, the same messages out in order,
 * each no earlier than its arrival plus the link's delay and the bucket's wait.
 */
export class InboundShaper {
  private readonly queue: { at: number; data: Uint8Array }[] = [];
  private head = 0;
  private queuedBytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private paused = false;
  private closed = false;
  private onEmpty: (() => void) | null = null;

  constructor(
    private readonly shaping: LinkShaping,
    private readonly peer: PeerInfo,
    private readonly deliver: (data: Uint8Array) => void,
    private readonly setPaused: (paused: boolean) => void,
  ) {}

  /** The one-way delay for the next message, ms. */
  private delayMs(): number {
    const s = this.shaping;
    let d = 0;
    if (s.model && s.location && this.peer.location && s.model.locations.includes(this.peer.location))
      d = drawDelay(latencyBetween(s.model, this.peer.location, s.location), (s.random ?? Math.random)());
    return d + extraDelayMs(s.node, this.peer.node);
  }

  push(data: Uint8Array): void {
    if (this.closed) return;
    const d = this.delayMs();
    if (d === 0 && !this.shaping.limiter && this.head === this.queue.length && !this.held()) {
      this.deliver(data);
      return;
    }
    this.lastAt = Math.max(Date.now() + d, this.lastAt);
    this.queue.push({ at: this.lastAt, data });
    this.queuedBytes += data.length;
    if (!this.paused && this.queuedBytes > SHAPER_HIGH_WATER) {
      this.paused = true;
      this.setPaused(true);
    }
    this.schedule();
  }

  /** A paused node at either end (link-faults.ts): nothing leaves until `wake`. */
  private held(): boolean {
    return isHeld(this.shaping.node, this.peer.node);
  }

  /** The pause that held this link ended: deliver what waited, in order. */
  wake(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.closed || this.head === this.queue.length || this.held()) return;
    const first = this.queue[this.head];
    if (!first) return;
    const wait = Math.max(first.at - Date.now(), this.shaping.limiter?.waitMs() ?? 0);
    if (wait <= 0) {
      this.release();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.release();
    }, Math.ceil(wait));
  }

  private release(): void {
    const limiter = this.shaping.limiter;
    while (!this.closed && this.head < this.queue.length) {
      const item = this.queue[this.head] as { at: number; data: Uint8Array };
      if (item.at > Date.now() || (limiter && limiter.waitMs() > 0) || this.held()) break;
      this.queue[this.head++] = undefined as never;
      this.queuedBytes -= item.data.length;
      limiter?.charge(item.data.length);
      this.deliver(item.data);
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      const cb = this.onEmpty;
      this.onEmpty = null;
      cb?.();
    }
    if (this.paused && this.queuedBytes <= SHAPER_HIGH_WATER / 2) {
      this.paused = false;
      this.setPaused(false);
    }
    this.schedule();
  }

  /** Calls `cb` once everything queued has been delivered (at once if nothing is). */
  whenEmpty(cb: () => void): void {
    if (this.head === this.queue.length || this.closed) cb();
    else this.onEmpty = cb;
  }

  /** Drops what is queued: the link is gone. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
  }
}
