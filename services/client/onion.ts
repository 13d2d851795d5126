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
 * - When every intro point of a cached descriptor fails, the descriptor is
 *   dropped and fetched once more (the service may have moved its intro
 *   points), as C tor does.
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
import { OnionRendezvous } from './onion-rendezvous.js';

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
  /**
   * Introductions and rendezvous tried for one request when a rendezvous
   * fails (no RENDEZVOUS2 in time, the circuit died, no rendezvous point
   * established), inside the request's deadline (default 3; C tor retries
   * until SocksTimeout, see `open`).
   */
  maxRendezvousTries?: number;
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
      maxRendAttempts: opts.maxRendAttempts ?? 2,
      maxRendezvousTries: opts.maxRendezvousTries ?? 3,
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
    let { desc, cached, keys } = await this.descs.eitherPeriod(label, identity, dir, authSecret);
    let circ: OriginCircuit | undefined;
    // A failed rendezvous is tried again with a new introduction and rendezvous point: C tor
    // closes a rendezvous circuit that got no RENDEZVOUS2 (circuit_expire_building,
    // c_rend_ready_cutoff) or failed to build, and the stream, still waiting in
    // AP_CONN_STATE_CIRCUIT_WAIT, gets a new one until SocksTimeout
    // (connection_ap_expire_beginning). A service whose circuit to the rendezvous point
    // went through a stalled relay builds a new one for the new INTRODUCE2.
    for (let tries = 1; !circ; tries++) {
      try {
        circ = await this.rend.rendezvous(identity, label, desc, keys, dir);
      } catch (e) {
        const kind = e instanceof ConnectError ? e.kind : null;
        if (kind === 'rend_failed' && tries < this.o.maxRendezvousTries && remainingMs(req) > 0) {
          this.logger.debug('rendezvous failed; introducing again', { tries, error: String(e) });
          this.m.streamRetries.labels({ server: 'onion', reason: 'rendezvous' }).inc();
          continue;
        }
        if (!cached || (kind !== 'intro_failed' && kind !== 'intro_timeout')) throw e;
        // The service may have moved: fetch afresh once (C tor purges the cache entry too).
        this.descs.drop(label);
        ({ desc, cached } = await this.descs.get(label, keys, dir, authSecret));
        circ = await this.rend.rendezvous(identity, label, desc, keys, dir);
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
