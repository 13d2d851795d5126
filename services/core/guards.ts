/**
 * Entry guard state machine (guard-spec §4, simplified but faithful; C tor
 * `entrynodes.c` for the constants and orderings).
 *
 * Overview: a client keeps a *sample* of Guard-flagged relays, confirms a
 * guard once a circuit through it succeeds, and builds circuits through the
 * first usable *primary* guard. Every function is pure: it takes a
 * `GuardState` and returns a new one (or a pick); `nowMs` and the rng come
 * from the caller. The state is plain JSON (`encodeGuardState` /
 * `decodeGuardState`).
 *
 * Not in this module: path selection (path.ts), persisting the JSON, the
 * "pending guard" bookkeeping for circuits in flight.
 *
 * Design notes:
 * - `listed` means "in the consensus with the Guard flag"; `filtered` adds
 *   Running, Valid and the caller's filter (guard-spec's FILTERED_GUARDS).
 * - Sample dates are randomised into the past by up to GUARD_LIFETIME/10 as
 *   C tor's `randomize_time` does, so the state does not reveal when a guard
 *   was added. `confirmedAt` is randomised only when an rng is passed.
 * - Deviation: the non-primary fallback in `pickGuard` takes the first
 *   candidate in sample order (the sample order is itself weighted-random)
 *   unless an rng is given.
 *
 * Limitations: no bridges, no "internet likely down" heuristic, no
 * distinction between directory and circuit guard use beyond `usable`.
 */
import type { Rng } from './crypto.js';
import { InvalidError } from './errors.js';
import { type BandwidthWeights, type PathRelay, positionWeight, relayIdHex } from './path.js';
import { uniformInt, weightedChoice } from './random.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** guard-spec §4 / entrynodes.c defaults. */
export const GUARD_DEFAULTS = {
  maxSampleFraction: 0.2,
  maxSample: 60,
  minFilteredSample: 20,
  nPrimary: 3,
  /** Guards to use for circuits (1) and directory fetches (3). */
  nPrimaryToUse: 1,
  nPrimaryDirToUse: 3,
  guardLifetimeMs: 120 * DAY,
  confirmedMinLifetimeMs: 60 * DAY,
  removeUnlistedAfterMs: 20 * DAY,
} as const;

export type Reachability = 'yes' | 'no' | 'maybe';

export interface SampledGuard {
  /** Lowercase hex Ed25519 identity. */
  id: string;
  /** sampled_on_date (randomised into the past). */
  addedAt: number;
  /** Order of sampling; primary fill and fallbacks follow it. */
  sampledIdx: number;
  confirmedAt?: number;
  confirmedIdx?: number;
  /** In the latest consensus with the Guard flag. */
  listed: boolean;
  unlistedSince?: number;
  /** Listed, Running, Valid and passing the caller's filter. */
  filtered: boolean;
  reachable: Reachability;
  /** When the current run of failures began. */
  failingSince?: number;
  lastTried?: number;
}

export interface GuardState {
  version: 1;
  sampled: SampledGuard[];
  /** Primary guard ids in priority order. */
  primary: string[];
  nextSampledIdx: number;
  nextConfirmedIdx: number;
}

export function emptyGuardState(): GuardState {
  return { version: 1, sampled: [], primary: [], nextSampledIdx: 0, nextConfirmedIdx: 0 };
}

export interface UpdateSampleOptions {
  nowMs: number;
  maxSampleFraction?: number;
  maxSample?: number;
  minFilteredSample?: number;
  nPrimary?: number;
  weights?: BandwidthWeights;
  /** Extra restriction (reachable addresses, excluded nodes). */
  filter?: (relay: PathRelay) => boolean;
}

const has = (r: PathRelay, f: string) => r.flags.includes(f);

/** Random time in (now - maxBackMs, now], as C tor's `randomize_time`. */
function randomizeTime(nowMs: number, maxBackMs: number, rng: Rng): number {
  const back = uniformInt(Math.max(1, Math.floor(maxBackMs / 1000)), rng) * 1000;
  return nowMs - back;
}

/**
 * guard-spec §4.6 retry schedule (C tor `get_retry_schedule`): how long to
 * wait after the last attempt on a guard that has been failing for `failingForMs`.
 */
