/**
 * The Shallot client: fetches and verifies the consensus, keeps guards,
 * builds circuits (circuit-manager.ts) and serves SOCKS on 127.0.0.1.
 *
 * Overview: `start()` bootstraps from the authorities (retrying, with
 * progress in the log), refreshes the consensus before it goes stale
 * (dir-spec §5.1: in the clients' window after fresh-until), and opens the
 * streams its proxy listeners ask for: exit destinations over 3-hop exit
 * circuits, `.onion` names through the onion connector (onion.ts). A
 * failure is a typed error (connect.ts); the listeners phrase the answer.
 *
 * Stream retries (C tor `connection_ap_expire_beginning`): a BEGIN without
 * CONNECTED after the stream timeout (`streamTimeoutMs`: 10 s for the first
 * two attempts, then 15 s, as C tor's `compute_retry_timeout` with
 * CircuitStreamTimeout unset) marks its circuit unusable for new streams and
 * the stream is tried on another circuit, until the SOCKS request's
 * deadline (inside SocksTimeout, see proxy-server.ts) or `streamAttempts`.
 * A circuit that fails to build is no attempt: the stream waits for the
 * next one (C tor AP_CONN_STATE_CIRCUIT_WAIT), see exitCircuitWhenPathExists.
 *
 * On a C tor network (`torAuthorities`: the torrc's DirAuthority lines) the
 * directory comes from ctor-dir.ts (dir-spec §5: key certificates, the
 * microdesc consensus, microdescriptors; signatures checked against a
 * majority of the configured v3idents) on the same refresh schedule, asking
 * the authorities in random order as C tor spreads its directory fetches,
 * and fetching only microdescriptors it does not hold yet;
 * links are raw TLS and each relay's RSA legacy id is checked on the link
 * and named in EXTEND2 (circuit-manager.ts `rawTls`, netdir.ts).
 *
 * Limitations: the consensus comes from the authorities' HTTP ports, not
 * from directory caches over BEGIN_DIR; documented in README.
 */

import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { ClientAuthPrivate } from '../core/client-auth.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { DirAuthority } from '../core/ctor/dir-authority.js';
import type { Microdesc } from '../core/ctor/microdesc.js';
import { canExit, PathError } from '../core/path.js';
import { shuffled, uniformFraction } from '../core/random.js';
import { EndReason } from '../core/relay-cell.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import { CircuitError, StreamRefusedError } from '../net/circuit-error.js';
import { type AuthorityEndpoint, clientConsensusFetchTime, fetchConsensus } from '../net/dir-client.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import type { Logger } from '../runtime/log.js';
import { CircuitManager } from './circuit-manager.js';
import { type CircuitManagerOptions, DEFAULT_CIRCUIT_OPTIONS } from './circuit-options.js';
import { ConnectError, type Connector, type ConnectRequest, remainingMs, withDeadline } from './connect.js';
import { fetchCtorDirectory } from './ctor-dir.js';
import { NetDir } from './netdir.js';
import { createOnionConnector, type OnionClientOptions } from './onion.js';
import { type SocksServer, type SocksServerOptions, startSocksServer } from './socks-server.js';

export interface ClientOptions {
  /** Shallot directory authorities; exactly one of this and `torAuthorities`. */
  authorities?: AuthorityEndpoint[];
  /** A C tor network's authorities (core/ctor/dir-authority.ts): raw TLS links, RSA legacy ids. */
  torAuthorities?: readonly DirAuthority[];
  socksHost: string;
  /** 0 picks a free port; null runs without SOCKS (an onion service's own client). */
  socksPort: number | null;
  circuits?: Partial<CircuitManagerOptions>;
  /** Clock tolerance when checking consensus validity. */
  skewMs?: number;
  /**
   * Fetch each new consensus as soon as it is out instead of at a random
   * later time: onion services, whose HSDir ring must not lag their clients'.
   */
  refreshPromptly?: boolean;
  /** Circuits a stream is tried on before giving up (default 5; the SOCKS deadline bounds them too). */
  streamAttempts?: number;
  /** Keys for onion services that require client authorization. */
  clientAuthKeys?: readonly ClientAuthPrivate[];
  /** SOCKS timeouts (SocksTimeout and the reply margin; defaults in socks-server.ts). */
  socks?: Pick<SocksServerOptions, 'socksTimeoutMs' | 'replyMarginMs' | 'handshakeTimeoutMs'>;
  /** Onion-connect timeouts (defaults in onion.ts). */
  onionTimeouts?: Pick<
    OnionClientOptions,
    'descFetchTimeoutMs' | 'introAckTimeoutMs' | 'rendezvousTimeoutMs' | 'streamTimeoutMs'
  >;
}

export interface ClientComponents {
  logger: Logger;
  registry: Registry;
  rng?: Rng;
  now?: () => number;
}

