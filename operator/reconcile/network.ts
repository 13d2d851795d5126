/**
 * OnionNetwork reconcile: re-read the resource and its children, converge
 * keys, ConfigMap, Services and StatefulSets, retire surplus relays, write
 * status. Idempotent: a second run with nothing changed writes nothing.
 *
 * Overview of one pass:
 *   1. spec with schema defaults; a spec the schema could not catch is
 *      marked Degraded (InvalidSpec) and nothing else happens;
 *   2. authority keys (Secret <net>-auth-keys): generate, rotate on
 *      schedule or on the rotate-authority-keys-now annotation, prune;
 *   3. relay count (spec, or the autoscaler), relay key Secrets: generate,
 *      rotate on schedule or on the rotate-now annotation, prune;
 *   4. ConfigMap, Services, StatefulSets (server-side apply of differences);
 *   5. relays beyond the count: delete the StatefulSet, and once no pod of
 *      it is left, its key Secret;
 *   6. status (Ready/Progressing/Degraded, observedGeneration) and metrics.
 *
 * Readiness comes from what exists: StatefulSet status.readyReplicas. With
 * no controller-manager (the test apiserver) that stays 0, so the network
 * is Progressing/not Ready there — by design, not an error.
 */

import { toHex } from '../../services/core/bytes.js';
import { API_VERSION } from '../api/crds.js';
import { type OnionNetwork, type OnionNetworkStatus, onionNetworkSpecSchema } from '../api/onion-network.js';
import { applyDefaults } from '../api/schema.js';
import { circuitsActiveFromMetrics, decideRelays } from '../autoscale.js';
import { type ConditionInput, findCondition, rfc3339, setConditions } from '../conditions.js';
import {
  ANN_IDENTITY,
  ANN_ROTATE_AUTHORITY_NOW,
  ANN_ROTATE_HANDLED,
  ANN_ROTATE_NOW,
  b64,
  LABEL_NETWORK,
  LABEL_RELAY_INDEX,
  ownerRef,
  unb64,
} from '../desired/common.js';
import {
  authorityKeyFile,
  authorityListOf,
  authorityName,
  authorityPreviousKeyFile,
  authoritySecretName,
  desiredNetworkObjects,
  exitCount,
  type NetworkInputs,
  networkLabels,
  RELAY_KEY_FILE,
  relaySecretName,
} from '../desired/network.js';
import { encodeKeys, planAuthorityKeys, planRelayKeys, readNodeKeys } from '../keys.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { soonest } from './context.js';
import { deepEqual, ensure } from './util.js';

const KIND = 'OnionNetwork';
const MIN = 60_000;

/** Problems the schema cannot express (or that a cluster without CEL would let through). */
export function validateNetwork(net: OnionNetwork): string[] {
  const p: string[] = [];
  if (net.metadata.name.length > 40) p.push('metadata.name must be at most 40 characters');
  const a = net.spec.relays.autoscale;
  if (a && a.min > a.max) p.push('spec.relays.autoscale: min must be <= max');
  if (net.spec.authorities.replicas < 1) p.push('spec.authorities.replicas must be >= 1');
  return p;
}

export function withDefaults(raw: OnionNetwork): OnionNetwork {
  return { ...raw, spec: applyDefaults(onionNetworkSpecSchema, raw.spec ?? {}) as OnionNetwork['spec'] };
}

