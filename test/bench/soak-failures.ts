/**
 * What the soak bench (soak.ts) says about its failed requests: each one's
 * reason (failure-reason.ts, the names `shallot load` reports), its target
 * kind and when it happened, summarised for the printed row (counts by
 * reason, the first few times) and kept whole for the JSON report, so a
 * failure can be found again in the nodes' logs by its wall-clock time.
 */

export interface SoakFailure {
  /** Seconds since the phase began, when the request started. */
  t: number;
  /** Wall-clock time the request ended (ISO 8601), to find it in the logs. */
  at: string;
  target: 'onion' | 'exit';
  reason: string;
  /** How long the request ran before it failed, ms. */
  ms: number;
}

/** How many failures the printed row lists one by one. */
export const LISTED_FAILURES = 8;

/** Failures counted by reason and target, commonest first (ties by name): `{ "onion socks_f3_onion_rend_failed": 10 }`. */
export function failuresByReason(failures: readonly SoakFailure[]): Record<string, number> {
  const counts = new Map<string, number>();
  for (const f of failures) {
    const k = `${f.target} ${f.reason}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

/**
 * The row's failure columns: `byReason` as "onion socks_f3_onion_rend_failed x10, exit connect_timeout x6"
 * ("none" without failures) and `times` as the first LISTED_FAILURES in start order,
 * "12.3 s onion socks_f3_onion_rend_failed (2104 ms)", with "+N more" after them.
 */
export function summariseFailures(failures: readonly SoakFailure[]): { byReason: string; times: string } {
  if (failures.length === 0) return { byReason: 'none', times: 'none' };
  const byReason = Object.entries(failuresByReason(failures))
    .map(([k, n]) => `${k} x${n}`)
    .join(', ');
  const sorted = [...failures].sort((a, b) => a.t - b.t);
  const listed = sorted
    .slice(0, LISTED_FAILURES)
    .map((f) => `${f.t.toFixed(1)} s ${f.target} ${f.reason} (${Math.round(f.ms)} ms)`);
  const more = sorted.length - LISTED_FAILURES;
  return { byReason, times: listed.join('; ') + (more > 0 ? `; +${more} more` : '') };
}
