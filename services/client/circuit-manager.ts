/**
 * Builds and hands out client circuits: guard choice (guard-spec), path
 * selection by position weights (path-spec §2.2), a learned circuit-build
 * timeout (path-spec §2.4), pre-built clean circuits, and stream isolation
 * (streams with different isolation keys never share a circuit).
 *
 * Design notes: purposes follow Tor's: 'exit' circuits end at an exit chosen
 * for the port; onion-service circuits end at a chosen relay (intro point,
 * rendezvous point, HSDir) appended by `lastHop`. A circuit is "dirty" once
 * it carried a stream and is not reused after `maxDirtinessMs` (Tor's
 * MaxCircuitDirtiness).
 *
 * Vanguards-lite (`vanguardsLite`, prop 333): onion-service circuits take
 * their second hop from a set of 4 layer-2 relays (core/vanguards.ts) and
 * have a middle between it and the target (G-L2-M-target); a request for
 * two chosen hops (the client's rendezvous circuit) stays G-L2-target.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { CircuitBuildTimeout } from '../core/cbt.js';
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
import type { Logger } from '../net/log.js';
import { CircuitError, OriginCircuit } from '../net/origin-circuit.js';
import { NetDir, type NetRelay } from './netdir.js';

export interface CircuitManagerOptions {
  /** Dial relays over wss (default) or plain ws. */
  tls: boolean;
  /** Apply the /16 rule (off on loopback testnets, where every relay is 127/8). */
  enforceSubnets: boolean;
  /** Clean exit circuits kept ready. */
  prebuild: number;
  /** Tor's MaxCircuitDirtiness. */
  maxDirtinessMs: number;
  /** Paths tried before a request fails. */
  buildAttempts: number;
  /** Where guard state persists between runs (none: in memory). */
  dataDir?: string;
  /** The CREATE2/EXTEND2 handshake for every hop. */
  handshake: HandshakeName;
  /** Layer-2 vanguards for onion-service circuits (prop 333; Tor's default since 0.4.7). */
  vanguardsLite: boolean;
}

