/**
 * A v3 onion service (rend-spec-v3 §1, §2.2-2.5, §3, §4) running on an
 * embedded Shallot client.
 *
 * Overview:
 * - Identity: an Ed25519 master key (0600 file, identity.ts); the onion
 *   address is its public half.
 * - Intro points (§3.1): `numIntroPoints` Stable relays, each reached by a
 *   3-hop 'onion-intro' circuit ending at it, with a fresh auth key
 *   (KP_hs_ipt_sid) and enc key (KP_hss_ntor) per intro point.
 *   ESTABLISH_INTRO is MACed with the circuit's last-hop KH, signed by the
 *   auth key and carries the DoS extension; INTRO_ESTABLISHED confirms it.
 *   A dead circuit, or an intro relay that left the consensus, is replaced
 *   with a new relay and new keys, and the descriptors are republished.
 * - Descriptors (§2.4-2.5): two at a time (periods.ts), each with its own
 *   blinded key, subcredential and descriptor-signing key, a revision
 *   counter from the clock in ms (monotone, and shared by instances that
 *   share the identity), listing the intro points of every live instance
 *   (instances.ts). Each goes to the responsible HSDirs (hsdir-ring.ts:
 *   2 replicas x spread 4) by POST /tor/hs/3/publish over BEGIN_DIR on a
 *   3-hop 'hsdir' circuit, whenever the intro set or the ring changes, on
 *   a new time period, after a failed upload, and every 60-120 min.
 * - INTRODUCE2 (§3.3, introduce.ts): parse and MAC first (openIntroduce2
 *   with every live subcredential: both descriptors' periods and the periods
 *   either side of now), so junk never reaches a cache; then the intro
 *   point's own replay cache, its introduction budget, the service's
 *   rendezvous-cookie cache and a token bucket. An intro point is rotated
 *   (new relay, new keys, descriptors republished) once it has answered
 *   hs_intro_max_introduce2 introductions or lived hs_intro_max_lifetime.
 * - Rendezvous (§3.4, §4.2): a 3-hop 'onion-rend' circuit to the
 *   rendezvous point named by the client's link specifiers (the consensus
 *   entry when its Ed25519 id is listed, else the specifiers themselves,
 *   always with the client-given onion key), relaunched when it fails to
 *   build (rendezvous-retry.ts: hs_service_max_rdv_failures builds within
 *   30 s, as C tor), RENDEZVOUS1 with hs-ntor's Y|AUTH, then the hs-ntor
 *   virtual hop; BEGIN ":<virtualPort>" streams are served by the backend
 *   (TCP splice, or builtin-http.ts), others get END DONE (C tor: DONE,
 *   not EXITPOLICY, so port scans learn nothing).
 *
 * - Client authorization (§2.5.1.2): with `authorizedClients` the
 *   descriptors' inner layer (the intro points) opens only for those
 *   clients' x25519 keys; without, for anyone who knows the address.
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
import * as net from 'node:net';
import * as path from 'node:path';
import type { Registry } from 'prom-client';
import type { ShallotClient } from '../client/client.js';
import type { NetRelay } from '../client/netdir.js';
import { toHex, utf8 } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import { checkClientAuthPublicKey } from '../core/client-auth.js';
import {
  type ExpandedKey,
  ed25519Expand,
  ed25519PublicFromSeed,
  legacyIdFromEd25519,
  type Rng,
  randomBytes,
  x25519Generate,
} from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import { CryptoError, ShallotError } from '../core/errors.js';
import {
  buildEstablishIntro,
  type DosParams,
  encodeRendezvous1,
  joinHandshakeInfo,
  openIntroduce2,
} from '../core/hs-cells.js';
import { buildHsDescriptor, HS_DESC_MAX_INTRO_POINTS, type IntroPointInfo } from '../core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity, hsSubcredential } from '../core/hs-keys.js';
import { hsNtorServiceRendezvous, hsRendHopKeys } from '../core/hs-ntor.js';
import { type TimePeriodParams, timePeriodNum, timePeriodParams } from '../core/hs-time.js';
import { type LinkSpecifier, linkTarget, relayLinkSpecifiers } from '../core/link-specifiers.js';
import { encodeOnionAddress } from '../core/onion-address.js';
import { uniformFraction, uniformInt } from '../core/random.js';
import { EndReason, parseBeginTarget, type RelayMessage } from '../core/relay-cell.js';
import { hsVirtualHop } from '../core/relay-crypto.js';
import { TokenBucket } from '../core/token-bucket.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { dirRequest } from '../net/dir-http.js';
import type { Logger } from '../net/log.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { TypedEmitter } from '../net/typed-emitter.js';
import { spliceSocket } from '../relay/exit.js';
import { serveBuiltinHttp } from './builtin-http.js';
import { loadOrCreateIdentity } from './identity.js';
import { HttpInstanceExchange, type InstancePeersOptions } from './instance-peers.js';
import { directoryExchange, type InstanceExchange, isValidInstanceName } from './instances.js';
import {
  IntroBudget,
  introLimitsFromParams,
  introReplayKey,
  REND_REPLAY_TIME_INTERVAL_MS,
  ReplayCache,
} from './introduce.js';
import { type PeriodSrv, serviceDescriptorPeriods, uploadHsDirs } from './periods.js';
import { rendRetryPolicy, withRendezvousRetries } from './rendezvous-retry.js';

export type Backend = { type: 'tcp'; host: string; port: number } | { type: 'builtin' };

export interface OnionServiceOptions {
  /** Name for logs and the `service` metric label. */
  name: string;
  /** This instance's name (several may share one identity); default "default". */
  instance?: string;
  /** Identity key file (created 0600 if missing). One of this or identitySeed. */
  identityKeyFile?: string;
  identitySeed?: Uint8Array;
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
  published: { tp: number; uploaded: number; failed: number; introPoints: number };
  introEstablished: { relay: string };
  rendezvous: { relay: string };
}

