/**
 * Builds and hands out client circuits: guard choice (guard-spec), path
 * selection by position weights (path-spec §2.2), a learned circuit-build
 * timeout (path-spec §2.4), pre-built clean circuits, and stream isolation
 * (streams with different isolation keys never share a circuit).
 *
 * Design notes: purposes follow Tor's: 'exit' circuits end at an exit chosen
 * for the port; onion-service circuits end at a chosen relay (intro point,
 * rendezvous point, HSDir) appended by `lastHop`: a consensus relay, or a
 * `CircuitTarget` made from link specifiers (a rendezvous point the
 * consensus does not list, as C tor extends to one).
 *
 * Not in this module: which open circuit takes a stream and when circuits
 * close (circuit-lifetimes.ts: MaxCircuitDirtiness, idle timeout, retiring,
 * pre-building), the guard state on disk (guard-store.ts), which relays
 * stopped answering (relay-liveness.ts), racing attempts for one request
 * (build-race.ts), one attempt's timers (build-deadlines.ts), what a built
 * circuit counts (build-metrics.ts), options and defaults
 * (circuit-options.ts), the layer-2 vanguard set (layer2-vanguards.ts).
 *
 * Build timeouts (core/cbt.ts): a build past the learned timeout is counted
 * and another build is launched beside it (a different guard when the first
 * hop had not answered); the first to open serves the request, and the slow
 * one is abandoned only at the close timeout (60 s; onion-service circuits
 * MAX(2 close + 1 s, SocksTimeout)). A hop that leaves CREATE2 or EXTEND2
 * unanswered for `firstHopTimeoutMs` stopped answering: the attempt is
 * abandoned and the relay left out of new paths' chosen hops for a minute; for a
 * first hop, its guard is marked failed and every circuit through that
 * channel takes no new stream.
 *
 * Vanguards-lite (`vanguardsLite`, prop 333): onion-service circuits take
 * their second hop from a set of 4 layer-2 relays (layer2-vanguards.ts) and
 * have a middle between it and the target (G-L2-M-target); a request for
 * two chosen hops (the client's rendezvous circuit) stays G-L2-target.
 */
import { CircuitBuildTimeout, cbtParamsFrom } from '../core/cbt.js';
import { DestroyReason } from '../core/cells.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import type { PathPurpose } from '../core/path.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import type { Channel } from '../net/channel.js';
import { ChannelPool } from '../net/channel-pool.js';
import { CircuitError } from '../net/circuit-error.js';
import { sendmeAcceptMinVersion } from '../net/edge.js';
import { OriginCircuit } from '../net/origin-circuit.js';
import { BuildDeadlines } from './build-deadlines.js';
import { countBuilt } from './build-metrics.js';
import { chooseBuildPath } from './build-path.js';
import { failureReason, raceBuilds, type SoftTimeout } from './build-race.js';
import { CircuitLifetimes } from './circuit-lifetimes.js';
import {
  type BuildRequest,
  type CircuitManagerComponents,
  type CircuitManagerOptions,
  NoConsensusError,
} from './circuit-options.js';
import { GuardStore } from './guard-store.js';
import { Layer2Vanguards } from './layer2-vanguards.js';
import { LocationMetrics } from './location-metrics.js';
import type { CircuitTarget, NetDir, NetRelay } from './netdir.js';
import { extendRefused, RelayLiveness } from './relay-liveness.js';

/** Onion-service circuit purposes C tor spares on a build timeout (`hs_circ_has_timed_out`). */
const HS_PURPOSES: ReadonlySet<PathPurpose> = new Set(['onion-intro', 'onion-rend']);

