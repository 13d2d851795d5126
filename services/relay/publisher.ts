/**
 * Keeps a relay listed: signs its descriptor and uploads it to every
 * authority (dir-spec §4.3), and gives it the process's shared consensus
 * (consensus-cache.ts) for BEGIN_DIR clients (dir-spec §4.4 caches) and
 * the EXTEND2 checks.
 *
 * When it uploads, as C tor's relays (router.c
 * mark_my_descriptor_dirty_if_too_old, and an upload whenever the
 * descriptor changes) rather than on a fixed short timer:
 * - at start, and at once when the descriptor changes (a new onion key:
 *   node.ts calls `publish`);
 * - unchanged, once per DESCRIPTOR_REFRESH_INTERVALS (18) voting intervals,
 *   at most 18 h (core/dir/descriptor.ts; C tor: every 18 h, before its
 *   authorities drop it at 24 h): a testnet's authorities keep descriptors
 *   in memory only, and one that restarted must hear from us again soon;
 * - "retry fast" (C tor FAST_RETRY_DESCRIPTOR_INTERVAL): when a consensus
 *   voted at least FAST_RETRY_INTERVALS after our last upload does not
 *   list us, or lists an older descriptor than our last, we upload again
 *   (an authority restarted, or dropped us after a failed reachability
 *   test), at a random point in the next half interval so relays that all
 *   dropped out together do not all come back in one burst;
 * - to the authorities that did not answer (or answered 5xx: "try
 *   later"), again after a jittered backoff from 1 s (nextUploadAt), since
 *   at bootstrap there is no consensus yet to tell us, and an authority
 *   that missed a refresh would otherwise drop us 6 intervals later. An
 *   authority that refused it (4xx) is not asked again for this one.
 * The voting interval comes from the consensus (fresh-until minus
 * valid-after); before the first one, FALLBACK_INTERVAL_MS.
 */
import { toHex } from '../core/bytes.js';
import { randomBytes } from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { RelayDescriptor } from '../core/dir/descriptor.js';
import { descriptorRefreshMs, signRelayDescriptor } from '../core/dir/descriptor.js';
import { formatExitPolicy } from '../core/exit-policy.js';
import { uniformFraction } from '../core/random.js';
import { type AuthorityEndpoint, fetchConsensus, publishDescriptor } from '../net/dir-client.js';
import type { Logger } from '../runtime/log.js';
import { ConsensusCache, type HeldConsensus, sharedConsensusCache } from './consensus-cache.js';
import type { Relay } from './relay.js';