export class OnionServiceError extends ShallotError {
  constructor(message: string) {
    super('ERR_ONION_SERVICE', message);
  }
}

interface Intro {
  relay: NetRelay;
  authSeed: Uint8Array;
  authPub: Uint8Array;
  encSecret: Uint8Array;
  encPub: Uint8Array;
  circ: OriginCircuit | null;
  established: boolean;
  closed: boolean;
  launchedAt: number;
  /** Introductions left and retirement time, drawn from the consensus params at launch. */
  budget: IntroBudget;
  /** This intro point's INTRODUCE2 replay cache (C tor: one per intro point). */
  replay: ReplayCache;
}

interface DescState {
  period: PeriodSrv;
  blindedPub: Uint8Array;
  blindedKey: ExpandedKey;
  subcredential: Uint8Array;
  signingSeed: Uint8Array;
  /** Intro set + HSDir set of the last good upload. */
  uploadedSig: string | null;
  nextUploadAt: number;
  uploading: boolean;
}

const DEFAULT_REPUBLISH: [number, number] = [60 * 60_000, 120 * 60_000];
const UPLOAD_TIMEOUT_MS = 30_000;
const UPLOAD_RETRY_MS = 5_000;
const INTRO_FAIL_BACKOFF_MS = 30_000;
/** How long a new intro point may hold back a descriptor upload while it is being established. */
const INTRO_SETTLE_MS = 5_000;

export class OnionService extends TypedEmitter<OnionServiceEvents> {
  private identityPub: Uint8Array | null = null;
  private expanded: ExpandedKey | null = null;
  private address: string | null = null;
  private readonly instance: string;
  private readonly dataDir: string | null;
  private readonly numIntro: number;
  private readonly virtualPort: number;
  private readonly now: () => number;
  private readonly rng: Rng;
  private readonly m: Metrics['service'];
  private readonly label: { service: string };
  private readonly log: Logger;
  private readonly intros = new Set<Intro>();
  private readonly failedRelays = new Map<string, number>();
  private readonly descs = new Map<number, DescState>();
  private readonly subcreds = new Map<number, Uint8Array>();
  /** Rendezvous cookies already answered (C tor replay_cache_rend_cookie). */
  private readonly rendCookies = new ReplayCache(REND_REPLAY_TIME_INTERVAL_MS);
  private readonly rendCircuits = new Set<OriginCircuit>();
  private readonly bucket: TokenBucket;
  private exchange: InstanceExchange | null = null;
  private peerIntroPoints: IntroPointInfo[] = [];
  private peerRelayIds = new Set<string>();
  private lastConsensus: Consensus | null = null;
  private params: TimePeriodParams | null = null;
  private lastRevision = 0n;
  private pendingRend = 0;
  private lastHeartbeat = 0;
  private lastOwnSig = '';
  private timer: NodeJS.Timeout | null = null;
  private kickTimer: NodeJS.Timeout | null = null;
  private tickRun: Promise<void> | null = null;
  private running = false;
  private publishedRounds = 0;