export class CircuitManager {
  private netdir: NetDir | null = null;
  private readonly guards: GuardStore;
  private readonly cbt = new CircuitBuildTimeout();
  readonly pool: ChannelPool;
  private readonly lifetimes: CircuitLifetimes;
  private readonly rng: Rng;
  private readonly now: () => number;
  private readonly m: Metrics['client'];
  /** Build (and onion connect, client/onion.ts) time by location under a network model. */
  readonly locations: LocationMetrics;
  private building = 0;
  private readonly lastHops = new WeakMap<OriginCircuit, NetRelay>();
  private readonly liveness: RelayLiveness;
  private readonly vanguards: Layer2Vanguards;
  private expiryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly c: CircuitManagerComponents,
    readonly opts: CircuitManagerOptions,
  ) {
    this.rng = c.rng ?? randomBytes;
    this.now = c.now ?? Date.now;
    this.guards = new GuardStore(opts.dataDir, c.logger);
    this.liveness = new RelayLiveness(this.now);
    this.vanguards = new Layer2Vanguards({ now: this.now, rng: this.rng, logger: c.logger });
    this.pool = new ChannelPool({
      keys: null,
      tls: opts.tls,
      rawTls: opts.rawTls,
      rng: this.rng,
      shaping: opts.shaping ?? null,
    });
    this.m = metricsFor(c.registry).client;
    this.locations = new LocationMetrics(metricsFor(c.registry), opts.shaping ?? null);
    this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
    this.lifetimes = new CircuitLifetimes({
      opts,
      m: this.m,
      logger: c.logger,
      now: this.now,
      build: (req) => this.build(req),
      // The relay the circuit was built to, as the consensus described it then
      // (it may have left a newer consensus since).
      exitOf: (circ) => this.lastHops.get(circ) ?? this.netdir?.get(toId(circ)),
      building: () => this.building,
      learning: () => this.cbt.needsTestCircuits(),
      ready: () => !this.closed && this.netdir !== null,
    });
    for (const purpose of ['exit', 'internal', 'onion-intro', 'onion-rend', 'hsdir']) {
      for (const outcome of ['success', 'failure']) this.m.circuits.labels({ purpose, outcome }).inc(0);
      this.m.circuitFailures.labels({ purpose, reason: 'timeout' }).inc(0);
      // The build-time histogram too: builds right after start must raise its buckets, not create them.
      this.m.circuitBuild.zero({ purpose });
    }
  }

  get dir(): NetDir | null {
    return this.netdir;
  }

  get learnedTimeoutMs(): number {
    return this.cbt.timeoutMs();
  }

  /** Loads persisted guard state, if any. */
  load(): Promise<void> {
    return this.guards.load();
  }

  setNetDir(dir: NetDir): void {
    this.netdir = dir;
    this.cbt.setParams(cbtParamsFrom(dir.consensus.params));
    this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
    if (!this.expiryTimer && !this.closed) {
      this.expiryTimer = setInterval(() => this.expireOld(), this.opts.expiryCheckMs);
      this.expiryTimer.unref();
    }
    this.guards.sample(dir.relays, { nowMs: this.now(), weights: dir.consensus.bandwidthWeights }, this.rng);
    this.lifetimes.consensusChanged(dir);
    this.maintain();
  }

  /** The current layer-2 vanguards' ids (for tests and status). */
  get vanguardIds(): string[] {
    return this.vanguards.ids;
  }

  /**
   * Builds one circuit for `req`: up to `buildAttempts` paths, a new one
   * launched when an attempt fails or passes the learned timeout (the slow
   * one goes on); the first circuit to open is returned, later ones closed.
   */
  build(req: BuildRequest): Promise<OriginCircuit> {
    return raceBuilds(
      this.opts.buildAttempts,
      (avoid, onSoftTimeout) => this.buildOnce(req, avoid, onSoftTimeout),
      req.lastHop?.id,
    );
  }

  private async buildOnce(
    req: BuildRequest,
    avoidGuards: ReadonlySet<string>,
    onSoftTimeout: (t: SoftTimeout) => void,
  ): Promise<OriginCircuit> {
    if (this.closed) throw new CircuitError(DestroyReason.REQUESTED, 'client is shutting down');
    const dir = this.netdir;
    if (!dir) throw new NoConsensusError();
    const purpose = req.purpose;
    const started = this.now();
    // A requested last hop is tried even if it stopped answering lately: callers that choose
    // (the onion client's intro and rendezvous points) leave such relays out or last themselves,
    // and one that cannot choose (a service's rendezvous at the client's point, an HSDir upload)
    // must try, as C tor does. A single refused EXTEND2 must not cost it every such circuit.
    const exclude = new Set(req.lastHop ? [req.lastHop.id] : []);
    const layer2 = req.lastHop && this.opts.vanguardsLite ? this.vanguards.relays(dir) : undefined;
    const pickOpts = { nowMs: started, rng: this.rng };
    // Picked once the exit is known, the first usable guard that fits beside it (C tor
    // guards_choose_guard with the exit restriction): a guard that is an exit never forces
    // the other exit (with that one down, no circuit could be built at all).
    let guard: NetRelay | undefined;
    const chooseGuard = (fits: (r: NetRelay) => boolean): NetRelay | undefined => {
      const usable = (id: string, r = dir.get(id)) => !exclude.has(id) && (r === undefined || fits(r));
      const pick =
        this.guards.pick({ ...pickOpts, usable: (id) => usable(id) && !avoidGuards.has(id) }) ??
        this.guards.pick({ ...pickOpts, usable });
      guard = pick ? dir.get(pick.id) : undefined;
      return guard;
    };
    let path: CircuitTarget[];
    try {
      path = chooseBuildPath({
        dir,
        req,
        guard: chooseGuard,
        layer2,
        silent: this.unresponsiveIds(),
        enforceSubnets: this.opts.enforceSubnets,
        rng: this.rng,
      });
    } catch (e) {
      this.countFailure(purpose, 'no_path');
      throw e;
    }
    const first = path[0] as CircuitTarget;
    const isGuard = guard !== undefined && first.id === guard.id;
    const hs = HS_PURPOSES.has(purpose);
    const softMs = hs ? this.cbt.hsTimeoutMs(path.length) : this.cbt.scaledTimeoutMs(path.length);
    const closeMs = hs ? this.cbt.hsCloseMs(this.opts.socksTimeoutMs) : this.cbt.closeMs();
    this.building++;
    let circ: OriginCircuit | null = null;
    let channel: Channel | null = null;
    const deadlines = new BuildDeadlines<CircuitTarget>({
      softMs,
      closeMs,
      hopMs: this.opts.firstHopTimeoutMs,
      onSoftTimeout: () => {
        // C tor counts a timeout toward the network-change rule only past the first hop (timeouts_after_firsthop).
        if (circ !== null) this.cbt.countTimeout();
        this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
        this.m.circuitBuildTimeouts.labels({ purpose }).inc();
        onSoftTimeout({ slowGuard: circ === null && isGuard ? first.id : null });
      },
      onClose: () => this.cbt.addAbandoned(),
      onHopSilent: (hop) => {
        if (circ === null && channel !== null)
          this.firstHopStoppedAnswering(channel, isGuard ? first.id : null);
        this.avoid(hop.id, 'no_answer');
      },
    });
    const { abandoned } = deadlines;
    try {
      try {
        channel = await Promise.race([
          this.pool.get({
            identity: first.identity,
            address: first.address,
            port: first.port,
            ...(first.legacyId ? { legacyId: first.legacyId } : {}),
          }),
          abandoned,
        ]);
      } catch (e) {
        if (isGuard) {
          this.guards.failed(first.id, this.now());
        }
        // C tor connection_or_about_to_close: an OR connection we launched that failed marks the relay down.
        if (!(e instanceof CircuitError && e.kind === 'timeout')) this.avoid(first.id, 'connect_failed');
        throw e;
      }
      const creating = OriginCircuit.create(channel, first, {
        rng: this.rng,
        handshake: this.opts.handshake,
        // prop 289: the network's minimum circuit SENDME version (1 unless the consensus says otherwise).
        sendmeAcceptMinVersion: sendmeAcceptMinVersion(this.dir?.consensus.params),
      });
      // A CREATE2 answered after we gave up still opens a circuit at the relay: close it.
      abandoned.catch(() => void creating.then((c) => c.destroy(DestroyReason.FINISHED)).catch(() => {}));
      deadlines.watch(first);
      circ = await Promise.race([creating, abandoned]);
      this.liveness.heardFrom(channel);
      // An exit circuit's last hop was chosen from this consensus (track() checks its policy).
      const exit = req.lastHop ? undefined : dir.get((path[path.length - 1] as CircuitTarget).id);
      if (exit) this.lastHops.set(circ, exit);
      for (const hop of path.slice(1)) {
        deadlines.watch(hop);
        try {
          await Promise.race([circ.extend(hop), abandoned]);
        } catch (e) {
          if (extendRefused(e, channel)) this.extendFailed(hop);
          throw e;
        }
        this.liveness.heardFrom(channel);
      }
      const ms = this.now() - started;
      this.cbt.addBuildTime(ms, path.length, deadlines.timedOut);
      this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
      countBuilt(this.m, path, purpose, ms / 1000, layer2 !== undefined);
      this.locations.circuitBuilt(path, ms / 1000);
      if (isGuard) {
        this.guards.succeeded(first.id, this.now(), this.rng);
      }
      return circ;
    } catch (e) {
      circ?.destroy();
      this.countFailure(purpose, failureReason(e));
      throw e;
    } finally {
      deadlines.clear();
      this.building--;
    }
  }

  /**
   * Relays that left a CREATE2 or EXTEND2 unanswered for firstHopTimeoutMs
   * within the last UNRESPONSIVE_MS (hex ids): onion clients choose other
   * rendezvous and introduction points meanwhile. An EXTEND2 may also go
   * unanswered because an earlier hop froze; the target is blamed anyway,
   * which costs it no more than a minute out of those choices.
   */
  unresponsiveIds(): Set<string> {
    return this.liveness.unresponsiveIds();
  }

  isUnresponsive(id: string): boolean {
    return this.liveness.isUnresponsive(id);
  }

  /** The hop before `hop` could not reach it (extendRefused): avoided as a chosen hop for a minute. */
  private extendFailed(hop: CircuitTarget): void {
    this.avoid(hop.id, 'extend_refused');
  }

  /**
   * The first hop left CREATE2 unanswered: as C tor's `circuit_build_failed`
   * at the first hop, the guard is marked failed (new circuits pick another
   * primary guard), and no circuit through this channel takes a new stream.
   */
  private firstHopStoppedAnswering(channel: Channel, guardId: string | null): void {
    this.c.logger.warn('first hop stopped answering; its circuits take no new streams');
    this.m.circuitsRetired.labels({ reason: 'first_hop' }).inc();
    if (guardId) {
      this.guards.failed(guardId, this.now());
      this.avoid(guardId, 'first_hop_silent');
    }
    this.lifetimes.retireChannel(channel);
    this.maintain();
  }

  /** Leaves relay `id` out of chosen hops for a minute (relay-liveness.ts); logged, since it shapes later paths. */
  private avoid(id: string, reason: string): void {
    this.liveness.markUnresponsive(id);
    this.c.logger.info('avoiding a relay for a minute', {
      relay: this.netdir?.get(id)?.nickname ?? id,
      reason,
    });
  }

  private countFailure(purpose: string, reason: string): void {
    this.m.circuits.labels({ purpose, outcome: 'failure' }).inc();
    this.m.circuitFailures.labels({ purpose, reason }).inc();
  }

  /**
   * An exit circuit for host:port under an isolation key: reuses an open one
   * of the same key that is not too dirty, else takes a pre-built clean one,
   * else builds (circuit-lifetimes.ts).
   */
  exitCircuit(host: string, port: number, isolationKey: string): Promise<OriginCircuit> {
    return this.lifetimes.exitCircuit(host, port, isolationKey);
  }

  /**
   * Stops handing out `circ` for new streams; open streams continue (C tor
   * `mark_circuit_unusable_for_new_conns`: its exit refused a stream, or a
   * stream got no CONNECTED in time). Closed once its streams are done.
   */
  retire(circ: OriginCircuit, reason: 'refused' | 'stream_timeout'): void {
    this.lifetimes.retire(circ, reason);
  }

  /**
   * A stream on `circ` got no CONNECTED within `waitedMs` (C tor
   * `connection_ap_expire_beginning`): the circuit takes no new streams. If
   * nothing at all came through its first hop meanwhile, on any circuit, the
   * first hop stopped answering: every circuit through it is retired and its
   * guard marked failed, so the next attempt does not meet it again. Else
   * its later hops are left out of new paths for a minute (one of them, or
   * the far side of a rendezvous, is silent; C tor blames none of them and
   * may pick the same relay again).
   */
  streamTimedOut(circ: OriginCircuit, waitedMs: number): void {
    this.retire(circ, 'stream_timeout');
    const heard = this.liveness.lastHeard(circ.channel);
    const [first, ...rest] = circ.hops.map((h) => Buffer.from(h.identity).toString('hex'));
    if (this.now() - heard >= waitedMs) this.firstHopStoppedAnswering(circ.channel, first ?? null);
    // The first hop answers, so a later hop is silent; which one is unknown, so each is avoided for a while.
    else for (const id of rest) this.avoid(id, 'stream_timeout');
  }

  /** Notes that `circ`'s first hop is alive now and whenever `stream` delivers data; returns `stream`. */
  watchStream<T extends NodeJS.EventEmitter>(circ: OriginCircuit, stream: T): T {
    const channel = circ.channel;
    this.liveness.heardFrom(channel);
    stream.on('data', () => this.liveness.heardFrom(channel));
    return stream;
  }

  /** Whether `circ` (given to `expireWhenIdle`) was retired: no new streams. */
  isRetired(circ: OriginCircuit): boolean {
    return this.lifetimes.isRetired(circ);
  }

  /**
   * Hands an onion-client circuit (a joined rendezvous circuit) to the
   * expiry timer: dirty from now, closed after MaxCircuitDirtiness once no
   * stream is open, as C tor closes finished rendezvous circuits.
   */
  expireWhenIdle(circ: OriginCircuit): void {
    this.lifetimes.expireWhenIdle(circ);
  }

  /**
   * C tor `circuit_expire_old_circuits_clientside`: closes dirty circuits
   * past MaxCircuitDirtiness with no stream open, and clean ones older than
   * the idle timeout. Runs on a timer; public for tests with a fake clock.
   */
  expireOld(): void {
    this.lifetimes.expireOld();
  }

  /** Keeps `prebuild` clean exit circuits ready (circuit-lifetimes.ts). */
  maintain(): void {
    this.lifetimes.maintain();
  }

  close(): void {
    this.closed = true;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiryTimer = null;
    this.lifetimes.closeAll();
    this.pool.closeAll();
  }
}

function toId(circ: OriginCircuit): string {
  const last = circ.hops[circ.hops.length - 1];
  return last ? Buffer.from(last.identity).toString('hex') : '';
}
