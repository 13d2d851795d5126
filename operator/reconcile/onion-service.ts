/**
 * OnionService reconcile: the identity Secret (generated once, never
 * overwritten), intro-key rotation (schedule or the rotate-now
 * annotation, recorded in the Secret), the headless Service the instances
 * meet through, the Deployment, and status with the onion address.
 */

import { fromUtf8 } from '../../services/core/bytes.js';
import { parseClientAuthPublicKey } from '../../services/core/client-auth.js';
import { randomBytes } from '../../services/core/crypto.js';
import { decodeIdentityFile, encodeIdentityFile } from '../../services/core/onion-identity-file.js';
import { API_VERSION } from '../api/crds.js';
import { type OnionService, type OnionServiceStatus, onionServiceSpecSchema } from '../api/onion-service.js';
import { applyDefaults } from '../api/schema.js';
import { type ConditionInput, findCondition, rfc3339, setConditions } from '../conditions.js';
import {
  ANN_INTRO_ROTATED_AT,
  ANN_ROTATE_HANDLED,
  ANN_ROTATE_NOW,
  AUTHORITIES_KEY,
  b64,
  NETWORK_MODEL_KEY,
  networkConfigMapName,
  ownerRef,
  unb64,
} from '../desired/common.js';
import {
  desiredAuthorizedClientsConfigMap,
  desiredOnionDeployment,
  desiredOnionPeersService,
  IDENTITY_KEY_FILE,
  onionAddressOf,
  onionLabels,
  onionSecretName,
} from '../desired/onion-service.js';
import { introRotationDue } from '../keys.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext, ReconcileResult } from './context.js';
import { modelLocationProblem } from './model-location.js';
import { deepEqual, ensure } from './util.js';

const KIND = 'OnionService';
const MIN = 60_000;

export function withServiceDefaults(raw: OnionService): OnionService {
  return { ...raw, spec: applyDefaults(onionServiceSpecSchema, raw.spec ?? {}) as OnionService['spec'] };
}

export function validateOnionService(svc: OnionService): string[] {
  const p: string[] = [];
  if (svc.metadata.name.length > 50) p.push('metadata.name must be at most 50 characters');
  if (!svc.spec.network) p.push('spec.network is required');
  const b = svc.spec.backend;
  if (b.type === 'tcp' && (!b.host || !b.port)) p.push('spec.backend: a tcp backend needs host and port');
  const names = new Set<string>();
  for (const [i, c] of (svc.spec.authorizedClients ?? []).entries()) {
    if (names.has(c.name)) p.push(`spec.authorizedClients[${i}]: name ${c.name} appears twice`);
    names.add(c.name);
    try {
      parseClientAuthPublicKey(c.publicKey);
    } catch (e) {
      p.push(`spec.authorizedClients[${i}] (${c.name}): ${(e as Error).message}`);
    }
  }
  return p;
}

