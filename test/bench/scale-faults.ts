/**
 * The judging half of `npm run bench:scale --load --faults` (issue 17):
 * which relays to fault, what each sampled consensus should list while
 * some are down, how long a faulted relay took to lose Running and a
 * resumed one to get it back, whether any relay that was never faulted
 * lost Running, and whether load failed beyond what the faulted relays
 * explain. Pure (no network, no processes): scale-load.ts runs `shallot
 * load` and `shallot fault`, scale.ts samples the consensus; this file is
 * unit-tested in test/unit/bench/scale-faults.test.ts.
 *
 * Running follows dir-spec §3.4.2 (an authority votes Running only for a
 * relay it found reachable) and §3.8.2 (a consensus flag needs a majority
 * of the votes); the authorities' rule for dropping one
 * (FAILED_ROUNDS_TO_DROP failed re-test rounds, services/directory/admission.ts)
 * sets how long a consensus may still list a relay that went down.
 */
import { FAILED_ROUNDS_TO_DROP } from '../../services/directory/admission.js';
import { DEFAULTS } from '../../services/loadgen/options.js';
import { counterDeltaBy, type Snapshot } from '../../services/loadgen/scrape.js';

/** kill: down to the end of the run; pause: held, then resumed; stop: its clean stop, then started again (same keys). */
export type PlannedKind = 'kill' | 'pause' | 'stop';
const KIND_CYCLE: readonly PlannedKind[] = ['kill', 'pause', 'stop'];

export interface PlannedFault {
  /** The relay's name as `shallot fault` and the consensus (nickname) know it. */
  target: string;
  kind: PlannedKind;
}

/**
 * `share` of the relays (at least `min`, at most all), spread evenly over
 * relay0..relay(n-1) so exits (the lowest indices) get their share too,
 * killed, paused and stopped in turn (kill first, so two faults are one
 * killed and one paused).
 */
export function planFaults(relays: number, share = 0.01, min = 2): PlannedFault[] {
  const n = Math.max(0, Math.floor(relays));
  const k = Math.min(n, Math.max(min, Math.round(n * share)));
  return Array.from({ length: k }, (_, i) => ({
    target: `relay${Math.floor(((i + 0.5) * n) / k)}`,
    kind: KIND_CYCLE[i % KIND_CYCLE.length] as PlannedKind,
  }));
}

/** A fault as it happened: from the fault control's records. */
export interface FaultWindow {
  target: string;
  kind: PlannedKind;
  startMs: number;
  /** When it healed (the relay runs again); null while still in force at the end of the run. */
  endMs: number | null;
}

/** One sampled consensus: when it was fetched, its valid-after, the nicknames it lists Running. */
export interface ConsensusSample {
  atMs: number;
  validAfterMs: number;
  running: ReadonlySet<string>;
}

export interface SampleVerdict {
  /** Seconds from the start of the load and fault phase to the consensus's valid-after. */
  validAfterSec: number;
  running: number;
  /** Relays minus the faulted relays down at valid-after. */
  expected: number;
  /** Faulted relays down at valid-after. */
  down: number;
  /** Down at valid-after, yet listed Running (normal within the grace after the fault started). */
  downListed: string[];
  /** Healed before valid-after but not Running (normal within the grace after it healed). */
  healedMissing: string[];
  /** Never faulted and not Running: must never happen. */
  healthyMissing: string[];
  /** No fault started or healed within `graceMs` before valid-after: `running` must equal `expected`. */
  settled: boolean;
}

/**
 * How long a consensus may lag a fault: FAILED_ROUNDS_TO_DROP failed
 * rounds of re-tests, the round whose vote drops it, and one more for the
 * consensus to be computed and served. A resumed relay passes its next
 * re-test, so the same bound covers it coming back.
 */
export const graceIntervals = (): number => FAILED_ROUNDS_TO_DROP + 2;

const downAt = (f: FaultWindow, t: number) => f.startMs <= t && (f.endMs === null || t < f.endMs);

/** Judges each sample: running against expected, and who is missing. `relays` names relay0..relay(n-1). */
export function judgeSamples(
  relays: number,
  faults: readonly FaultWindow[],
  samples: readonly ConsensusSample[],
  graceMs: number,
  phaseStartMs: number,
): SampleVerdict[] {
  const faulted = new Set(faults.map((f) => f.target));
  const events = faults.flatMap((f) => (f.endMs === null ? [f.startMs] : [f.startMs, f.endMs]));
  return samples.map((s) => {
    const va = s.validAfterMs;
    const down = faults.filter((f) => downAt(f, va));
    const healed = faults.filter((f) => f.endMs !== null && f.endMs <= va);
    const healthyMissing: string[] = [];
    for (let i = 0; i < relays; i++) {
      const name = `relay${i}`;
      if (!faulted.has(name) && !s.running.has(name)) healthyMissing.push(name);
    }
    return {
      validAfterSec: (va - phaseStartMs) / 1000,
      running: s.running.size,
      expected: relays - down.length,
      down: down.length,
      downListed: down.filter((f) => s.running.has(f.target)).map((f) => f.target),
      healedMissing: healed.filter((f) => !s.running.has(f.target)).map((f) => f.target),
      healthyMissing,
      settled: !events.some((t) => t <= va && va - t < graceMs),
    };
  });
}

export interface FaultOutcome {
  target: string;
  kind: PlannedKind;
  /** Seconds from the phase start to the fault. */
  startSec: number;
  /** Seconds the fault lasted; null while still in force at the end. */
  heldSec: number | null;
  /** From the fault to the valid-after of the first sampled consensus without it Running; null: never dropped. */
  droppedAfterSec: number | null;
  /** From the heal to the valid-after of the first sampled consensus with it Running again; null: not seen, or never dropped. */
  relistedAfterSec: number | null;
}

