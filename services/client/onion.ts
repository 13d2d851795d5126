/**
 * The client side of onion services (rend-spec-v3 §2-4): turns
 * a connect request for `<addr>.onion:port` into a stream to the service.
 * Failures are ConnectErrors named by kind (connect.ts); the proxy edge
 * answers them (connect-reply.ts: the 0xFx SOCKS5 codes of prop 304).
 *
 * Overview, for one request:
 * 1. Decode the address (failure: `bad_address`). Derive the time period,
 *    blinded key A' and subcredential from the consensus (onion-params.ts).
 * 2. Descriptor: from the cache, or fetched over a 3-hop circuit ending at
 *    one of the responsible HSDirs (`GET /tor/hs/3/<b64 A'>` on BEGIN_DIR),
 *    trying them in random order. None has it: `desc_not_found`. Every copy
 *    found fails to verify or decrypt: `desc_invalid`.
 * 3. Rendezvous: a fresh rendezvous point (weighted draw among Stable
 *    relays), a circuit to it and ESTABLISH_RENDEZVOUS with a random
 *    cookie; meanwhile a circuit to an introduction point from the
 *    descriptor. INTRODUCE1 carries the cookie and the rendezvous point's
 *    ntor key and link specifiers, encrypted to the service. A NACK moves on
 *    to the next intro point; all fail: `intro_failed` (`intro_timeout` when
 *    every failure was a timeout). No RENDEZVOUS2 in time, or a bad one:
 *    `rend_failed`.
 * 4. hs-ntor's KEY_SEED gives the virtual hop; the stream is a BEGIN ":port"
 *    through it.
 *
 * Design notes:
 * - An open rendezvous circuit is reused for later streams to the same
 *   service under the same isolation key (as C tor reuses a joined
 *   rendezvous circuit), until it is `maxDirtinessMs` old; the
 *   CircuitManager's expiry timer closes it once its streams are done. A
 *   BEGIN on it without CONNECTED in `streamTimeoutMs` rendezvouses again.
 * - Time periods (rend-spec-v3 §2.2.1): no HSDir has the current period's
 *   descriptor: the other period's is fetched (onion-params `otherPeriodKeys`).
 * - Intro-point failover: each failure (circuit, NACK, ACK timeout) moves on
 *   to the next intro point and is remembered for 2 min, so later connects
 *   try it last (C tor's client intro state cache); relays the
 *   CircuitManager saw stop answering are tried last as intro points and
 *   skipped as rendezvous points.
 * - Every phase runs inside the SOCKS request's deadline (proxy-server.ts):
 *   its own failure goes out first, else a `timeout` at the deadline.
 * - Descriptors are cached per address for their time period, until
 *   `descriptor-lifetime` has passed. When every intro point of a cached
 *   descriptor fails, it is dropped and fetched once more (the service may
 *   have moved its intro points), as C tor does.
 * - The rendezvous circuit is established before INTRODUCE1 leaves, so the
 *   service's RENDEZVOUS1 always finds the cookie; the RENDEZVOUS2 waiter
 *   is in place before INTRODUCE1 too, so a fast service is never missed.
 *
 * Metrics: `shallot_onion_connect_seconds` (request to CONNECTED),
 * `shallot_onion_connect_phase_seconds{phase}` (descriptor, introduction,
 * rendezvous, stream: the same connect split, successful phases only),
 * `shallot_onion_connects_total{outcome}` (ok, the failure's kind or other),
 * `shallot_client_rendezvous_chosen_total{relay}`; circuit metrics come from
 * the CircuitManager (purposes hsdir, onion-intro, onion-rend).
 *
 * Client authorization (rend-spec-v3 §2.5.1.2): with a key for the service
 * (`clientAuthKeys`, from Tor-format .auth_private files) the descriptor's
 * inner layer opens with the cookie from its auth-client line; a service
 * that needs a key the client lacks gives `missing_client_auth`, a key
 * that does not open it `wrong_client_auth`, at once (every HSDir holds the same descriptor).
 *
 * Not here: pre-built rendezvous circuits; proof-of-work.
 */
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { toBase64, toHex } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import type { ClientAuthPrivate } from '../core/client-auth.js';
import { legacyIdFromEd25519, type Rng, randomBytes } from '../core/crypto.js';
import {
  buildIntroduce1,
  decodeIntroduceAck,
  decodeRendezvous2,
  encodeEstablishRendezvous,
  IntroduceAckStatus,
  REND_COOKIE_LEN,
  splitHandshakeInfo,
} from '../core/hs-cells.js';
import {
  ClientAuthError,
  decryptHsDescriptor,
  HS_DESC_MAX_LEN,
  type HsDescriptorContents,
  type IntroPointInfo,
} from '../core/hs-descriptor.js';
import { hsNtorClientRendezvous, hsRendHopKeys } from '../core/hs-ntor.js';
import { relayLinkSpecifiers } from '../core/link-specifiers.js';
import { shuffled } from '../core/random.js';
import type { RelayMessage } from '../core/relay-cell.js';
import { hsVirtualHop } from '../core/relay-crypto.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { dirRequest } from '../net/dir-http.js';
import { type Logger, silentLogger } from '../net/log.js';
import { CircuitError, type OriginCircuit, StreamRefusedError } from '../net/origin-circuit.js';
import type { CircuitManager } from './circuit-manager.js';
import { ConnectError, type ConnectErrorKind, type ConnectRequest, withDeadline } from './connect.js';
import type { NetDir, NetRelay } from './netdir.js';
import {
  chooseRendezvousPoint,
  findIntroRelay,
  hsDirsToFetch,
  type OnionPeriodKeys,
  onionIdentityFor,
  onionLabel,
  onionPeriodKeys,
  otherPeriodKeys,
} from './onion-params.js';

