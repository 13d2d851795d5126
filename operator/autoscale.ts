/**
 * Relay autoscaling decision (spec.relays.autoscale), pure.
 *
 * Signal: the mean of `shallot_relay_circuits_active` (circuits through the
 * relay right now) over the relays that answered a scrape of their
 * /metrics. Circuits are what a relay's CPU and memory scale with, and
 * unlike a rate they need no second sample.
 *
 * Recommendation: ceil(current × mean / target) — the relays that would
 * put the mean at the target — clamped to [min, max]. Within a ±10%
 * tolerance band of the target nothing changes.
 *
 * Damping (after the HorizontalPodAutoscaler's behavior):
 * - scale up at most to max(current + 1, 2 × current) per step, and not
 *   within `upCooldownMs` (60 s) of the last change;
 * - scale down only to the highest recommendation of the last
 *   `downWindowMs` (5 min), by at most one relay per step, and not within
 *   `downCooldownMs` (2 min) of the last change: a relay carries circuits,
 *   so retiring one breaks them and should be rare and slow;
 * - no signal (no relay answered) keeps the current count.
 * Recommendations are kept in status (autoscale.recommendations) so the
 * decision is level-triggered and survives operator restarts.
 */
import type { AutoscaleSpec } from './api/onion-network.js';

export interface AutoscaleState {
  current: number;
  /** Mean active circuits per relay; null when no relay could be scraped. */
  signal: number | null;
  /** Earlier recommendations, oldest first. */
  history: { time: number; replicas: number }[];
  /** Last time the desired count changed (ms), or null. */
  lastScaleTime: number | null;
}

export interface AutoscalePolicy {
  tolerance: number;
  upCooldownMs: number;
  downCooldownMs: number;
  downWindowMs: number;
}

export const DEFAULT_POLICY: AutoscalePolicy = {
  tolerance: 0.1,
  upCooldownMs: 60_000,
  downCooldownMs: 120_000,
  downWindowMs: 300_000,
};

export interface AutoscaleDecision {
  desired: number;
  /** The raw recommendation (clamped), recorded in history. */
  recommendation: number;
  history: { time: number; replicas: number }[];
  reason:
    | 'no-signal'
    | 'within-tolerance'
    | 'scale-up'
    | 'scale-down'
    | 'cooldown'
    | 'stabilizing'
    | 'clamped';
}

export function decideRelays(
  spec: AutoscaleSpec,
  st: AutoscaleState,
  now: number,
  policy: AutoscalePolicy = DEFAULT_POLICY,
): AutoscaleDecision {
  const clamp = (n: number) => Math.max(spec.min, Math.min(spec.max, n));
  const current = st.current;
  const history = st.history.filter((h) => now - h.time < policy.downWindowMs);
  const keep = (reason: AutoscaleDecision['reason'], recommendation: number): AutoscaleDecision => ({
    desired: clamp(current),
    recommendation,
    history: [...history, { time: now, replicas: recommendation }].slice(-60),
    reason: clamp(current) !== current ? 'clamped' : reason,
  });
  if (st.signal === null || !Number.isFinite(st.signal) || current === 0) {
    // Nothing to measure: hold, but never outside [min, max].
    return {
      desired: clamp(current),
      recommendation: clamp(current),
      history,
      reason: clamp(current) !== current ? 'clamped' : 'no-signal',
    };
  }
  const ratio = st.signal / spec.targetCircuitsPerRelay;
  const raw = Math.abs(ratio - 1) <= policy.tolerance ? current : Math.ceil(current * ratio);
  const recommendation = clamp(raw);
  const sinceScale = st.lastScaleTime === null ? Number.POSITIVE_INFINITY : now - st.lastScaleTime;
  if (recommendation > current) {
    if (sinceScale < policy.upCooldownMs) return keep('cooldown', recommendation);
    const desired = Math.min(recommendation, Math.max(current + 1, current * 2));
    return {
      desired,
      recommendation,
      history: [...history, { time: now, replicas: recommendation }].slice(-60),
      reason: 'scale-up',
    };
  }
  if (recommendation < current) {
    // The highest recommendation in the window (including this one) bounds how far down we go.
    const stable = Math.max(recommendation, ...history.map((h) => h.replicas));
    if (stable >= current) return keep('stabilizing', recommendation);
    if (sinceScale < policy.downCooldownMs) return keep('cooldown', recommendation);
    return {
      desired: clamp(Math.max(stable, current - 1)),
      recommendation,
      history: [...history, { time: now, replicas: recommendation }].slice(-60),
      reason: 'scale-down',
    };
  }
  return keep('within-tolerance', recommendation);
}

/** Sums `shallot_relay_circuits_active` samples in Prometheus text (one relay's /metrics). */
export function circuitsActiveFromMetrics(text: string): number | null {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('shallot_relay_circuits_active')) continue;
    const rest = line.slice('shallot_relay_circuits_active'.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const after = rest[0] === '{' ? rest.slice(rest.lastIndexOf('}') + 1) : rest;
    const v = Number(after.trim().split(/\s+/)[0]);
    if (Number.isFinite(v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : null;
}