export class ShallotClient {
  readonly circuits: CircuitManager;
  private socks: SocksServer | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly now: () => number;
  private readonly rng: Rng;
  private readonly m: Metrics['client'];
  private consensusWaiters: (() => void)[] = [];
  /** Streams waiting for a path, woken by each new consensus (exitCircuitWhenPathExists). */
  private readonly dirWaiters = new Set<() => void>();
  /** A C tor network's microdescriptors, kept between directory fetches (ctor-dir.ts). */
  private readonly microdescs = new Map<string, Microdesc>();
  /** Opens streams to onion services (onion.ts); null disables them. */
  onion: Connector | null = null;

  constructor(
    private readonly c: ClientComponents,
    readonly opts: ClientOptions,
  ) {
    this.now = c.now ?? Date.now;
    this.rng = c.rng ?? randomBytes;
    this.m = metricsFor(c.registry).client;
    if (!opts.authorities === !opts.torAuthorities)
      throw new Error('a client needs either Shallot authorities or C tor DirAuthority lines, not both');
    this.circuits = new CircuitManager(
      { logger: c.logger, registry: c.registry, rng: this.rng, now: this.now },
      // C tor relays speak cells straight over TLS (tor-spec §2).
      { ...DEFAULT_CIRCUIT_OPTIONS, ...opts.circuits, ...(opts.torAuthorities ? { rawTls: true } : {}) },
    );
    this.onion = createOnionConnector(this, {
      logger: c.logger.child('onion'),
      registry: c.registry,
      now: this.now,
      ...(c.rng ? { rng: c.rng } : {}),
      ...(opts.clientAuthKeys ? { clientAuthKeys: opts.clientAuthKeys } : {}),
      ...opts.onionTimeouts,
    });
  }

  get dir(): NetDir | null {
    return this.circuits.dir;
  }

  get socksPort(): number {
    if (!this.socks) throw new Error('client not started');
    return this.socks.port;
  }

  /** Starts SOCKS at once and bootstraps in the background; see `ready()`. */
  async start(): Promise<void> {
    await this.circuits.load();
    if (this.opts.socksPort !== null) {
      this.socks = await startSocksServer(
        { host: this.opts.socksHost, port: this.opts.socksPort, ...this.opts.socks },
        (req) => this.connect(req),
        { registry: this.c.registry },
      );
      this.c.logger.info('SOCKS5 listening', { address: this.socks.address });
    }
    void this.refresh(true);
  }