export interface OnionClientOptions {
  logger?: Logger;
  registry?: Registry;
  rng?: Rng;
  now?: () => number;
  /** One HSDir fetch: circuit, BEGIN_DIR and the answer (default 30 s). */
  descFetchTimeoutMs?: number;
  /** HSDirs tried per fetch (default: all responsible ones, up to 6). */
  maxHsDirAttempts?: number;
  /** RENDEZVOUS_ESTABLISHED after ESTABLISH_RENDEZVOUS (default 30 s). */
  rendEstablishTimeoutMs?: number;
  /**
   * INTRODUCE_ACK after INTRODUCE1 (default 10 s, the CircuitManager's
   * "stopped answering" time; C tor's c_intro_cutoff is 14/6 of the build
   * timeout + 1 s, but it keeps the circuit for a late ACK, which here is
   * closed).
   */
  introAckTimeoutMs?: number;
  /** RENDEZVOUS2 after a positive INTRODUCE_ACK (default 30 s). */
  rendezvousTimeoutMs?: number;
  /**
   * CONNECTED after BEGIN on the rendezvous circuit (default 10 s, C tor's
   * first stream timeout); on a reused circuit a timeout means rendezvous
   * again (C tor waits SocksTimeout on a joined rendezvous circuit; a frozen
   * relay on it would then stall every stream to the service).
   */
  streamTimeoutMs?: number;
  /** Intro points tried per rendezvous (default 3, as C tor's intro retries). */
  maxIntroAttempts?: number;
  /** Rendezvous points tried when the circuit to one cannot be built (default 2). */
  maxRendAttempts?: number;
  /** Rendezvous circuits are reused for new streams until this old (default: the client's dirtiness). */
  maxDirtinessMs?: number;
  /** Descriptors cached at once (default 1000). */
  maxCachedDescriptors?: number;
  /** Client-authorization keys, one per onion service that requires one. */
  clientAuthKeys?: readonly ClientAuthPrivate[];
}

