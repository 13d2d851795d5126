/**
 * A v3 onion service (rend-spec-v3 §1, §2.2-2.5, §3, §4) running on an
 * embedded Shallot client: a coordinator over three collaborators that own
 * their state.
 *
 * Overview:
 * - Here: the identity (Ed25519 master key, a 0600 file by identity.ts; the
 *   onion address is its public half), the time periods (periods.ts) with
 *   each period's blinded key and subcredential (§2.1-2.2), the instance
 *   exchange (instances.ts, instance-peers.ts), and the wiring: housekeeping
 *   every `tickMs`, run early when an intro point comes or goes.
 * - intro-points.ts: choose, establish, drop, merge with other instances'.
 * - publisher.ts: descriptors per period (upload, retry, republish),
 *   listing the merged intro points; with `authorizedClients` the inner
 *   layer opens only for those clients' x25519 keys (§2.5.1.2).
 * - introduce-handler.ts: INTRODUCE2 (MAC, replay caches, budgets, token
 *   bucket) → rendezvous → backend streams (backend.ts).
 *
 * Not here: proof-of-work. Vanguards-lite, when on, comes from the
 * embedded client's circuit manager.
 *
 * Metrics (label service = name): shallot_hs_descriptor_upload_total{outcome=
 * success|rejected|failure}, shallot_hs_intro_requests_total{outcome=accepted|
 * replay|rend_cookie_replay|bad_mac|rate_limited|invalid},
 * shallot_hs_intro_rotations_total{reason=budget|lifetime},
 * shallot_hs_rend_total{outcome=success|failure}, shallot_hs_rend_retries_total,
 * shallot_hs_intro_points{instance}.
 */
import * as path from 'node:path';
import type { Registry } from 'prom-client';
import type { ShallotClient } from '../client/client.js';
import { checkClientAuthPublicKey } from '../core/client-auth.js';
import { ed25519ExpandedFromSecretKey } from '../core/crypto/ed25519-math.js';
import { type ExpandedKey, type Rng, randomBytes } from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import { ShallotError } from '../core/errors.js';
import type { DosParams } from '../core/hs-cells.js';
import { HS_DESC_MAX_INTRO_POINTS, type IntroPointInfo } from '../core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity, hsSubcredential } from '../core/hs-keys.js';
import { type TimePeriodParams, timePeriodNum, timePeriodParams } from '../core/hs-time.js';
import { encodeOnionAddress } from '../core/onion-address.js';
import { identityKeyFromSeed, type OnionIdentityKey } from '../core/onion-identity-file.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { TypedEmitter } from '../net/typed-emitter.js';
import type { Logger } from '../runtime/log.js';
import type { Backend } from './backend.js';
import { loadOrCreateIdentityKey } from './identity.js';
import { HttpInstanceExchange, type InstancePeersOptions } from './instance-peers.js';
import { directoryExchange, type InstanceExchange, isValidInstanceName } from './instances.js';
import { IntroPointSet } from './intro-points.js';
import { IntroduceHandler } from './introduce-handler.js';
import { serviceDescriptorPeriods } from './periods.js';
import { DescriptorPublisher, type PeriodKeys, type PublishedEvent } from './publisher.js';

export interface OnionServiceOptions {
  /** Name for logs and the `service` metric label. */
  name: string;
  /** This instance's name (several may share one identity); default "default". */
  instance?: string;
  /** Identity key file (created 0600 if missing; or C tor's hs_ed25519_secret_key). One of these three. */
  identityKeyFile?: string;
  identitySeed?: Uint8Array;
  identityKey?: OnionIdentityKey;
  /** Where instances meet (instances/<name>.json); default the key file's directory; none: no sharing. */
  dataDir?: string;
  /** Instances meet over HTTP instead (instance-peers.ts: hosts without a shared directory). */
  instancePeers?: InstancePeersOptions;
  numIntroPoints?: number;
  backend: Backend;
  /** The port clients BEGIN to (":port"). */
  virtualPort?: number;
  /** Time periods from the voting interval (C tor TestingTorNetwork); default true. */
  testnet?: boolean;
  /** Republish at a random time in [min, max] ms after an upload (default 60-120 min). */
  republishMs?: [number, number];
  /** Instance heartbeat (default 5 s); a peer record older than 4 heartbeats is ignored. */
  heartbeatMs?: number;
  /** Internal housekeeping period (default 1 s). */
  tickMs?: number;
  /** Asked of the intro points in ESTABLISH_INTRO's DoS extension (default 25/s, burst 200, as C tor). */
  introDos?: DosParams;
  /** The service's own INTRODUCE2 budget (default 50/s, burst 300). */
  introduceRate?: { rate: number; burst: number };
  /** Rendezvous circuits being built at once before INTRODUCE2s are dropped (default 64). */
  maxPendingRendezvous?: number;
  /** x25519 public keys of the only clients that may read the descriptor (default: anyone). */
  authorizedClients?: readonly Uint8Array[];
}