  constructor(
    private readonly c: OnionServiceComponents,
    readonly opts: OnionServiceOptions,
  ) {
    super();
    this.instance = opts.instance ?? 'default';
    if (!isValidInstanceName(this.instance))
      throw new OnionServiceError(`bad instance name "${this.instance}"`);
    if (!opts.identityKeyFile && !opts.identitySeed)
      throw new OnionServiceError('need identityKeyFile or identitySeed');
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
    this.virtualPort = opts.virtualPort ?? 80;
    this.now = c.now ?? Date.now;
    this.rng = c.rng ?? randomBytes;
    this.m = metricsFor(c.registry).service;
    this.label = { service: opts.name };
    this.log = c.logger;
    const ir = opts.introduceRate ?? { rate: 50, burst: 300 };
    this.bucket = new TokenBucket(ir.rate, ir.burst, this.now());
  }

  /** "<56 base32>.onion"; available after start(). */
  get onionAddress(): string {
    if (!this.address) throw new OnionServiceError('not started');
    return this.address;
  }

  /** The port this instance serves its record on (instancePeers), after start(). */
  get instancePeersPort(): number | null {
    return this.exchange instanceof HttpInstanceExchange ? this.exchange.port : null;
  }

  get identityPublicKey(): Uint8Array {
    if (!this.identityPub) throw new OnionServiceError('not started');
    return this.identityPub;
  }

  /** Established intro points of this instance. */
  get establishedIntroPoints(): number {
    let n = 0;
    for (const i of this.intros) if (i.established) n++;
    return n;
  }

  /** Nicknames of this instance's established intro points. */
  get introPointRelays(): string[] {
    return [...this.intros].filter((i) => i.established).map((i) => i.relay.nickname);
  }

  /** Streams on this instance's rendezvous circuits: open, and half-closed (END sent, the client's due). */
  get rendezvousStreams(): { open: number; halfClosed: number } {
    let open = 0;
    let halfClosed = 0;
    for (const c of this.rendCircuits) {
      open += c.streamCount;
      halfClosed += c.halfClosedStreams;
    }
    return { open, halfClosed };
  }

  /** Entries in this instance's per-intro-point replay caches (only MAC-valid cells enter them). */
  get introReplayEntries(): number {
    let n = 0;
    for (const i of this.intros) n += i.replay.size;
    return n;
  }

  /** Intro points this instance's descriptors currently list (own + peers'). */
  get publishedIntroPoints(): IntroPointInfo[] {
    return this.mergedIntroPoints();
  }

  /** Upload rounds completed with at least one HSDir accepting. */
  get published(): number {
    return this.publishedRounds;
  }

  /** Most intro points a successfully uploaded descriptor has listed. */
  private bestPublished: number | null = null;

