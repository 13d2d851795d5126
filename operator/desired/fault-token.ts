/**
 * The Secret `<net>-fault-token` that lets the operator, and only it, send
 * the link-fault table to a network's relays, authorities and onion-service
 * instances (issue 18; the node side is
 * services/runtime/fault-route.ts): one random 32-byte token, hex, created
 * by the network's reconcile if absent and never rewritten (a relay reads
 * it from the mounted file on each request, so rotation would also work).
 * The volume is optional so a relay pod starts even before the Secret
 * exists; until kubelet syncs it in, the relay refuses every table (503).
 *
 * Not a Tor mechanism: C tor's ControlPort cookie auth (control-spec §3.5,
 * AUTHENTICATE with a cookie file readable only by its user) is the model.
 */
import type { OnionNetwork } from '../api/onion-network.js';
import type { KubeObject } from '../kube/client.js';
import { baseLabels, LABEL_NETWORK, ownerRef } from './common.js';

export const FAULT_TOKEN_KEY = 'token';
export const FAULT_TOKEN_MOUNT = '/etc/shallot/fault';
const VOLUME = 'fault-token';

export const faultTokenSecretName = (net: string): string => `${net}-fault-token`;

/** The node container's env, mount and the pod's volume (relays, authorities, onion-service instances alike). */
export const faultTokenEnv = {
  name: 'SHALLOT_FAULT_TOKEN_FILE',
  value: `${FAULT_TOKEN_MOUNT}/${FAULT_TOKEN_KEY}`,
};
export const faultTokenMount = { name: VOLUME, mountPath: FAULT_TOKEN_MOUNT, readOnly: true };
export function faultTokenVolume(net: string) {
  return {
    name: VOLUME,
    secret: { secretName: faultTokenSecretName(net), optional: true, defaultMode: 0o440 },
  };
}

export function desiredFaultTokenSecret(net: OnionNetwork, tokenHex: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: faultTokenSecretName(net.metadata.name),
      namespace: net.metadata.namespace,
      labels: { ...baseLabels(net.metadata.name, 'fault-token'), [LABEL_NETWORK]: net.metadata.name },
      ownerReferences: [ownerRef(net)],
    },
    type: 'Opaque',
    stringData: { [FAULT_TOKEN_KEY]: tokenHex },
  };
}