export async function reconcileOnionService(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const { kube } = ctx;
  const raw = await kube.get<OnionService & KubeObject>({
    apiVersion: API_VERSION,
    kind: KIND,
    namespace,
    name,
  });
  if (!raw || raw.metadata.deletionTimestamp) return {};
  const svc = withServiceDefaults(raw);
  const generation = raw.metadata.generation ?? 0;
  const now = ctx.now();
  const status: OnionServiceStatus = structuredClone(raw.status ?? {});
  const degrade = async (reason: string, message: string, requeueAfterMs?: number) => {
    const was = findCondition(raw.status?.conditions, 'Degraded');
    status.observedGeneration = generation;
    status.conditions = setConditions(
      status.conditions,
      [
        { type: 'Ready', status: false, reason, message },
        { type: 'Progressing', status: false, reason, message },
        { type: 'Degraded', status: true, reason, message },
      ],
      generation,
      new Date(now),
    );
    await writeStatus(ctx, raw, status);
    if (was?.status !== 'True' || was.reason !== reason)
      await ctx.recorder.event(raw, 'Warning', reason, message);
    return requeueAfterMs === undefined ? {} : { requeueAfterMs };
  };

  const problems = validateOnionService(svc);
  if (problems.length) return degrade('InvalidSpec', problems.join('; '));

  const network = await kube.get({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    namespace,
    name: svc.spec.network,
  });
  if (!network) return degrade('NetworkNotFound', `OnionNetwork ${svc.spec.network} does not exist`, 30_000);
  const cm = await kube.get({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    namespace,
    name: networkConfigMapName(svc.spec.network),
  });
  const authorityList: string | undefined = cm?.data?.[AUTHORITIES_KEY];
  const networkModel: string | undefined = cm?.data?.[NETWORK_MODEL_KEY];
  // The network's model may change: look again later.
  const location = modelLocationProblem(svc.spec.network, svc.spec.location, svc.metadata.name, networkModel);
  if (location) return degrade('InvalidLocation', location, 30_000);

  // Identity: generated once; an unreadable key is reported, never replaced (that would change the address).
  const secretRef = { apiVersion: 'v1', kind: 'Secret', namespace, name: onionSecretName(name) };
  const secret = await kube.get(secretRef);
  let seed: Uint8Array;
  const stored = unb64(secret?.data?.[IDENTITY_KEY_FILE]);
  if (stored) {
    try {
      seed = decodeIdentityFile(fromUtf8(stored), onionSecretName(name));
    } catch (e) {
      return degrade('InvalidIdentity', `Secret ${onionSecretName(name)}: ${(e as Error).message}`);
    }
  } else {
    seed = (ctx.rng ?? randomBytes)(32);
  }
  const rotatedAt = secret?.metadata.annotations?.[ANN_INTRO_ROTATED_AT];
  const lastMs = rotatedAt ? Date.parse(rotatedAt) : now;
  const trigger = raw.metadata.annotations?.[ANN_ROTATE_NOW];
  const handled = secret?.metadata.annotations?.[ANN_ROTATE_HANDLED];
  const force = secret !== null && trigger !== undefined && trigger !== '' && trigger !== handled;
  const intervalMs = svc.spec.keyRotation.introKeyIntervalMinutes * MIN;
  const rotate = secret !== null && (force || introRotationDue(lastMs, intervalMs, now));
  const introAt = !rotatedAt || rotate ? rfc3339(new Date(now)) : rotatedAt;
  const handledNext = !secret || force ? trigger : handled;
  if (!secret || rotate || handledNext !== handled) {
    await kube.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: onionSecretName(name),
        namespace,
        labels: onionLabels(name, svc.spec.network),
        annotations: {
          [ANN_INTRO_ROTATED_AT]: introAt,
          ...(handledNext !== undefined ? { [ANN_ROTATE_HANDLED]: handledNext } : {}),
        },
        ownerReferences: [ownerRef(svc)],
      },
      type: 'Opaque',
      data: { [IDENTITY_KEY_FILE]: b64(encodeIdentityFile(seed)) },
    });
    if (!secret)
      await ctx.recorder.event(raw, 'Normal', 'Created', `created identity Secret ${onionSecretName(name)}`);
  }
  ctx.metrics.keyRotations.labels({ namespace, network: svc.spec.network, key: 'intro' }).inc(rotate ? 1 : 0);
  if (rotate) {
    status.keyRotation = {
      lastIntroKeyRotation: introAt,
      introKeyRotations: (status.keyRotation?.introKeyRotations ?? 0) + 1,
    };
    await ctx.recorder.event(raw, 'Normal', 'KeyRotated', 'rotating intro-point keys (rolling restart)');
  }
  status.onionAddress = onionAddressOf(seed);

  const conds: ConditionInput[] = [];
  let ready = 0;
  let requeue: number | undefined;
  if (!authorityList) {
    conds.push(
      {
        type: 'Ready',
        status: false,
        reason: 'WaitingForNetwork',
        message: 'the network has no authority list yet',
      },
      { type: 'Progressing', status: true, reason: 'WaitingForNetwork', message: 'waiting for the network' },
    );
    requeue = 10_000;
  } else {
    // Compared whole, so a removed client is removed (ensure() only checks the fields we want are there).
    const clientsCm = desiredAuthorizedClientsConfigMap(svc);
    const haveCm = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace,
      name: clientsCm.metadata.name,
    });
    if (!haveCm || !deepEqual(clientsCm.data, haveCm.data ?? {})) await kube.apply(clientsCm);
    // Before the Deployment: the instances' first DNS lookups should find the name.
    const peers = await ensure(kube, desiredOnionPeersService(svc));
    if (peers.action === 'created')
      await ctx.recorder.event(raw, 'Normal', 'Created', `created Service ${peers.object.metadata.name}`);
    const r = await ensure(
      kube,
      desiredOnionDeployment({
        svc,
        images: ctx.images,
        authorityList,
        introRotatedAt: introAt,
        ...(networkModel ? { networkModel } : {}),
      }),
    );
    if (r.action === 'created')
      await ctx.recorder.event(raw, 'Normal', 'Created', `created Deployment ${r.object.metadata.name}`);
    ready = Number(r.object.status?.readyReplicas ?? 0);
    const allReady = ready >= svc.spec.instances;
    conds.push(
      allReady
        ? { type: 'Ready', status: true, reason: 'AllReady', message: `${ready} instances ready` }
        : {
            type: 'Ready',
            status: false,
            reason: 'WaitingForPods',
            message: `${ready}/${svc.spec.instances} instances ready`,
          },
      r.action !== 'unchanged' || !allReady
        ? {
            type: 'Progressing',
            status: true,
            reason: r.action !== 'unchanged' ? 'Converging' : 'WaitingForPods',
            message: `Deployment ${r.action}`,
          }
        : { type: 'Progressing', status: false, reason: 'Stable', message: 'nothing to change' },
    );
    if (!allReady) requeue = 30_000;
  }
  conds.push({ type: 'Degraded', status: false, reason: 'AsExpected', message: 'spec is valid and applied' });
  status.instances = { desired: svc.spec.instances, ready };
  status.authorizedClients = svc.spec.authorizedClients?.length ?? 0;
  status.observedGeneration = generation;
  status.conditions = setConditions(status.conditions, conds, generation, new Date(now));
  await writeStatus(ctx, raw, status);
  const nextRotation = intervalMs > 0 ? Date.parse(introAt) + intervalMs - now + 1000 : undefined;
  const candidates = [requeue, nextRotation].filter((x): x is number => x !== undefined);
  return candidates.length ? { requeueAfterMs: Math.max(0, Math.min(...candidates)) } : {};
}

async function writeStatus(
  ctx: ReconcileContext,
  raw: KubeObject,
  status: OnionServiceStatus,
): Promise<void> {
  if (deepEqual(status, raw.status ?? {})) return;
  await ctx.kube.patchStatus(
    { apiVersion: API_VERSION, kind: KIND, namespace: raw.metadata.namespace, name: raw.metadata.name },
    status,
  );
}
