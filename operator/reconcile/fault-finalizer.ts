/**
 * The finalizer of a link-table NetworkFault (pause, cut, slow; issue 18):
 * without it, a NetworkFault deleted while the operator is not running
 * vanishes before anyone sends its network's pods the table without it, and
 * they keep the fault until they restart. With it, Kubernetes only marks
 * the object deleted (metadata.deletionTimestamp) and keeps it until the
 * operator has sent every table pod of the network the table without that
 * fault, then removes the finalizer and the apiserver deletes the object
 * (Kubernetes "Finalizers": the object stays while metadata.finalizers is
 * non-empty; the controller that added one removes it once its cleanup is
 * done).
 *
 * Guarantees: the finalizer goes on before the fault's first table is sent
 * (a deletion right after is still cleaned up) and comes off when the fault
 * heals (a healed fault deletes at once). Deletion never blocks for long:
 * with no OnionNetwork left there is nothing to heal and the finalizer comes
 * off at once; pods that do not take the table (gone, hung, no token) get
 * MAX_DELETE_SENDS tries DELETE_RETRY_MS apart, then the finalizer comes off
 * anyway with a Warning Event FaultHealIncomplete (such a pod keeps the fault
 * until the next table for its network or its restart).
 *
 * Pod faults (stop, kill, restart) take no finalizer: nothing of theirs
 * outlives them, the pod's controller brings the pod back by itself.
 *
 * Not in this module: sending the table (fault-table.ts), the fault's
 * lifecycle (network-fault.ts).
 */
import type { NetworkFault } from '../api/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { sendFaultTable } from './fault-table.js';

export const FAULT_FINALIZER = 'shallot.dev/link-fault-table';

/** Tables sent for a deleted fault before its finalizer comes off anyway. */
export const MAX_DELETE_SENDS = 5;
/** Between two of them (as a healing fault's re-sends, network-fault.ts). */
export const DELETE_RETRY_MS = 2000;

/** Sends so far by object uid (in memory: an operator restart starts the count again, still bounded). */
const deleteSends = new Map<string, number>();

export const hasFaultFinalizer = (o: KubeObject): boolean =>
  (o.metadata.finalizers ?? []).includes(FAULT_FINALIZER);

/**
 * Adds or removes the finalizer on `o` (as last read): a PUT of the object
 * as stored now (this pass's status writes moved its resourceVersion), so
 * a conflict means someone else wrote since; it fails the pass, which retries.
 */
export async function setFaultFinalizer(ctx: ReconcileContext, o: KubeObject, on: boolean): Promise<void> {
  if (hasFaultFinalizer(o) === on) return;
  const now = await ctx.kube.get({
    apiVersion: o.apiVersion,
    kind: o.kind,
    namespace: o.metadata.namespace,
    name: o.metadata.name,
  });
  if (!now) return;
  const rest = (now.metadata.finalizers ?? []).filter((f) => f !== FAULT_FINALIZER);
  o.metadata.finalizers = on ? [...rest, FAULT_FINALIZER] : rest;
  if (hasFaultFinalizer(now) !== on)
    await ctx.kube.update({ ...now, metadata: { ...now.metadata, finalizers: o.metadata.finalizers } });
}

/** A deleted fault holding the finalizer: send the table without it, then let it go. */
export async function finishFaultDeletion(
  ctx: ReconcileContext,
  raw: NetworkFault & KubeObject,
): Promise<ReconcileResult> {
  const { namespace = '', name, uid = `${namespace}/${name}` } = raw.metadata;
  const net = raw.spec?.network ?? '';
  const release = async (type: 'Normal' | 'Warning', reason: string, message: string) => {
    deleteSends.delete(uid);
    await setFaultFinalizer(ctx, raw, false);
    await ctx.recorder.event(raw, type, reason, message);
    return {};
  };
  const send = await sendFaultTable(ctx, namespace, net, { without: name });
  if (send.networkGone)
    return release('Normal', 'FaultDeleted', `OnionNetwork ${net} is gone: nothing to heal`);
  const tries = (deleteSends.get(uid) ?? 0) + 1;
  deleteSends.set(uid, tries);
  const taken = `table without it taken by ${send.updated} of ${send.tried} pod(s)`;
  if (!send.problem && send.updated === send.tried)
    return release('Normal', 'FaultDeleted', `deleted: ${taken}`);
  if (tries < MAX_DELETE_SENDS) return { requeueAfterMs: DELETE_RETRY_MS };
  return release(
    'Warning',
    'FaultHealIncomplete',
    `deleted after ${tries} sends: ${send.problem ?? taken}; a pod that missed it keeps the fault until the next table or its restart`,
  );
}
