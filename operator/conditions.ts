/**
 * Status conditions (metav1.Condition) — Ready, Progressing, Degraded —
 * written with the generation they describe. `lastTransitionTime` changes
 * only when a condition's status does, as Kubernetes conventions require.
 */
import type { Condition, ConditionType } from './api/schema.js';

export interface ConditionInput {
  type: ConditionType;
  status: boolean | 'Unknown';
  reason: string;
  message: string;
}

export function setConditions(
  existing: Condition[] | undefined,
  updates: ConditionInput[],
  generation: number,
  now: Date,
): Condition[] {
  const out = (existing ?? []).filter((c) => !updates.some((u) => u.type === c.type));
  for (const u of updates) {
    const status = u.status === 'Unknown' ? 'Unknown' : u.status ? 'True' : 'False';
    const prev = existing?.find((c) => c.type === u.type);
    out.push({
      type: u.type,
      status,
      reason: u.reason,
      message: u.message.slice(0, 32_000),
      lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : rfc3339(now),
      observedGeneration: generation,
    });
  }
  const order = ['Ready', 'Progressing', 'Degraded'];
  return out.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
}

export function findCondition(conds: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conds?.find((c) => c.type === type);
}

/** RFC 3339 to the second, as metav1.Time serializes. */
export function rfc3339(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}
