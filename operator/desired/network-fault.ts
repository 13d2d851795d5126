/**
 * What a NetworkFault wants at a given moment (pure; the reconcile in
 * operator/reconcile/network-fault.ts does the I/O): which pods are its
 * node, and whether the fault starts, holds (delete the pod again if it
 * came back), or heals now.
 *
 * Guarantees: a fault starts once (startedAt is kept), holds until
 * startedAt + durationSeconds, and then heals once; a restart deletes
 * once and heals in the same pass. Deleting a pod already terminating is
 * not asked again (its deletionTimestamp is set).
 */
import type { NetworkFault, NetworkFaultStatus } from '../api/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import { LABEL_NETWORK, LABEL_ONION_SERVICE, LABEL_RELAY_INDEX } from './common.js';
import { authorityPodName } from './network.js';

/** How to find the target's pods: by name, or by label selector (then `instance` picks one by name order). */
export type PodQuery = { name: string } | { selector: string; instance: number };

export function faultPodQuery(f: NetworkFault): PodQuery {
  const t = f.spec.target;
  const net = f.spec.network;
  if (t.authority !== undefined) return { name: authorityPodName(net, t.authority) };
  if (t.relay !== undefined)
    return {
      selector: `${LABEL_NETWORK}=${net},app.kubernetes.io/component=relay,${LABEL_RELAY_INDEX}=${t.relay}`,
      instance: 0,
    };
  return { selector: `${LABEL_ONION_SERVICE}=${t.onionService}`, instance: t.instance ?? 0 };
}

/** The pod a selector query means among `pods`: the instance-th by name. */
export function pickPod(pods: readonly KubeObject[], instance: number): KubeObject | null {
  const sorted = [...pods].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return sorted[instance] ?? null;
}

/** A human label of the target, for metrics and Events: `relay-3`, `auth-0`, `onion-web-1`. */
export function faultTargetLabel(f: NetworkFault): string {
  const t = f.spec.target;
  if (t.authority !== undefined) return `auth-${t.authority}`;
  if (t.relay !== undefined) return `relay-${t.relay}`;
  return `onion-${t.onionService}-${t.instance ?? 0}`;
}

export type FaultStep =
  /** Start now: record startedAt, delete the pod. */
  | { action: 'start' }
  /** In force: delete the pod again if it is back; look again in `recheckMs`. */
  | { action: 'hold'; recheckMs: number }
  /** Over: record healedAt, leave the pod to come back. */
  | { action: 'heal' }
  | { action: 'none' };

/** Re-check a held fault this often: a recreated pod is deleted again within about a second. */
export const HOLD_RECHECK_MS = 1000;

export function faultStep(f: NetworkFault, status: NetworkFaultStatus, nowMs: number): FaultStep {
  if (status.phase === 'Healed') return { action: 'none' };
  if (!status.startedAt) return { action: 'start' };
  if (f.spec.kind === 'restart') return { action: 'heal' };
  const end = Date.parse(status.startedAt) + f.spec.durationSeconds * 1000;
  if (nowMs >= end) return { action: 'heal' };
  return { action: 'hold', recheckMs: Math.min(HOLD_RECHECK_MS, end - nowMs) };
}