function relayIndex(o: KubeObject): number | null {
  const v = o.metadata.labels?.[LABEL_RELAY_INDEX];
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

export async function reconcileNetwork(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const { kube } = ctx;
  const raw = await kube.get<OnionNetwork & KubeObject>({
    apiVersion: API_VERSION,
    kind: KIND,
    namespace,
    name,
  });
  if (!raw || raw.metadata.deletionTimestamp) {
    // Children go with it (ownerReferences); only our own gauges need clearing.
    for (const state of ['desired', 'ready', 'retiring', 'exits']) {
      ctx.metrics.relays.remove({ namespace, network: name, state });
    }
    return {};
  }
  const net = withDefaults(raw);
  const generation = raw.metadata.generation ?? 0;
  const now = ctx.now();
  const status: OnionNetworkStatus = structuredClone(raw.status ?? {});

  const problems = validateNetwork(net);
  if (problems.length > 0) {
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
    return {};
  }

  const spec = net.spec;
  const graceMs = spec.keyRotation.gracePeriodMinutes * MIN;
  const changes: string[] = [];
  let nextKeyEvent: number | null = null;
  const keyEvent = (t: number | null) => {
    if (t !== null) nextKeyEvent = nextKeyEvent === null ? t : Math.min(nextKeyEvent, t);
  };

  // 2. Authority keys.
  const authSecretRef = { apiVersion: 'v1', kind: 'Secret', namespace, name: authoritySecretName(name) };
  const authSecret = await kube.get(authSecretRef);
  const authData: Record<string, string> = authSecret?.data ?? {};
  const authTrigger = raw.metadata.annotations?.[ANN_ROTATE_AUTHORITY_NOW];
  const authHandled = authSecret?.metadata.annotations?.[ANN_ROTATE_HANDLED];
  const forceAuth = authTrigger !== undefined && authTrigger !== '' && authTrigger !== authHandled;
  const newAuthData: Record<string, string> = {};
  const authorityIds: string[] = [];
  let authRotated = 0;
  for (let i = 0; i < spec.authorities.replicas; i++) {
    const cur = readNodeKeys(unb64(authData[authorityKeyFile(name, i)]));
    const prev = readNodeKeys(unb64(authData[authorityPreviousKeyFile(name, i)]));
    const plan = planAuthorityKeys(
      cur,
      prev,
      { intervalMs: spec.keyRotation.authorityKeyIntervalMinutes * MIN, graceMs },
      now,
      forceAuth,
      ctx.rng,
    );
    if (plan.rotated) authRotated++;
    keyEvent(plan.nextAt);
    newAuthData[authorityKeyFile(name, i)] = plan.changed
      ? b64(encodeKeys(plan.current))
      : authData[authorityKeyFile(name, i)]!;
    if (plan.previous) {
      newAuthData[authorityPreviousKeyFile(name, i)] = plan.changed
        ? b64(encodeKeys(plan.previous))
        : authData[authorityPreviousKeyFile(name, i)]!;
    }
    authorityIds.push(toHex(plan.current.identity));
  }
  const authHandledNext = forceAuth ? authTrigger : authHandled;
  if (!authSecret || !deepEqual(newAuthData, authData) || authHandledNext !== authHandled) {
    await kube.apply(
      keySecret(net, authoritySecretName(name), 'authority-keys', newAuthData, {
        ...(authHandledNext !== undefined ? { [ANN_ROTATE_HANDLED]: authHandledNext } : {}),
      }),
    );
    changes.push(authSecret ? 'authority keys' : 'authority keys created');
  }
  // inc(0) too: the series exists before the first rotation, for rate()/increase().
  ctx.metrics.keyRotations.labels({ namespace, network: name, key: 'authority-signing' }).inc(authRotated);
  if (authRotated > 0) {
    status.keyRotation = {
      ...status.keyRotation,
      lastAuthorityKeyRotation: rfc3339(new Date(now)),
      authorityKeyRotations: (status.keyRotation?.authorityKeyRotations ?? 0) + authRotated,
    };
    await ctx.recorder.event(raw, 'Normal', 'KeyRotated', `rotated ${authRotated} authority signing key(s)`);
  }

  // 3. Relay count and keys.
  let relays = spec.relays.replicas;
  if (spec.relays.autoscale) {
    relays = await autoscale(ctx, net, status, now);
  }
  const relayTrigger = raw.metadata.annotations?.[ANN_ROTATE_NOW];
  const relayIdentities: string[] = [];
  let relayRotated = 0;
  for (let i = 0; i < relays; i++) {
    const ref = { apiVersion: 'v1', kind: 'Secret', namespace, name: relaySecretName(name, i) };
    const secret = await kube.get(ref);
    const handled = secret?.metadata.annotations?.[ANN_ROTATE_HANDLED];
    const force =
      secret !== null && relayTrigger !== undefined && relayTrigger !== '' && relayTrigger !== handled;
    const stored = readNodeKeys(unb64(secret?.data?.[RELAY_KEY_FILE]));
    const plan = planRelayKeys(
      stored,
      { intervalMs: spec.keyRotation.onionKeyIntervalMinutes * MIN, graceMs },
      now,
      force,
      ctx.rng,
    );
    keyEvent(plan.nextAt);
    if (plan.rotated) relayRotated++;
    // A new Secret records the current trigger as handled: new relays start with fresh keys anyway.
    const handledNext = !secret || force ? relayTrigger : handled;
    if (!secret || plan.changed || handledNext !== handled) {
      await kube.apply(
        keySecret(
          net,
          relaySecretName(name, i),
          'relay-keys',
          { [RELAY_KEY_FILE]: b64(encodeKeys(plan.keys)) },
          {
            [ANN_IDENTITY]: toHex(plan.keys.identity),
            ...(handledNext !== undefined ? { [ANN_ROTATE_HANDLED]: handledNext } : {}),
          },
          i,
        ),
      );
      if (!secret) changes.push(`relay ${i} keys created`);
    }
    // Onion keys reach the running relay through the Secret (desired/network.ts); only the identity is in the pod template.
    relayIdentities.push(toHex(plan.keys.identity));
  }
  ctx.metrics.keyRotations.labels({ namespace, network: name, key: 'onion' }).inc(relayRotated);
  if (relayRotated > 0) {
    status.keyRotation = {
      ...status.keyRotation,
      lastOnionKeyRotation: rfc3339(new Date(now)),
      onionKeyRotations: (status.keyRotation?.onionKeyRotations ?? 0) + relayRotated,
    };
    await ctx.recorder.event(
      raw,
      'Normal',
      'KeyRotated',
      `rotated the onion key of ${relayRotated} relay(s)`,
    );
  }

  // 4. Objects.
  const inputs: NetworkInputs = { net, images: ctx.images, authorityIds, relays, relayIdentities };
  let authSts: KubeObject | null = null;
  const relaySts = new Map<number, KubeObject>();
  for (const want of desiredNetworkObjects(inputs)) {
    const r = await ensure(kube, want);
    if (r.action !== 'unchanged') changes.push(`${want.kind} ${want.metadata.name} ${r.action}`);
    if (r.action === 'created') {
      await ctx.recorder.event(raw, 'Normal', 'Created', `created ${want.kind} ${want.metadata.name}`);
    }
    if (want.kind === 'StatefulSet') {
      if (want.metadata.name === authorityName(name)) authSts = r.object;
      else relaySts.set(relayIndex(want)!, r.object);
    }
  }

  // 5. Retire relays beyond the count: StatefulSet first, the key Secret once no pod of it is left.
  const sel = `${LABEL_NETWORK}=${name},app.kubernetes.io/component=relay`;
  const surplusSts = (await kube.list('apps/v1', 'StatefulSet', namespace, sel)).items.filter((sts) => {
    const i = relayIndex(sts);
    return i !== null && i >= relays && ownedBy(sts, raw);
  });
  for (const sts of surplusSts) {
    if (sts.metadata.deletionTimestamp) continue;
    await kube.delete({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace, name: sts.metadata.name });
    changes.push(`relay ${relayIndex(sts)} retiring`);
    await ctx.recorder.event(
      raw,
      'Normal',
      'ScalingDown',
      `retiring relay ${relayIndex(sts)} (${sts.metadata.name})`,
    );
  }
  const keySel = `${LABEL_NETWORK}=${name},app.kubernetes.io/component=relay-keys`;
  const surplusSecrets = (await kube.list('v1', 'Secret', namespace, keySel)).items.filter((s) => {
    const i = relayIndex(s);
    return i !== null && i >= relays && ownedBy(s, raw);
  });
  const retiring = new Set<number>();
  if (surplusSts.length > 0 || surplusSecrets.length > 0) {
    const alive = new Set(
      (await kube.list('v1', 'Pod', namespace, sel)).items
        .map(relayIndex)
        .filter((i) => i !== null && i >= relays),
    );
    for (const i of alive) retiring.add(i as number);
    for (const s of surplusSecrets) {
      const i = relayIndex(s)!;
      if (alive.has(i)) continue;
      // The relay's pod is gone: its identity will never be used again.
      await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace, name: s.metadata.name });
      changes.push(`relay ${i} keys deleted`);
      await ctx.recorder.event(raw, 'Normal', 'RelayRetired', `relay ${i} retired; its keys are deleted`);
    }
  }

  // 6. Status.
  const authReady = Number(authSts?.status?.readyReplicas ?? 0);
  let relaysReady = 0;
  for (const [i, s] of relaySts) if (i < relays) relaysReady += Number(s.status?.readyReplicas ?? 0);
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
  status.authorityList = authorityListOf(inputs);
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

  const wait = retiring.size > 0 ? 5_000 : !allReady ? 30_000 : undefined;
  return {
    requeueAfterMs: soonest(
      nextKeyEvent === null ? null : (nextKeyEvent as number) - now + 1000,
      wait,
      spec.relays.autoscale ? 30_000 : undefined,
    ),
  };
}