  /** Resolves once a verified consensus is loaded. */
  ready(timeoutMs = 120_000): Promise<void> {
    if (this.dir) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no consensus after ${timeoutMs} ms`)), timeoutMs);
      this.consensusWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async refresh(bootstrap: boolean): Promise<void> {
    if (this.stopped) return;
    let delayMs: number;
    try {
      const { dir, from } = await this.fetchDir();
      const consensus = dir.consensus;
      const first = !this.dir;
      this.circuits.setNetDir(dir);
      for (const w of [...this.dirWaiters]) w();
      // Series exist at 0 from the start, so rate() and increase() see the first event.
      for (const r of dir.relays) {
        if (r.flags.includes('Stable')) this.m.rendezvousChosen.labels({ relay: r.nickname }).inc(0);
        // Every exit a client could choose (path.ts canExit) has a series, so a report's exit
        // spread shows the unused ones too.
        if (canExit(r)) this.m.circuitHops.labels({ relay: r.nickname, position: 'exit' }).inc(0);
      }
      if (first) {
        this.c.logger.info('bootstrapped: consensus loaded', { relays: dir.relays.length, from });
        for (const w of this.consensusWaiters.splice(0)) w();
      }
      // dir-spec §5.1: at a random time in the clients' window (net/dir-client.ts
      // clientConsensusFetchTime), so clients do not all fetch at once.
      delayMs = this.opts.refreshPromptly
        ? Math.max(250, consensus.freshUntilMs - this.now() + 250)
        : Math.max(1_000, clientConsensusFetchTime(consensus, uniformFraction(this.rng)) - this.now());
    } catch (e) {
      delayMs = bootstrap && !this.dir ? 1_000 : 5_000;
      this.c.logger[this.dir ? 'warn' : 'info'](
        this.dir ? 'consensus refresh failed' : 'bootstrapping: waiting for a consensus',
        { error: (e as Error).message },
      );
    }
    if (this.stopped) return;
    this.refreshTimer = setTimeout(() => void this.refresh(!this.dir), delayMs);
    this.refreshTimer.unref();
  }

  /** A verified directory from the Shallot or C tor authorities. */
  private async fetchDir(): Promise<{ dir: NetDir; from: string }> {
    const tor = this.opts.torAuthorities;
    if (tor) {
      const order = shuffled(tor, this.rng);
      const c = await fetchCtorDirectory(order, { now: this.now, microdescs: this.microdescs });
      return { dir: new NetDir(c.consensus, c.legacyIds), from: 'C tor authorities' };
    }
    const { consensus, from } = await fetchConsensus(this.opts.authorities ?? [], {
      nowMs: this.now(),
      skewMs: this.opts.skewMs ?? 5_000,
      rng: this.rng,
    });
    return { dir: new NetDir(consensus), from };
  }

  /** SOCKS CONNECT handler: an exit stream or (with a connector) an onion stream. */
  async connect(req: ConnectRequest): Promise<Duplex> {
    const started = performance.now();
    const onion = req.host.toLowerCase().endsWith('.onion');
    let stream: Duplex;
    try {
      await this.bootstrapped(req);
      stream = onion ? await this.connectOnion(req) : await this.connectExit(req);
    } catch (e) {
      this.m.streams.labels({ outcome: 'failure' }).inc();
      // One line per failed stream, so a load run's failure can be found by its time.
      this.c.logger.debug('stream failed', {
        server: onion ? 'onion' : 'exit',
        ms: Math.round(performance.now() - started),
        error: String(e),
      });
      throw e;
    }
    // Onion streams count too, so the client-streams panel is not empty under onion-only load.
    this.m.streams.labels({ outcome: 'success' }).inc();
    this.observeStream(stream, onion ? 'onion' : 'exit', started);
    return stream;
  }

  /**
   * OnionPerf-style stream timings from the SOCKS request: first and last
   * byte received. The listener attaches before the SOCKS server pipes the
   * stream, in the same tick, so no data is missed.
   */
  private observeStream(stream: Duplex, server: 'onion' | 'exit', started: number): void {
    let bytes = 0;
    stream.on('data', (d: Buffer) => {
      if (bytes === 0) this.m.ttfb.labels({ server }).observe((performance.now() - started) / 1000);
      bytes += d.length;
    });
    stream.once('end', () => {
      if (bytes > 0)
        this.m.ttlb.labels({ server, size: sizeClass(bytes) }).observe((performance.now() - started) / 1000);
    });
  }

  /**
   * Waits until a consensus is loaded. The SOCKS port opens at once, so a
   * request may come before the first consensus; C tor does not fail it but
   * keeps it in AP_CONN_STATE_CIRCUIT_WAIT (circuit_get_open_circ_or_launch
   * returns 0 while !router_have_minimum_dir_info()), tries it again as
   * directory information arrives, and closes it with TIMEOUT once
   * SocksTimeout passes (connection_ap_expire_beginning). So here: wait for
   * the first consensus, up to the request's deadline and at most
   * SocksTimeout, then a `timeout` (SOCKS5 0x06, as C tor's END TIMEOUT).
   */
  private async bootstrapped(req: ConnectRequest): Promise<void> {
    const waitUntil = performance.now() + Math.min(remainingMs(req), CIRCUIT_WAIT_MS);
    while (!this.dir) {
      const left = waitUntil - performance.now();
      if (left <= 0 || this.stopped)
        throw new ConnectError('timeout', 'no consensus before the SOCKS deadline: still bootstrapping');
      await this.nextDirOr(Math.min(PATH_RETRY_MS, left));
    }
  }

  private connectOnion(req: ConnectRequest): Promise<Duplex> {
    if (!this.onion) throw new ConnectError('desc_not_found', 'onion services are not enabled');
    return this.onion(req);
  }

  private async connectExit(req: ConnectRequest): Promise<Duplex> {
    if (!this.dir) throw new ConnectError('not_bootstrapped', 'not bootstrapped yet');
    const attempts = this.opts.streamAttempts ?? 5;
    // However long the caller allows, a stream waits for a path at most SocksTimeout.
    const waitUntil = performance.now() + Math.min(remainingMs(req), CIRCUIT_WAIT_MS);
    let last: unknown = new ConnectError('timeout', 'no time left for the stream');
    for (let i = 0; i < attempts && remainingMs(req) > 0; i++) {
      let circ: OriginCircuit | null = null;
      let waited = 0;
      try {
        circ = await this.exitCircuitWhenPathExists(req, waitUntil);
        waited = Math.min(streamTimeoutMs(i), remainingMs(req));
        const stream = await circ.openStream({ host: req.host, port: req.port }, waited);
        return this.circuits.watchStream(circ, stream);
      } catch (e) {
        last = e;
        this.c.logger.debug('stream attempt failed', { attempt: i + 1, error: String(e) });
        // The destination's own answer is final (C tor's
        // connection_ap_process_end_not_open); anything else about the circuit
        // or the exit is worth another circuit.
        if (e instanceof PathError) {
          // C tor refuses a stream no exit's policy allows before building anything.
          if (e.context.position === 'exit') last = new ConnectError('exit_policy', e.message);
          break;
        }
        if (e instanceof StreamRefusedError && FINAL_END_REASONS.has(e.reason)) break;
        const timeout = e instanceof CircuitError && e.kind === 'timeout';
        if (circ && timeout) this.circuits.streamTimedOut(circ, waited);
        else if (circ) this.circuits.retire(circ, 'refused');
        if (i + 1 < attempts && remainingMs(req) > 0)
          this.m.streamRetries.labels({ server: 'exit', reason: timeout ? 'timeout' : 'circuit' }).inc();
      }
    }
    // The edge (connect-reply.ts) answers END reasons and circuit timeouts as C tor does.
    throw last;
  }

  /**
   * A circuit for the stream, waiting while no path can be chosen yet (no
   * Running guard, middle or exit in this consensus, or each one avoided for
   * a while) and while the circuits launched for it fail to build. C tor
   * does not fail such a stream: it stays in AP_CONN_STATE_CIRCUIT_WAIT
   * (circuit_get_open_circ_or_launch returns 0 when no circuit can be
   * launched; a circuit that fails, circuit_build_failed, leaves the streams
   * that wait for one pending), connection_ap_attach_pending tries it again
   * every second and with each new consensus, and
   * connection_ap_expire_beginning closes it with END reason TIMEOUT once
   * SocksTimeout passes. Only a destination no listed exit's policy allows
   * is refused at once (router_exit_policy_all_nodes_reject: "No Tor server
   * allows exit"). A fresh testnet needs this: every build can fail within
   * milliseconds while relays come up (a relay still holding an older
   * consensus fetches a newer one before it extends to a relay it does not
   * list, relay/network-view.ts, but the authorities may not serve it yet);
   * failing the stream after a fixed number of builds answered SOCKS 0x01
   * at once.
   */
  private async exitCircuitWhenPathExists(req: ConnectRequest, waitUntil: number): Promise<OriginCircuit> {
    for (;;) {
      try {
        return await withDeadline(this.circuits.exitCircuit(req.host, req.port, req.isolationKey), req);
      } catch (e) {
        // The SOCKS deadline passed (withDeadline), or the client is stopping.
        if (e instanceof ConnectError || this.stopped || !(e instanceof Error)) throw e;
        if (e instanceof PathError) {
          // By policy, not flags: a relay not yet Running has no Exit flag but may exit soon.
          const noExitAllows =
            e.context.position === 'exit' &&
            !this.dir?.relays.some(
              (r) => NetDir.exitAllows(r, req.host, req.port) && !r.flags.includes('BadExit'),
            );
          if (noExitAllows) throw e;
        }
        const left = Math.min(waitUntil, performance.now() + remainingMs(req)) - performance.now();
        if (left <= 0)
          throw new ConnectError('timeout', `no circuit before the SOCKS deadline: ${e.message}`);
        if (e instanceof PathError)
          this.c.logger.debug('no path yet; the stream waits', { error: e.message });
        else {
          this.c.logger.debug('a circuit for the stream failed; the stream waits for another', {
            error: String(e),
          });
          this.m.streamRetries.labels({ server: 'exit', reason: 'circuit' }).inc();
        }
        await this.nextDirOr(Math.min(PATH_RETRY_MS, left));
        if (this.stopped) throw e;
      }
    }
  }

  /** Resolves when a new consensus is loaded or after `ms`, whichever comes first. */
  private nextDirOr(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.dirWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.dirWaiters.add(done);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of [...this.dirWaiters]) w();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    await this.socks?.close();
    this.circuits.close();
  }
}

/** How often a stream waiting for a path or a circuit tries again (C tor connection_ap_attach_pending, each second). */
const PATH_RETRY_MS = 1_000;
/** The longest a stream waits for a path: C tor's SocksTimeout default (2 minutes). */
const CIRCUIT_WAIT_MS = 120_000;

/** C tor `compute_retry_timeout` (CircuitStreamTimeout unset): 10 s for the first two attempts, then 15 s. */
export function streamTimeoutMs(attempt: number): number {
  return attempt < 2 ? 10_000 : 15_000;
}

/** END reasons that describe the destination, not the circuit: retrying elsewhere will not help. */
const FINAL_END_REASONS = new Set<number>([
  EndReason.CONNECTREFUSED,
  EndReason.RESOLVEFAILED,
  EndReason.NOROUTE,
]);

/** A coarse bucket for the `size` label, so label cardinality stays small. */
export function sizeClass(bytes: number): string {
  for (const [limit, name] of [
    [1 << 10, '1KiB'],
    [64 << 10, '64KiB'],
    [1 << 20, '1MiB'],
    [16 << 20, '16MiB'],
  ] as const) {
    if (bytes <= limit) return name;
  }
  return 'larger';
}