export function retryDelayMs(failingForMs: number, primary: boolean): number {
  if (failingForMs < 6 * HOUR) return primary ? 10 * MINUTE : 1 * HOUR;
  if (failingForMs < 4 * DAY) return primary ? 90 * MINUTE : 4 * HOUR;
  if (failingForMs < 7 * DAY) return primary ? 4 * HOUR : 18 * HOUR;
  return primary ? 9 * HOUR : 36 * HOUR;
}

/** The guard's reachability as of `nowMs`: a failed guard becomes "maybe" once its retry is due. */
export function effectiveReachability(g: SampledGuard, primary: boolean, nowMs: number): Reachability {
  if (g.reachable !== 'no') return g.reachable;
  const since = g.failingSince ?? g.lastTried ?? nowMs;
  const last = g.lastTried ?? since;
  return nowMs >= last + retryDelayMs(nowMs - since, primary) ? 'maybe' : 'no';
}

/** Max sample size (C tor `get_max_sample_size`): min(fraction·guards, maxSample), at least minFilteredSample. */
export function maxSampleSize(nGuards: number, o: Partial<UpdateSampleOptions> = {}): number {
  const frac = o.maxSampleFraction ?? GUARD_DEFAULTS.maxSampleFraction;
  const abs = o.maxSample ?? GUARD_DEFAULTS.maxSample;
  const min = o.minFilteredSample ?? GUARD_DEFAULTS.minFilteredSample;
  return Math.max(min, Math.min(Math.floor(nGuards * frac), abs));
}

const clone = (s: GuardState): GuardState => ({
  ...s,
  sampled: s.sampled.map((g) => ({ ...g })),
  primary: [...s.primary],
});

/**
 * Bring the state up to date with a consensus (guard-spec §4.5-4.7):
 * refresh listed/filtered, expire old or long-unlisted guards, grow the
 * sample by guard-weighted bandwidth until it holds `minFilteredSample`
 * usable filtered guards or is full, then rebuild the primary list.
 */
export function updateSample(
  state: GuardState,
  consensusRelays: readonly PathRelay[],
  opts: UpdateSampleOptions,
  rng: Rng,
): GuardState {
  const s = clone(state);
  const now = opts.nowMs;
  const slop = GUARD_DEFAULTS.guardLifetimeMs / 10;
  const byId = new Map<string, PathRelay>();
  for (const r of consensusRelays) if (has(r, 'Guard')) byId.set(relayIdHex(r), r);
  const passes = (r: PathRelay) => has(r, 'Running') && has(r, 'Valid') && (opts.filter?.(r) ?? true);

  for (const g of s.sampled) {
    const r = byId.get(g.id);
    if (r) {
      g.listed = true;
      delete g.unlistedSince;
    } else {
      // entrynodes.c: unlisted_since_slop = REMOVE_UNLISTED_GUARDS_AFTER / 5.
      if (g.listed || g.unlistedSince === undefined)
        g.unlistedSince = randomizeTime(now, GUARD_DEFAULTS.removeUnlistedAfterMs / 5, rng);
      g.listed = false;
    }
    g.filtered = r !== undefined && passes(r);
  }

  // guard-spec §4.7 / entrynodes.c `sampled_guards_prune_obsolete_entries`.
  s.sampled = s.sampled.filter((g) => {
    if (
      !g.listed &&
      g.unlistedSince !== undefined &&
      g.unlistedSince < now - GUARD_DEFAULTS.removeUnlistedAfterMs
    )
      return false;
    if (g.addedAt < now - GUARD_DEFAULTS.guardLifetimeMs) {
      if (g.confirmedAt === undefined) return false;
      if (g.confirmedAt < now - GUARD_DEFAULTS.confirmedMinLifetimeMs) return false;
    }
    return true;
  });

  // guard-spec §4.5 / `entry_guards_expand_sample`.
  const maxSize = maxSampleSize(byId.size, opts);
  const minFiltered = opts.minFilteredSample ?? GUARD_DEFAULTS.minFilteredSample;
  const sampledIds = new Set(s.sampled.map((g) => g.id));
  const usableFiltered = () => s.sampled.filter((g) => g.filtered && g.reachable !== 'no').length;
  let eligible = [...byId.values()].filter((r) => !sampledIds.has(relayIdHex(r)) && passes(r));
  while (usableFiltered() < minFiltered && s.sampled.length < maxSize && eligible.length > 0) {
    const r = weightedChoice(eligible, (c) => positionWeight(c, 'guard', opts.weights), rng)!;
    const id = relayIdHex(r);
    eligible = eligible.filter((c) => c !== r);
    s.sampled.push({
      id,
      addedAt: randomizeTime(now, slop, rng),
      sampledIdx: s.nextSampledIdx++,
      listed: true,
      filtered: true,
      reachable: 'maybe',
    });
  }

  return updatePrimary(s, opts.nPrimary ?? GUARD_DEFAULTS.nPrimary, rng);
}