export interface OnionServiceComponents {
  logger: Logger;
  registry: Registry;
  client: ShallotClient;
  now?: () => number;
  /** Draws intro points and republish times (default the OS CSPRNG); tests pass a seeded one. */
  rng?: Rng;
}

export interface OnionServiceEvents {
  /** A descriptor upload round finished (for tests and logs). */
  published: PublishedEvent;
  introEstablished: { relay: string };
  rendezvous: { relay: string };
}

export class OnionServiceError extends ShallotError {
  constructor(message: string) {
    super('ERR_ONION_SERVICE', message);
  }
}

interface Identity {
  pub: Uint8Array;
  expanded: ExpandedKey;
  address: string;
}

export class OnionService extends TypedEmitter<OnionServiceEvents> {
  private identity: Identity | null = null;
  private readonly instance: string;
  private readonly dataDir: string | null;
  private readonly numIntro: number;
  private readonly now: () => number;
  private readonly rng: Rng;
  private readonly m: Metrics['service'];
  private readonly log: Logger;
  private readonly intros: IntroPointSet;
  private readonly introductions: IntroduceHandler;
  /** Made at start(), once the identity is known. */
  private publisher: DescriptorPublisher | null = null;
  /** Keys of the periods descriptors are kept for and of those around now (tpNow ± 2). */
  private readonly periodKeys = new Map<number, PeriodKeys>();
  private exchange: InstanceExchange | null = null;
  private lastConsensus: Consensus | null = null;
  private params: TimePeriodParams | null = null;
  private timer: NodeJS.Timeout | null = null;
  private kickTimer: NodeJS.Timeout | null = null;
  private tickRun: Promise<void> | null = null;
  private running = false;

  constructor(
    private readonly c: OnionServiceComponents,
    readonly opts: OnionServiceOptions,
  ) {
    super();
    this.instance = opts.instance ?? 'default';
    if (!isValidInstanceName(this.instance))
      throw new OnionServiceError(`bad instance name "${this.instance}"`);
    if (!opts.identityKeyFile && !opts.identitySeed && !opts.identityKey)
      throw new OnionServiceError('need identityKeyFile, identitySeed or identityKey');
    this.dataDir = opts.dataDir ?? (opts.identityKeyFile ? path.dirname(opts.identityKeyFile) : null);
    this.numIntro = opts.numIntroPoints ?? 3;
    if (!Number.isInteger(this.numIntro) || this.numIntro < 1 || this.numIntro > HS_DESC_MAX_INTRO_POINTS)
      throw new OnionServiceError('numIntroPoints must be 1..20');
    // Checked here, not at the first upload: a bad key would stop every descriptor build.
    if (opts.authorizedClients) {
      if (opts.authorizedClients.length === 0)
        throw new OnionServiceError('authorizedClients is empty: no client could connect');
      for (const k of opts.authorizedClients) {
        try {
          checkClientAuthPublicKey(k);
        } catch (e) {
          throw new OnionServiceError(`authorizedClients: ${(e as Error).message}`);
        }
      }
    }
    this.now = c.now ?? Date.now;
    this.rng = c.rng ?? randomBytes;
    this.m = metricsFor(c.registry).service;
    this.log = c.logger;
    const parts = { circuits: c.client.circuits, logger: this.log, metrics: this.m, now: this.now };
    const names = { name: opts.name, instance: this.instance };
    this.intros = new IntroPointSet(
      { ...parts, rng: this.rng },
      {
        ...names,
        count: this.numIntro,
        dos: opts.introDos ?? { rate: 25, burst: 200 },
        heartbeatMs: opts.heartbeatMs ?? 5_000,
      },
    );
    this.introductions = new IntroduceHandler(
      {
        ...parts,
        subcredentials: () => this.liveSubcredentials(),
        retire: (intro) => this.intros.retire(intro, 'budget'),
      },
      {
        ...names,
        backend: opts.backend,
        virtualPort: opts.virtualPort ?? 80,
        rate: opts.introduceRate ?? { rate: 50, burst: 300 },
        maxPending: opts.maxPendingRendezvous ?? 64,
      },
    );
    this.intros.on('changed', () => this.kick());
    this.intros.on('established', (e) => this.emit('introEstablished', e));
    this.intros.on('introduce2', ({ intro, body }) => this.introductions.handle(intro, body));
    this.introductions.on('rendezvous', (e) => this.emit('rendezvous', e));
  }