/** Outcome labels of `shallot_onion_connects_total`: the onion kinds, by name; anything else is `other`. */
const OUTCOMES: ReadonlySet<ConnectErrorKind> = new Set([
  'desc_not_found',
  'desc_invalid',
  'missing_client_auth',
  'wrong_client_auth',
  'intro_failed',
  'rend_failed',
  'bad_address',
  'intro_timeout',
]);

/** What the onion client needs of the client: its circuits and consensus. */
export interface OnionSource {
  readonly circuits: CircuitManager;
  readonly dir: NetDir | null;
}

/**
 * Upper bound on building one intro circuit, for sizing the RENDEZVOUS2
 * waiter (the CircuitManager's learned timeout applies first); the waiter is
 * cleared as soon as the rendezvous finishes or fails.
 */
const INTRO_CIRCUIT_BUDGET_MS = 60_000;

interface CachedDescriptor {
  tp: bigint;
  desc: HsDescriptorContents;
  expiresAt: number;
}

interface RendCircuit {
  circ: OriginCircuit;
  createdAt: number;
}

interface PendingRendezvous {
  circ: OriginCircuit;
  cookie: Uint8Array;
  rp: NetRelay;
}

/** An INTRODUCE1 we sent: what finishing hs-ntor on RENDEZVOUS2 needs. */
interface SentIntro {
  ip: IntroPointInfo;
  x: Uint8Array;
  X: Uint8Array;
}

export class OnionClient {
  private readonly logger: Logger;
  private readonly rng: Rng;
  private readonly now: () => number;
  private readonly m: Metrics['client'];
  private readonly descriptors = new Map<string, CachedDescriptor>();
  private readonly rendCircuits = new Map<string, RendCircuit>();
  /** Fetches in flight per address, so concurrent requests share one (as C tor's pending-fetch check). */
  private readonly fetching = new Map<string, { tp: bigint; p: Promise<HsDescriptorContents> }>();
  /** Intro points (auth key, hex) that failed, until when: tried last (C tor's client intro state cache). */
  private readonly introFailures = new Map<string, number>();
  private readonly o: Required<
    Omit<OnionClientOptions, 'logger' | 'registry' | 'rng' | 'now' | 'clientAuthKeys'>
  >;
  /** Client-auth secrets by the service's identity key (hex). */
  private readonly authKeys: Map<string, Uint8Array>;

  constructor(
    private readonly source: OnionSource,
    opts: OnionClientOptions = {},
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.rng = opts.rng ?? randomBytes;
    this.now = opts.now ?? Date.now;
    this.m = metricsFor(opts.registry ?? new Registry()).client;
    this.authKeys = new Map((opts.clientAuthKeys ?? []).map((k) => [toHex(k.identity), k.secret]));
    this.o = {
      descFetchTimeoutMs: opts.descFetchTimeoutMs ?? 30_000,
      maxHsDirAttempts: opts.maxHsDirAttempts ?? 6,
      rendEstablishTimeoutMs: opts.rendEstablishTimeoutMs ?? 30_000,
      introAckTimeoutMs: opts.introAckTimeoutMs ?? 10_000,
      rendezvousTimeoutMs: opts.rendezvousTimeoutMs ?? 30_000,
      streamTimeoutMs: opts.streamTimeoutMs ?? 10_000,
      maxIntroAttempts: opts.maxIntroAttempts ?? 3,
      maxRendAttempts: opts.maxRendAttempts ?? 2,
      maxDirtinessMs: opts.maxDirtinessMs ?? source.circuits.opts.maxDirtinessMs,
      maxCachedDescriptors: opts.maxCachedDescriptors ?? 1000,
    };
  }

