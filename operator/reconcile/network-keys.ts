/**
 * OnionNetwork reconcile, key steps: the authorities' signing keys (one
 * Secret `<net>-auth-keys`) and each relay's keys (one Secret per relay,
 * `<net>-relay-<i>-keys`): generate what is missing, rotate on schedule or
 * on the rotate-now annotations, keep the previous key for the grace
 * period (operator/keys.ts plans each key; this file stores the plans).
 *
 * Not in this module: when keys reach the pods (desired/network.ts:
 * onion keys through the mounted Secret, identities in the pod template).
 */
import { toHex } from '../../services/core/bytes.js';
import { rfc3339 } from '../conditions.js';
import {
  ANN_IDENTITY,
  ANN_ROTATE_AUTHORITY_NOW,
  ANN_ROTATE_HANDLED,
  ANN_ROTATE_NOW,
  b64,
  LABEL_RELAY_INDEX,
  ownerRef,
  unb64,
} from '../desired/common.js';
import { networkLabels } from '../desired/network.js';
import {
  authorityKeyFile,
  authorityPreviousKeyFile,
  authoritySecretName,
  relaySecretName,
} from '../desired/network-layout.js';
import { RELAY_KEY_FILE } from '../desired/relay-pool.js';
import { encodeKeys, planAuthorityKeys, planRelayKeys, readNodeKeys } from '../keys.js';
import type { KubeObject } from '../kube/client.js';
import { MIN, type NetworkPass, noteKeyEvent } from './network-pass.js';
import { deepEqual } from './util.js';

/** Step 2: authority keys. Returns each authority's hex identity, by ordinal. */
export async function convergeAuthorityKeys(pass: NetworkPass): Promise<string[]> {
  const { ctx, raw, net, namespace, name, now, status } = pass;
  const spec = net.spec;
  const graceMs = spec.keyRotation.gracePeriodMinutes * MIN;
  const authSecretRef = { apiVersion: 'v1', kind: 'Secret', namespace, name: authoritySecretName(name) };
  const authSecret = await ctx.kube.get(authSecretRef);
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
    noteKeyEvent(pass, plan.nextAt);
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
    await ctx.kube.apply(
      keySecret(pass, authoritySecretName(name), 'authority-keys', newAuthData, {
        ...(authHandledNext !== undefined ? { [ANN_ROTATE_HANDLED]: authHandledNext } : {}),
      }),
    );
    pass.changes.push(authSecret ? 'authority keys' : 'authority keys created');
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
  return authorityIds;
}

/** Step 3b: the key Secret of relays 0..relays-1. Returns each relay's hex identity, by index. */
export async function convergeRelayKeys(pass: NetworkPass, relays: number): Promise<string[]> {
  const { ctx, raw, net, namespace, name, now, status } = pass;
  const spec = net.spec;
  const graceMs = spec.keyRotation.gracePeriodMinutes * MIN;
  const relayTrigger = raw.metadata.annotations?.[ANN_ROTATE_NOW];
  const relayIdentities: string[] = [];
  let relayRotated = 0;
  for (let i = 0; i < relays; i++) {
    const ref = { apiVersion: 'v1', kind: 'Secret', namespace, name: relaySecretName(name, i) };
    const secret = await ctx.kube.get(ref);
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
    noteKeyEvent(pass, plan.nextAt);
    if (plan.rotated) relayRotated++;
    // A new Secret records the current trigger as handled: new relays start with fresh keys anyway.
    const handledNext = !secret || force ? relayTrigger : handled;
    if (!secret || plan.changed || handledNext !== handled) {
      await ctx.kube.apply(
        keySecret(
          pass,
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
      if (!secret) pass.changes.push(`relay ${i} keys created`);
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
  return relayIdentities;
}

function keySecret(
  pass: NetworkPass,
  secretName: string,
  component: string,
  data: Record<string, string>,
  annotations: Record<string, string>,
  relayIdx?: number,
): KubeObject {
  const { net } = pass;
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
