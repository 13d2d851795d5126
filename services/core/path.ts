/**
 * Path selection: which relays a circuit goes through (path-spec §2.2, §2.4;
 * dir-spec §3.8.3 for bandwidth weights).
 *
 * Overview: `choosePath` picks the final hop first (exit, or a middle-weighted
 * relay for internal circuits), then the guard, then the middles, each by
 * bandwidth times the consensus weight for that position, drawn by
 * random.ts's `weightedChoice` over the caller's `Rng` so tests can replay
 * a path from a seed.
 *
 * Not in this module: guard persistence and retry (guards.ts), parsing the
 * consensus (dir/consensus.ts), exit policies (exit-policy.ts; plugged in through
 * `PathRelay.allowsExitPort`).
 *
 * Design notes:
 * - `PathRelay` is structural so this module does not depend on the
 *   consensus parser; a parsed consensus relay satisfies it.
 * - When `lastHop` is given (intro point, rendezvous point, HSDir), it is
 *   appended after `length` chosen hops, as C tor's `new_route_len` adds one
 *   hop for a chosen target.
 * - A preselected `guard` comes from the guard manager and is taken as is
 *   (no flag check); the other hops are chosen to be compatible with it.
 * - With `vanguards` the hop after the guard is drawn uniformly from that
 *   set (prop 333), and it and the middles after it exclude only relays
 *   already in the path (no family or /16 rule), as C tor does.
 *
 * Limitations: no Fast requirement (need_capacity), no V2Dir/BEGIN_DIR
 * weights (Wgb…), and no measured/unmeasured bandwidth distinction.
 */

import { toHex } from './bytes.js';
import type { Rng } from './crypto.js';
import { InvalidError, ShallotError } from './errors.js';
import { uniformInt, weightedChoice } from './random.js';

/** What path selection needs to know about a relay. */
export interface PathRelay {
  identity: Uint8Array;
  /** IPv4 or IPv6 address (IPv6 may be bracketed). */
  address: string;
  flags: readonly string[];
  /** Consensus `w Bandwidth=` value. */
  bandwidth: number;
  /** Family members as hex Ed25519 identities. */
  family: readonly string[];
  /** Exit policy check; when absent, the Exit flag stands in for it. */
  allowsExitPort?: (port: number) => boolean;
  /** The exit policy accepts nothing: never an exit, whatever the flags (C tor node_exit_policy_rejects_all). */
  exitsNowhere?: boolean;
}

/** Consensus `bandwidth-weights` keyed by name (Wgg, Wgm, …), scaled by 10000. */
export type BandwidthWeights = Record<string, number>;

/** dir-spec §3.4.1: `bwweightscale` default; missing weights also default to it. */
export const BW_WEIGHT_SCALE = 10000;

export type Position = 'guard' | 'middle' | 'exit';

export type PathPurpose = 'exit' | 'internal' | 'onion-intro' | 'onion-rend' | 'hsdir' | 'dir';

export interface PathOptions<T extends PathRelay> {
  purpose: PathPurpose;
  /** Hops chosen here (default 3); `lastHop`, if given, is appended after them. */
  length?: number;
  /** Required for purpose 'exit' when the destination port is known. */
  exitPort?: number;
  /**
   * Guard chosen by the guard manager: a relay, or a function that picks one
   * once the final hop is chosen, given which relays fit beside the hops
   * chosen so far (C tor picks an exit circuit's exit first, then the first
   * primary guard that is neither the exit nor in its family:
   * onion_pick_cpath_exit, then guards_choose_guard with
   * guard_create_exit_restriction). Undefined from the function: a weighted
   * Guard pick, as with no guard.
   */
  guard?: T | ((fits: (r: T) => boolean) => T | undefined);
  /** Fixed final hop (intro point, rendezvous point, HSDir). */
  lastHop?: T;
  /** path-spec §2.2 /16 rule (and arti's IPv6 /32); off on loopback testnets. */
  enforceSubnets: boolean;
  enforceFamily: boolean;
  /** Long-lived streams need Stable on every hop, as intro/rend circuits do. */
  needStable?: boolean;
  weights?: BandwidthWeights;
  /** Vanguards-lite layer-2 set (vanguards.ts): the hop after the guard is one of these, uniformly. */
  vanguards?: readonly T[];
}

