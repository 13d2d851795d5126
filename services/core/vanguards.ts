/**
 * Vanguards-lite (proposal 333, vanguards-spec): a small, slowly rotating set
 * of second-hop ("layer 2") relays for onion-service circuits, so an
 * attacker who can make a service or client build many circuits cannot
 * walk from a relay it runs to the guard.
 *
 * Prop 333: NUM_LAYER2_GUARDS = 4; each lives max(X, X) with X uniform in
 * [1 day, 12 days] (about a week on average; the proposal's distribution,
 * where C tor draws one uniform value); the set is not written to disk, so
 * it is new after a restart. Members are drawn like middles (bandwidth
 * times the middle weight) from Running, Valid, Stable relays and replaced
 * when they expire or leave the consensus, not when a flag changes. The
 * consensus parameters guard-hs-l2-* are not read (fixed values). Which circuits use
 * them, and how long those are, is the circuit manager's business (prop 333
 * §1: client rend G-L2-R; everything else G-L2-M-target).
 */
import type { Rng } from './crypto.js';
import { type BandwidthWeights, type PathRelay, positionWeight, relayIdHex } from './path.js';
import { uniformInt, weightedChoice } from './random.js';

export interface VanguardParams {
  count: number;
  minLifetimeMs: number;
  maxLifetimeMs: number;
}

const DAY = 24 * 3600_000;
export const VANGUARDS_LITE: VanguardParams = { count: 4, minLifetimeMs: DAY, maxLifetimeMs: 12 * DAY };

export interface Vanguard {
  /** Hex Ed25519 identity (relayIdHex). */
  id: string;
  expiresAt: number;
}

/** max(X, X), X uniform in [min, max] at millisecond resolution. */
export function vanguardLifetimeMs(rng: Rng, p: VanguardParams = VANGUARDS_LITE): number {
  const span = p.maxLifetimeMs - p.minLifetimeMs + 1;
  return p.minLifetimeMs + Math.max(uniformInt(span, rng), uniformInt(span, rng));
}

const usable = (r: PathRelay) => ['Running', 'Valid', 'Stable'].every((f) => r.flags.includes(f));

/**
 * The set after `nowMs`: expired members and those no longer usable in
 * `relays` dropped, then topped up to `p.count` (fewer when the network has
 * fewer usable relays). Returns the same array when nothing changed.
 */
export function updateVanguards(
  current: readonly Vanguard[],
  relays: readonly PathRelay[],
  opts: { nowMs: number; rng: Rng; weights?: BandwidthWeights; params?: VanguardParams },
): readonly Vanguard[] {
  const p = opts.params ?? VANGUARDS_LITE;
  // Members stay while listed (C tor's maintain_layer2_guards); flags are checked when a path is chosen.
  const listed = new Set(relays.map(relayIdHex));
  const kept = current.filter((v) => v.expiresAt > opts.nowMs && listed.has(v.id));
  const next = [...kept];
  const fresh = relays.filter(usable);
  while (next.length < p.count) {
    const taken = new Set(next.map((v) => v.id));
    const candidates = fresh.filter((r) => !taken.has(relayIdHex(r)));
    const r = weightedChoice(candidates, (c) => positionWeight(c, 'middle', opts.weights), opts.rng);
    if (!r) break;
    next.push({ id: relayIdHex(r), expiresAt: opts.nowMs + vanguardLifetimeMs(opts.rng, p) });
  }
  const same = next.length === current.length && next.every((v, i) => v === current[i]);
  return same ? current : next;
}