/** When each faulted relay left and came back, as the sampled consensuses show it. */
export function faultOutcomes(
  faults: readonly FaultWindow[],
  samples: readonly ConsensusSample[],
  phaseStartMs: number,
): FaultOutcome[] {
  const byVa = [...samples].sort((a, b) => a.validAfterMs - b.validAfterMs);
  return faults.map((f) => {
    const dropped = byVa.find(
      (s) =>
        s.validAfterMs >= f.startMs &&
        (f.endMs === null || s.validAfterMs < f.endMs) &&
        !s.running.has(f.target),
    );
    const end = f.endMs;
    // Listed again only means something for a relay that was dropped.
    const back =
      end === null || !dropped
        ? undefined
        : byVa.find((s) => s.validAfterMs >= end && s.running.has(f.target));
    return {
      target: f.target,
      kind: f.kind,
      startSec: (f.startMs - phaseStartMs) / 1000,
      heldSec: end === null ? null : (end - f.startMs) / 1000,
      droppedAfterSec: dropped ? (dropped.validAfterMs - f.startMs) / 1000 : null,
      relistedAfterSec: back && end !== null ? (back.validAfterMs - end) / 1000 : null,
    };
  });
}

/** Relays a request's circuits cross: an exit's 3 hops; the client's 3 and the service's 3 to a rendezvous point. */
export const HOPS = { exit: 3, onion: 6 } as const;

/**
 * The failure share the faulted relays explain: a request whose circuits
 * cross `hops` relays picked at random meets one of `faulted` of `relays`
 * with probability 1 - (1 - f)^hops. An upper bound, since a fault holds
 * for only part of the run and the client retries on other circuits; more
 * failures than this are the network's, not the faults'.
 */
export function faultShare(faulted: number, relays: number, hops: number): number {
  if (relays <= 0) return 0;
  return 1 - (1 - Math.min(1, faulted / relays)) ** hops;
}

/**
 * The failure share a load run may have: what the faults explain, and at
 * least what `shallot load` itself lets pass (1 - its default
 * --min-success: a healthy testnet on a busy host loses the odd request).
 */
export function allowedFailureShare(faulted: number, relays: number, hops: number): number {
  return Math.max(1 - DEFAULTS.minSuccess, faultShare(faulted, relays, hops));
}

export interface CircuitOutcomes {
  success: number;
  failure: number;
  /** success / (success + failure); null without builds. */
  ratio: number | null;
  byPurpose: Record<string, { success: number; failure: number }>;
  failuresByReason: Record<string, number>;
}

/**
 * Circuit builds between two scrapes of the launcher's /metrics (the
 * client and the onion services): shallot_circuits_total by purpose and
 * outcome, shallot_circuit_failures_total by reason.
 */
export function circuitOutcomes(before: Snapshot, after: Snapshot): CircuitOutcomes {
  const byPurpose: Record<string, { success: number; failure: number }> = {};
  for (const outcome of ['success', 'failure'] as const) {
    const d = counterDeltaBy(before, after, 'shallot_circuits_total', 'purpose', { outcome });
    for (const [purpose, n] of Object.entries(d)) {
      byPurpose[purpose] ??= { success: 0, failure: 0 };
      byPurpose[purpose][outcome] += n;
    }
  }
  const success = Object.values(byPurpose).reduce((a, p) => a + p.success, 0);
  const failure = Object.values(byPurpose).reduce((a, p) => a + p.failure, 0);
  const failuresByReason = Object.fromEntries(
    Object.entries(counterDeltaBy(before, after, 'shallot_circuit_failures_total', 'reason')).filter(
      ([, n]) => n > 0,
    ),
  );
  return {
    success,
    failure,
    ratio: success + failure > 0 ? success / (success + failure) : null,
    byPurpose,
    failuresByReason,
  };
}

/** The phase's verdict: each reason it failed, none when it passed. */
export function phaseProblems(p: {
  samples: readonly SampleVerdict[];
  outcomes: readonly FaultOutcome[];
  load: readonly { target: string; requests: number; failed: number; allowedShare: number }[];
}): string[] {
  const out: string[] = [];
  const healthy = new Set(p.samples.flatMap((s) => s.healthyMissing));
  if (healthy.size > 0)
    out.push(`${healthy.size} healthy relays lost Running (${[...healthy].slice(0, 10).join(', ')})`);
  const off = p.samples.filter((s) => s.settled && s.running !== s.expected);
  if (off.length > 0)
    out.push(
      `${off.length} settled consensuses off the expected count (${off
        .slice(0, 5)
        .map((s) => `${s.running} for ${s.expected}`)
        .join(', ')})`,
    );
  for (const o of p.outcomes) {
    if (o.heldSec !== null && o.droppedAfterSec !== null && o.relistedAfterSec === null)
      out.push(`${o.target} (${o.kind}) was dropped and never listed Running again after it healed`);
    if (o.heldSec === null && o.droppedAfterSec === null)
      out.push(`${o.target} (${o.kind}) stayed down yet was never dropped from Running`);
  }
  for (const l of p.load) {
    if (l.requests === 0) out.push(`load ${l.target}: no request ran`);
    else if (l.failed / l.requests > l.allowedShare)
      out.push(
        `load ${l.target}: ${l.failed} of ${l.requests} failed (${((100 * l.failed) / l.requests).toFixed(1)} %), ` +
          `beyond the faulted relays' share (${(100 * l.allowedShare).toFixed(1)} %)`,
      );
  }
  return out;
}