/**
 * `entry_guards_update_primary`: confirmed filtered guards in confirmation
 * order, then previous primaries still filtered, then random filtered
 * guards not known to be down.
 */
function updatePrimary(s: GuardState, n: number, rng: Rng): GuardState {
  const byId = new Map(s.sampled.map((g) => [g.id, g]));
  const next: string[] = [];
  const confirmed = s.sampled
    .filter((g) => g.confirmedIdx !== undefined && g.filtered)
    .sort((a, b) => a.confirmedIdx! - b.confirmedIdx!);
  for (const g of confirmed) if (next.length < n) next.push(g.id);
  for (const id of s.primary) {
    if (next.length >= n) break;
    if (byId.get(id)?.filtered && !next.includes(id)) next.push(id);
  }
  while (next.length < n) {
    const cands = s.sampled.filter(
      (g) => g.filtered && g.confirmedIdx === undefined && g.reachable !== 'no' && !next.includes(g.id),
    );
    if (cands.length === 0) break;
    next.push(cands[uniformInt(cands.length, rng)]!.id);
  }
  s.primary = next;
  return s;
}

/** The primary guard ids, best first. */
export function primaryGuards(state: GuardState, n: number = GUARD_DEFAULTS.nPrimary): string[] {
  return state.primary.slice(0, n);
}

export interface GuardPick {
  id: string;
  /** Primary guards are usable at once; others only if no primary guard succeeds first. */
  usableOnCompletion: boolean;
  kind: 'primary' | 'confirmed' | 'sampled';
}

export interface PickGuardOptions {
  nowMs: number;
  /** Restriction for this circuit (e.g. not in the exit's family). */
  usable?: (id: string) => boolean;
  /** How many live primaries to choose among (1 for circuits, 3 for directory fetches). */
  nUse?: number;
  rng?: Rng;
}

/**
 * guard-spec §4.9: the first `nUse` primary guards not known to be down (a
 * random one of them if `nUse` > 1 and an rng is given); else a confirmed
 * guard, then any filtered sampled guard, not known to be down.
 */
export function pickGuard(state: GuardState, opts: PickGuardOptions): GuardPick | undefined {
  const usable = opts.usable ?? (() => true);
  const primarySet = new Set(state.primary);
  const byId = new Map(state.sampled.map((g) => [g.id, g]));
  const live = (g: SampledGuard | undefined): g is SampledGuard =>
    g?.filtered === true &&
    usable(g.id) &&
    effectiveReachability(g, primarySet.has(g.id), opts.nowMs) !== 'no';

  const primaries = state.primary.map((id) => byId.get(id)).filter(live);
  if (primaries.length > 0) {
    const n = Math.min(opts.nUse ?? GUARD_DEFAULTS.nPrimaryToUse, primaries.length);
    const g = opts.rng && n > 1 ? primaries[uniformInt(n, opts.rng)]! : primaries[0]!;
    return { id: g.id, usableOnCompletion: true, kind: 'primary' };
  }
  const confirmed = state.sampled
    .filter((g) => g.confirmedIdx !== undefined && !primarySet.has(g.id) && live(g))
    .sort((a, b) => a.confirmedIdx! - b.confirmedIdx!);
  if (confirmed[0]) return { id: confirmed[0].id, usableOnCompletion: false, kind: 'confirmed' };
  const rest = state.sampled
    .filter((g) => g.confirmedIdx === undefined && !primarySet.has(g.id) && live(g))
    .sort((a, b) => a.sampledIdx - b.sampledIdx);
  if (rest.length === 0) return undefined;
  const g = opts.rng ? rest[uniformInt(rest.length, opts.rng)]! : rest[0]!;
  return { id: g.id, usableOnCompletion: false, kind: 'sampled' };
}

