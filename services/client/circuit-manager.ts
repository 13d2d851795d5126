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
 * Lifetimes (C tor `circuit_expire_old_circuits_clientside`, run here on a
 * timer every `expiryCheckMs`, as C tor checks each second): a circuit is
 * "dirty" once it carried a stream; it takes no new stream after
 * `maxDirtinessMs` (MaxCircuitDirtiness, C tor's default 10 min) and is
 * closed at the first check after that with no stream open. A clean (never
 * used) circuit is closed after `idleTimeoutMs` (C tor: the predicted-port
 * lifetime, up to an hour; `cbtlearntimeout`, 3 min, while the build timeout
 * is still being learned). Rendezvous circuits of the onion client are handed
 * over with `expireWhenIdle` and follow the dirty rule.
 *
 * Build timeouts (core/cbt.ts): a build past the learned timeout is counted
 * and another build is launched beside it (a different guard when the first
 * hop had not answered); the first to open serves the request, and the slow
 * one is abandoned only at the close timeout (60 s; onion-service circuits
 * MAX(2 close + 1 s, SocksTimeout)). A hop that leaves CREATE2 or EXTEND2
 * unanswered for `firstHopTimeoutMs` stopped answering: the attempt is
 * abandoned and the relay avoided as a chosen last hop for a minute; for a
 * first hop, its guard is marked failed and every circuit through that
 * channel takes no new stream.
 *
 * Vanguards-lite (`vanguardsLite`, prop 333): onion-service circuits take
 * their second hop from a set of 4 layer-2 relays (core/vanguards.ts) and
 * have a middle between it and the target (G-L2-M-target); a request for
 * two chosen hops (the client's rendezvous circuit) stays G-L2-target.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { CircuitBuildTimeout, cbtParamsFrom } from '../core/cbt.js';
import { DestroyReason, destroyReasonName } from '../core/cells.js';
import type { HandshakeName } from '../core/create-handshake.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import { ShallotError } from '../core/errors.js';
import {
  decodeGuardState,
  emptyGuardState,
  encodeGuardState,
  type GuardState,
  markGuardFailure,
  markGuardSuccess,
  pickGuard,
  updateSample,
} from '../core/guards.js';
import { choosePath, PathError, type PathPurpose } from '../core/path.js';
import { updateVanguards, type Vanguard } from '../core/vanguards.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import type { Channel } from '../net/channel.js';
import { ChannelPool } from '../net/channel-pool.js';
import { sendmeAcceptMinVersion } from '../net/edge.js';
import type { LinkShaping } from '../net/link-delay.js';
import { CircuitError, OriginCircuit } from '../net/origin-circuit.js';
import type { Logger } from '../runtime/log.js';
import { writePrivateFile } from '../runtime/private-file.js';
import { LocationMetrics } from './location-metrics.js';
import { type CircuitTarget, NetDir, type NetRelay } from './netdir.js';

export interface CircuitManagerOptions {
  /** Dial relays over wss (default) or plain ws. */
  tls: boolean;
  /** Dial raw TLS links (a C tor network, tor-spec §2) instead of WebSocket. */
  rawTls: boolean;
  /** Apply the /16 rule (off on loopback testnets, where every relay is 127/8). */
  enforceSubnets: boolean;
  /** Clean exit circuits kept ready. */
  prebuild: number;
  /** Tor's MaxCircuitDirtiness (default 10 min, as C tor). */
  maxDirtinessMs: number;
  /** Clean circuits are closed this long after they opened (default 1 h, C tor's upper predicted-port lifetime). */
  idleTimeoutMs: number;
  /** How often old circuits are looked for (default 1 s, as C tor's once-a-second check). */
  expiryCheckMs: number;
  /**
   * CREATE2 unanswered this long means the first hop stopped answering
   * (default 10 s, C tor's first stream timeout; C tor waits for the close
   * timeout, 60 s, which would leave a frozen guard in use for a minute).
   */
  firstHopTimeoutMs: number;
  /** C tor SocksTimeout (2 min): the latest a timed-out onion-service circuit is kept (`hs_extremely_old_cutoff`). */
  socksTimeoutMs: number;
  /** Paths tried before a request fails. */
  buildAttempts: number;
  /** Where guard state persists between runs (none: in memory). */
  dataDir?: string;
  /** The CREATE2/EXTEND2 handshake for every hop. */
  handshake: HandshakeName;
  /** Layer-2 vanguards for onion-service circuits (prop 333; Tor's default since 0.4.7). */
  vanguardsLite: boolean;
  /** The network model's latency on the client's links (net/link-delay.ts). */
  shaping?: LinkShaping | null;
}

export const DEFAULT_CIRCUIT_OPTIONS: CircuitManagerOptions = {
  tls: true,
  rawTls: false,
  enforceSubnets: false,
  prebuild: 2,
  maxDirtinessMs: 10 * 60_000,
  idleTimeoutMs: 60 * 60_000,
  expiryCheckMs: 1_000,
  firstHopTimeoutMs: 10_000,
  socksTimeoutMs: 120_000,
  buildAttempts: 3,
  handshake: 'ntor',
  vanguardsLite: false,
};

export interface CircuitManagerComponents {
  logger: Logger;
  registry: Registry;
  rng?: Rng;
  now?: () => number;
}

export interface BuildRequest {
  purpose: PathPurpose;
  /** Exit circuits: the destination port (and host, checked against exit policies). */
  exitPort?: number;
  exitHost?: string;
  /** Onion-service circuits: the relay the circuit must end at (listed or not). */
  lastHop?: CircuitTarget;
  /** Hops chosen before `lastHop` (default: 3 without lastHop, 2 with, 3 with vanguards-lite). */
  length?: number;
}

export class NoConsensusError extends ShallotError {
  constructor() {
    super('ERR_NO_CONSENSUS', 'no usable consensus yet');
  }
}

interface Tracked {
  circ: OriginCircuit;
  exit: NetRelay;
  isolationKey: string | null;
  dirtySince: number | null;
  openedAt: number;
}

/** C tor `cbtlearntimeout` default (DFLT_IDLE_TIMEOUT_WHILE_LEARNING): clean circuits live 3 min while CBT learns. */
const IDLE_TIMEOUT_WHILE_LEARNING_MS = 3 * 60_000;

/**
 * How long a relay that stopped answering is kept out of onion-service
 * choices (testnet choice: long enough to ride out a stalled process, short
 * enough that a recovered relay is soon chosen again).
 */
const UNRESPONSIVE_MS = 60_000;

/** Onion-service circuit purposes C tor spares on a build timeout (`hs_circ_has_timed_out`). */
const HS_PURPOSES: ReadonlySet<PathPurpose> = new Set(['onion-intro', 'onion-rend']);

/** What a build attempt tells `build` when it passes the learned timeout. */
interface SoftTimeout {
  /** The guard whose CREATE2 was still unanswered, if any: the next attempt avoids it. */
  slowGuard: string | null;
}

export class CircuitManager {
  private netdir: NetDir | null = null;
  private guards: GuardState = emptyGuardState();
  private readonly cbt = new CircuitBuildTimeout();
  readonly pool: ChannelPool;
  private readonly exits: Tracked[] = [];
  private readonly rng: Rng;
  private readonly now: () => number;
  private readonly m: Metrics['client'];
  /** Build (and onion connect, client/onion.ts) time by location under a network model. */
  readonly locations: LocationMetrics;
  private building = 0;
  private readonly lastHops = new WeakMap<OriginCircuit, NetRelay>();
  /** When each first-hop channel last showed life (a hop built through it, CONNECTED, stream data). */
  private readonly heard = new WeakMap<Channel, number>();
  /** Relays that stopped answering (hex id) and until when they are avoided. */
  private readonly unresponsive = new Map<string, number>();
  /** Onion-client circuits (rendezvous) closed by the dirty rule; value: when first used. */
  private readonly others = new Map<OriginCircuit, number>();
  private vanguards: readonly Vanguard[] = [];
  private expiryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly c: CircuitManagerComponents,
    readonly opts: CircuitManagerOptions,
  ) {
    this.rng = c.rng ?? randomBytes;
    this.now = c.now ?? Date.now;
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
  async load(): Promise<void> {
    if (!this.opts.dataDir) return;
    try {
      this.guards = decodeGuardState(await readFile(this.guardFile(), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.c.logger.warn('guard state unreadable; starting a fresh sample', {
          error: (e as Error).message,
        });
      }
    }
  }

  private guardFile(): string {
    return path.join(this.opts.dataDir ?? '.', 'guards.json');
  }

  private async saveGuards(): Promise<void> {
    if (!this.opts.dataDir) return;
    await writePrivateFile(this.guardFile(), encodeGuardState(this.guards));
  }

  setNetDir(dir: NetDir): void {
    this.netdir = dir;
    this.cbt.setParams(cbtParamsFrom(dir.consensus.params));
    this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
    if (!this.expiryTimer && !this.closed) {
      this.expiryTimer = setInterval(() => this.expireOld(), this.opts.expiryCheckMs);
      this.expiryTimer.unref();
    }
    this.guards = updateSample(
      this.guards,
      dir.relays,
      { nowMs: this.now(), weights: dir.consensus.bandwidthWeights },
      this.rng,
    );
    void this.saveGuards().catch(() => {});
    // Exit circuits through relays that left the consensus are not reused.
    for (const t of this.exits) if (!dir.get(t.exit.id)) t.dirtySince = 0;
    this.maintain();
  }

  /** The layer-2 vanguards now, replacing expired ones and those that left the consensus. */
  private layer2(dir: NetDir): NetRelay[] {
    const next = updateVanguards(this.vanguards, dir.relays, {
      nowMs: this.now(),
      rng: this.rng,
      weights: dir.consensus.bandwidthWeights,
    });
    if (next !== this.vanguards) {
      this.vanguards = next;
      this.c.logger.info('layer-2 vanguards', { relays: next.map((v) => dir.get(v.id)?.nickname ?? v.id) });
    }
    return next.map((v) => dir.get(v.id)).filter((r): r is NetRelay => r !== undefined);
  }

  /** The current layer-2 vanguards' ids (for tests and status). */
  get vanguardIds(): string[] {
    return this.vanguards.map((v) => v.id);
  }

  /**
   * Builds one circuit for `req`: up to `buildAttempts` paths, a new one
   * launched when an attempt fails or passes the learned timeout (the slow
   * one goes on); the first circuit to open is returned, later ones closed.
   */
  build(req: BuildRequest): Promise<OriginCircuit> {
    return new Promise((resolve, reject) => {
      let launched = 0;
      let pending = 0;
      let settled = false;
      let last: unknown;
      const avoid = new Set<string>();
      const launch = (): void => {
        launched++;
        pending++;
        const onSoftTimeout = (t: SoftTimeout): void => {
          if (t.slowGuard) avoid.add(t.slowGuard);
          if (!settled && launched < this.opts.buildAttempts) launch();
        };
        this.buildOnce(req, new Set(avoid), onSoftTimeout).then(
          (circ) => {
            pending--;
            if (settled) circ.destroy(DestroyReason.FINISHED);
            else {
              settled = true;
              resolve(circ);
            }
          },
          (e: unknown) => {
            pending--;
            last = e;
            if (settled) return;
            if (e instanceof NoConsensusError || e instanceof PathError) {
              settled = true;
              reject(e);
            } else if (launched < this.opts.buildAttempts) launch();
            else if (pending === 0) {
              settled = true;
              reject(last);
            }
          },
        );
      };
      launch();
    });
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
    // The caller's chosen relay stopped answering a moment ago: fail now, so it picks another.
    if (req.lastHop && this.isUnresponsive(req.lastHop.id)) {
      this.countFailure(purpose, 'unresponsive');
      throw new CircuitError(DestroyReason.TIMEOUT, `${req.lastHop.nickname} stopped answering`, 'timeout');
    }
    const exclude = new Set(req.lastHop ? [req.lastHop.id] : []);
    const layer2 = req.lastHop && this.opts.vanguardsLite ? this.layer2(dir) : undefined;
    const pickOpts = { nowMs: started, rng: this.rng };
    const pick =
      pickGuard(this.guards, { ...pickOpts, usable: (id) => !exclude.has(id) && !avoidGuards.has(id) }) ??
      pickGuard(this.guards, { ...pickOpts, usable: (id) => !exclude.has(id) });
    const guard = pick ? dir.get(pick.id) : undefined;
    // Relays that stopped answering lately are left out while a path exists without them.
    const silent = this.unresponsiveIds();
    const policyOk = (r: NetRelay) =>
      req.exitHost === undefined ||
      !r.flags.includes('Exit') ||
      NetDir.exitAllows(r, req.exitHost, req.exitPort ?? 0);
    const heard = (r: NetRelay) => !silent.has(r.id) || r.id === req.lastHop?.id;
    const choose = (candidates: NetRelay[], g: NetRelay | undefined) =>
      choosePath<CircuitTarget>(
        candidates,
        {
          purpose,
          length: req.length ?? (req.lastHop && !layer2 ? 2 : 3),
          enforceSubnets: this.opts.enforceSubnets,
          enforceFamily: true,
          weights: dir.consensus.bandwidthWeights,
          ...(req.exitPort !== undefined ? { exitPort: req.exitPort } : {}),
          ...(g ? { guard: g } : {}),
          ...(req.lastHop ? { lastHop: req.lastHop } : {}),
          ...(layer2 ? { vanguards: layer2 } : {}),
        },
        this.rng,
      );
    let path: CircuitTarget[];
    try {
      try {
        path = choose(
          dir.relays.filter((r) => policyOk(r) && heard(r)),
          guard && heard(guard) ? guard : undefined,
        );
      } catch (e) {
        if (!(e instanceof PathError) || silent.size === 0) throw e;
        path = choose(dir.relays.filter(policyOk), guard);
      }
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
    let timedOut = false;
    let abandon: (e: Error) => void = () => {};
    const abandoned = new Promise<never>((_, reject) => {
      abandon = reject;
    });
    abandoned.catch(() => {});
    const timers = [
      setTimeout(() => {
        timedOut = true;
        // C tor counts a timeout toward the network-change rule only past the first hop (timeouts_after_firsthop).
        if (circ !== null) this.cbt.countTimeout();
        this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
        this.m.circuitBuildTimeouts.labels({ purpose }).inc();
        onSoftTimeout({ slowGuard: circ === null && isGuard ? first.id : null });
      }, softMs),
      setTimeout(() => {
        this.cbt.addAbandoned();
        abandon(new CircuitError(DestroyReason.TIMEOUT, `circuit build exceeded ${closeMs} ms`, 'timeout'));
      }, closeMs),
    ];
    // A hop that leaves CREATE2 or EXTEND2 unanswered for firstHopTimeoutMs stopped answering.
    let hopTimer: NodeJS.Timeout | undefined;
    const watch = (hop: CircuitTarget): void => {
      clearTimeout(hopTimer);
      hopTimer = setTimeout(() => {
        if (circ === null && channel !== null)
          this.firstHopStoppedAnswering(channel, isGuard ? first.id : null);
        this.markUnresponsive(hop.id);
        abandon(new CircuitError(DestroyReason.TIMEOUT, `${hop.nickname} did not answer`, 'timeout'));
      }, this.opts.firstHopTimeoutMs);
    };
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
          this.guards = markGuardFailure(this.guards, first.id, this.now());
          void this.saveGuards().catch(() => {});
        }
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
      watch(first);
      circ = await Promise.race([creating, abandoned]);
      this.heard.set(channel, this.now());
      // An exit circuit's last hop was chosen from this consensus (track() checks its policy).
      const exit = req.lastHop ? undefined : dir.get((path[path.length - 1] as CircuitTarget).id);
      if (exit) this.lastHops.set(circ, exit);
      for (const hop of path.slice(1)) {
        watch(hop);
        await Promise.race([circ.extend(hop), abandoned]);
        this.heard.set(channel, this.now());
      }
      const ms = this.now() - started;
      this.cbt.addBuildTime(ms, path.length, timedOut);
      this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
      this.m.circuitBuild.labels({ purpose }).observe(ms / 1000);
      this.locations.circuitBuilt(path, ms / 1000);
      this.m.circuits.labels({ purpose, outcome: 'success' }).inc();
      if (layer2) this.m.vanguardCircuits.labels({ relay: (path[1] as CircuitTarget).nickname }).inc();
      if (isGuard) {
        this.guards = markGuardSuccess(this.guards, first.id, this.now(), this.rng);
        void this.saveGuards().catch(() => {});
      }
      return circ;
    } catch (e) {
      circ?.destroy();
      this.countFailure(purpose, failureReason(e));
      throw e;
    } finally {
      for (const t of [...timers, hopTimer]) clearTimeout(t);
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
    const now = this.now();
    for (const [id, until] of this.unresponsive) if (until <= now) this.unresponsive.delete(id);
    return new Set(this.unresponsive.keys());
  }

  isUnresponsive(id: string): boolean {
    const until = this.unresponsive.get(id);
    return until !== undefined && until > this.now();
  }

  private markUnresponsive(id: string): void {
    this.unresponsive.set(id, this.now() + UNRESPONSIVE_MS);
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
      this.guards = markGuardFailure(this.guards, guardId, this.now());
      void this.saveGuards().catch(() => {});
      this.markUnresponsive(guardId);
    }
    for (const t of this.exits) if (t.circ.channel === channel) t.dirtySince = Number.NEGATIVE_INFINITY;
    for (const circ of this.others.keys())
      if (circ.channel === channel) this.others.set(circ, Number.NEGATIVE_INFINITY);
    this.maintain();
  }

  private countFailure(purpose: string, reason: string): void {
    this.m.circuits.labels({ purpose, outcome: 'failure' }).inc();
    this.m.circuitFailures.labels({ purpose, reason }).inc();
  }

  /**
   * An exit circuit for host:port under an isolation key: reuses an open one
   * of the same key that is not too dirty, else takes a pre-built clean one,
   * else builds.
   */
  async exitCircuit(host: string, port: number, isolationKey: string): Promise<OriginCircuit> {
    const now = this.now();
    const ok = (t: Tracked) => this.usable(t, now) && NetDir.exitAllows(t.exit, host, port);
    let t = this.exits.find((x) => x.isolationKey === isolationKey && ok(x));
    if (!t) {
      t = this.exits.find((x) => x.isolationKey === null && ok(x));
      if (t) t.isolationKey = isolationKey;
    }
    if (!t) {
      const circ = await this.build({ purpose: 'exit', exitPort: port, exitHost: host });
      t = this.track(circ, isolationKey);
    }
    t.dirtySince ??= now;
    this.maintain();
    return t.circ;
  }

  /** Open, and clean or dirty for less than MaxCircuitDirtiness: may take a new stream. */
  private usable(t: Tracked, now: number): boolean {
    return t.circ.isOpen && (t.dirtySince === null || now - t.dirtySince < this.opts.maxDirtinessMs);
  }

  private track(circ: OriginCircuit, isolationKey: string | null): Tracked {
    // The relay the circuit was built to, as the consensus described it then
    // (it may have left a newer consensus since).
    const exit = this.lastHops.get(circ) ?? this.netdir?.get(toId(circ));
    if (!exit) throw new CircuitError(DestroyReason.INTERNAL, 'circuit of unknown origin', 'protocol');
    const t: Tracked = { circ, exit, isolationKey, dirtySince: null, openedAt: this.now() };
    this.exits.push(t);
    this.m.circuitsOpen.inc();
    circ.on('destroyed', () => {
      this.m.circuitsOpen.dec();
      const i = this.exits.indexOf(t);
      if (i >= 0) this.exits.splice(i, 1);
      this.maintain();
    });
    return t;
  }

  /**
   * Stops handing out `circ` for new streams; open streams continue (C tor
   * `mark_circuit_unusable_for_new_conns`: its exit refused a stream, or a
   * stream got no CONNECTED in time). Closed once its streams are done.
   */
  retire(circ: OriginCircuit, reason: 'refused' | 'stream_timeout'): void {
    const t = this.exits.find((x) => x.circ === circ);
    if (t && t.dirtySince !== Number.NEGATIVE_INFINITY) {
      t.dirtySince = Number.NEGATIVE_INFINITY;
      this.m.circuitsRetired.labels({ reason }).inc();
    }
    if (this.others.has(circ)) {
      this.others.set(circ, Number.NEGATIVE_INFINITY);
      this.m.circuitsRetired.labels({ reason }).inc();
    }
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
    const heard = this.heard.get(circ.channel) ?? Number.NEGATIVE_INFINITY;
    const [first, ...rest] = circ.hops.map((h) => Buffer.from(h.identity).toString('hex'));
    if (this.now() - heard >= waitedMs) this.firstHopStoppedAnswering(circ.channel, first ?? null);
    // The first hop answers, so a later hop is silent; which one is unknown, so each is avoided for a while.
    else for (const id of rest) this.markUnresponsive(id);
  }

  /** Notes that `circ`'s first hop is alive now and whenever `stream` delivers data; returns `stream`. */
  watchStream<T extends NodeJS.EventEmitter>(circ: OriginCircuit, stream: T): T {
    const channel = circ.channel;
    this.heard.set(channel, this.now());
    stream.on('data', () => this.heard.set(channel, this.now()));
    return stream;
  }

  /** Whether `circ` (given to `expireWhenIdle`) was retired: no new streams. */
  isRetired(circ: OriginCircuit): boolean {
    return this.others.get(circ) === Number.NEGATIVE_INFINITY;
  }

  /**
   * Hands an onion-client circuit (a joined rendezvous circuit) to the
   * expiry timer: dirty from now, closed after MaxCircuitDirtiness once no
   * stream is open, as C tor closes finished rendezvous circuits.
   */
  expireWhenIdle(circ: OriginCircuit): void {
    if (this.others.has(circ) || !circ.isOpen) return;
    this.others.set(circ, this.now());
    this.m.circuitsOpen.inc();
    circ.once('destroyed', () => {
      this.others.delete(circ);
      this.m.circuitsOpen.dec();
    });
  }

  /**
   * C tor `circuit_expire_old_circuits_clientside`: closes dirty circuits
   * past MaxCircuitDirtiness with no stream open, and clean ones older than
   * the idle timeout. Runs on a timer; public for tests with a fake clock.
   */
  expireOld(): void {
    const now = this.now();
    const idleMs = this.cbt.needsTestCircuits()
      ? Math.min(IDLE_TIMEOUT_WHILE_LEARNING_MS, this.opts.idleTimeoutMs)
      : this.opts.idleTimeoutMs;
    for (const t of [...this.exits]) {
      if (t.dirtySince !== null) {
        if (now - t.dirtySince >= this.opts.maxDirtinessMs && t.circ.streamCount === 0)
          this.expire(t.circ, 'dirty');
      } else if (now - t.openedAt >= idleMs) this.expire(t.circ, 'idle');
    }
    for (const [circ, since] of [...this.others]) {
      if (now - since >= this.opts.maxDirtinessMs && circ.streamCount === 0) this.expire(circ, 'dirty');
    }
  }

  private expire(circ: OriginCircuit, reason: 'dirty' | 'idle'): void {
    this.m.circuitsExpired.labels({ reason }).inc();
    circ.destroy(DestroyReason.FINISHED);
  }

  /** Keeps `prebuild` clean exit circuits ready (path-spec §2.1.1 predictive building, simplified). */
  maintain(): void {
    if (this.closed || !this.netdir) return;
    const now = this.now();
    const clean = this.exits.filter((t) => t.isolationKey === null && this.usable(t, now)).length;
    for (let i = clean + this.building; i < this.opts.prebuild; i++) {
      this.building++;
      void this.build({ purpose: 'exit' })
        .then((circ) => {
          if (this.closed) circ.destroy();
          else this.track(circ, null);
        })
        .catch((e: unknown) => this.c.logger.debug('pre-building a circuit failed', { error: String(e) }))
        .finally(() => {
          this.building--;
        });
    }
  }

  close(): void {
    this.closed = true;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiryTimer = null;
    for (const t of this.exits.splice(0)) t.circ.destroy(DestroyReason.FINISHED);
    for (const circ of [...this.others.keys()]) circ.destroy(DestroyReason.FINISHED);
    this.pool.closeAll();
  }
}

function toId(circ: OriginCircuit): string {
  const last = circ.hops[circ.hops.length - 1];
  return last ? Buffer.from(last.identity).toString('hex') : '';
}

function failureReason(e: unknown): string {
  if (e instanceof CircuitError)
    return e.context.kind === 'destroyed' ? destroyReasonName(e.reason) : String(e.context.kind);
  if (e instanceof ShallotError) return e.code.replace(/^ERR_/, '').toLowerCase();
  return 'error';
}
