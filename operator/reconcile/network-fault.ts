/**
 * NetworkFault reconcile (issue 18): start the fault (delete the target's
 * pod, Event FaultStarted), hold it (delete the pod again whenever its
 * StatefulSet or Deployment brings it back, re-checking every second) and
 * heal it when durationSeconds are over (Event FaultHealed), recording
 * phase, startedAt, healedAt and podsDeleted in status and the fault in
 * `shallot_fault_active{kind,target}`. A NetworkFault deleted while active
 * heals at once: nothing deletes the pod any more and the series drops to 0.
 *
 * Pause, cut and slow (link-table kinds) delete no pod: starting, holding
 * and healing each send the network's whole link-fault table to every relay
 * and onion-service pod (fault-table.ts), holding every TABLE_RESEND_MS so
 * a restarted one gets it back; status.podsUpdated says how many pods took
 * the last send. A paused onion-service instance is named by its pod, found
 * at start (status.node; Pending until it has one). A link-table fault in
 * force holds a finalizer (fault-finalizer.ts), so a deleted one, even
 * while the operator was down, sends the table without it before it goes;
 * one that lost its finalizer (healed) needs no sending.
 *
 * Not in this module: which pod and which step (desired/network-fault.ts).
 */
import { API_VERSION } from '../api/crds.js';
import {
  isLinkTableKind,
  type NetworkFault,
  type NetworkFaultStatus,
  networkFaultSpecSchema,
} from '../api/network-fault.js';
import { applyDefaults } from '../api/schema.js';
import { rfc3339 } from '../conditions.js';
import { faultPodQuery, faultStep, faultTargetLabel, pickPod } from '../desired/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { finishFaultDeletion, hasFaultFinalizer, setFaultFinalizer } from './fault-finalizer.js';
import { sendFaultTable, type TableSend } from './fault-table.js';
import { deepEqual } from './util.js';

const KIND = 'NetworkFault';

/** How long past its end a link-table fault keeps re-sending its healing table to relays that missed it. */
const HEAL_RETRY_MS = 30_000;

/**
 * Series set to 1 by this operator, by object key, so a deleted NetworkFault's
 * series goes back to 0, with the network of a link-table fault (to send its
 * table again without it).
 */
const activeSeries = new Map<string, { labels: { kind: string; target: string }; tableOf?: string }>();

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
    if (s) ctx.faultMetrics?.active.set(s.labels, 0);
    activeSeries.delete(key);
    // Ours to clean up (fault-finalizer.ts): the table without it reaches every pod first.
    if (raw && hasFaultFinalizer(raw)) return finishFaultDeletion(ctx, raw);
    if (s?.tableOf) await sendFaultTable(ctx, namespace, s.tableOf, { without: name });
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
  const table = isLinkTableKind(f.spec.kind);
  const track = () => activeSeries.set(key, { labels, ...(table ? { tableOf: f.spec.network } : {}) });
  // The whole table with this fault as it now stands, to every relay pod.
  let lastSend: TableSend = { updated: 0, tried: 0 };
  const sendTable = async (): Promise<string> => {
    lastSend = await sendFaultTable(ctx, namespace, f.spec.network, { override: { ...f, status } });
    status.podsUpdated = lastSend.updated;
    return lastSend.problem ?? `table taken by ${lastSend.updated} of ${lastSend.tried} pod(s)`;
  };
  const step = faultStep(f, status, now);
  // A link-table fault in force holds the finalizer (taken before its first table goes out).
  if (table && (step.action === 'start' || step.action === 'hold')) await setFaultFinalizer(ctx, raw, true);
  switch (step.action) {
    case 'none':
      // Healed (or never started): nothing left for a deletion to undo.
      await setFaultFinalizer(ctx, raw, false);
      return {};
    case 'start': {
      if (table && f.spec.target.onionService !== undefined) {
        // Its links carry its pod's name (services/onion-service/main.ts): find the pod before starting.
        const pod = await targetPod(ctx, f, namespace);
        if (!pod) {
          status.phase = 'Pending';
          status.message = `no pod for ${labels.target} yet`;
          await save();
          return { requeueAfterMs: 5000 };
        }
        status.node = pod.metadata.name;
      }
      status.phase = 'Active';
      status.startedAt = rfc3339(new Date(now));
      if (table) status.message = `${f.spec.kind} ${labels.target}: ${await sendTable()}`;
      else {
        status.podsDeleted = 0;
        await deletePod();
        status.message = `${f.spec.kind} ${labels.target}: ${status.podsDeleted} pod(s) deleted`;
      }
      // In force from here (the table or the deletion went out): the gauge says so before the
      // status does, so whoever reads Active finds it set.
      ctx.faultMetrics?.active.set(labels, 1);
      track();
      // Counted after the status write, before the Event: a failed write retries without a second start.
      await save();
      ctx.faultMetrics?.started.inc({ kind: f.spec.kind });
      await ctx.recorder.event(
        raw,
        'Normal',
        'FaultStarted',
        f.spec.kind === 'restart'
          ? `restart ${labels.target}`
          : `${f.spec.kind} ${labels.target}${f.spec.delayMs ? ` +${f.spec.delayMs}ms` : ''} for ${f.spec.durationSeconds}s`,
      );
      return { requeueAfterMs: f.spec.kind === 'restart' ? 0 : 1000 };
    }
    case 'hold':
      if (table) status.message = `${f.spec.kind} ${labels.target}: ${await sendTable()}`;
      else await deletePod();
      ctx.faultMetrics?.active.set(labels, 1);
      track();
      await save();
      return { requeueAfterMs: step.recheckMs };
    case 'heal':
      if (table) {
        // A relay that missed the healing table would keep the fault: try again for a while.
        const msg = await sendTable();
        const end = Date.parse(status.startedAt ?? '') + f.spec.durationSeconds * 1000;
        if (lastSend.updated < lastSend.tried && now < end + HEAL_RETRY_MS) {
          status.message = `${f.spec.kind} ${labels.target} healing: ${msg}; sending again`;
          await save();
          return { requeueAfterMs: 2000 };
        }
      }
      status.phase = 'Healed';
      status.healedAt = rfc3339(new Date(now));
      status.message = table
        ? `${f.spec.kind} ${labels.target} healed: table taken by ${lastSend.updated} of ${lastSend.tried} pod(s)`
        : `${f.spec.kind} ${labels.target} healed after ${status.podsDeleted ?? 0} pod deletion(s)`;
      // Out of force already (the healing table went out): the gauge drops before the status says Healed.
      ctx.faultMetrics?.active.set(labels, 0);
      activeSeries.delete(key);
      await save();
      await setFaultFinalizer(ctx, raw, false);
      await ctx.recorder.event(raw, 'Normal', 'FaultHealed', status.message);
      return {};
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}