/**
 * A circuit through `id` succeeded: mark it reachable and confirm it
 * (guard-spec §4.3), appending it to the confirmed order.
 */
export function markGuardSuccess(state: GuardState, id: string, nowMs: number, rng?: Rng): GuardState {
  const s = clone(state);
  const g = s.sampled.find((x) => x.id === id);
  if (!g) return s;
  g.reachable = 'yes';
  g.lastTried = nowMs;
  delete g.failingSince;
  if (g.confirmedIdx === undefined) {
    g.confirmedIdx = s.nextConfirmedIdx++;
    g.confirmedAt = rng ? randomizeTime(nowMs, GUARD_DEFAULTS.guardLifetimeMs / 10, rng) : nowMs;
  }
  return s;
}

/** Connecting to `id` failed: mark it down until its retry is due. */
export function markGuardFailure(state: GuardState, id: string, nowMs: number): GuardState {
  const s = clone(state);
  const g = s.sampled.find((x) => x.id === id);
  if (!g) return s;
  if (g.reachable !== 'no' || g.failingSince === undefined) g.failingSince = nowMs;
  g.reachable = 'no';
  g.lastTried = nowMs;
  return s;
}

export function encodeGuardState(state: GuardState): string {
  return JSON.stringify(state);
}

const MAX_STATE_CHARS = 1 << 20;

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new InvalidError('guard state', `${what} is not a number`);
  return v;
}

function optNum(v: unknown, what: string): number | undefined {
  return v === undefined ? undefined : num(v, what);
}

/** Parse and validate a stored guard state; throws InvalidError on anything malformed. */
export function decodeGuardState(text: string): GuardState {
  if (typeof text !== 'string' || text.length > MAX_STATE_CHARS)
    throw new InvalidError('guard state', 'not a string or too large');
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new InvalidError('guard state', 'not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new InvalidError('guard state', 'not an object');
  const r = o as Record<string, unknown>;
  if (r.version !== 1) throw new InvalidError('guard state', 'unsupported version');
  if (!Array.isArray(r.sampled) || !Array.isArray(r.primary))
    throw new InvalidError('guard state', 'missing lists');
  const seen = new Set<string>();
  const sampled: SampledGuard[] = r.sampled.map((x: unknown) => {
    if (typeof x !== 'object' || x === null) throw new InvalidError('guard state', 'guard is not an object');
    const g = x as Record<string, unknown>;
    if (typeof g.id !== 'string' || !/^[0-9a-f]{2,128}$/.test(g.id) || g.id.length % 2 !== 0)
      throw new InvalidError('guard state', 'bad guard id');
    if (seen.has(g.id)) throw new InvalidError('guard state', 'duplicate guard');
    seen.add(g.id);
    if (g.reachable !== 'yes' && g.reachable !== 'no' && g.reachable !== 'maybe')
      throw new InvalidError('guard state', 'bad reachability');
    if (typeof g.listed !== 'boolean' || typeof g.filtered !== 'boolean')
      throw new InvalidError('guard state', 'bad listed/filtered');
    const out: SampledGuard = {
      id: g.id,
      addedAt: num(g.addedAt, 'addedAt'),
      sampledIdx: num(g.sampledIdx, 'sampledIdx'),
      listed: g.listed,
      filtered: g.filtered,
      reachable: g.reachable,
    };
    const opt = ['confirmedAt', 'confirmedIdx', 'unlistedSince', 'failingSince', 'lastTried'] as const;
    for (const k of opt) {
      const v = optNum(g[k], k);
      if (v !== undefined) out[k] = v;
    }
    if ((out.confirmedAt === undefined) !== (out.confirmedIdx === undefined))
      throw new InvalidError('guard state', 'confirmedAt and confirmedIdx go together');
    return out;
  });
  const primary = r.primary.map((id: unknown) => {
    if (typeof id !== 'string' || !seen.has(id))
      throw new InvalidError('guard state', 'primary guard not sampled');
    return id;
  });
  if (new Set(primary).size !== primary.length)
    throw new InvalidError('guard state', 'duplicate primary guard');
  return {
    version: 1,
    sampled,
    primary,
    nextSampledIdx: num(r.nextSampledIdx, 'nextSampledIdx'),
    nextConfirmedIdx: num(r.nextConfirmedIdx, 'nextConfirmedIdx'),
  };
}