/** No relay satisfies the constraints for some hop. */
export class PathError extends ShallotError {
  constructor(position: string, candidates: number, purpose: PathPurpose) {
    super('ERR_NO_PATH', `no usable relay for ${position} hop`, { position, candidates, purpose });
  }
}

const has = (r: PathRelay, flag: string): boolean => r.flags.includes(flag);

function weight(weights: BandwidthWeights, name: string): number {
  const w = weights[name];
  // dir-spec §3.4.1: missing weights default to the scale; negative ones clamp to 0 (as arti).
  if (w === undefined || !Number.isFinite(w)) return BW_WEIGHT_SCALE;
  return Math.max(0, w);
}

/**
 * dir-spec §3.8.3: bandwidth times the weight for this relay's kind
 * (Guard-only g / Exit-only e / both d / neither m) in `position`, divided by
 * the scale. A BadExit counts as non-exit, as in C tor. There is no Wge:
 * exit-only relays never serve as guards.
 */
export function positionWeight(relay: PathRelay, position: Position, weights: BandwidthWeights = {}): number {
  const g = has(relay, 'Guard');
  const e = has(relay, 'Exit') && !has(relay, 'BadExit');
  const kind = g && e ? 'd' : g ? 'g' : e ? 'e' : 'm';
  const bw = Number.isFinite(relay.bandwidth) ? Math.max(0, relay.bandwidth) : 0;
  let w: number;
  if (position === 'guard') w = kind === 'e' ? 0 : weight(weights, `Wg${kind}`);
  else if (position === 'middle') w = weight(weights, `Wm${kind}`);
  else w = weight(weights, `We${kind}`);
  return (bw * w) / BW_WEIGHT_SCALE;
}

/** Hex identity as used in family lists. */
export const relayIdHex = (r: PathRelay): string => toHex(r.identity).toLowerCase();

/**
 * The network a relay shares with its neighbours for the distinct-subnet
 * rule: IPv4 /16 or IPv6 /32 (arti's defaults). An unparseable address is
 * its own subnet.
 */
export function subnetKey(address: string): string {
  let a = address.trim();
  if (a.startsWith('[')) a = a.slice(1, a.indexOf(']') < 0 ? undefined : a.indexOf(']'));
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(a);
  if (v4) return `4:${Number(v4[1])}.${Number(v4[2])}`;
  if (a.includes(':')) {
    const [head = '', tail] = a.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups =
      tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
    if (groups.length >= 2 && groups.slice(0, 2).every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) {
      return `6:${groups
        .slice(0, 2)
        .map((g) => Number.parseInt(g, 16).toString(16))
        .join(':')}`;
    }
  }
  return `?:${a}`;
}

/** path-spec §2.2: family is mutual — both relays must list each other. */
export function inSameFamily(a: PathRelay, b: PathRelay): boolean {
  const ia = relayIdHex(a);
  const ib = relayIdHex(b);
  const lists = (r: PathRelay, id: string) => r.family.some((f) => f.toLowerCase() === id);
  return lists(a, ib) && lists(b, ia);
}

function sameRelay(a: PathRelay, b: PathRelay): boolean {
  return a === b || relayIdHex(a) === relayIdHex(b);
}

function compatible(
  a: PathRelay,
  b: PathRelay,
  o: { enforceSubnets: boolean; enforceFamily: boolean },
): boolean {
  if (sameRelay(a, b)) return false;
  if (o.enforceFamily && inSameFamily(a, b)) return false;
  if (o.enforceSubnets && subnetKey(a.address) === subnetKey(b.address)) return false;
  return true;
}

/**
 * Whether `relay` may be the exit for `port` (path-spec §2.2: policy allows
 * it, not BadExit); with no port (a pre-built circuit), an Exit whose policy
 * accepts something, as C tor skips reject-all exits (a testnet's authorities
 * vote Exit for every relay: TestingDirAuthVoteExit).
 */
export function canExit(relay: PathRelay, port?: number): boolean {
  if (has(relay, 'BadExit') || relay.exitsNowhere) return false;
  if (port !== undefined && relay.allowsExitPort) return relay.allowsExitPort(port);
  return has(relay, 'Exit');
}

