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
 *
 * Pause, cut and slow are not pod deletions but rows of the network's
 * link-fault table (services/net/link-faults.ts LinkFaultTable, the shape
 * the relays' PUT /link-faults takes): `linkFaultTable` builds the whole
 * table from every NetworkFault of the network in force at `now`, naming
 * each node as its links announce it in x-shallot-node (linkNodeName). The table is built whole each
 * time, so sending it is idempotent and a healed fault is simply absent.
 */
import {
  type FaultTarget,
  isLinkTableKind,
  type NetworkFault,
  type NetworkFaultStatus,
} from '../api/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import { LABEL_NETWORK, LABEL_ONION_SERVICE, LABEL_RELAY_INDEX } from './common.js';
import { authorityPodName, relayNickname } from './network-layout.js';

/** How to find the target's pods: by name, or by label selector (then `instance` picks one by name order). */
export type PodQuery = { name: string } | { selector: string; instance: number };

export function faultPodQuery(f: NetworkFault): PodQuery {
  const t = f.spec.target;
  const net = f.spec.network;
  if (t.authority !== undefined) return { name: authorityPodName(net, t.authority) };
  if (t.relay !== undefined)
    return {
      selector: `${relayPodsSelector(net)},${LABEL_RELAY_INDEX}=${t.relay}`,
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
  const one = (t: NetworkFault['spec']['target']) => {
    if (t.authority !== undefined) return `auth-${t.authority}`;
    if (t.relay !== undefined) return `relay-${t.relay}`;
    return `onion-${t.onionService}-${t.instance ?? 0}`;
  };
  if (!f.spec.peer) return one(f.spec.target);
  // A link, as `shallot fault` labels one: its two ends in order, "a~b".
  const [a, b] = [one(f.spec.target), one(f.spec.peer)].sort();
  return `${a}~${b}`;
}

/** services/net/link-faults.ts LinkFaultTable, as JSON (the operator does not import net/). */
export interface LinkFaultTableJson {
  cuts: [string, string][];
  slows: { a: string; b: string; delayMs: number }[];
  paused: string[];
}

/** Whether a link-table fault is in force at `now`: started, not healed, not over, not being deleted. */
export function inForce(f: NetworkFault, now: number): boolean {
  const s = f.status ?? {};
  if (!isLinkTableKind(f.spec.kind) || f.metadata.deletionTimestamp) return false;
  if (s.phase !== 'Active' || !s.startedAt) return false;
  return now < Date.parse(s.startedAt) + f.spec.durationSeconds * 1000;
}

/**
 * The name a node's links carry (x-shallot-node), which the table names it
 * by: a relay its nickname (also inside a pool), an authority its pod's
 * name (SHALLOT_NAME, desired/network.ts), an onion-service instance the
 * pod found when the fault started (`instancePod`, status.node).
 */
export function linkNodeName(net: string, t: FaultTarget, instancePod?: string): string | undefined {
  if (t.relay !== undefined) return relayNickname(net, t.relay);
  if (t.authority !== undefined) return authorityPodName(net, t.authority);
  return instancePod;
}

/**
 * The link-fault table of network `net` at `now` from its NetworkFaults (any
 * others in `faults` are skipped). Two faults on one link: a cut wins over
 * a slow, and the larger delay wins between slows.
 */
export function linkFaultTable(
  net: string,
  faults: readonly NetworkFault[],
  now: number,
): LinkFaultTableJson {
  const cuts = new Map<string, [string, string]>();
  const slows = new Map<string, { a: string; b: string; delayMs: number }>();
  const paused = new Set<string>();
  for (const f of faults) {
    if (f.spec.network !== net || !inForce(f, now)) continue;
    const a = linkNodeName(net, f.spec.target, f.status?.node);
    if (a === undefined) continue;
    if (f.spec.kind === 'pause') {
      paused.add(a);
      continue;
    }
    // A link's ends: relays and authorities (an onion-service instance's only fault here is pause).
    if (f.spec.target.onionService !== undefined || !f.spec.peer) continue;
    const b = linkNodeName(net, f.spec.peer);
    if (b === undefined || b === a) continue;
    const ends: [string, string] = a <= b ? [a, b] : [b, a];
    const key = ends.join('~');
    if (f.spec.kind === 'cut') cuts.set(key, ends);
    else if (f.spec.kind === 'slow') {
      const delayMs = Math.max(slows.get(key)?.delayMs ?? 0, f.spec.delayMs ?? 0);
      slows.set(key, { a: ends[0], b: ends[1], delayMs });
    }
  }
  for (const k of cuts.keys()) slows.delete(k);
  return { cuts: [...cuts.values()], slows: [...slows.values()], paused: [...paused] };
}

/** Relay pods of a network (pool pods too). */
export const relayPodsSelector = (net: string): string =>
  `${LABEL_NETWORK}=${net},app.kubernetes.io/component=relay`;

/** Where the table goes: every relay, authority and onion-service pod of the network. */
export const tablePodSelectors = (net: string): string[] => [
  relayPodsSelector(net),
  `${LABEL_NETWORK}=${net},app.kubernetes.io/component=authority`,
  `${LABEL_NETWORK}=${net},app.kubernetes.io/component=onion-service`,
];

/** A pod's ops port: its container port named "metrics" (none: the pod serves no ops endpoint). */
export function opsPortOf(pod: KubeObject): number | null {
  const containers = (pod.spec as { containers?: { ports?: { name?: string; containerPort?: number }[] }[] })
    ?.containers;
  for (const c of containers ?? [])
    for (const p of c.ports ?? [])
      if (p.name === 'metrics' && typeof p.containerPort === 'number') return p.containerPort;
  return null;
}

/** A held link-table fault sends the table again this often, so a relay pod that restarted gets it back. */
export const TABLE_RESEND_MS = 5000;

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
  const every = isLinkTableKind(f.spec.kind) ? TABLE_RESEND_MS : HOLD_RECHECK_MS;
  return { action: 'hold', recheckMs: Math.min(every, end - nowMs) };
}