  /**
   * Resolves once a descriptor listing at least `minIntroPoints` intro points
   * (default: all of this instance's) reached an HSDir: clients can connect.
   */
  whenPublished(minIntroPoints = this.numIntro, timeoutMs = 60_000): Promise<void> {
    if ((this.bestPublished ?? -1) >= minIntroPoints) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('published', check);
        reject(
          new OnionServiceError(
            `no descriptor with ${minIntroPoints} intro points published in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const check = (e: { uploaded: number; introPoints: number }) => {
        if (e.uploaded > 0 && e.introPoints >= minIntroPoints) {
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
      ready: this.running && this.publishedRounds > 0,
      onion: this.address,
      introPoints: this.establishedIntroPoints,
      published: this.publishedRounds,
    };
  }

  async start(): Promise<void> {
    if (this.running) return;
    let seed = this.opts.identitySeed;
    if (!seed) {
      const file = this.opts.identityKeyFile as string;
      const loaded = await loadOrCreateIdentity(file);
      seed = loaded.seed;
      if (loaded.created) this.log.info('created a new onion-service identity key', { file });
    }
    if (seed.length !== 32) throw new OnionServiceError('identity seed must be 32 bytes');
    this.identityPub = ed25519PublicFromSeed(seed);
    this.expanded = ed25519Expand(seed);
    this.address = encodeOnionAddress(this.identityPub);
    const ip = this.opts.instancePeers;
    const refused = this.m.instanceRecordsRefused;
    this.exchange = ip
      ? await HttpInstanceExchange.start(
          {
            logger: this.log.child('instances'),
            refused: (reason) =>
              refused.labels({ ...this.label, service_instance: this.instance, reason }).inc(),
            now: this.now,
          },
          { pollMs: this.opts.heartbeatMs ?? 5_000, ...ip },
          seed,
        )
      : this.dataDir
        ? directoryExchange(this.dataDir)
        : null;
    this.running = true;
    this.log.info('onion service starting', {
      onion: this.address,
      instance: this.instance,
      backend:
        this.opts.backend.type === 'tcp' ? `${this.opts.backend.host}:${this.opts.backend.port}` : 'builtin',
      virtualPort: this.virtualPort,
      authorizedClients: this.opts.authorizedClients?.length ?? 'anyone',
    });
    this.m.introPoints.labels({ ...this.label, service_instance: this.instance }).set(0);
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
    for (const i of this.intros) this.dropIntro(i);
    this.intros.clear();
    for (const circ of this.rendCircuits) circ.destroy(DestroyReason.FINISHED);
    this.rendCircuits.clear();
    this.m.introPoints.labels({ ...this.label, service_instance: this.instance }).set(0);
    // A housekeeping pass may be writing our instance record: let it finish before removing it.
    await this.tickRun;
    await this.exchange?.close(this.instance).catch(() => {});
    this.log.info('onion service stopped', { onion: this.address });
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

  /* ------------------------------------------------------------ housekeeping */

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
      const consensus = dir.consensus;
      if (consensus !== this.lastConsensus) this.onConsensus(consensus);
      this.maintainIntros();
      await this.syncInstances();
      // stop() may have run while the instance files were read.
      if (this.running) this.maintainDescriptors();
    } catch (e) {
      this.log.warn('onion service housekeeping failed', { error: (e as Error).message });
    }
  }

  private onConsensus(consensus: Consensus): void {
    this.lastConsensus = consensus;
    this.params = timePeriodParams({
      votingIntervalSec: consensus.votingIntervalSec,
      testnet: this.opts.testnet ?? true,
    });
    const periods = serviceDescriptorPeriods(consensus, this.params);
    const keep = new Set(periods.map((p) => p.tp));
    for (const tp of this.descs.keys()) if (!keep.has(tp)) this.descs.delete(tp);
    for (const p of periods) {
      const d = this.descs.get(p.tp);
      if (!d) this.descs.set(p.tp, this.newDescState(p));
      else if (toHex(d.period.srv) !== toHex(p.srv)) d.period = p; // the ring changed: the upload check sees it
    }
    // Intro points on relays that left the consensus are replaced.
    const listed = new Set(this.c.client.dir?.relays.map((r) => r.id));
    for (const i of this.intros) {
      if (!listed.has(i.relay.id)) {
        this.log.info('intro point left the consensus; replacing it', { relay: i.relay.nickname });
        this.dropIntro(i);
      }
    }
    const tpNow = timePeriodNum(consensus.validAfterMs, this.params);
    for (const tp of this.subcreds.keys()) if (tp < tpNow - 2 || tp > tpNow + 2) this.subcreds.delete(tp);
  }

  private newDescState(period: PeriodSrv): DescState {
    const p = this.params as TimePeriodParams;
    const tp = BigInt(period.tp);
    const len = BigInt(p.lengthMinutes);
    const blindedPub = blindIdentity(this.identityPub as Uint8Array, tp, len);
    return {
      period,
      blindedPub,
      blindedKey: blindExpandedKey(this.expanded as ExpandedKey, tp, len),
      subcredential: hsSubcredential(this.identityPub as Uint8Array, blindedPub),
      signingSeed: randomBytes(32),
      uploadedSig: null,
      nextUploadAt: 0,
      uploading: false,
    };
  }

  private subcredentialFor(tp: number): Uint8Array {
    const d = this.descs.get(tp);
    if (d) return d.subcredential;
    let s = this.subcreds.get(tp);
    if (!s) {
      const len = BigInt((this.params as TimePeriodParams).lengthMinutes);
      s = hsSubcredential(
        this.identityPub as Uint8Array,
        blindIdentity(this.identityPub as Uint8Array, BigInt(tp), len),
      );
      this.subcreds.set(tp, s);
    }
    return s;
  }

  /** Both descriptors' periods, then the periods around now (clients with older or newer consensuses). */
  private liveSubcredentials(): Uint8Array[] {
    const tps = new Set<number>(this.descs.keys());
    if (this.lastConsensus && this.params) {
      const now = timePeriodNum(this.lastConsensus.validAfterMs, this.params);
      for (const tp of [now, now - 1, now + 1]) tps.add(tp);
    }
    return [...tps].map((tp) => this.subcredentialFor(tp));
  }

  /* ------------------------------------------------------------ intro points */

  private maintainIntros(): void {
    const dir = this.c.client.dir;
    if (!dir) return;
    const now = this.now();
    for (const [id, until] of this.failedRelays) if (until <= now) this.failedRelays.delete(id);
    for (const i of this.intros) if (i.established && i.budget.expired(now)) this.retireIntro(i, 'lifetime');
    const used = new Set([...this.intros].map((i) => i.relay.id));
    const base = dir.relays.filter(
      (r) =>
        r.flags.includes('Running') &&
        r.flags.includes('Valid') &&
        r.flags.includes('Stable') &&
        !used.has(r.id) &&
        !this.failedRelays.has(r.id),
    );
    // Prefer relays no other instance uses, so a relay's loss takes out one instance's intro point only.
    const fresh = base.filter((r) => !this.peerRelayIds.has(r.id));
    const pool = fresh.length > 0 ? fresh : base;
    while (this.intros.size < this.numIntro && pool.length > 0) {
      const [relay] = pool.splice(uniformInt(pool.length, this.rng), 1);
      if (relay) this.launchIntro(relay);
    }
  }

  private launchIntro(relay: NetRelay): void {
    const authSeed = randomBytes(32);
    const enc = x25519Generate(randomBytes);
    const now = this.now();
    const intro: Intro = {
      relay,
      authSeed,
      authPub: ed25519PublicFromSeed(authSeed),
      encSecret: enc.secret,
      encPub: enc.public,
      circ: null,
      established: false,
      closed: false,
      launchedAt: now,
      budget: new IntroBudget(introLimitsFromParams(this.c.client.dir?.consensus.params), now),
      // Entries live as long as the intro point (C tor replaycache_new(0, 0)); its budget bounds their number.
      replay: new ReplayCache(),
    };
    this.intros.add(intro);
    this.establish(intro).catch((e: unknown) => {
      this.log.info('could not establish an intro point', {
        relay: relay.nickname,
        error: (e as Error).message,
      });
      this.failedRelays.set(relay.id, this.now() + INTRO_FAIL_BACKOFF_MS);
      this.dropIntro(intro);
    });
  }

  private async establish(intro: Intro): Promise<void> {
    const circ = await this.c.client.circuits.build({ purpose: 'onion-intro', lastHop: intro.relay });
    if (intro.closed || !this.running) {
      circ.destroy(DestroyReason.FINISHED);
      return;
    }
    intro.circ = circ;
    circ.on('destroyed', () => {
      if (intro.closed) return;
      if (intro.established)
        this.log.info('intro circuit closed; replacing the intro point', { relay: intro.relay.nickname });
      this.dropIntro(intro);
    });
    const kh = circ.lastHopKh;
    if (!kh) throw new OnionServiceError('intro circuit has no KH for its last hop');
    const hop = circ.length - 1;
    const reply = circ.waitFor((h, m) => h === hop && m.type === 'INTRO_ESTABLISHED', 30_000);
    circ.on('message', ({ hop: h, msg }) => {
      if (h === hop && msg.type === 'INTRODUCE2') this.onIntroduce2(intro, msg.body);
    });
    const body = buildEstablishIntro(
      {
        authKeyPub: intro.authPub,
        authKeySeed: intro.authSeed,
        dos: this.opts.introDos ?? { rate: 25, burst: 200 },
      },
      kh,
    );
    circ.sendControl({ type: 'ESTABLISH_INTRO', body });
    await reply;
    if (intro.closed) return;
    intro.established = true;
    this.updateIntroGauge();
    this.log.info('intro point established', { relay: intro.relay.nickname, instance: this.instance });
    this.emit('introEstablished', { relay: intro.relay.nickname });
    this.kick();
  }

  /** C tor intro_point_should_expire: a spent or old intro point is replaced (new relay, new keys). */
  private retireIntro(intro: Intro, reason: 'budget' | 'lifetime'): void {
    this.m.introRotations.labels({ ...this.label, reason }).inc();
    this.log.info('rotating an intro point', {
      relay: intro.relay.nickname,
      reason,
      introductions: intro.budget.introductions,
    });
    this.dropIntro(intro);
  }

  private dropIntro(intro: Intro): void {
    if (intro.closed) return;
    intro.closed = true;
    this.intros.delete(intro);
    intro.circ?.destroy(DestroyReason.FINISHED);
    this.updateIntroGauge();
    this.kick();
  }

  private updateIntroGauge(): void {
    this.m.introPoints
      .labels({ ...this.label, service_instance: this.instance })
      .set(this.establishedIntroPoints);
  }

  private ownIntroPoints(): IntroPointInfo[] {
    const out: IntroPointInfo[] = [];
    for (const i of this.intros) {
      if (!i.established) continue;
      out.push({
        linkSpecifiers: relayLinkSpecifiers({
          address: i.relay.address,
          port: i.relay.port,
          legacyId: legacyIdFromEd25519(i.relay.identity),
          ed25519Id: i.relay.identity,
        }),
        onionKey: i.relay.ntorKey,
        authKey: i.authPub,
        encKey: i.encPub,
      });
    }
    return out;
  }

  private mergedIntroPoints(): IntroPointInfo[] {
    const out = this.ownIntroPoints();
    const seen = new Set(out.map((ip) => toHex(ip.authKey)));
    for (const ip of this.peerIntroPoints) {
      if (out.length >= HS_DESC_MAX_INTRO_POINTS) break;
      const k = toHex(ip.authKey);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(ip);
    }
    return out;
  }

  /* ------------------------------------------------------------ instances */

  private async syncInstances(): Promise<void> {
    if (!this.exchange) return;
    const now = this.now();
    const heartbeat = this.opts.heartbeatMs ?? 5_000;
    const own = this.ownIntroPoints();
    const ownSig = own.map((ip) => toHex(ip.authKey)).join(',');
    if (this.running && (ownSig !== this.lastOwnSig || now - this.lastHeartbeat >= heartbeat)) {
      await this.exchange.publish({ instance: this.instance, updatedMs: now, introPoints: own });
      this.lastOwnSig = ownSig;
      this.lastHeartbeat = now;
    }
    const peers = await this.exchange.peers(this.instance, now, 4 * heartbeat);
    this.m.instancePeers.labels({ ...this.label, service_instance: this.instance }).set(peers.length);
    this.peerIntroPoints = peers.flatMap((p) => p.introPoints);
    this.peerRelayIds = new Set(
      this.peerIntroPoints.flatMap((ip) => {
        const ed = linkTarget(ip.linkSpecifiers).ed25519;
        return ed ? [toHex(ed)] : [];
      }),
    );
  }

  /* ------------------------------------------------------------ descriptors */

  private nextRevision(): bigint {
    // Milliseconds since the epoch: monotone here and, within clock skew, across instances.
    const t = BigInt(this.now());
    this.lastRevision = t > this.lastRevision ? t : this.lastRevision + 1n;
    return this.lastRevision;
  }

  private maintainDescriptors(): void {
    const dir = this.c.client.dir;
    if (!dir || !this.params) return;
    const ips = this.mergedIntroPoints();
    // C tor waits for its intro points before the first upload; so do we (at least one, for a short outage).
    if (ips.length === 0) return;
    // Intro points still being established soon change the set: wait a little so one upload covers them.
    const now = this.now();
    for (const i of this.intros) if (!i.established && now - i.launchedAt < INTRO_SETTLE_MS) return;
    const introSig = ips
      .map((ip) => toHex(ip.authKey))
      .sort()
      .join(',');
    for (const d of this.descs.values()) {
      if (d.uploading) continue;
      const targets = uploadHsDirs(dir.relays, d.blindedPub, d.period, this.params);
      if (targets.length === 0) continue;
      const sig = `${introSig}|${targets.map((t) => t.id).join(',')}`;
      // Upload on any change of intro set or ring, else when the republish (or retry) time comes.
      if (sig === d.uploadedSig && now < d.nextUploadAt) continue;
      void this.upload(d, ips, targets, sig);
    }
  }

  private republishDelay(): number {
    const [lo, hi] = this.opts.republishMs ?? DEFAULT_REPUBLISH;
    return lo + uniformFraction(this.rng) * (hi - lo);
  }

  private async upload(d: DescState, ips: IntroPointInfo[], targets: NetRelay[], sig: string): Promise<void> {
    d.uploading = true;
    const nowMs = this.now();
    let text: string;
    try {
      text = buildHsDescriptor(
        {
          identityPub: this.identityPub as Uint8Array,
          blindedKey: d.blindedKey,
          blindedPub: d.blindedPub,
          descSigningSeed: d.signingSeed,
          revisionCounter: this.nextRevision(),
          introPoints: ips,
          subcredential: d.subcredential,
          nowMs,
          ...(this.opts.authorizedClients ? { authorizedClients: this.opts.authorizedClients } : {}),
        },
        randomBytes,
      );
    } catch (e) {
      d.uploading = false;
      this.log.error('could not build the descriptor', { error: (e as Error).message });
      return;
    }
    const results = await Promise.all(targets.map((t) => this.uploadOne(t, text)));
    d.uploading = false;
    const ok = results.filter((r) => r === 'success').length;
    const failed = results.length - ok;
    if (ok > 0) this.publishedRounds++;
    // Any HSDir that missed it gets a retry soon (all of them: the revision counter makes that harmless).
    d.uploadedSig = sig;
    d.nextUploadAt = this.now() + (failed > 0 ? UPLOAD_RETRY_MS : this.republishDelay());
    this.log.info('descriptor published', {
      onion: this.address,
      instance: this.instance,
      tp: d.period.tp,
      srv: d.period.source,
      introPoints: ips.length,
      uploaded: ok,
      failed,
    });
    if (ok > 0) {
      // Own and peers' intro points: above shallot_hs_intro_points once instances share.
      this.m.descriptorIntroPoints.labels({ ...this.label, service_instance: this.instance }).set(ips.length);
      if (ips.length >= (this.bestPublished ?? 0)) this.bestPublished = ips.length;
    }
    this.emit('published', { tp: d.period.tp, uploaded: ok, failed, introPoints: ips.length });
  }

  private async uploadOne(hsdir: NetRelay, text: string): Promise<'success' | 'rejected' | 'failure'> {
    let circ: OriginCircuit | null = null;
    let outcome: 'success' | 'rejected' | 'failure' = 'failure';
    const timer = setTimeout(() => circ?.destroy(DestroyReason.TIMEOUT), UPLOAD_TIMEOUT_MS);
    try {
      circ = await this.c.client.circuits.build({ purpose: 'hsdir', lastHop: hsdir });
      const stream = await circ.openDirStream(UPLOAD_TIMEOUT_MS);
      const res = await dirRequest(
        stream,
        { method: 'POST', path: '/tor/hs/3/publish', body: utf8(text) },
        4096,
      );
      outcome = res.status === 200 ? 'success' : 'rejected';
      if (outcome === 'rejected') {
        this.log.warn('HSDir refused the descriptor', {
          hsdir: hsdir.nickname,
          status: res.status,
          body: Buffer.from(res.body).toString('utf8').slice(0, 200),
        });
      }
    } catch (e) {
      this.log.debug('descriptor upload failed', { hsdir: hsdir.nickname, error: (e as Error).message });
    } finally {
      clearTimeout(timer);
      circ?.destroy(DestroyReason.FINISHED);
    }
    this.m.descriptorUploads.labels({ ...this.label, outcome }).inc();
    return outcome;
  }

  /* ------------------------------------------------------------ INTRODUCE2 */

  private introOutcome(outcome: string): void {
    this.m.introRequests.labels({ ...this.label, service_instance: this.instance, outcome }).inc();
  }

  /** The order of checks is explained in introduce.ts: junk first, caches after the MAC. */
  private onIntroduce2(intro: Intro, body: Uint8Array): void {
    if (!this.running || intro.closed) return;
    let opened: ReturnType<typeof openIntroduce2>;
    try {
      opened = openIntroduce2(body, {
        b: intro.encSecret,
        B: intro.encPub,
        subcredentials: this.liveSubcredentials(),
        authKey: intro.authPub,
      });
    } catch (e) {
      this.introOutcome(e instanceof CryptoError ? 'bad_mac' : 'invalid');
      this.log.debug('INTRODUCE2 refused', { error: (e as Error).message });
      return;
    }
    const now = this.now();
    // rend-spec-v3 §3.3 / C tor hs_cell_parse_introduce2: a replayed INTRODUCE2 is dropped.
    if (intro.replay.addTestAndElapsed(introReplayKey(opened.cell), now) !== null) {
      this.introOutcome('replay');
      return;
    }
    if (intro.budget.spend()) this.retireIntro(intro, 'budget');
    // C tor hs_circ_handle_introduce2: one rendezvous per cookie (a retrying client reuses it).
    if (this.rendCookies.addTestAndElapsed(toHex(opened.plaintext.cookie), now) !== null) {
      this.introOutcome('rend_cookie_replay');
      return;
    }
    if (!this.bucket.take(now) || this.pendingRend >= (this.opts.maxPendingRendezvous ?? 64)) {
      this.introOutcome('rate_limited');
      return;
    }
    this.introOutcome('accepted');
    this.pendingRend++;
    this.rendezvous(intro, opened)
      .catch((e: unknown) => {
        this.m.rend.labels({ ...this.label, service_instance: this.instance, outcome: 'failure' }).inc();
        this.log.info('rendezvous failed', { error: (e as Error).message });
      })
      .finally(() => {
        this.pendingRend--;
      });
  }

  /* ------------------------------------------------------------ rendezvous */

  /** The rendezvous point as a last hop: its consensus entry, or one made from the client's specifiers. */
  private rendezvousTarget(specs: LinkSpecifier[], onionKey: Uint8Array): NetRelay {
    const { ed25519, ipv4: v4 } = linkTarget(specs);
    const listed = ed25519 ? this.c.client.dir?.get(toHex(ed25519)) : undefined;
    // C tor extends with the onion key the client gave, whatever the consensus says.
    if (listed) return { ...listed, ntorKey: onionKey };
    if (!ed25519 || !v4) throw new OnionServiceError('rendezvous point has no Ed25519 id or IPv4 address');
    const entry = {
      nickname: 'unlisted-rp',
      identity: ed25519,
      ntorOnionKey: onionKey,
      address: v4.addr,
      orPort: v4.port,
      publishedMs: 0,
      flags: ['Running', 'Stable', 'Valid'],
      bandwidth: 0,
      exitPolicy: [],
      family: [],
      descriptorDigest: new Uint8Array(32),
    } as unknown as NetRelay['entry'];
    return {
      id: toHex(ed25519),
      entry,
      nickname: entry.nickname,
      identity: ed25519,
      ntorKey: onionKey,
      address: v4.addr,
      port: v4.port,
      flags: entry.flags,
      bandwidth: 0,
      family: [],
      allowsExitPort: () => false,
    };
  }

  private async rendezvous(intro: Intro, opened: ReturnType<typeof openIntroduce2>): Promise<void> {
    const pt = opened.plaintext;
    const rp = this.rendezvousTarget(pt.linkSpecifiers, pt.onionKey);
    // C tor hs_circ_retry_service_rendezvous_point: a circuit that fails to build is relaunched (rendezvous-retry.ts).
    const circ = await withRendezvousRetries(
      () => this.c.client.circuits.build({ purpose: 'onion-rend', lastHop: rp }),
      rendRetryPolicy(this.c.client.dir?.consensus.params),
      {
        now: this.now,
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        discard: (late) => late.destroy(DestroyReason.FINISHED),
        onRetry: (attempt, e) => {
          this.m.rendRetries.labels({ ...this.label, service_instance: this.instance }).inc();
          this.log.info('rendezvous circuit failed; retrying', {
            rp: rp.nickname,
            attempt,
            error: (e as Error).message,
          });
        },
      },
    );
    if (!this.running) {
      circ.destroy(DestroyReason.FINISHED);
      return;
    }
    const hs = hsNtorServiceRendezvous(
      { b: intro.encSecret, B: intro.encPub, authKey: intro.authPub, X: opened.X },
      randomBytes,
    );
    circ.sendControl({
      type: 'RENDEZVOUS1',
      body: encodeRendezvous1({ cookie: pt.cookie, handshakeInfo: joinHandshakeInfo(hs.Y, hs.auth) }),
    });
    // rend-spec-v3 §4.2: from now on the client is one virtual hop beyond the rendezvous point.
    const keys = hsRendHopKeys(hs.keySeed);
    hs.keySeed.fill(0);
    circ.addVirtualHop(hsVirtualHop(keys, 'service'), {
      nickname: 'onion-client',
      identity: new Uint8Array(32),
      ntorKey: new Uint8Array(32),
      address: '0.0.0.0',
      port: 0,
    });
    const edge = circ.length - 1;
    this.rendCircuits.add(circ);
    circ.on('destroyed', () => this.rendCircuits.delete(circ));
    circ.on('message', ({ hop, streamId, msg }) => {
      if (hop === edge && msg.type === 'BEGIN') this.onBegin(circ, streamId, msg);
    });
    this.m.rend.labels({ ...this.label, service_instance: this.instance, outcome: 'success' }).inc();
    this.emit('rendezvous', { relay: rp.nickname });
    this.log.debug('rendezvous circuit open', { rp: rp.nickname });
  }

  private onBegin(
    circ: OriginCircuit,
    streamId: number,
    msg: Extract<RelayMessage, { type: 'BEGIN' }>,
  ): void {
    let port: number;
    try {
      port = parseBeginTarget(msg.target).port;
    } catch {
      circ.refuseStream(streamId, EndReason.TORPROTOCOL);
      return;
    }
    if (port !== this.virtualPort) {
      circ.refuseStream(streamId, EndReason.DONE);
      return;
    }
    const backend = this.opts.backend;
    if (backend.type === 'builtin') {
      const stream = circ.acceptStream(streamId);
      if (!stream) circ.refuseStream(streamId, EndReason.RESOURCELIMIT);
      else serveBuiltinHttp(stream);
      return;
    }
    const socket = net.connect({ host: backend.host, port: backend.port });
    const fail = () => {
      socket.destroy();
      circ.refuseStream(streamId, EndReason.CONNECTREFUSED);
    };
    const timer = setTimeout(fail, 10_000);
    socket.once('error', () => {
      clearTimeout(timer);
      fail();
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      const stream = circ.acceptStream(streamId);
      if (!stream) {
        socket.destroy();
        circ.refuseStream(streamId, EndReason.RESOURCELIMIT);
        return;
      }
      socket.setNoDelay(true);
      spliceSocket(socket, stream);
    });
  }
}
