/**
 * NetworkFault reconcile (issue 18): start the fault (delete the target's
 * pod, Event FaultStarted), hold it (delete the pod again whenever its
 * StatefulSet or Deployment brings it back, re-checking every second) and
 * heal it when durationSeconds are over (Event FaultHealed), recording
 * phase, startedAt, healedAt and podsDeleted in status and the fault in
 * `shallot_fault_active{kind,target}`. A NetworkFault deleted while active
 * heals at once: nothing deletes the pod any more and the series drops to 0.
 *
 * Not in this module: which pod and which step (desired/network-fault.ts).
 */
import { API_VERSION } from '../api/crds.js';
import { type NetworkFault, type NetworkFaultStatus, networkFaultSpecSchema } from '../api/network-fault.js';
import { applyDefaults } from '../api/schema.js';
import { rfc3339 } from '../conditions.js';
import { faultPodQuery, faultStep, faultTargetLabel, pickPod } from '../desired/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { deepEqual } from './util.js';

const KIND = 'NetworkFault';

/** Series set to 1 by this operator, by object key, so a deleted NetworkFault's series goes back to 0. */
const activeSeries = new Map<string, { kind: string; target: string }>();

async function targetPod(ctx: ReconcileContext, f: NetworkFault, ns: string): Promise<KubeObject | null> {
  const q = faultPodQuery(f);
  if ('name' in q) return ctx.kube.get({ apiVersion: 'v1', kind: 'Pod', namespace: ns, name: q.name });
  const pods = await ctx.kube.list('v1', 'Pod', ns, q.selector);
  return pickPod(pods.items, q.instance);
}

export async function reconcileNetworkFault(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const key = `${namespace}/${name}`;
  const raw = await ctx.kube.get<NetworkFault & KubeObject>({
    apiVersion: API_VERSION,
    kind: KIND,
    namespace,
    name,
  });
  if (!raw || raw.metadata.deletionTimestamp) {
    const s = activeSeries.get(key);
    if (s) ctx.faultMetrics?.active.set(s, 0);
    activeSeries.delete(key);
    return {};
  }
  const f: NetworkFault = {
    ...raw,
    spec: applyDefaults(networkFaultSpecSchema, raw.spec ?? {}) as NetworkFault['spec'],
  };
  const now = ctx.now();
  const status: NetworkFaultStatus = structuredClone(raw.status ?? {});
  const labels = { kind: f.spec.kind, target: faultTargetLabel(f) };
  const save = async () => {
    status.observedGeneration = raw.metadata.generation ?? 0;
    if (!deepEqual(status, raw.status ?? {}))
      await ctx.kube.patchStatus({ apiVersion: API_VERSION, kind: KIND, namespace, name }, status);
  };
  const network = await ctx.kube.get({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    namespace,
    name: f.spec.network,
  });
  if (!network && !status.startedAt) {
    status.phase = 'Pending';
    status.message = `OnionNetwork ${f.spec.network} not found`;
    await save();
    return { requeueAfterMs: 10_000 };
  }
  // A kill skips the node's shutdown, as SIGKILL does locally; stop and restart let it run.
  const deletePod = async (): Promise<void> => {
    const pod = await targetPod(ctx, f, namespace);
    if (!pod || pod.metadata.deletionTimestamp) return;
    const ref = { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.metadata.name };
    if (await ctx.kube.delete(ref, 'Background', f.spec.kind === 'kill' ? 0 : undefined))
      status.podsDeleted = (status.podsDeleted ?? 0) + 1;
  };
  const step = faultStep(f, status, now);
  switch (step.action) {
    case 'none':
      return {};
    case 'start': {
      status.phase = 'Active';
      status.startedAt = rfc3339(new Date(now));
      status.podsDeleted = 0;
      await deletePod();
      status.message = `${f.spec.kind} ${labels.target}: ${status.podsDeleted} pod(s) deleted`;
      // Recorded before the Event: a failed status write retries without a second start.
      await save();
      ctx.faultMetrics?.started.inc({ kind: f.spec.kind });
      ctx.faultMetrics?.active.set(labels, 1);
      activeSeries.set(key, labels);
      await ctx.recorder.event(
        raw,
        'Normal',
        'FaultStarted',
        f.spec.kind === 'restart'
          ? `restart ${labels.target}`
          : `${f.spec.kind} ${labels.target} for ${f.spec.durationSeconds}s`,
      );
      return { requeueAfterMs: f.spec.kind === 'restart' ? 0 : 1000 };
    }
    case 'hold':
      await deletePod();
      ctx.faultMetrics?.active.set(labels, 1);
      activeSeries.set(key, labels);
      await save();
      return { requeueAfterMs: step.recheckMs };
    case 'heal':
      status.phase = 'Healed';
      status.healedAt = rfc3339(new Date(now));
      status.message = `${f.spec.kind} ${labels.target} healed after ${status.podsDeleted ?? 0} pod deletion(s)`;
      await save();
      ctx.faultMetrics?.active.set(labels, 0);
      activeSeries.delete(key);
      await ctx.recorder.event(raw, 'Normal', 'FaultHealed', status.message);
      return {};
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}