  /**
   * Opens a stream to `req.host` (a .onion name) port `req.port`. Fails
   * with a ConnectError of an onion kind, or the StreamRefusedError /
   * CircuitError of the rendezvous circuit's stream.
   */
  async connect(req: ConnectRequest): Promise<Duplex> {
    const started = this.now();
    try {
      // Inside the SOCKS deadline (proxy-server.ts): each phase's own timeout gives its error first.
      const stream = await withDeadline(this.open(req), req, (late) => late.destroy());
      this.m.onionConnect.observe((this.now() - started) / 1000);
      this.m.onionConnects.labels({ outcome: 'ok' }).inc();
      return stream;
    } catch (e) {
      const kind = e instanceof ConnectError && OUTCOMES.has(e.kind) ? e.kind : 'other';
      this.m.onionConnects.labels({ outcome: kind }).inc();
      this.logger.info('onion connect failed', { kind, error: String(e) });
      throw e;
    }
  }

  /** Drops cached descriptors and closes rendezvous circuits (for shutdown and tests). */
  clear(): void {
    this.descriptors.clear();
    for (const r of this.rendCircuits.values()) r.circ.destroy(DestroyReason.FINISHED);
    this.rendCircuits.clear();
  }

  /** Cached descriptor for a host, if any (tests and status). */
  cachedDescriptor(host: string): HsDescriptorContents | null {
    return this.descriptors.get(onionLabel(host))?.desc ?? null;
  }

  private async open(req: ConnectRequest): Promise<Duplex> {
    const identity = onionIdentityFor(req.host);
    const label = onionLabel(req.host);
    const dir = this.source.dir;
    if (!dir) throw new ConnectError('not_bootstrapped', 'not bootstrapped yet');

    const reuseKey = `${label}\n${req.isolationKey}`;
    const reused = this.reusable(reuseKey);
    if (reused) {
      try {
        return this.source.circuits.watchStream(reused, await this.openStream(reused, req.port));
      } catch (e) {
        if (e instanceof StreamRefusedError) throw e;
        // The circuit died under us or gave no CONNECTED in time: rendezvous again.
        this.rendCircuits.delete(reuseKey);
        const timedOut = e instanceof CircuitError && e.kind === 'timeout';
        if (timedOut) this.source.circuits.streamTimedOut(reused, this.o.streamTimeoutMs);
        else this.source.circuits.retire(reused, 'refused');
        this.m.streamRetries.labels({ server: 'onion', reason: timedOut ? 'timeout' : 'circuit' }).inc();
      }
    }

    const authSecret = this.authKeys.get(toHex(identity));
    let { desc, cached, keys } = await this.descriptorEitherPeriod(label, identity, dir, authSecret);
    let circ: OriginCircuit;
    try {
      circ = await this.rendezvous(identity, label, desc, keys, dir);
    } catch (e) {
      const introFailed =
        e instanceof ConnectError && (e.kind === 'intro_failed' || e.kind === 'intro_timeout');
      if (!cached || !introFailed) throw e;
      // The service may have moved: fetch afresh once (C tor purges the cache entry too).
      this.descriptors.delete(label);
      ({ desc, cached } = await this.descriptor(label, keys, dir, authSecret));
      circ = await this.rendezvous(identity, label, desc, keys, dir);
    }
    // Closed after MaxCircuitDirtiness once its streams are done (C tor's expiry of joined rendezvous circuits).
    this.source.circuits.expireWhenIdle(circ);
    const entry = { circ, createdAt: this.now() };
    this.rendCircuits.set(reuseKey, entry);
    circ.once('destroyed', () => {
      if (this.rendCircuits.get(reuseKey) === entry) this.rendCircuits.delete(reuseKey);
    });
    try {
      return this.source.circuits.watchStream(circ, await this.openStream(circ, req.port));
    } catch (e) {
      if (!(e instanceof StreamRefusedError)) circ.destroy();
      throw e;
    }
  }

  /** BEGIN on the rendezvous circuit; its time to CONNECTED is the `stream` phase. */
  private async openStream(circ: OriginCircuit, port: number): Promise<Duplex> {
    const started = this.now();
    const stream = await circ.openStream({ host: '', port }, this.o.streamTimeoutMs);
    this.phase('stream', started);
    return stream;
  }

  /** Observes one phase of shallot_onion_connect_phase_seconds (shallot load splits connects with it). */
  private phase(phase: 'descriptor' | 'introduction' | 'rendezvous' | 'stream', since: number): void {
    this.m.onionConnectPhase.labels({ phase }).observe((this.now() - since) / 1000);
  }

