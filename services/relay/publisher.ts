/**
 * Keeps a relay listed: signs its descriptor and uploads it to every
 * authority at start and periodically (dir-spec §4.3; Tor republishes every
 * 18 h or on change — a testnet needs minutes), and keeps a verified copy
 * of the consensus for BEGIN_DIR clients (dir-spec §4.4 caches).
 */
import { toHex } from '../core/bytes.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { RelayDescriptor } from '../core/dir/descriptor.js';
import { signRelayDescriptor } from '../core/dir/descriptor.js';
import { formatExitPolicy } from '../core/exit-policy.js';
import { type AuthorityEndpoint, fetchConsensus, publishDescriptor } from '../net/dir-client.js';
import type { Logger } from '../runtime/log.js';
import type { Relay } from './relay.js';

export interface PublisherOptions {
  authorities: AuthorityEndpoint[];
  /** How often to republish (default 60 s; authorities drop descriptors older than 24 h). */
  republishMs?: number;
  /** How often to refresh the cached consensus (default 30 s). */
  consensusRefreshMs?: number;
  /** Advertised bandwidth, bytes/s. */
  bandwidth: number;
  /** Offer to be an HSDir. */
  hsdir: boolean;
  family?: string[];
}

/**
 * Subprotocols a Shallot relay speaks (dir-spec §2.1.1 `proto`, tor-spec
 * §9 "Subprotocol versioning"). Relay=4 is ntor-v3 in CREATE2/EXTEND2, which
 * these relays answer; Relay=3 (IPv6 link specifiers in EXTEND2) is
 * accepted: they are parsed, and extends go to the address the consensus
 * lists for the identity. C
 * tor 0.4.9 relays advertise Relay=2-6 (test/vectors/ctor); a C tor client
 * reads Relay=4 to use ntor-v3 with a relay.
 */
export const RELAY_PROTOCOLS: Record<string, string> = {
  Link: '4-5',
  Relay: '2-4',
  HSDir: '2',
  HSIntro: '4-5',
  HSRend: '2',
  FlowCtrl: '1',
};

export class DescriptorPublisher {
  private timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();
  private consensusRaw: Uint8Array | null = null;
  consensus: Consensus | null = null;
  /** Successful uploads of the last round, for bootstrap progress. */
  lastAccepted = 0;

  constructor(
    private readonly relay: Relay,
    private readonly opts: PublisherOptions,
    private readonly logger: Logger,
  ) {}

  descriptor(nowMs = Date.now()): RelayDescriptor {
    const r = this.relay;
    return {
      nickname: r.nickname,
      identity: r.identity,
      ntorOnionKey: r.ntorKey,
      address: r.opts.host,
      orPort: r.port,
      linkUrl: r.linkUrl,
      bandwidth: this.opts.bandwidth,
      family: this.opts.family ?? [],
      exitPolicy: r.opts.exitPolicy,
      platform: `Shallot on Node ${process.versions.node}`,
      publishedMs: nowMs,
      uptimeSec: Math.floor((nowMs - this.startedAt) / 1000),
      protocols: RELAY_PROTOCOLS,
      hsdir: this.opts.hsdir,
    };
  }

  /** Publishes once now, then on a timer. Resolves after the first round. */
  async start(): Promise<void> {
    await this.publish();
    await this.refreshConsensus();
    this.timers.push(setInterval(() => void this.publish(), this.opts.republishMs ?? 60_000));
    this.timers.push(setInterval(() => void this.refreshConsensus(), this.opts.consensusRefreshMs ?? 30_000));
    for (const t of this.timers) t.unref();
  }

  async publish(): Promise<number> {
    const signed = signRelayDescriptor(this.descriptor(), this.relay.identitySeed);
    const res = await publishDescriptor(this.opts.authorities, signed, { timeoutMs: 5_000 });
    this.lastAccepted = res.accepted;
    const failed = res.results.filter((x) => !x.ok);
    if (failed.length > 0) {
      this.logger.debug('descriptor upload failed at some authorities', {
        failed: failed.map((f) => `${f.url}: ${f.error}`).join('; '),
        policy: formatExitPolicy(this.relay.opts.exitPolicy).join(', '),
      });
    }
    return res.accepted;
  }

  async refreshConsensus(): Promise<void> {
    try {
      const { consensus, raw } = await fetchConsensus(this.opts.authorities, {
        nowMs: Date.now(),
        skewMs: 5_000,
      });
      this.consensus = consensus;
      this.consensusRaw = raw;
    } catch (e) {
      this.logger.debug('consensus fetch failed', { error: (e as Error).message });
    }
  }

  /** The cached consensus bytes, served on BEGIN_DIR. */
  get cachedConsensus(): Uint8Array | null {
    return this.consensusRaw;
  }

  /** Whether the latest consensus lists this relay. */
  get listed(): boolean {
    const id = toHex(this.relay.identity);
    return this.consensus?.relays.some((r) => toHex(r.identity) === id) ?? false;
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
