/**
 * Which of the client's open circuits takes a new stream, and when they
 * close (C tor `circuit_expire_old_circuits_clientside`, path-spec §2.1.1
 * predictive building, simplified).
 *
 * Overview: exit circuits are tracked with their exit relay and isolation
 * key; a stream reuses an open circuit of its key that is clean or dirty for
 * less than MaxCircuitDirtiness, else a pre-built clean one, else a new
 * build. A circuit is "dirty" once it carried a stream and is closed at the
 * first check past MaxCircuitDirtiness with no stream open; a clean one
 * after the idle timeout (C tor: the predicted-port lifetime, up to an
 * hour; `cbtlearntimeout`, 3 min, while the build timeout is learned).
 * Onion-client circuits (joined rendezvous circuits) follow the dirty rule
 * from the moment they are handed over. A retired circuit (its exit refused
 * a stream, a stream timed out, its first hop went silent) takes no new
 * stream and closes once its streams are done.
 *
 * Not in this module: building circuits and timeouts (circuit-manager.ts).
 */
import { DestroyReason } from '../core/cells.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Channel } from '../net/channel.js';
import { CircuitError } from '../net/circuit-error.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import type { Logger } from '../runtime/log.js';
import type { BuildRequest, CircuitManagerOptions } from './circuit-options.js';
import { NetDir, type NetRelay } from './netdir.js';

/** C tor `cbtlearntimeout` default (DFLT_IDLE_TIMEOUT_WHILE_LEARNING): clean circuits live 3 min while CBT learns. */
const IDLE_TIMEOUT_WHILE_LEARNING_MS = 3 * 60_000;

interface Tracked {
  circ: OriginCircuit;
  exit: NetRelay;
  isolationKey: string | null;
  /** When it first carried a stream; -Infinity once retired. */
  dirtySince: number | null;
  openedAt: number;
}

/** What the lifetimes need from the circuit manager. */
export interface LifetimeHooks {
  readonly opts: Pick<CircuitManagerOptions, 'maxDirtinessMs' | 'idleTimeoutMs' | 'prebuild'>;
  readonly m: Metrics['client'];
  readonly logger: Logger;
  now(): number;
  build(req: BuildRequest): Promise<OriginCircuit>;
  /** The relay an exit circuit was built to, as the consensus described it then. */
  exitOf(circ: OriginCircuit): NetRelay | undefined;
  /** Build attempts in flight (pre-builds count toward `prebuild`). */
  building(): number;
  /** True while the circuit-build timeout is still learned (core/cbt.ts). */
  learning(): boolean;
  /** A consensus is known and the client is not closing. */
  ready(): boolean;
}

export class CircuitLifetimes {
  private readonly exits: Tracked[] = [];
  /** Onion-client circuits (rendezvous) closed by the dirty rule; value: when first used. */
  private readonly others = new Map<OriginCircuit, number>();
  private prebuilding = 0;

  constructor(private readonly h: LifetimeHooks) {}

  /**
   * An exit circuit for host:port under an isolation key: reuses an open one
   * of the same key that is not too dirty, else takes a pre-built clean one,
   * else builds.
   */
  async exitCircuit(host: string, port: number, isolationKey: string): Promise<OriginCircuit> {
    const now = this.h.now();
    const ok = (t: Tracked) => this.usable(t, now) && NetDir.exitAllows(t.exit, host, port);
    let t = this.exits.find((x) => x.isolationKey === isolationKey && ok(x));
    if (!t) {
      t = this.exits.find((x) => x.isolationKey === null && ok(x));
      if (t) t.isolationKey = isolationKey;
    }
    if (!t) {
      const circ = await this.h.build({ purpose: 'exit', exitPort: port, exitHost: host });
      t = this.track(circ, isolationKey);
    }
    t.dirtySince ??= now;
    this.maintain();
    return t.circ;
  }

  /** Open, and clean or dirty for less than MaxCircuitDirtiness: may take a new stream. */
  private usable(t: Tracked, now: number): boolean {
    return t.circ.isOpen && (t.dirtySince === null || now - t.dirtySince < this.h.opts.maxDirtinessMs);
  }