  private reusable(key: string): OriginCircuit | null {
    const r = this.rendCircuits.get(key);
    if (!r) return null;
    if (
      r.circ.isOpen &&
      this.now() - r.createdAt < this.o.maxDirtinessMs &&
      !this.source.circuits.isRetired(r.circ)
    )
      return r.circ;
    this.rendCircuits.delete(key);
    if (r.circ.isOpen && r.circ.streamCount === 0) r.circ.destroy(DestroyReason.FINISHED);
    return null;
  }

  /* ------------------------------------------------------ descriptors */

  /**
   * The descriptor for the current time period, else for the other one
   * (`otherPeriodKeys`, rend-spec-v3 §2.2.1) when no HSDir has the current
   * one: around a time-period change a service may not have published for
   * the period this client's consensus names yet. A cached descriptor of the
   * other period is used first while it is valid.
   */
  private async descriptorEitherPeriod(
    label: string,
    identity: Uint8Array,
    dir: NetDir,
    authSecret: Uint8Array | undefined,
  ): Promise<{ desc: HsDescriptorContents; cached: boolean; keys: OnionPeriodKeys }> {
    const current = onionPeriodKeys(identity, dir.consensus);
    const other = otherPeriodKeys(identity, dir.consensus);
    const order = this.descriptors.get(label)?.tp === other.tp ? [other, current] : [current, other];
    let notFound: unknown;
    for (const keys of order) {
      try {
        return { ...(await this.descriptor(label, keys, dir, authSecret)), keys };
      } catch (e) {
        if (!(e instanceof ConnectError && e.kind === 'desc_not_found')) throw e;
        notFound ??= e;
      }
    }
    throw notFound;
  }

  private async descriptor(
    label: string,
    keys: OnionPeriodKeys,
    dir: NetDir,
    authSecret: Uint8Array | undefined,
  ): Promise<{ desc: HsDescriptorContents; cached: boolean }> {
    const hit = this.descriptors.get(label);
    if (hit && hit.tp === keys.tp && hit.expiresAt > this.now()) return { desc: hit.desc, cached: true };
    if (hit) this.descriptors.delete(label);
    const inFlight = this.fetching.get(label);
    if (inFlight && inFlight.tp === keys.tp) return { desc: await inFlight.p, cached: false };
    const fetchStarted = this.now();
    const p = this.fetchDescriptor(keys, dir, authSecret);
    const entry = { tp: keys.tp, p };
    this.fetching.set(label, entry);
    let desc: HsDescriptorContents;
    try {
      desc = await p;
    } finally {
      if (this.fetching.get(label) === entry) this.fetching.delete(label);
    }
    // Once per fetch: requests that shared it (above) are not observed again.
    this.phase('descriptor', fetchStarted);
    if (this.descriptors.size >= this.o.maxCachedDescriptors) {
      const oldest = this.descriptors.keys().next();
      if (!oldest.done) this.descriptors.delete(oldest.value);
    }
    this.descriptors.set(label, {
      tp: keys.tp,
      desc,
      expiresAt: this.now() + desc.lifetime * 60_000,
    });
    this.logger.debug('onion descriptor fetched', {
      address: label,
      introPoints: desc.introPoints.length,
      revision: desc.revisionCounter.toString(),
    });
    return { desc, cached: false };
  }