export interface PublisherOptions {
  authorities: AuthorityEndpoint[];
  /** Re-upload an unchanged descriptor this often (default: 18 voting intervals, at most 18 h). */
  republishMs?: number;
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

/**
 * A consensus voted this many intervals after our upload has had time to
 * list us (the authorities vote V+D before each valid-after; C tor waits
 * FAST_RETRY_DESCRIPTOR_INTERVAL, 90 min, 1.5 of its 1 h intervals).
 */
export const FAST_RETRY_INTERVALS = 2;
/** Retries to a minority of authorities that missed an upload wait at most this many intervals. */
export const RETRY_MINORITY_INTERVALS = 3;
/** The interval assumed before any consensus says it (C tor's relays used to republish every minute or so in testnets). */
const FALLBACK_INTERVAL_MS = 60_000;

/**
 * When the next upload is due; the pure part of the policy above. With
 * authorities still `pending` (they failed to answer or answered 5xx), a
 * retry to those: 1 s doubling, at most half an interval while a majority
 * lacks the descriptor (we are not listed without it), else at most
 * RETRY_MINORITY_INTERVALS (a lone authority that missed it, say it was
 * restarting, learns it soon, without 1,000 relays asking a dead
 * authority every few seconds). Otherwise, or if sooner, the
 * refresh of the unchanged descriptor, spread up to an interval early so
 * relays that started together drift apart.
 */
export function nextUploadAt(p: {
  /** When the current descriptor was published (the refresh counts from there). */
  publishedMs: number;
  /** When it was last sent to the pending authorities (a retry counts from there). */
  lastTryMs: number;
  /** Consecutive upload attempts that left authorities pending. */
  failures: number;
  pending: number;
  authorities: number;
  intervalMs: number;
  republishMs?: number;
  /** Uniform in [0, 1). */
  fraction: number;
}): { atMs: number; retry: boolean } {
  const every = p.republishMs ?? descriptorRefreshMs(p.intervalMs);
  const refresh = p.publishedMs + every - Math.min(every / 4, p.intervalMs) * p.fraction;
  if (p.failures === 0 || p.pending === 0) return { atMs: refresh, retry: false };
  const majority = p.authorities - p.pending > p.authorities / 2;
  const cap = majority ? RETRY_MINORITY_INTERVALS * p.intervalMs : Math.min(60_000, p.intervalMs / 2);
  const full = Math.min(Math.max(1_000, cap), 1_000 * 2 ** Math.min(p.failures - 1, 30));
  const retry = p.lastTryMs + Math.round(full * (0.5 + p.fraction / 2));
  return retry < refresh ? { atMs: retry, retry: true } : { atMs: refresh, retry: false };
}

/** Whether `c` says the authorities lost our last upload (C tor's "retry fast" reasons). */
export function needsFastRetry(
  c: Pick<Consensus, 'validAfterMs' | 'freshUntilMs'>,
  listed: { publishedMs: number } | undefined,
  last: { atMs: number; publishedMs: number },
): boolean {
  const intervalMs = c.freshUntilMs - c.validAfterMs;
  if (c.validAfterMs < last.atMs + FAST_RETRY_INTERVALS * intervalMs) return false;
  return listed === undefined || listed.publishedMs < last.publishedMs;
}

/** The authority set as a key: one shared cache per set in a process. */
const authoritySetKey = (auths: readonly AuthorityEndpoint[]) =>
  auths
    .map((a) => `${a.identity}@${a.url}`)
    .sort()
    .join(',');

export class DescriptorPublisher {
  private readonly startedAt = Date.now();
  private readonly idHex: string;
  private shared: { cache: ConsensusCache; release: () => void } | null = null;
  private unsubscribe: (() => void) | null = null;
  private uploadTimer: NodeJS.Timeout | null = null;
  private last: { atMs: number; publishedMs: number } | null = null;
  /** The latest signed descriptor and the authorities that have yet to take it. */
  private current: { signed: Uint8Array; pending: AuthorityEndpoint[] } | null = null;
  private lastTryMs = 0;
  private failures = 0;
  private stopped = false;
  /** Successful uploads of the last round, for bootstrap progress. */
  lastAccepted = 0;
  /** Upload rounds so far (start, changes, refreshes, retries), for tests and the bench. */
  uploads = 0;

  constructor(
    private readonly relay: Relay,
    private readonly opts: PublisherOptions,
    private readonly logger: Logger,
    private readonly uniform: () => number = () => uniformFraction(randomBytes),
  ) {
    this.idHex = toHex(relay.identity);
  }

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

  /** Publishes once, joins the process's consensus cache; resolves after its first fetch. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.publish();
    if (this.opts.authorities.length === 0 || this.stopped) return;
    const auths = this.opts.authorities;
    this.shared = sharedConsensusCache(
      authoritySetKey(auths),
      () =>
        new ConsensusCache(async () => {
          const { consensus, raw } = await fetchConsensus(auths, { nowMs: Date.now(), skewMs: 5_000 });
          return { consensus, raw };
        }),
    );
    this.unsubscribe = this.shared.cache.subscribe((c) => this.onConsensus(c));
    await this.shared.cache.ready();
    // The consensus (fetched now or by another relay of this process) tells the interval refreshes count in.
    this.plan();
  }

  /** Signs a fresh descriptor and uploads it to every authority now; resolves how many accepted it. */
  async publish(): Promise<number> {
    const publishedMs = Date.now();
    const signed = signRelayDescriptor(this.descriptor(publishedMs), this.relay.identitySeed);
    this.current = { signed, pending: [...this.opts.authorities] };
    this.last = { atMs: publishedMs, publishedMs };
    this.failures = 0;
    return this.upload();
  }

