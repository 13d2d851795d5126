/**
 * The client side of onion services (rend-spec-v3 §2-4): turns
 * a connect request for `<addr>.onion:port` into a stream to the service.
 * Failures are ConnectErrors named by kind (connect.ts); the proxy edge
 * answers them (connect-reply.ts: the 0xFx SOCKS5 codes of prop 304).
 *
 * Overview, for one request:
 * 1. Decode the address (failure: `bad_address`). Derive the time period,
 *    blinded key A' and subcredential from the consensus (onion-params.ts).
 * 2. Descriptor: cached or fetched from the responsible HSDirs, either time
 *    period (onion-descriptors.ts: `desc_not_found`, `desc_invalid`,
 *    `missing_client_auth`, `wrong_client_auth`).
 * 3. Introduction and rendezvous (onion-rendezvous.ts: `intro_failed`,
 *    `intro_timeout`, `rend_failed`): hs-ntor's KEY_SEED gives the virtual
 *    hop on the rendezvous circuit.
 * 4. The stream is a BEGIN ":port" through that hop.
 *
 * Design notes:
 * - An open rendezvous circuit is reused for later streams to the same
 *   service under the same isolation key (as C tor reuses a joined
 *   rendezvous circuit), until it is `maxDirtinessMs` old; the
 *   CircuitManager's expiry timer closes it once its streams are done. A
 *   BEGIN on it without CONNECTED in `streamTimeoutMs` rendezvouses again.
 * - Every phase runs inside the SOCKS request's deadline (proxy-server.ts):
 *   its own failure goes out first, else a `timeout` at the deadline.
 * - Dead or frozen relays (issues 14, 19): a failed attempt is tried again
 *   on new circuits while `maxRendezvousTries` and the deadline (SocksTimeout)
 *   allow (onionRetry below): a circuit that failed or no RENDEZVOUS2 in time
 *   at once (another rendezvous point; the intro point that was used goes
 *   last), every intro point failing after a short backoff and a fresh fetch
 *   of the descriptor (the service may be moving its intro points), as C tor
 *   keeps the stream waiting and launches new intro and rendezvous circuits.
 *   Relays that could not be reached are left out of new paths for a minute
 *   (circuit-manager.ts).
 *
 * Metrics: `shallot_onion_connect_seconds` (request to CONNECTED),
 * `shallot_onion_connect_phase_seconds{phase}` (descriptor, introduction,
 * rendezvous, stream: the same connect split, successful phases only),
 * `shallot_onion_connects_total{outcome}` (ok, the failure's kind or other),
 * `shallot_client_stream_retries_total{server="onion",reason}` (rendezvous, descriptor: onionRetry),
 * `shallot_client_rendezvous_chosen_total{relay}`; circuit metrics come from
 * the CircuitManager (purposes hsdir, onion-intro, onion-rend).
 *
 * Client authorization (rend-spec-v3 §2.5.1.2): with a key for the service
 * (`clientAuthKeys`, from Tor-format .auth_private files) the descriptor's
 * inner layer opens with the cookie from its auth-client line.
 *
 * Not here: pre-built rendezvous circuits; proof-of-work.
 */
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { toHex } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import type { ClientAuthPrivate } from '../core/client-auth.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { HsDescriptorContents } from '../core/hs-descriptor.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { CircuitError, StreamRefusedError } from '../net/circuit-error.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { type Logger, silentLogger } from '../runtime/log.js';
import type { CircuitManager } from './circuit-manager.js';
import {
  ConnectError,
  type ConnectErrorKind,
  type ConnectRequest,
  remainingMs,
  withDeadline,
} from './connect.js';
import type { NetDir } from './netdir.js';
import { OnionDescriptors } from './onion-descriptors.js';
import { onionIdentityFor, onionLabel } from './onion-params.js';
import { OnionRendezvous, RetriableConnectError } from './onion-rendezvous.js';

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
  /** Rendezvous points tried per attempt when the circuit to one cannot be built (default 3). */
  maxRendAttempts?: number;
  /**
   * Rendezvous attempts per connect (default 6): each on new intro and rendezvous circuits after
   * one failed to build or timed out (C tor retries until SocksTimeout; this bounds it in count too).
   */
  maxRendezvousTries?: number;
  /** No new attempt after this long from the request (default 120 s, C tor's SocksTimeout). */
  connectTimeoutMs?: number;
  /** First wait before refetching a descriptor whose intro points all failed (default 1 s, doubling). */
  refetchBackoffMs?: number;
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

/** The phases of shallot_onion_connect_phase_seconds. */
type OnionPhase = 'descriptor' | 'introduction' | 'rendezvous' | 'stream';

/** What the onion client needs of the client: its circuits and consensus. */
export interface OnionSource {
  readonly circuits: CircuitManager;
  readonly dir: NetDir | null;
}

interface RendCircuit {
  circ: OriginCircuit;
  createdAt: number;
}