  /** Tries the responsible HSDirs in random order; see the module notes for the failure codes. */
  private async fetchDescriptor(
    keys: OnionPeriodKeys,
    dir: NetDir,
    authSecret: Uint8Array | undefined,
  ): Promise<HsDescriptorContents> {
    const hsdirs = shuffled(hsDirsToFetch(dir.relays, keys), this.rng).slice(0, this.o.maxHsDirAttempts);
    if (hsdirs.length === 0) throw new ConnectError('desc_not_found', 'no HSDirs in consensus');
    let invalid = 0;
    let unreachable = 0;
    let lastInvalid = '';
    for (const hsdir of hsdirs) {
      let body: Uint8Array | null;
      try {
        body = await this.fetchFrom(hsdir, keys.blindedPub);
      } catch (e) {
        unreachable += 1;
        this.logger.debug('HSDir fetch failed', { hsdir: hsdir.nickname, error: String(e) });
        continue;
      }
      if (body === null) continue;
      try {
        return decryptHsDescriptor(body, {
          blindedPub: keys.blindedPub,
          subcredential: keys.subcredential,
          nowMs: this.now(),
          ...(authSecret ? { clientAuthSecret: authSecret } : {}),
        });
      } catch (e) {
        if (e instanceof ClientAuthError)
          throw new ConnectError(
            e.kind === 'missing' ? 'missing_client_auth' : 'wrong_client_auth',
            e.message,
          );
        invalid += 1;
        lastInvalid = (e as Error).message;
        this.logger.warn('HSDir returned an invalid onion descriptor', {
          hsdir: hsdir.nickname,
          error: lastInvalid,
        });
      }
    }
    if (invalid > 0) throw new ConnectError('desc_invalid', `descriptor invalid: ${lastInvalid}`);
    throw new ConnectError(
      'desc_not_found',
      `descriptor not found on ${hsdirs.length} HSDirs (${unreachable} unreachable)`,
    );
  }

  /** One GET over BEGIN_DIR; null on 404. */
  private async fetchFrom(hsdir: NetRelay, blindedPub: Uint8Array): Promise<Uint8Array | null> {
    const deadline = this.now() + this.o.descFetchTimeoutMs;
    const circ = await this.source.circuits.build({ purpose: 'hsdir', lastHop: hsdir });
    const timer = setTimeout(() => circ.destroy(DestroyReason.TIMEOUT), Math.max(1, deadline - this.now()));
    try {
      const stream = await circ.openDirStream(this.o.descFetchTimeoutMs);
      const res = await dirRequest(
        stream,
        { method: 'GET', path: `/tor/hs/3/${toBase64(blindedPub, false)}`, body: new Uint8Array(0) },
        HS_DESC_MAX_LEN,
      );
      if (res.status === 404) return null;
      if (res.status !== 200) throw new Error(`HSDir answered ${res.status}`);
      return res.body;
    } finally {
      clearTimeout(timer);
      circ.destroy(DestroyReason.FINISHED);
    }
  }

  /* ------------------------------------------------------ rendezvous */

