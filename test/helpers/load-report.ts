// The top-level fields of a `shallot load` results.json every run writes
// (services/loadgen/result.ts LoadResult), checked the same way by the
// unit, integration and end-to-end tests.
import { expect } from 'vitest';

export const RESULT_JSON_FIELDS = [
  'config',
  'started',
  'finished',
  'counts',
  'successRatio',
  'latency',
  'failuresByReason',
  'rendezvousSpread',
  'introSpread',
  'timeline',
] as const;

/** Every field of RESULT_JSON_FIELDS and `extra` is in `json`. */
export function expectResultFields(json: unknown, extra: readonly string[] = []): void {
  for (const k of [...RESULT_JSON_FIELDS, ...extra]) expect(json).toHaveProperty(k);
}