  /** "<56 base32>.onion"; available after start(). */
  get onionAddress(): string {
    return this.started().address;
  }

  /** The port this instance serves its record on (instancePeers), after start(). */
  get instancePeersPort(): number | null {
    return this.exchange instanceof HttpInstanceExchange ? this.exchange.port : null;
  }

  get identityPublicKey(): Uint8Array {
    return this.started().pub;
  }

  /** Established intro points of this instance. */
  get establishedIntroPoints(): number {
    return this.intros.established;
  }

  /** Nicknames of this instance's established intro points. */
  get introPointRelays(): string[] {
    return this.intros.relays;
  }

  /** Streams on this instance's rendezvous circuits: open, and half-closed (END sent, the client's due). */
  get rendezvousStreams(): { open: number; halfClosed: number } {
    return this.introductions.streams;
  }

  /** Entries in this instance's per-intro-point replay caches (only MAC-valid cells enter them). */
  get introReplayEntries(): number {
    return this.intros.replayEntries;
  }

  /** Intro points this instance's descriptors currently list (own + peers'). */
  get publishedIntroPoints(): IntroPointInfo[] {
    return this.intros.merged();
  }

  /** Upload rounds completed with at least one HSDir accepting. */
  get published(): number {
    return this.publisher?.published ?? 0;
  }

