/**
 * Faults on demand for a local network (issue 18): stop, kill, pause or
 * restart one node, and cut or slow the links between two nodes, for a
 * duration after which it heals.
 *
 * Overview: `FaultInjector` holds the launcher's nodes by name and applies
 * a `FaultRequest`, then heals it when the duration ends (or when asked
 * early, or when the network stops). A node is a `FaultTarget`; how it
 * pauses, stops, dies and starts again depends on how it runs:
 *   - its own process (`--process-per-node`, childTarget below): pause is
 *     SIGSTOP, healed by SIGCONT (the kernel keeps its TCP connections
 *     open, peers see a silent node, as with a hung C tor); stop is
 *     SIGTERM (its own clean shutdown), kill is SIGKILL, both healed by
 *     starting it again with the same arguments and keys;
 *   - a relay sharing a process or worker thread (thread-targets.ts):
 *     pause holds every link it has (net/link-faults.ts), stop is its clean
 *     shutdown (DESTROY on every circuit), kill drops all its links at once
 *     with no DESTROY, as a dead process's sockets close, then frees it;
 *     both are healed by a new relay with the same keys and port.
 *   - restart is a stop and an immediate start; it has no duration.
 * Link faults (cut, slow) go into one table (net/link-faults.ts) that
 * `links` sends whole to every thread or process after each change.
 * Each fault is a `shallot_fault_active{kind,target}` series (1 while in
 * force, 0 once healed; a link's target is "a~b") and counts in
 * `shallot_faults_started_total`.
 *
 * Not in this module: the control endpoint that receives requests
 * (fault-control.ts); how the table reaches each node (the launchers).
 *
 * Limitations: one fault per node and one per link at a time (a second is
 * refused rather than stacked: healing a pause under a kill has no meaning).
 */

import type { ChildProcess } from 'node:child_process';
import type { Registry } from 'prom-client';
import { metricsFor } from '../metrics/metrics.js';
import { EMPTY_LINK_FAULTS, type LinkFaultTable, MAX_SLOW_MS } from '../net/link-faults.js';

