/**
 * OnionNetwork reconcile: re-read the resource and its children, converge
 * keys, ConfigMap, Services and StatefulSets, retire surplus relays, write
 * status. Idempotent: a second run with nothing changed writes nothing.
 *
 * Overview of one pass, one named step each:
 *   1. spec with schema defaults; a spec the schema could not catch is
 *      marked Degraded (InvalidSpec) and nothing else happens
 *      (validateNetwork, markInvalidSpec);
 *   2. authority keys (Secret <net>-auth-keys): generate, rotate on
 *      schedule or on the rotate-authority-keys-now annotation, prune
 *      (convergeAuthorityKeys);
 *   3. relay count (spec, or autoscaleRelays), relay key Secrets (one per
 *      relay, pooled or not): generate, rotate on schedule or on the
 *      rotate-now annotation (convergeRelayKeys); the fault token Secret
 *      <net>-fault-token if absent (ensureFaultToken, for NetworkFault);
 *   4. ConfigMap, Services, StatefulSets (one per relay, or per pool of
 *      relaysPerPod relays): server-side apply of differences
 *      (applyNetworkObjects);
 *   5. relays beyond the count, from the last pool: delete StatefulSets no
 *      longer wanted, and once no pod runs a surplus relay, its key Secret
 *      (retireSurplusRelays);
 *   6. status (Ready/Progressing/Degraded, observedGeneration) and metrics
 *      (writeNetworkStatus).
 */

import { locationOf, NetworkModelError, parseNetworkModel } from '../../services/core/network-model.js';
import { API_VERSION } from '../api/crds.js';
import { type OnionNetwork, onionNetworkSpecSchema } from '../api/onion-network.js';
import { applyDefaults } from '../api/schema.js';
import { OR_PORT } from '../desired/common.js';
import { authorityListOf, desiredNetworkObjects, type NetworkInputs } from '../desired/network.js';
import { authorityName, relayNickname } from '../desired/network-layout.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { soonest } from './context.js';
import { ensureFaultToken } from './fault-table.js';
import { autoscaleRelays } from './network-autoscale.js';
import { convergeAuthorityKeys, convergeRelayKeys } from './network-keys.js';
import { KIND, type NetworkPass } from './network-pass.js';
import { relayIndex, retireSurplusRelays } from './network-retire.js';
import { markInvalidSpec, writeNetworkStatus } from './network-status.js';
import { ensure } from './util.js';

/** Problems the schema cannot express (or that a cluster without CEL would let through). */
export function validateNetwork(net: OnionNetwork): string[] {
  const p: string[] = [];
  if (net.metadata.name.length > 40) p.push('metadata.name must be at most 40 characters');
  const a = net.spec.relays.autoscale;
  if (a && a.min > a.max) p.push('spec.relays.autoscale: min must be <= max');
  if (net.spec.authorities.replicas < 1) p.push('spec.authorities.replicas must be >= 1');
  const k = net.spec.relays.relaysPerPod ?? 1;
  const m = net.spec.metrics;
  if (k > 1 && m.enabled && m.port >= OR_PORT && m.port < OR_PORT + k) {
    p.push(`spec.metrics.port must not be one of the relay pool's ORPorts ${OR_PORT}-${OR_PORT + k - 1}`);
  }
  const model = networkModelProblem(net);
  if (model) p.push(model);
  return p;
}

/**
 * What the relays would refuse at start, said once in the status instead of
 * by every pod in a crash loop: the model as core/network-model.ts parses
 * it (an unknown location, a pair with no latency, an unknown field), and a
 * relay (up to the autoscaler's maximum) the model places nowhere.
 */
function networkModelProblem(net: OnionNetwork): string | null {
  const spec = net.spec.networkModel;
  if (!spec) return null;
  try {
    const model = parseNetworkModel(spec);
    const n = Math.max(net.spec.relays.replicas, net.spec.relays.autoscale?.max ?? 0);
    for (let i = 0; i < n; i++) locationOf(model, relayNickname(net.metadata.name, i));
    return null;
  } catch (e) {
    if (e instanceof NetworkModelError)
      return `spec.networkModel: ${e.message.replace(/^network model: /, '')}`;
    throw e;
  }
}