  /**
   * Uploads the current descriptor to the authorities still pending; those
   * that refused it (4xx) are not asked again for this descriptor.
   */
  private async upload(): Promise<number> {
    const cur = this.current;
    if (!cur) return 0;
    this.uploads++;
    this.lastTryMs = Date.now();
    const res = await publishDescriptor(cur.pending, cur.signed, { timeoutMs: 5_000 });
    if (this.current !== cur) return res.accepted; // a newer descriptor replaced it meanwhile
    const retry = new Set(
      res.results.filter((x) => !x.ok && (x.status === undefined || x.status >= 500)).map((x) => x.url),
    );
    const refused = res.results.filter((x) => !x.ok && !retry.has(x.url)).length;
    cur.pending = cur.pending.filter((a) => retry.has(a.url));
    this.lastAccepted = this.opts.authorities.length - cur.pending.length - refused;
    this.failures = cur.pending.length > 0 ? this.failures + 1 : 0;
    const failed = res.results.filter((x) => !x.ok);
    if (failed.length > 0) {
      this.logger.debug('descriptor upload failed at some authorities', {
        failed: failed.map((f) => `${f.url}: ${f.error}`).join('; '),
        policy: formatExitPolicy(this.relay.opts.exitPolicy).join(', '),
      });
    }
    this.plan();
    return res.accepted;
  }

  private get intervalMs(): number {
    const c = this.consensus;
    return c && c.freshUntilMs > c.validAfterMs ? c.freshUntilMs - c.validAfterMs : FALLBACK_INTERVAL_MS;
  }

  /** (Re)arms the one upload timer: a retry to pending authorities, a refresh, or a fast retry at `atMs`. */
  private plan(atMs?: number): void {
    if (this.stopped || !this.last || this.opts.authorities.length === 0) return;
    const next =
      atMs !== undefined
        ? { atMs, retry: false }
        : nextUploadAt({
            publishedMs: this.last.atMs,
            lastTryMs: this.lastTryMs,
            failures: this.failures,
            pending: this.current?.pending.length ?? 0,
            authorities: this.opts.authorities.length,
            intervalMs: this.intervalMs,
            ...(this.opts.republishMs !== undefined ? { republishMs: this.opts.republishMs } : {}),
            fraction: this.uniform(),
          });
    if (this.uploadTimer) clearTimeout(this.uploadTimer);
    this.uploadTimer = setTimeout(
      () => {
        this.uploadTimer = null;
        if (!this.stopped) void (next.retry ? this.upload() : this.publish());
      },
      Math.max(0, next.atMs - Date.now()),
    );
    this.uploadTimer.unref();
  }

  private onConsensus(c: HeldConsensus): void {
    if (!this.last || this.stopped) return;
    if (needsFastRetry(c.consensus, c.byId.get(this.idHex), this.last)) {
      this.logger.debug('the consensus does not list our last descriptor; uploading again');
      // Spread over half an interval: every relay an authority forgot learns it from the same consensus.
      this.plan(Date.now() + (this.uniform() * this.intervalMs) / 2);
    } else {
      this.plan(); // the interval the refresh and retries count in may have changed
    }
  }

  /** Fetches the consensus now (coalesced and rate-limited for the whole process: consensus-cache.ts); whether a fetch was waited for. */
  async refreshConsensus(): Promise<boolean> {
    return (await this.shared?.cache.refresh()) ?? false;
  }

  /** The process's verified consensus; null before the first. */
  get consensus(): Consensus | null {
    return this.shared?.cache.consensus ?? null;
  }

  /** The cached consensus bytes, served on BEGIN_DIR. */
  get cachedConsensus(): Uint8Array | null {
    return this.shared?.cache.current?.raw ?? null;
  }

  /** Whether the latest consensus lists this relay. */
  get listed(): boolean {
    return this.shared?.cache.entry(this.idHex) !== undefined;
  }

  stop(): void {
    this.stopped = true;
    if (this.uploadTimer) clearTimeout(this.uploadTimer);
    this.uploadTimer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.shared?.release();
    this.shared = null;
  }
}