  /**
   * Resolves once clients can connect: every descriptor kept now (both time
   * periods) lists at least `minIntroPoints` intro points (default: all of
   * this instance's) and is held by an HSDir a client with the service's
   * consensus asks for it (publisher.ts `fetchable`). Any one upload round
   * is not enough: it may be the other period's, or reach HSDirs no client
   * asks.
   */
  whenPublished(minIntroPoints = this.numIntro, timeoutMs = 60_000): Promise<void> {
    const ready = () => this.publisher?.fetchable(minIntroPoints) ?? false;
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('published', check);
        reject(
          new OnionServiceError(
            `no descriptor with ${minIntroPoints} intro points on an HSDir clients ask, for each period, in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const check = () => {
        if (ready()) {
          clearTimeout(timer);
          this.off('published', check);
          resolve();
        }
      };
      this.on('published', check);
    });
  }

  health(): { ok: boolean; ready: boolean; onion: string | null; introPoints: number; published: number } {
    return {
      ok: this.running,
      ready: this.running && this.published > 0,
      onion: this.identity?.address ?? null,
      introPoints: this.establishedIntroPoints,
      published: this.published,
    };
  }

  async start(): Promise<void> {
    if (this.running) return;
    let key = this.opts.identityKey;
    if (this.opts.identitySeed) {
      if (this.opts.identitySeed.length !== 32) throw new OnionServiceError('identity seed must be 32 bytes');
      key = identityKeyFromSeed(this.opts.identitySeed);
    }
    if (!key) {
      const file = this.opts.identityKeyFile as string;
      const loaded = await loadOrCreateIdentityKey(file);
      key = loaded.key;
      if (loaded.created) this.log.info('created a new onion-service identity key', { file });
    }
    const expanded = ed25519ExpandedFromSecretKey(key.secretKey);
    const id: Identity = { pub: expanded.public, expanded, address: encodeOnionAddress(expanded.public) };
    this.identity = id;
    this.publisher ??= this.newPublisher(id);
    const ip = this.opts.instancePeers;
    const refused = this.m.instanceRecordsRefused;
    const label = { service: this.opts.name, service_instance: this.instance };
    this.exchange = ip
      ? await HttpInstanceExchange.start(
          {
            logger: this.log.child('instances'),
            refused: (reason) => refused.labels({ ...label, reason }).inc(),
            now: this.now,
          },
          { pollMs: this.opts.heartbeatMs ?? 5_000, ...ip },
          // Instance records are keyed from the seed as before; a C tor key has only its expanded form.
          key.seed ?? key.secretKey,
        )
      : this.dataDir
        ? directoryExchange(this.dataDir)
        : null;
    this.running = true;
    this.log.info('onion service starting', {
      onion: id.address,
      instance: this.instance,
      backend:
        this.opts.backend.type === 'tcp' ? `${this.opts.backend.host}:${this.opts.backend.port}` : 'builtin',
      virtualPort: this.opts.virtualPort ?? 80,
      authorizedClients: this.opts.authorizedClients?.length ?? 'anyone',
    });
    this.intros.start();
    this.introductions.start();
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 1000);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    if (this.kickTimer) clearTimeout(this.kickTimer);
    this.timer = this.kickTimer = null;
    this.intros.stop();
    this.introductions.stop();
    // A housekeeping pass may be writing our instance record: let it finish before removing it.
    await this.tickRun;
    await this.exchange?.close(this.instance).catch(() => {});
    this.log.info('onion service stopped', { onion: this.identity?.address });
  }

  private started(): Identity {
    if (!this.identity) throw new OnionServiceError('not started');
    return this.identity;
  }

  private newPublisher(id: Identity): DescriptorPublisher {
    const p = new DescriptorPublisher(
      { circuits: this.c.client.circuits, logger: this.log, metrics: this.m, now: this.now, rng: this.rng },
      {
        name: this.opts.name,
        instance: this.instance,
        onion: id.address,
        identityPub: id.pub,
        ...(this.opts.republishMs ? { republishMs: this.opts.republishMs } : {}),
        ...(this.opts.authorizedClients ? { authorizedClients: this.opts.authorizedClients } : {}),
      },
    );
    p.on('published', (e) => this.emit('published', e));
    return p;
  }

  /** Runs housekeeping soon (after an intro point comes or goes). */
  private kick(delayMs = 200): void {
    if (!this.running || this.kickTimer) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = null;
      void this.tick();
    }, delayMs);
    this.kickTimer.unref();
  }

  private tick(): Promise<void> {
    if (!this.running || this.tickRun) return this.tickRun ?? Promise.resolve();
    this.tickRun = this.tickOnce().finally(() => {
      this.tickRun = null;
    });
    return this.tickRun;
  }

  private async tickOnce(): Promise<void> {
    try {
      const dir = this.c.client.dir;
      if (!dir) return;
      if (dir.consensus !== this.lastConsensus) {
        this.onConsensus(dir.consensus);
        // Intro points on relays that left the consensus are replaced; rotated onion keys are taken.
        this.intros.dropUnlisted(dir);
        this.intros.followRotatedKeys(dir);
      }
      this.intros.maintain(dir);
      if (this.exchange) await this.intros.sync(this.exchange);
      // stop() may have run while the instance records were read.
      if (!this.running || !this.params) return;
      this.publisher?.maintain({
        relays: dir.relays,
        params: this.params,
        introPoints: this.intros.merged(),
        settling: this.intros.settling(this.now()),
      });
    } catch (e) {
      this.log.warn('onion service housekeeping failed', { error: (e as Error).message });
    }
  }

  /** New consensus: the descriptors' periods and SRVs, and which period keys to keep. */
  private onConsensus(consensus: Consensus): void {
    this.lastConsensus = consensus;
    const params = timePeriodParams({
      votingIntervalSec: consensus.votingIntervalSec,
      testnet: this.opts.testnet ?? true,
    });
    this.params = params;
    const tpNow = timePeriodNum(consensus.validAfterMs, params);
    for (const tp of this.periodKeys.keys()) if (tp < tpNow - 2 || tp > tpNow + 2) this.periodKeys.delete(tp);
    this.publisher?.setPeriods(serviceDescriptorPeriods(consensus, params), (tp) => this.keysFor(tp));
  }

  /** rend-spec-v3 §2.1-2.2: the blinded key and subcredential of period `tp`. */
  private keysFor(tp: number): PeriodKeys {
    let k = this.periodKeys.get(tp);
    if (!k) {
      const id = this.started();
      const len = BigInt((this.params as TimePeriodParams).lengthMinutes);
      const blindedPub = blindIdentity(id.pub, BigInt(tp), len);
      k = {
        blindedPub,
        blindedKey: blindExpandedKey(id.expanded, BigInt(tp), len),
        subcredential: hsSubcredential(id.pub, blindedPub),
      };
      this.periodKeys.set(tp, k);
    }
    return k;
  }

  /** Both descriptors' periods, then the periods around now (clients with older or newer consensuses). */
  private liveSubcredentials(): Uint8Array[] {
    const tps = new Set<number>(this.publisher?.periods ?? []);
    if (this.lastConsensus && this.params) {
      const now = timePeriodNum(this.lastConsensus.validAfterMs, this.params);
      for (const tp of [now, now - 1, now + 1]) tps.add(tp);
    }
    return [...tps].map((tp) => this.keysFor(tp).subcredential);
  }
}