export function withDefaults(raw: OnionNetwork): OnionNetwork {
  return { ...raw, spec: applyDefaults(onionNetworkSpecSchema, raw.spec ?? {}) as OnionNetwork['spec'] };
}

export async function reconcileNetwork(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const raw = await ctx.kube.get<OnionNetwork & KubeObject>({
    apiVersion: API_VERSION,
    kind: KIND,
    namespace,
    name,
  });
  if (!raw || raw.metadata.deletionTimestamp) {
    forgetNetwork(ctx, namespace, name);
    return {};
  }
  const pass: NetworkPass = {
    ctx,
    raw,
    net: withDefaults(raw),
    namespace,
    name,
    now: ctx.now(),
    status: structuredClone(raw.status ?? {}),
    changes: [],
    nextKeyEvent: null,
  };

  const problems = validateNetwork(pass.net);
  if (problems.length > 0) {
    await markInvalidSpec(pass, problems);
    return {};
  }
  const spec = pass.net.spec;
  const authorityIds = await convergeAuthorityKeys(pass);
  const relays = spec.relays.autoscale
    ? await autoscaleRelays(ctx, pass.net, pass.status, pass.now)
    : spec.relays.replicas;
  const relayIdentities = await convergeRelayKeys(pass, relays);
  // Before the relay pods: they mount it (optional), for NetworkFault pause, cut and slow.
  if (await ensureFaultToken(ctx, pass.net)) pass.changes.push('fault token created');
  const inputs: NetworkInputs = { net: pass.net, images: ctx.images, authorityIds, relays, relayIdentities };
  const { authSts, relaySts } = await applyNetworkObjects(pass, inputs);
  const wantedSts = new Set([authorityName(name), ...[...relaySts.values()].map((o) => o.metadata.name)]);
  const retiring = await retireSurplusRelays(pass, relays, wantedSts);
  const allReady = await writeNetworkStatus(pass, {
    relays,
    authorityList: authorityListOf(inputs),
    authSts,
    relaySts,
    retiring,
  });

  const wait = retiring.size > 0 ? 5_000 : !allReady ? 30_000 : undefined;
  return {
    requeueAfterMs: soonest(
      pass.nextKeyEvent === null ? null : pass.nextKeyEvent - pass.now + 1000,
      wait,
      spec.relays.autoscale ? 30_000 : undefined,
    ),
  };
}

/** The resource is gone: children go with it (ownerReferences); only our own gauges need clearing. */
function forgetNetwork(ctx: ReconcileContext, namespace: string, name: string): void {
  for (const state of ['desired', 'ready', 'retiring', 'exits']) {
    ctx.metrics.relays.remove({ namespace, network: name, state });
  }
}

/** Step 4: apply what differs; returns the StatefulSets as the apiserver has them (for readiness). */
async function applyNetworkObjects(
  pass: NetworkPass,
  inputs: NetworkInputs,
): Promise<{ authSts: KubeObject | null; relaySts: Map<number, KubeObject> }> {
  const { ctx, raw, name } = pass;
  let authSts: KubeObject | null = null;
  const relaySts = new Map<number, KubeObject>();
  for (const want of desiredNetworkObjects(inputs)) {
    const r = await ensure(ctx.kube, want);
    if (r.action !== 'unchanged') pass.changes.push(`${want.kind} ${want.metadata.name} ${r.action}`);
    if (r.action === 'created') {
      await ctx.recorder.event(raw, 'Normal', 'Created', `created ${want.kind} ${want.metadata.name}`);
    }
    if (want.kind === 'StatefulSet') {
      if (want.metadata.name === authorityName(name)) authSts = r.object;
      else relaySts.set(relayIndex(want)!, r.object);
    }
  }
  return { authSts, relaySts };
}
