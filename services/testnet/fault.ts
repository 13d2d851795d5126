/**
 * Faults on demand for a local network (issue 18): stop, kill, pause or
 * restart one node that `shallot up --process-per-node` started, for a
 * duration after which it heals.
 *
 * Overview: `FaultInjector` holds the launcher's nodes by name and applies
 * a `FaultRequest` to one of them with POSIX signals, then heals it when
 * the duration ends (or when asked early, or when the network stops):
 *   - pause:   SIGSTOP, healed by SIGCONT. The process hangs without closing
 *              its links: the kernel keeps its TCP connections open and
 *              peers see a silent node, as with a hung C tor.
 *   - stop:    SIGTERM (the node's own clean shutdown), healed by starting
 *              it again with the same arguments and keys.
 *   - kill:    SIGKILL (no shutdown at all), healed the same way.
 *   - restart: SIGTERM then at once a new process; it has no duration.
 * Each fault is a `shallot_fault_active{kind,target}` series (1 while in
 * force, 0 once healed) and counts in `shallot_faults_started_total`.
 *
 * Not in this module: the control endpoint that receives requests
 * (fault-control.ts); link faults (cut, slow one link).
 *
 * Limitations: one fault per node at a time (a second one is refused
 * rather than stacked: healing a pause under a kill has no meaning); nodes
 * of the one-process launcher share this process, so they cannot be
 * signalled one by one and are not offered here.
 */

import type { ChildProcess } from 'node:child_process';
import type { Registry } from 'prom-client';
import { metricsFor } from '../metrics/metrics.js';