export const NODE_FAULT_KINDS = ['stop', 'kill', 'pause', 'restart'] as const;
export const LINK_FAULT_KINDS = ['cut', 'slow'] as const;
export const FAULT_KINDS = [...NODE_FAULT_KINDS, ...LINK_FAULT_KINDS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type LinkFaultKind = (typeof LINK_FAULT_KINDS)[number];

export const isLinkKind = (k: FaultKind): k is LinkFaultKind => k === 'cut' || k === 'slow';

/** How long a stopped node may take to exit before it is killed (a little over its own 10 s grace). */
export const STOP_GRACE_MS = 12_000;

/** Longest duration accepted: a forgotten fault still heals within the hour. */
export const MAX_FAULT_SECONDS = 3600;

export interface FaultRequest {
  kind: FaultKind;
  /** A node name from state.json (`relay3`, `auth0`, `onion0-1`, `client`). */
  target: string;
  /** The other end of a link fault (cut, slow). */
  peer?: string;
  /** A slow link's extra one-way delay, ms. */
  delayMs?: number;
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

const FIELDS = new Set(['kind', 'target', 'peer', 'delayMs', 'durationSec']);
const NODE_NAME = /^[a-z0-9-]{1,63}$/;

/** A request as decoded JSON, checked field by field (it comes over the control endpoint). */
export function parseFaultRequest(v: unknown): FaultRequest {
  const bad = (why: string) => new FaultError('ERR_FAULT_REQUEST', `bad fault request: ${why}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) throw bad(`unknown field ${k}`);
  const { kind, target, peer, delayMs, durationSec } = o;
  if (typeof kind !== 'string' || !(FAULT_KINDS as readonly string[]).includes(kind))
    throw bad(`kind must be one of ${FAULT_KINDS.join(', ')}`);
  const k = kind as FaultKind;
  if (typeof target !== 'string' || !NODE_NAME.test(target)) throw bad('target must be a node name');
  const d = durationSec ?? (k === 'restart' ? 0 : undefined);
  if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_FAULT_SECONDS)
    throw bad(`durationSec must be an integer from 1 to ${MAX_FAULT_SECONDS}`);
  if (k === 'restart' ? d !== 0 : d === 0)
    throw bad(k === 'restart' ? 'restart takes no duration' : 'durationSec must be at least 1');
  const req: FaultRequest = { kind: k, target, durationSec: d };
  if (!isLinkKind(k)) {
    if (peer !== undefined || delayMs !== undefined) throw bad(`${k} takes a node, not a link`);
    return req;
  }
  if (typeof peer !== 'string' || !NODE_NAME.test(peer)) throw bad(`${k} needs peer, the link's other node`);
  if (peer === target) throw bad('a link joins two different nodes');
  req.peer = peer;
  if (k === 'cut') {
    if (delayMs !== undefined) throw bad('cut takes no delayMs');
    return req;
  }
  if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 1 || delayMs > MAX_SLOW_MS)
    throw bad(`delayMs must be an integer from 1 to ${MAX_SLOW_MS}`);
  req.delayMs = delayMs;
  return req;
}

/** The label and busy key of a fault: the node, or a link's two nodes in order ("a~b"). */
export function faultSubject(r: Pick<FaultRequest, 'target' | 'peer'>): string {
  if (r.peer === undefined) return r.target;
  return r.target <= r.peer ? `${r.target}~${r.peer}` : `${r.peer}~${r.target}`;
}

/** One node as the launcher holds it: how to hang it, stop it, kill it and start it again. */
export interface FaultTarget {
  readonly name: string;
  /**
   * Hangs the node with its links open, and lets it continue; null: the
   * node shares a process, so the injector holds its links instead (the
   * `paused` list of the link-fault table).
   */
  readonly pause: { hang(): void; resume(): void } | null;
  /** Its own clean shutdown; killed if it takes over `graceMs`. Resolves once it is down. */
  stop(graceMs: number): Promise<void>;
  /** Down at once, no shutdown. Resolves once it is down. */
  kill(): Promise<void>;
  /** Starts it again with its original arguments and keys. */
  start(): Promise<void>;
}

interface Active {
  record: FaultRecord;
  timer: NodeJS.Timeout | null;
}

export class FaultInjector {
  /** By faultSubject. */
  private readonly active = new Map<string, Active>();
  private readonly history: FaultRecord[] = [];
  private nextId = 1;
  private readonly m;
  private readonly now: () => number;
  private readonly stopGraceMs: number;
  private readonly links: (t: LinkFaultTable) => void;
  private readonly linkNodes: ReadonlySet<string>;

  constructor(
    components: {
      registry: Registry;
      now?: () => number;
      stopGraceMs?: number;
      /** Sends the link-fault table to every thread or process (none: link faults refused). */
      links?: (t: LinkFaultTable) => void;
      /** Nodes whose links can be faulted (default: the targets). */
      linkNodes?: Iterable<string>;
    },
    private readonly targets: ReadonlyMap<string, FaultTarget>,
  ) {
    this.m = metricsFor(components.registry).faults;
    this.now = components.now ?? Date.now;
    this.stopGraceMs = components.stopGraceMs ?? STOP_GRACE_MS;
    this.links = components.links ?? (() => {});
    this.linkNodes = new Set(components.linkNodes ?? targets.keys());
    this.hasLinks = components.links !== undefined;
  }

  private readonly hasLinks: boolean;

  private check(req: FaultRequest): FaultTarget | null {
    if (isLinkKind(req.kind)) {
      if (!this.hasLinks) throw new FaultError('ERR_FAULT_TARGET', 'this network has no link faults');
      for (const n of [req.target, req.peer ?? ''])
        if (!this.linkNodes.has(n))
          throw new FaultError(
            'ERR_FAULT_TARGET',
            `no node ${n} with faultable links (one of: ${[...this.linkNodes].join(', ')})`,
          );
      return null;
    }
    const t = this.targets.get(req.target);
    if (!t)
      throw new FaultError(
        'ERR_FAULT_TARGET',
        `${req.kind} applies to ${[...this.targets.keys()].join(', ') || 'no node'} here, not ${req.target}`,
      );
    return t;
  }

  /** Applies a fault; resolves once it is in force (a restart: once the node runs again). */
  async inject(req: FaultRequest): Promise<FaultRecord> {
    const t = this.check(req);
    const subject = faultSubject(req);
    if (this.active.has(subject))
      throw new FaultError('ERR_FAULT_BUSY', `${subject} already has a fault in force; heal it first`);
    const start = this.now();
    const record: FaultRecord = {
      ...req,
      id: this.nextId++,
      startedAt: new Date(start).toISOString(),
      healsAt: new Date(start + req.durationSec * 1000).toISOString(),
    };
    const a: Active = { record, timer: null };
    this.active.set(subject, a);
    this.history.push(record);
    this.m.started.inc({ kind: req.kind });
    this.m.active.set({ kind: req.kind, target: subject }, 1);
    try {
      switch (req.kind) {
        case 'cut':
        case 'slow':
          this.publishLinks();
          break;
        case 'pause':
          if (t?.pause) t.pause.hang();
          else this.publishLinks();
          break;
        case 'stop':
        case 'restart':
          await t?.stop(this.stopGraceMs);
          break;
        case 'kill':
          await t?.kill();
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
    else if (this.active.get(subject) === a)
      a.timer = setTimeout(() => void this.heal(record.id).catch(() => {}), req.durationSec * 1000);
    return record;
  }

  /** Ends a fault now: the node continues or starts again, the link is whole again. */
  async heal(id: number): Promise<FaultRecord> {
    const found = [...this.active].find(([, x]) => x.record.id === id);
    if (!found) throw new FaultError('ERR_FAULT_UNKNOWN', `no fault ${id} in force`);
    const [subject, a] = found;
    const { record } = a;
    if (a.timer) clearTimeout(a.timer);
    this.active.delete(subject);
    const t = this.targets.get(record.target);
    try {
      if (isLinkKind(record.kind)) this.publishLinks();
      else if (record.kind === 'pause') {
        if (t?.pause) t.pause.resume();
        else this.publishLinks();
      } else await t?.start();
    } finally {
      record.healedAt = new Date(this.now()).toISOString();
      this.m.active.set({ kind: record.kind, target: subject }, 0);
    }
    return record;
  }

  /** The link-fault table of the faults in force (what every thread and process applies). */
  linkTable(): LinkFaultTable {
    const t: LinkFaultTable = { cuts: [], slows: [], paused: [] };
    for (const { record: r } of this.active.values()) {
      if (r.kind === 'cut') t.cuts.push([r.target, r.peer as string]);
      else if (r.kind === 'slow') t.slows.push({ a: r.target, b: r.peer as string, delayMs: r.delayMs ?? 0 });
      else if (r.kind === 'pause' && this.targets.get(r.target)?.pause === null) t.paused.push(r.target);
    }
    return t;
  }

  private publishLinks(): void {
    this.links(this.linkTable());
  }

  /** Every fault since the network started, newest last. */
  list(): readonly FaultRecord[] {
    return this.history;
  }

  /**
   * Before the network stops: paused nodes continue (a stopped process
   * would not see the launcher's SIGTERM), links are whole again, and no
   * heal timer fires later; stopped and killed nodes stay down.
   */
  close(): void {
    for (const a of this.active.values()) {
      if (a.timer) clearTimeout(a.timer);
      if (a.record.kind === 'pause') this.targets.get(a.record.target)?.pause?.resume();
    }
    const hadLinks = this.linkTable();
    this.active.clear();
    if (hadLinks.cuts.length + hadLinks.slows.length + hadLinks.paused.length > 0)
      this.links(EMPTY_LINK_FAULTS);
  }
}

/**
 * A node run as a child process: `start` spawns it (again, on respawn, with
 * the same arguments); `onStart` sees every new process (the launcher
 * records its pid and sends it the link-fault table).
 */
export function childTarget(
  name: string,
  start: () => ChildProcess,
  onStart: (child: ChildProcess) => void,
): { target: FaultTarget; child: ChildProcess } {
  let current = start();
  onStart(current);
  const running = () => current.exitCode === null && current.signalCode === null;
  const signal = (sig: NodeJS.Signals) => running() && current.kill(sig);
  const exited = () =>
    new Promise<void>((resolve) => (running() ? current.once('exit', () => resolve()) : resolve()));
  const target: FaultTarget = {
    name,
    pause: { hang: () => signal('SIGSTOP'), resume: () => signal('SIGCONT') },
    stop: async (graceMs) => {
      signal('SIGTERM');
      // As the launcher's own stop: a node that has not exited after its
      // 10 s shutdown grace (runtime/cli.ts onShutdown) is killed.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), graceMs);
      });
      if ((await Promise.race([exited(), late])) === 'late') signal('SIGKILL');
      clearTimeout(timer);
      await exited();
    },
    kill: async () => {
      signal('SIGKILL');
      await exited();
    },
    start: async () => {
      current = start();
      onStart(current);
    },
  };
  return { target, child: current };
}
