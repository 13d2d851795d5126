/**
 * OnionNetwork reconcile, status steps: a spec the schema could not catch
 * (Degraded/InvalidSpec, nothing else done), and step 6, the status of a
 * pass that applied the spec (Ready/Progressing/Degraded, observedGeneration,
 * counts) with the relay gauges. Status is patched only when it differs.
 *
 * Readiness comes from what exists: StatefulSet status.readyReplicas. With
 * no controller-manager (the test apiserver) that stays 0, so the network
 * is Progressing/not Ready there — by design, not an error.
 */
import { API_VERSION } from '../api/crds.js';
import type { OnionNetworkStatus } from '../api/onion-network.js';
import { type ConditionInput, findCondition, setConditions } from '../conditions.js';
import { exitCount } from '../desired/network-layout.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext } from './context.js';
import { KIND, type NetworkPass } from './network-pass.js';
import { relaysIn } from './network-retire.js';
import { deepEqual } from './util.js';

/** Step 1 when validation fails: Degraded, an event on the first time, nothing applied. */
export async function markInvalidSpec(pass: NetworkPass, problems: string[]): Promise<void> {
  const { ctx, raw, status, now } = pass;
  const generation = raw.metadata.generation ?? 0;
  const wasDegraded = findCondition(raw.status?.conditions, 'Degraded')?.reason === 'InvalidSpec';
  status.observedGeneration = generation;
  status.conditions = setConditions(
    status.conditions,
    [
      { type: 'Ready', status: false, reason: 'InvalidSpec', message: problems.join('; ') },
      { type: 'Progressing', status: false, reason: 'InvalidSpec', message: 'waiting for a valid spec' },
      { type: 'Degraded', status: true, reason: 'InvalidSpec', message: problems.join('; ') },
    ],
    generation,
    new Date(now),
  );
  await writeStatus(ctx, raw, status);
  if (!wasDegraded) await ctx.recorder.event(raw, 'Warning', 'InvalidSpec', problems.join('; '));
}

export interface Observed {
  relays: number;
  authorityList: string;
  authSts: KubeObject | null;
  /** Relay StatefulSets applied this pass, by (first) relay index; a pool counts its relays. */
  relaySts: Map<number, KubeObject>;
  retiring: Set<number>;
}

/** Step 6: gauges, the Scaled event, status. Returns whether everything is ready. */
export async function writeNetworkStatus(pass: NetworkPass, o: Observed): Promise<boolean> {
  const { ctx, raw, net, namespace, name, status, changes, now } = pass;
  const spec = net.spec;
  const { relays, retiring } = o;
  const generation = raw.metadata.generation ?? 0;
  const authReady = Number(o.authSts?.status?.readyReplicas ?? 0);
  let relaysReady = 0;
  for (const [i, s] of o.relaySts) {
    if (i < relays) relaysReady += Number(s.status?.readyReplicas ?? 0) * relaysIn(s);
  }
  const exits = exitCount(relays, spec.relays.exitFraction);
  const { metrics } = ctx;
  metrics.relays.labels({ namespace, network: name, state: 'desired' }).set(relays);
  metrics.relays.labels({ namespace, network: name, state: 'ready' }).set(relaysReady);
  metrics.relays.labels({ namespace, network: name, state: 'retiring' }).set(retiring.size);
  metrics.relays.labels({ namespace, network: name, state: 'exits' }).set(exits);

  const prevDesired = raw.status?.relays?.desired;
  if (prevDesired !== undefined && prevDesired !== relays) {
    await ctx.recorder.event(raw, 'Normal', 'Scaled', `relays ${prevDesired} -> ${relays}`);
  }
  status.observedGeneration = generation;
  status.authorities = { desired: spec.authorities.replicas, ready: authReady };
  status.relays = { desired: relays, ready: relaysReady, exits, retiring: retiring.size };
  status.authorityList = o.authorityList;
  const allReady = authReady >= spec.authorities.replicas && relaysReady >= relays && retiring.size === 0;
  const progressing = changes.length > 0 || !allReady;
  const conds: ConditionInput[] = [
    allReady
      ? {
          type: 'Ready',
          status: true,
          reason: 'AllReady',
          message: `${authReady} authorities, ${relaysReady} relays ready`,
        }
      : {
          type: 'Ready',
          status: false,
          reason: 'WaitingForPods',
          message: `${authReady}/${spec.authorities.replicas} authorities, ${relaysReady}/${relays} relays ready${retiring.size ? `, ${retiring.size} retiring` : ''}`,
        },
    progressing
      ? {
          type: 'Progressing',
          status: true,
          reason: changes.length ? 'Converging' : retiring.size ? 'RetiringRelays' : 'WaitingForPods',
          message: changes.length ? changes.slice(0, 10).join('; ') : 'waiting for pods to become ready',
        }
      : { type: 'Progressing', status: false, reason: 'Stable', message: 'nothing to change' },
    { type: 'Degraded', status: false, reason: 'AsExpected', message: 'spec is valid and applied' },
  ];
  status.conditions = setConditions(status.conditions, conds, generation, new Date(now));
  await writeStatus(ctx, raw, status);
  return allReady;
}

async function writeStatus(
  ctx: ReconcileContext,
  raw: KubeObject,
  status: OnionNetworkStatus,
): Promise<void> {
  if (deepEqual(status, raw.status ?? {})) return;
  await ctx.kube.patchStatus(
    { apiVersion: API_VERSION, kind: KIND, namespace: raw.metadata.namespace, name: raw.metadata.name },
    status,
  );
}