  private track(circ: OriginCircuit, isolationKey: string | null): Tracked {
    const exit = this.h.exitOf(circ);
    if (!exit) throw new CircuitError(DestroyReason.INTERNAL, 'circuit of unknown origin', 'protocol');
    const t: Tracked = { circ, exit, isolationKey, dirtySince: null, openedAt: this.h.now() };
    this.exits.push(t);
    this.h.m.circuitsOpen.inc();
    circ.on('destroyed', () => {
      this.h.m.circuitsOpen.dec();
      const i = this.exits.indexOf(t);
      if (i >= 0) this.exits.splice(i, 1);
      this.maintain();
    });
    return t;
  }

  /** Exit circuits through relays that left the consensus are not reused. */
  consensusChanged(dir: NetDir): void {
    for (const t of this.exits) if (!dir.get(t.exit.id)) t.dirtySince = 0;
  }

  /** Every circuit through `channel` takes no new stream (its first hop stopped answering). */
  retireChannel(channel: Channel): void {
    for (const t of this.exits) if (t.circ.channel === channel) t.dirtySince = Number.NEGATIVE_INFINITY;
    for (const circ of this.others.keys())
      if (circ.channel === channel) this.others.set(circ, Number.NEGATIVE_INFINITY);
  }

  /** See CircuitManager.retire. */
  retire(circ: OriginCircuit, reason: 'refused' | 'stream_timeout'): void {
    const t = this.exits.find((x) => x.circ === circ);
    if (t && t.dirtySince !== Number.NEGATIVE_INFINITY) {
      t.dirtySince = Number.NEGATIVE_INFINITY;
      this.h.m.circuitsRetired.labels({ reason }).inc();
    }
    if (this.others.has(circ)) {
      this.others.set(circ, Number.NEGATIVE_INFINITY);
      this.h.m.circuitsRetired.labels({ reason }).inc();
    }
  }

  isRetired(circ: OriginCircuit): boolean {
    return this.others.get(circ) === Number.NEGATIVE_INFINITY;
  }

  /** See CircuitManager.expireWhenIdle. */
  expireWhenIdle(circ: OriginCircuit): void {
    if (this.others.has(circ) || !circ.isOpen) return;
    this.others.set(circ, this.h.now());
    this.h.m.circuitsOpen.inc();
    circ.once('destroyed', () => {
      this.others.delete(circ);
      this.h.m.circuitsOpen.dec();
    });
  }

  /** See CircuitManager.expireOld. */
  expireOld(): void {
    const now = this.h.now();
    const { maxDirtinessMs, idleTimeoutMs } = this.h.opts;
    const idleMs = this.h.learning()
      ? Math.min(IDLE_TIMEOUT_WHILE_LEARNING_MS, idleTimeoutMs)
      : idleTimeoutMs;
    for (const t of [...this.exits]) {
      if (t.dirtySince !== null) {
        if (now - t.dirtySince >= maxDirtinessMs && t.circ.streamCount === 0) this.expire(t.circ, 'dirty');
      } else if (now - t.openedAt >= idleMs) this.expire(t.circ, 'idle');
    }
    for (const [circ, since] of [...this.others]) {
      if (now - since >= maxDirtinessMs && circ.streamCount === 0) this.expire(circ, 'dirty');
    }
  }

  private expire(circ: OriginCircuit, reason: 'dirty' | 'idle'): void {
    this.h.m.circuitsExpired.labels({ reason }).inc();
    circ.destroy(DestroyReason.FINISHED);
  }

  /** Keeps `prebuild` clean exit circuits ready (path-spec §2.1.1 predictive building, simplified). */
  maintain(): void {
    if (!this.h.ready()) return;
    const now = this.h.now();
    const clean = this.exits.filter((t) => t.isolationKey === null && this.usable(t, now)).length;
    for (let i = clean + this.h.building() + this.prebuilding; i < this.h.opts.prebuild; i++) {
      this.prebuilding++;
      void this.h
        .build({ purpose: 'exit' })
        .then((circ) => {
          if (!this.h.ready()) circ.destroy();
          else this.track(circ, null);
        })
        .catch((e: unknown) => this.h.logger.debug('pre-building a circuit failed', { error: String(e) }))
        .finally(() => {
          this.prebuilding--;
        });
    }
  }

  /** Closes every tracked circuit. */
  closeAll(): void {
    for (const t of this.exits.splice(0)) t.circ.destroy(DestroyReason.FINISHED);
    for (const circ of [...this.others.keys()]) circ.destroy(DestroyReason.FINISHED);
  }
}