/**
 * Choose a path for a circuit (path-spec §2.2). Order: final hop, guard
 * (a relay given as `guard` is placed before the final hop is chosen, a
 * function is asked after), middles; each pick excludes relays already chosen, their mutual family and
 * (if enforced) their subnet. Throws PathError naming the hop that has no
 * candidate.
 */
export function choosePath<T extends PathRelay>(relays: readonly T[], opts: PathOptions<T>, rng: Rng): T[] {
  const length = opts.length ?? 3;
  if (!Number.isInteger(length) || length < 1)
    throw new InvalidError('path length', 'must be a positive integer');
  const weights = opts.weights ?? {};
  const stable = opts.needStable === true || opts.purpose === 'onion-intro' || opts.purpose === 'onion-rend';
  const chosen: T[] = [];
  const flagsOk = (r: T) => has(r, 'Running') && has(r, 'Valid') && (!stable || has(r, 'Stable'));
  const base = (r: T) => flagsOk(r) && chosen.every((c) => compatible(r, c, opts));
  // Vanguard circuits exclude only the relays already chosen, not their
  // families or subnets (C tor's build_vanguard_middle_exclude_list): those
  // rules could make every layer-2 relay unusable with some guard for days.
  const distinct = (r: T) => flagsOk(r) && chosen.every((c) => !sameRelay(r, c));
  const pick = (
    position: string,
    weightPos: Position,
    filter: (r: T) => boolean,
    eligible: (r: T) => boolean = base,
  ): T => {
    const candidates = relays.filter((r) => eligible(r) && filter(r));
    const r = weightedChoice(candidates, (c) => positionWeight(c, weightPos, weights), rng);
    if (r === undefined) throw new PathError(position, candidates.length, opts.purpose);
    return r;
  };

  if (opts.lastHop) chosen.push(opts.lastHop);
  const fixedGuard = typeof opts.guard === 'function' ? undefined : opts.guard;
  if (fixedGuard) {
    if (!chosen.every((c) => compatible(fixedGuard, c, opts))) throw new PathError('guard', 0, opts.purpose);
    chosen.push(fixedGuard);
  }

  // The final chosen hop: the exit, or (internal circuits) any relay weighted as a middle.
  let final: T | undefined;
  if (!opts.lastHop && length >= 2) {
    final =
      opts.purpose === 'exit'
        ? pick('exit', 'exit', (r) => canExit(r, opts.exitPort))
        : pick('final', 'middle', () => true);
    chosen.push(final);
  }

  let guard = fixedGuard;
  if (!guard && typeof opts.guard === 'function') {
    const fits = (r: T) => chosen.every((c) => compatible(r, c, opts));
    guard = opts.guard(fits);
    if (guard && !fits(guard)) throw new PathError('guard', 0, opts.purpose);
    if (guard) chosen.push(guard);
  }
  if (!guard) {
    // A one-hop exit circuit (no lastHop) needs a guard that can also exit.
    const oneHopExit = length === 1 && !opts.lastHop && opts.purpose === 'exit';
    guard = pick('guard', 'guard', (r) => has(r, 'Guard') && (!oneHopExit || canExit(r, opts.exitPort)));
    chosen.push(guard);
  } else if (length === 1 && !opts.lastHop && opts.purpose === 'exit' && !canExit(guard, opts.exitPort)) {
    throw new PathError('exit', 0, opts.purpose);
  }

  let nMiddle = opts.lastHop ? length - 1 : Math.max(0, length - 2);
  const middles: T[] = [];
  if (opts.vanguards && nMiddle > 0) {
    const layer2 = opts.vanguards.filter(distinct);
    if (layer2.length === 0) throw new PathError('vanguard', 0, opts.purpose);
    const l2 = layer2[uniformInt(layer2.length, rng)] as T;
    chosen.push(l2);
    middles.push(l2);
    nMiddle--;
  }
  for (let i = 0; i < nMiddle; i++) {
    const m = pick('middle', 'middle', () => true, opts.vanguards ? distinct : base);
    chosen.push(m);
    middles.push(m);
  }

  const path: T[] = [guard, ...middles];
  if (final) path.push(final);
  if (opts.lastHop) path.push(opts.lastHop);
  return path;
}