function ownedBy(o: KubeObject, owner: KubeObject): boolean {
  return (o.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid);
}

function keySecret(
  net: OnionNetwork,
  secretName: string,
  component: string,
  data: Record<string, string>,
  annotations: Record<string, string>,
  relayIdx?: number,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretName,
      namespace: net.metadata.namespace,
      labels: {
        ...networkLabels(net.metadata.name, component),
        ...(relayIdx === undefined ? {} : { [LABEL_RELAY_INDEX]: String(relayIdx) }),
      },
      annotations,
      ownerReferences: [ownerRef(net)],
    },
    type: 'Opaque',
    data,
  };
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

/** Step 3 with autoscale set: scrape relays, decide, record the decision in status. */
async function autoscale(
  ctx: ReconcileContext,
  net: OnionNetwork,
  status: OnionNetworkStatus,
  now: number,
): Promise<number> {
  const spec = net.spec.relays.autoscale!;
  const ns = net.metadata.namespace;
  const current = status.autoscale?.desired ?? status.relays?.desired ?? net.spec.relays.replicas;
  let signal: number | null = null;
  if (net.spec.metrics.enabled) {
    const sel = `${LABEL_NETWORK}=${net.metadata.name},app.kubernetes.io/component=relay`;
    const pods = (await ctx.kube.list('v1', 'Pod', ns, sel)).items.filter(
      (p) => p.status?.podIP && p.status?.phase === 'Running',
    );
    const samples = await Promise.all(
      pods.map((p) =>
        ctx
          .scrape(`http://${p.status.podIP}:${net.spec.metrics.port}/metrics`)
          .then(circuitsActiveFromMetrics, () => null),
      ),
    );
    const ok = samples.filter((s): s is number => s !== null);
    if (ok.length > 0) signal = ok.reduce((a, b) => a + b, 0) / ok.length;
  }
  const history = (status.autoscale?.recommendations ?? []).map((r) => ({
    time: Date.parse(r.time),
    replicas: r.replicas,
  }));
  const last = status.autoscale?.lastScaleTime ? Date.parse(status.autoscale.lastScaleTime) : null;
  const d = decideRelays(spec, { current, signal, history, lastScaleTime: last }, now);
  // Record a recommendation only when it differs or 30 s passed, so status is not rewritten every pass.
  const prev = history.at(-1);
  const record = !prev || prev.replicas !== d.recommendation || now - prev.time >= 30_000;
  const hist = record ? d.history : history.filter((h) => now - h.time < 300_000);
  status.autoscale = {
    ...(signal === null ? {} : { signal: Math.round(signal * 100) / 100 }),
    desired: d.desired,
    ...(d.desired !== current
      ? { lastScaleTime: rfc3339(new Date(now)) }
      : status.autoscale?.lastScaleTime
        ? { lastScaleTime: status.autoscale.lastScaleTime }
        : {}),
    recommendations: hist.slice(-64).map((h) => ({ time: rfc3339(new Date(h.time)), replicas: h.replicas })),
  };
  return d.desired;
}
