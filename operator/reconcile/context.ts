/**
 * What every reconciler gets: the API, images, metrics, events, a clock
 * and an RNG (replaceable in tests), and a scraper for relay metrics.
 */
import type { Rng } from '../../services/core/crypto.js';
import type { Metrics } from '../../services/metrics/metrics.js';
import type { Images } from '../config.js';
import type { EventRecorder } from '../events.js';
import type { Kube } from '../kube/client.js';
import type { Logger } from '../log.js';

export interface ReconcileContext {
  kube: Kube;
  images: Images;
  metrics: Metrics['operator'];
  /** shallot_fault_active / shallot_faults_started_total for NetworkFaults (absent: not counted). */
  faultMetrics?: Metrics['faults'];
  recorder: EventRecorder;
  log: Logger;
  now: () => number;
  rng?: Rng;
  /** GET a URL's body (relay /metrics for autoscaling); rejects on failure. */
  scrape: (url: string) => Promise<string>;
}

export interface ReconcileResult {
  /** Reconcile again after this long even if nothing changes (schedules, waiting). */
  requeueAfterMs?: number;
}

export function soonest(...ms: (number | null | undefined)[]): number | undefined {
  const v = ms.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? Math.max(0, Math.min(...v)) : undefined;
}
