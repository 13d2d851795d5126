/**
 * Open channels by peer identity, so circuits to the same relay share one
 * link (tor-spec §5.1.2: an extending relay reuses a matching channel).
 * Concurrent requests for the same peer wait on one dial.
 *
 * Links are WebSocket (Shallot relays) or, with `rawTls`, cells straight
 * over TLS as C tor relays speak them (tor-spec §2, tls-transport.ts). A
 * peer dialled with a `legacyId` must prove that RSA identity too (CERTS
 * types 2 and 7, tor-spec §4.2), as C tor checks the RSA digest it
 * extends to.
 */
import { toHex } from '../core/bytes.js';
import type { Rng } from '../core/crypto.js';
import { Channel } from './channel.js';
import type { LinkShaping } from './link-delay.js';
import type { ChannelLimits } from './link-handshake.js';
import type { LinkKeys } from './link-keys.js';
import { dialTlsLink } from './tls-transport.js';
import { dialLink, type Link, linkUrl } from './transport.js';

export interface PeerAddress {
  identity: Uint8Array;
  address: string;
  port: number;
  /** The RSA identity digest the peer must prove (C tor relays); none for Shallot relays. */
  legacyId?: Uint8Array;
}

export interface ChannelPoolOptions {
  /** Our link keys if we are a relay, null for a client. */
  keys: LinkKeys | null;
  /** Dial `wss` (default) or plain `ws`. */
  tls: boolean;
  /** Dial raw TLS links instead of WebSocket (a C tor network); `tls` is then ignored. */
  rawTls?: boolean;
  limits?: Partial<ChannelLimits>;
  dialTimeoutMs?: number;
  rng?: Rng;
  /** Latency model and read bucket of the node that dials (link-delay.ts). */
  shaping?: LinkShaping | null;
  onChannel?: (ch: Channel) => void;
}

export class ChannelPool {
  private readonly open = new Map<string, Channel>();
  private readonly dialing = new Map<string, Promise<Channel>>();
  private closed = false;

  constructor(private readonly opts: ChannelPoolOptions) {}

  get size(): number {
    return this.open.size;
  }

  channels(): Channel[] {
    return [...this.open.values()];
  }

  /** An open channel to `peer`, dialling if needed. */
  get(peer: PeerAddress): Promise<Channel> {
    const key = toHex(peer.identity);
    const existing = this.open.get(key);
    if (existing?.isOpen) return Promise.resolve(existing);
    const pending = this.dialing.get(key);
    if (pending) return pending;
    const p = this.dial(peer, key).finally(() => this.dialing.delete(key));
    this.dialing.set(key, p);
    return p;
  }

  private async dial(peer: PeerAddress, key: string): Promise<Channel> {
    if (this.closed) throw new Error('channel pool closed');
    const timeout = this.opts.dialTimeoutMs ?? 10_000;
    // The network model shapes WebSocket links only (tls-transport.ts: not in that module).
    const link: Link = this.opts.rawTls
      ? await dialTlsLink(peer.address, peer.port, timeout)
      : await dialLink(linkUrl(peer.address, peer.port, this.opts.tls), timeout, this.opts.shaping);
    const ch = await Channel.initiate(link, {
      keys: this.opts.keys,
      expectedIdentity: peer.identity,
      ...(peer.legacyId ? { expectedLegacyId: peer.legacyId } : {}),
      limits: { handshakeTimeoutMs: timeout, ...this.opts.limits },
      ...(this.opts.rng ? { rng: this.opts.rng } : {}),
    });
    this.track(key, ch);
    this.opts.onChannel?.(ch);
    return ch;
  }

  /** Adds an inbound channel from an authenticated relay so later extends reuse it. */
  adopt(ch: Channel): void {
    if (!ch.peerIdentity) return;
    const key = toHex(ch.peerIdentity);
    if (this.open.get(key)?.isOpen) return;
    this.track(key, ch);
  }

  private track(key: string, ch: Channel): void {
    this.open.set(key, ch);
    ch.on('closed', () => {
      if (this.open.get(key) === ch) this.open.delete(key);
    });
  }

  closeAll(reason = 'shutting down'): void {
    this.closed = true;
    for (const ch of this.open.values()) ch.close(reason);
    this.open.clear();
  }
}