export const FAULT_KINDS = ['stop', 'kill', 'pause', 'restart'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** How long a stopped node may take to exit before it is killed (a little over its own 10 s grace). */
export const STOP_GRACE_MS = 12_000;

/** Longest duration accepted: a forgotten fault still heals within the hour. */
export const MAX_FAULT_SECONDS = 3600;

export interface FaultRequest {
  kind: FaultKind;
  /** A node name from state.json (`relay3`, `auth0`, `onion0-1`, `client`). */
  target: string;
  /** Seconds until it heals; 0 for restart. */
  durationSec: number;
}

export interface FaultRecord extends FaultRequest {
  id: number;
  startedAt: string;
  healsAt: string;
  healedAt?: string;
}

export type FaultErrorCode =
  | 'ERR_FAULT_REQUEST'
  | 'ERR_FAULT_TARGET'
  | 'ERR_FAULT_BUSY'
  | 'ERR_FAULT_UNKNOWN';

export class FaultError extends Error {
  constructor(
    readonly code: FaultErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FaultError';
  }
}

/** A request as decoded JSON, checked field by field (it comes over the control endpoint). */
export function parseFaultRequest(v: unknown): FaultRequest {
  const bad = (why: string) => new FaultError('ERR_FAULT_REQUEST', `bad fault request: ${why}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'kind' && k !== 'target' && k !== 'durationSec') throw bad(`unknown field ${k}`);
  const { kind, target, durationSec } = o;
  if (typeof kind !== 'string' || !(FAULT_KINDS as readonly string[]).includes(kind))
    throw bad(`kind must be one of ${FAULT_KINDS.join(', ')}`);
  if (typeof target !== 'string' || !/^[a-z0-9-]{1,63}$/.test(target))
    throw bad('target must be a node name');
  const d = durationSec ?? (kind === 'restart' ? 0 : undefined);
  if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_FAULT_SECONDS)
    throw bad(`durationSec must be an integer from 1 to ${MAX_FAULT_SECONDS}`);
  if (kind === 'restart' ? d !== 0 : d === 0)
    throw bad(kind === 'restart' ? 'restart takes no duration' : 'durationSec must be at least 1');
  return { kind: kind as FaultKind, target, durationSec: d };
}

/** One node as the launcher holds it: its process and how to start it again. */
export interface FaultTarget {
  readonly name: string;
  /** Sends a signal to the node's current process; false if it has none. */
  signal(sig: NodeJS.Signals): boolean;
  /** Resolves once the current process has exited (at once if none runs). */
  exited(): Promise<void>;
  /** Starts the node again with its original arguments. */
  respawn(): Promise<void>;
}

interface Active {
  record: FaultRecord;
  timer: NodeJS.Timeout | null;
}

export class FaultInjector {
  private readonly active = new Map<string, Active>();
  private readonly history: FaultRecord[] = [];
  private nextId = 1;
  private readonly m;

  constructor(
    components: { registry: Registry; now?: () => number; stopGraceMs?: number },
    private readonly targets: ReadonlyMap<string, FaultTarget>,
  ) {
    this.m = metricsFor(components.registry).faults;
    this.now = components.now ?? Date.now;
    this.stopGraceMs = components.stopGraceMs ?? STOP_GRACE_MS;
  }

  private readonly now: () => number;
  private readonly stopGraceMs: number;

  /** Applies a fault; resolves once it is in force (a restart: once the new process runs). */
  async inject(req: FaultRequest): Promise<FaultRecord> {
    const t = this.targets.get(req.target);
    if (!t)
      throw new FaultError(
        'ERR_FAULT_TARGET',
        `no node ${req.target} (one of: ${[...this.targets.keys()].join(', ')})`,
      );
    if (this.active.has(req.target))
      throw new FaultError('ERR_FAULT_BUSY', `${req.target} already has a fault in force; heal it first`);
    const start = this.now();
    const record: FaultRecord = {
      ...req,
      id: this.nextId++,
      startedAt: new Date(start).toISOString(),
      healsAt: new Date(start + req.durationSec * 1000).toISOString(),
    };
    const a: Active = { record, timer: null };
    this.active.set(req.target, a);
    this.history.push(record);
    this.m.started.inc({ kind: req.kind });
    this.m.active.set({ kind: req.kind, target: req.target }, 1);
    try {
      switch (req.kind) {
        case 'pause':
          t.signal('SIGSTOP');
          break;
        case 'stop':
        case 'restart': {
          t.signal('SIGTERM');
          // As the launcher's own stop: a node that has not exited after its
          // 10 s shutdown grace (runtime/cli.ts onShutdown) is killed.
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'late'>((r) => {
            timer = setTimeout(() => r('late'), this.stopGraceMs);
          });
          if ((await Promise.race([t.exited(), late])) === 'late') t.signal('SIGKILL');
          clearTimeout(timer);
          await t.exited();
          break;
        }
        case 'kill':
          t.signal('SIGKILL');
          await t.exited();
          break;
        default: {
          const never: never = req.kind;
          throw new Error(`unknown fault ${String(never)}`);
        }
      }
    } catch (e) {
      await this.heal(record.id);
      throw e;
    }
    if (req.kind === 'restart') await this.heal(record.id);
    else if (this.active.get(req.target) === a)
      a.timer = setTimeout(() => void this.heal(record.id).catch(() => {}), req.durationSec * 1000);
    return record;
  }

  /** Ends a fault now: the node continues or starts again. */
  async heal(id: number): Promise<FaultRecord> {
    const a = [...this.active.values()].find((x) => x.record.id === id);
    if (!a) throw new FaultError('ERR_FAULT_UNKNOWN', `no fault ${id} in force`);
    const { record } = a;
    if (a.timer) clearTimeout(a.timer);
    this.active.delete(record.target);
    const t = this.targets.get(record.target);
    try {
      if (record.kind === 'pause') t?.signal('SIGCONT');
      else await t?.respawn();
    } finally {
      record.healedAt = new Date(this.now()).toISOString();
      this.m.active.set({ kind: record.kind, target: record.target }, 0);
    }
    return record;
  }

  /** Every fault since the network started, newest last. */
  list(): readonly FaultRecord[] {
    return this.history;
  }

  /**
   * Before the network stops: paused nodes continue (a stopped process
   * would not see the launcher's SIGTERM) and no heal timer fires later;
   * stopped and killed nodes stay down.
   */
  close(): void {
    for (const a of this.active.values()) {
      if (a.timer) clearTimeout(a.timer);
      if (a.record.kind === 'pause') this.targets.get(a.record.target)?.signal('SIGCONT');
    }
    this.active.clear();
  }
}

/**
 * A node run as a child process: `start` spawns it (again, on respawn, with
 * the same arguments); `onStart` sees every new process (the launcher
 * records its pid).
 */
export function childTarget(
  name: string,
  start: () => ChildProcess,
  onStart: (child: ChildProcess) => void,
): { target: FaultTarget; child: ChildProcess } {
  let current = start();
  onStart(current);
  const running = () => current.exitCode === null && current.signalCode === null;
  const target: FaultTarget = {
    name,
    signal: (sig) => running() && current.kill(sig),
    exited: () =>
      new Promise<void>((resolve) => (running() ? current.once('exit', () => resolve()) : resolve())),
    respawn: async () => {
      current = start();
      onStart(current);
    },
  };
  return { target, child: current };
}