  private async rendezvous(
    identity: Uint8Array,
    label: string,
    desc: HsDescriptorContents,
    keys: OnionPeriodKeys,
    dir: NetDir,
  ): Promise<OriginCircuit> {
    const started = this.now();
    const found = shuffled(desc.introPoints, this.rng)
      .map((ip) => ({ ip, relay: findIntroRelay(dir.relays, ip.linkSpecifiers) }))
      .filter((x): x is { ip: IntroPointInfo; relay: NetRelay } => x.relay !== undefined);
    // Failover order: intro points that failed lately, or whose relay stopped answering, go last.
    const failed = (x: { ip: IntroPointInfo; relay: NetRelay }) =>
      this.introFailed(x.ip) || this.source.circuits.isUnresponsive(x.relay.id);
    const intros = [...found.filter((x) => !failed(x)), ...found.filter(failed)].slice(
      0,
      this.o.maxIntroAttempts,
    );
    if (intros.length === 0) {
      throw new ConnectError('intro_failed', 'no usable introduction point in the descriptor');
    }

    // The rendezvous circuit and the first intro circuit are built at the same time.
    const rendP = this.establishRendezvous(dir);
    rendP.catch(() => {});
    let nextIntro: Promise<OriginCircuit> | null = this.introCircuit(intros[0]!.relay);
    nextIntro.catch(() => {});

    let rend: PendingRendezvous;
    try {
      rend = await rendP;
    } catch (e) {
      void nextIntro.then((c) => c.destroy(DestroyReason.FINISHED)).catch(() => {});
      throw e instanceof ConnectError ? e : new ConnectError('rend_failed', String(e));
    }
    const rendCirc = rend.circ;
    // In place before any INTRODUCE1, so a fast service's RENDEZVOUS2 is never missed.
    const rend2 = rendCirc.waitFor(
      (_hop, m) => m.type === 'RENDEZVOUS2',
      intros.length * (this.o.introAckTimeoutMs + INTRO_CIRCUIT_BUDGET_MS) + this.o.rendezvousTimeoutMs,
    );
    rend2.catch(() => {});

    const sent: SentIntro[] = [];
    let acked = false;
    let timeouts = 0;
    let lastError = '';
    for (let i = 0; i < intros.length && !acked; i++) {
      const { ip, relay } = intros[i]!;
      const introP = nextIntro ?? this.introCircuit(relay);
      nextIntro = null;
      let introCirc: OriginCircuit;
      try {
        introCirc = await introP;
      } catch (e) {
        if (isTimeout(e)) timeouts += 1;
        lastError = `intro circuit to ${relay.nickname}: ${String(e)}`;
        this.noteIntroFailure(ip);
        continue;
      }
      try {
        const built = buildIntroduce1(
          {
            authKey: ip.authKey,
            B: ip.encKey,
            subcredential: keys.subcredential,
            plaintext: {
              cookie: rend.cookie,
              extensions: [],
              onionKey: rend.rp.ntorKey,
              linkSpecifiers: relayLinkSpecifiers({
                address: rend.rp.address,
                port: rend.rp.port,
                legacyId: legacyIdFromEd25519(rend.rp.identity),
                ed25519Id: rend.rp.identity,
              }),
            },
          },
          this.rng,
        );
        sent.push({ ip, x: built.x, X: built.X });
        const ackP = introCirc.waitFor((_h, m) => m.type === 'INTRODUCE_ACK', this.o.introAckTimeoutMs);
        introCirc.sendControl({ type: 'INTRODUCE1', body: built.cell });
        const { msg } = await ackP;
        const ack = decodeIntroduceAck(bodyOf(msg));
        if (ack.status === IntroduceAckStatus.SUCCESS) acked = true;
        else {
          lastError = `intro point ${relay.nickname} answered INTRODUCE_ACK ${ack.status}`;
          this.noteIntroFailure(ip);
        }
      } catch (e) {
        if (isTimeout(e)) timeouts += 1;
        lastError = `intro point ${relay.nickname}: ${String(e)}`;
        this.noteIntroFailure(ip);
      } finally {
        // rend-spec-v3 §3.2.2: the intro circuit has done its job either way.
        introCirc.destroy(DestroyReason.FINISHED);
      }
    }
    if (!acked) {
      rendCirc.destroy(DestroyReason.FINISHED);
      const allTimedOut = timeouts > 0 && timeouts === intros.length;
      throw new ConnectError(
        allTimedOut ? 'intro_timeout' : 'intro_failed',
        `introduction failed: ${lastError}`,
      );
    }
    this.phase('introduction', started);
    const ackedAt = this.now();

    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ConnectError('rend_failed', 'no RENDEZVOUS2 in time')),
          this.o.rendezvousTimeoutMs,
        );
      });
      const { msg } = await Promise.race([rend2, timeout]);
      const { Y, auth } = splitHandshakeInfo(decodeRendezvous2(bodyOf(msg)).handshakeInfo);
      // The service answers the INTRODUCE1 it got; normally the acked one, but try each we sent.
      let keySeed: Uint8Array | null = null;
      for (const s of sent) {
        try {
          keySeed = hsNtorClientRendezvous({
            x: s.x,
            X: s.X,
            B: s.ip.encKey,
            authKey: s.ip.authKey,
            Y,
            auth,
          });
          break;
        } catch {
          // Not this one.
        }
      }
      if (!keySeed) throw new ConnectError('rend_failed', 'RENDEZVOUS2 handshake does not verify');
      rendCirc.addVirtualHop(hsVirtualHop(hsRendHopKeys(keySeed), 'client'), {
        nickname: label,
        identity,
        ntorKey: new Uint8Array(32),
        address: '',
        port: 0,
      });
      keySeed.fill(0);
      this.phase('rendezvous', ackedAt);
      return rendCirc;
    } catch (e) {
      rendCirc.destroy(DestroyReason.FINISHED);
      throw e instanceof ConnectError ? e : new ConnectError('rend_failed', String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  /** C tor `hs_cache_client_intro_state_note`: remembered for HS_CACHE_CLIENT_INTRO_STATE_MAX_AGE (2 min). */
  private noteIntroFailure(ip: IntroPointInfo): void {
    const now = this.now();
    for (const [k, until] of this.introFailures) if (until <= now) this.introFailures.delete(k);
    if (this.introFailures.size < this.o.maxCachedDescriptors)
      this.introFailures.set(toHex(ip.authKey), now + 120_000);
  }

  private introFailed(ip: IntroPointInfo): boolean {
    return (this.introFailures.get(toHex(ip.authKey)) ?? 0) > this.now();
  }

  private introCircuit(relay: NetRelay): Promise<OriginCircuit> {
    return this.source.circuits.build({ purpose: 'onion-intro', lastHop: relay });
  }

  /** Picks a rendezvous point, builds to it and registers a fresh cookie. */
  private async establishRendezvous(dir: NetDir): Promise<PendingRendezvous> {
    const tried = new Set<string>();
    let last: unknown;
    for (let attempt = 0; attempt < this.o.maxRendAttempts; attempt++) {
      // Relays that stopped answering lately are skipped too, while any other is left.
      const skip = new Set([...tried, ...this.source.circuits.unresponsiveIds()]);
      const rp = chooseRendezvousPoint(dir.relays, dir.consensus.bandwidthWeights, this.rng, skip);
      if (!rp) throw new ConnectError('rend_failed', 'no relay can be a rendezvous point');
      tried.add(rp.id);
      this.m.rendezvousChosen.labels({ relay: rp.nickname }).inc();
      let circ: OriginCircuit | null = null;
      try {
        // Two chosen hops, vanguards or not: prop 333's client rend circuit is G-L2-R.
        circ = await this.source.circuits.build({ purpose: 'onion-rend', lastHop: rp, length: 2 });
        const cookie = this.rng(REND_COOKIE_LEN);
        const est = circ.waitFor(
          (_h, m) => m.type === 'RENDEZVOUS_ESTABLISHED',
          this.o.rendEstablishTimeoutMs,
        );
        circ.sendControl({ type: 'ESTABLISH_RENDEZVOUS', body: encodeEstablishRendezvous({ cookie }) });
        await est;
        return { circ, cookie, rp };
      } catch (e) {
        circ?.destroy(DestroyReason.FINISHED);
        last = e;
        this.logger.debug('rendezvous point failed', { relay: rp.nickname, error: String(e) });
      }
    }
    throw new ConnectError('rend_failed', `could not establish a rendezvous: ${String(last)}`);
  }
}

function bodyOf(msg: RelayMessage): Uint8Array {
  return 'body' in msg ? msg.body : new Uint8Array(0);
}

function isTimeout(e: unknown): boolean {
  return e instanceof CircuitError && (e.kind === 'timeout' || e.reason === DestroyReason.TIMEOUT);
}

/**
 * The onion connector for a client (`ShallotClient.onion`): `client.circuits`
 * builds the circuits, `client.dir` supplies the consensus.
 */
export function createOnionConnector(
  client: OnionSource,
  opts: OnionClientOptions = {},
): ((req: ConnectRequest) => Promise<Duplex>) & { client: OnionClient } {
  const oc = new OnionClient(client, opts);
  return Object.assign((req: ConnectRequest) => oc.connect(req), { client: oc });
}