export class OnionClient {
  private readonly logger: Logger;
  private readonly rng: Rng;
  private readonly now: () => number;
  private readonly m: Metrics['client'];
  private readonly rendCircuits = new Map<string, RendCircuit>();
  private readonly o: Required<
    Omit<OnionClientOptions, 'logger' | 'registry' | 'rng' | 'now' | 'clientAuthKeys'>
  >;
  /** Client-auth secrets by the service's identity key (hex). */
  private readonly authKeys: Map<string, Uint8Array>;
  private readonly descs: OnionDescriptors;
  private readonly rend: OnionRendezvous;

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
      maxRendAttempts: opts.maxRendAttempts ?? 3,
      maxRendezvousTries: opts.maxRendezvousTries ?? 6,
      connectTimeoutMs: opts.connectTimeoutMs ?? 120_000,
      refetchBackoffMs: opts.refetchBackoffMs ?? REFETCH_BACKOFF_MS,
      maxDirtinessMs: opts.maxDirtinessMs ?? source.circuits.opts.maxDirtinessMs,
      maxCachedDescriptors: opts.maxCachedDescriptors ?? 1000,
    };
    const context = {
      circuits: source.circuits,
      logger: this.logger,
      rng: this.rng,
      now: this.now,
      m: this.m,
      phase: (phase: OnionPhase, since: number) => this.phase(phase, since),
    };
    this.descs = new OnionDescriptors(context, this.o);
    this.rend = new OnionRendezvous(context, this.o);
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
      this.source.circuits.locations.onionConnected((this.now() - started) / 1000);
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
    this.descs.clear();
    for (const r of this.rendCircuits.values()) r.circ.destroy(DestroyReason.FINISHED);
    this.rendCircuits.clear();
  }

  /** Cached descriptor for a host, if any (tests and status). */
  cachedDescriptor(host: string): HsDescriptorContents | null {
    return this.descs.cached(onionLabel(host));
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
    let { desc, keys } = await this.descs.eitherPeriod(label, identity, dir, authSecret);
    // C tor keeps the stream waiting and launches new intro and rendezvous circuits until SocksTimeout.
    const deadline = this.now() + Math.min(remainingMs(req), this.o.connectTimeoutMs);
    let circ: OriginCircuit | null = null;
    for (let attempt = 1; circ === null; attempt++) {
      try {
        circ = await this.rend.rendezvous(identity, label, desc, keys, dir);
      } catch (e) {
        const retry = onionRetry(
          e,
          { attempt, max: this.o.maxRendezvousTries, deadline, backoffMs: this.o.refetchBackoffMs },
          this.now(),
        );
        if (retry === null || this.now() + retry.delayMs >= deadline) throw e;
        this.m.streamRetries.labels({ server: 'onion', reason: retry.reason }).inc();
        this.logger.info('onion connect: trying again on new circuits', { attempt, error: String(e) });
        if (retry.reason === 'descriptor') {
          // The service may be moving its intro points (they lost their circuits): give it a moment to
          // publish, then fetch afresh (C tor refetches once every intro point has failed).
          await sleep(retry.delayMs);
          this.descs.drop(label);
          ({ desc } = await this.descs.get(label, keys, dir, authSecret));
          // C tor client_desc_has_arrived: a fresh descriptor with no usable intro point ends the stream (0xF2).
          if (!this.rend.hasUsableIntro(desc)) throw e;
        }
      }
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
  private phase(phase: OnionPhase, since: number): void {
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
}

/**
 * Why a failed rendezvous attempt is tried again, as
 * `shallot_client_stream_retries_total{server="onion",reason}` counts it:
 * a new introduction and rendezvous, or that after a fresh descriptor.
 */
export type OnionRetryReason = 'rendezvous' | 'descriptor';

/** First wait before refetching a descriptor whose intro points all failed; doubled per retry up to 8 s. */
export const REFETCH_BACKOFF_MS = 1_000;

/**
 * Whether to try a failed rendezvous attempt again, how and after how long
 * (null: give up). Every intro point failed (NACK, circuit, timeout): the
 * descriptor is fetched again after a short wait, as the service replaces
 * intro points whose circuits died and republishes (C tor hs_client.c:
 * failed intro points go to the client intro state cache and, once none is
 * usable, the descriptor is refetched while the stream waits). A circuit that
 * failed or a RENDEZVOUS2 that never came (RetriableConnectError): again at
 * once, on new circuits (circuituse.c circuit_build_failed; the stream is
 * re-attached after its timeout, connection_ap_expire_beginning). Anything
 * else (a bad address, a RENDEZVOUS2 that does not verify) is final.
 * Bounded by `max` attempts and the deadline (SocksTimeout).
 */
export function onionRetry(
  e: unknown,
  o: { attempt: number; max: number; deadline: number; backoffMs?: number },
  now: number,
): { reason: OnionRetryReason; delayMs: number } | null {
  if (o.attempt >= o.max || now >= o.deadline) return null;
  if (e instanceof ConnectError && (e.kind === 'intro_failed' || e.kind === 'intro_timeout')) {
    const base = o.backoffMs ?? REFETCH_BACKOFF_MS;
    return { reason: 'descriptor', delayMs: Math.min(base * 2 ** (o.attempt - 1), 8 * base) };
  }
  if (!(e instanceof RetriableConnectError)) return null;
  return { reason: 'rendezvous', delayMs: 0 };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
