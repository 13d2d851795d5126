/**
 * What one built client circuit adds to the client's metrics: its build time
 * by purpose, a success, the layer-2 vanguard it used (prop 333), and each
 * hop by position (guard, middle, exit, or the chosen last hop of an
 * onion-service circuit; path-spec §2).
 */
import type { PathPurpose } from '../core/path.js';
import type { Metrics } from '../metrics/metrics.js';
import type { CircuitTarget } from './netdir.js';

/** Counts a circuit of `purpose` over `path` that opened in `seconds`. */
export function countBuilt(
  m: Metrics['client'],
  path: readonly CircuitTarget[],
  purpose: PathPurpose,
  seconds: number,
  viaVanguard: boolean,
): void {
  m.circuitBuild.labels({ purpose }).observe(seconds);
  m.circuits.labels({ purpose, outcome: 'success' }).inc();
  if (viaVanguard) m.vanguardCircuits.labels({ relay: (path[1] as CircuitTarget).nickname }).inc();
  for (const [i, hop] of path.entries())
    m.circuitHops.labels({ relay: hop.nickname, position: hopPosition(i, path.length, purpose) }).inc();
}

/** A hop's position for shallot_client_circuit_hops_total: an exit circuit ends at an exit, others at a chosen last hop. */
export function hopPosition(
  i: number,
  length: number,
  purpose: PathPurpose,
): 'guard' | 'middle' | 'exit' | 'last' {
  if (i === 0) return 'guard';
  if (i < length - 1) return 'middle';
  return purpose === 'exit' ? 'exit' : 'last';
}