export const DEFAULT_CIRCUIT_OPTIONS: CircuitManagerOptions = {
  tls: true,
  enforceSubnets: false,
  prebuild: 2,
  maxDirtinessMs: 10 * 60_000,
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
  /** Onion-service circuits: the relay the circuit must end at. */
  lastHop?: NetRelay;
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
  private building = 0;
  private readonly lastHops = new WeakMap<OriginCircuit, NetRelay>();
  private vanguards: readonly Vanguard[] = [];
  private closed = false;

  constructor(
    private readonly c: CircuitManagerComponents,
    readonly opts: CircuitManagerOptions,
  ) {
    this.rng = c.rng ?? randomBytes;
    this.now = c.now ?? Date.now;
    this.pool = new ChannelPool({ keys: null, tls: opts.tls, rng: this.rng });
    this.m = metricsFor(c.registry).client;
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
    const tmp = `${this.guardFile()}.tmp`;
    await writeFile(tmp, encodeGuardState(this.guards), { mode: 0o600 });
    await rename(tmp, this.guardFile());
  }

  setNetDir(dir: NetDir): void {
    this.netdir = dir;
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

  /** Builds one circuit for `req`, trying new paths up to `buildAttempts` times. */
  async build(req: BuildRequest): Promise<OriginCircuit> {
    let last: unknown;
    for (let attempt = 0; attempt < this.opts.buildAttempts; attempt++) {
      try {
        return await this.buildOnce(req);
      } catch (e) {
        last = e;
        if (e instanceof NoConsensusError || e instanceof PathError) throw e;
      }
    }
    throw last;
  }

  private async buildOnce(req: BuildRequest): Promise<OriginCircuit> {
    if (this.closed) throw new CircuitError(DestroyReason.REQUESTED, 'client is shutting down');
    const dir = this.netdir;
    if (!dir) throw new NoConsensusError();
    const purpose = req.purpose;
    const started = this.now();
    const exclude = new Set(req.lastHop ? [req.lastHop.id] : []);
    const layer2 = req.lastHop && this.opts.vanguardsLite ? this.layer2(dir) : undefined;
    const pick = pickGuard(this.guards, { nowMs: started, usable: (id) => !exclude.has(id), rng: this.rng });
    const guard = pick ? dir.get(pick.id) : undefined;
    let path: NetRelay[];
    try {
      const candidates =
        req.exitHost !== undefined
          ? dir.relays.filter(
              (r) =>
                !r.flags.includes('Exit') || NetDir.exitAllows(r, req.exitHost as string, req.exitPort ?? 0),
            )
          : dir.relays;
      path = choosePath(
        candidates,
        {
          purpose,
          length: req.length ?? (req.lastHop && !layer2 ? 2 : 3),
          enforceSubnets: this.opts.enforceSubnets,
          enforceFamily: true,
          weights: dir.consensus.bandwidthWeights,
          ...(req.exitPort !== undefined ? { exitPort: req.exitPort } : {}),
          ...(guard ? { guard } : {}),
          ...(req.lastHop ? { lastHop: req.lastHop } : {}),
          ...(layer2 ? { vanguards: layer2 } : {}),
        },
        this.rng,
      );
    } catch (e) {
      this.countFailure(purpose, 'no_path');
      throw e;
    }
    const timeoutMs = this.cbt.scaledTimeoutMs(path.length);
    this.building++;
    let circ: OriginCircuit | null = null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      circ?.destroy(DestroyReason.TIMEOUT);
    }, timeoutMs);
    try {
      const first = path[0] as NetRelay;
      let channel: Channel;
      try {
        channel = await this.pool.get({ identity: first.identity, address: first.address, port: first.port });
      } catch (e) {
        if (guard && first.id === guard.id) {
          this.guards = markGuardFailure(this.guards, guard.id, this.now());
          void this.saveGuards().catch(() => {});
        }
        throw e;
      }
      circ = await OriginCircuit.create(channel, first, { rng: this.rng, handshake: this.opts.handshake });
      this.lastHops.set(circ, path[path.length - 1] as NetRelay);
      for (const hop of path.slice(1)) {
        if (timedOut) break;
        await circ.extend(hop);
      }
      if (timedOut)
        throw new CircuitError(DestroyReason.TIMEOUT, `circuit build exceeded ${timeoutMs} ms`, 'timeout');
      const ms = this.now() - started;
      this.cbt.addBuildTime(ms, path.length);
      this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
      this.m.circuitBuild.labels({ purpose }).observe(ms / 1000);
      this.m.circuits.labels({ purpose, outcome: 'success' }).inc();
      if (layer2) this.m.vanguardCircuits.labels({ relay: (path[1] as NetRelay).nickname }).inc();
      if (guard && first.id === guard.id) {
        this.guards = markGuardSuccess(this.guards, guard.id, this.now(), this.rng);
        void this.saveGuards().catch(() => {});
      }
      return circ;
    } catch (e) {
      circ?.destroy();
      if (timedOut) {
        this.cbt.addTimeout();
        this.m.cbtTimeout.set(this.cbt.timeoutMs() / 1000);
        this.countFailure(purpose, 'timeout');
        throw new CircuitError(DestroyReason.TIMEOUT, `circuit build exceeded ${timeoutMs} ms`, 'timeout');
      }
      this.countFailure(purpose, failureReason(e));
      throw e;
    } finally {
      clearTimeout(timer);
      this.building--;
    }
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
    this.prune(now);
    const ok = (t: Tracked) => t.circ.isOpen && NetDir.exitAllows(t.exit, host, port);
    let t = this.exits.find(
      (x) =>
        x.isolationKey === isolationKey && ok(x) && now - (x.dirtySince ?? now) < this.opts.maxDirtinessMs,
    );
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

  private track(circ: OriginCircuit, isolationKey: string | null): Tracked {
    // The relay the circuit was built to, as the consensus described it then
    // (it may have left a newer consensus since).
    const exit = this.lastHops.get(circ) ?? this.netdir?.get(toId(circ));
    if (!exit) throw new CircuitError(DestroyReason.INTERNAL, 'circuit of unknown origin', 'protocol');
    const t: Tracked = { circ, exit, isolationKey, dirtySince: null };
    this.exits.push(t);
    circ.on('destroyed', () => {
      const i = this.exits.indexOf(t);
      if (i >= 0) this.exits.splice(i, 1);
      this.maintain();
    });
    return t;
  }

  /** Stops handing out `circ` for new streams (its exit refused one); open streams continue. */
  retire(circ: OriginCircuit): void {
    const t = this.exits.find((x) => x.circ === circ);
    if (t) t.dirtySince = Number.NEGATIVE_INFINITY;
  }

  private prune(now: number): void {
    for (const t of [...this.exits]) {
      if (
        t.dirtySince !== null &&
        now - t.dirtySince >= this.opts.maxDirtinessMs &&
        t.circ.streamCount === 0
      ) {
        t.circ.destroy(DestroyReason.FINISHED);
      }
    }
  }

  /** Keeps `prebuild` clean exit circuits ready (path-spec §2.1.1 predictive building, simplified). */
  maintain(): void {
    if (this.closed || !this.netdir) return;
    const clean = this.exits.filter((t) => t.isolationKey === null && t.circ.isOpen).length;
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
    for (const t of this.exits.splice(0)) t.circ.destroy(DestroyReason.FINISHED);
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
