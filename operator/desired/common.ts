/**
 * Shared pieces of the objects the operator creates: names, labels, owner
 * references, the key-copy init container and ops probes.
 *
 * Design notes:
 * - Key files are refused by the services when group- or world-readable
 *   (runtime/private-file.ts via runtime/key-store.ts and onion-service/identity.ts), but a Secret volume with
 *   fsGroup is always group-readable (kubelet adds 0440). So an init
 *   container copies the key from the Secret volume into a memory-backed
 *   emptyDir with mode 0600, owned by the container user, which the service
 *   reads at start. Relays also watch the Secret volume itself for rotated
 *   onion keys, which they take without restarting (network.ts); other
 *   key changes restart pods through a pod-template annotation.
 * - Probes (opsProbes) allow a busy process: /healthz is answered on the
 *   event loop, which load delays. Measured on a 2-core host with nothing
 *   limiting CPU (4 relay processes, 64 requests in flight, a new circuit
 *   each, 90 s): relay /healthz p99 300 ms, max 539 ms, already half of
 *   kubelet's 1 s default timeout; a pod with a 20m CPU request (the kind
 *   values) sharing a busy node gets a fraction of that CPU, and a relay
 *   was restarted that way (issue 14). C tor itself tolerates 1.75 s of
 *   onionskin queueing (MaxOnionQueueDelay). So liveness restarts only
 *   after a minute with no answer within 5 s: it is for a wedged process,
 *   not a slow one.
 * - Everything created carries an ownerReference (controller: true) to the
 *   custom resource, so deleting it garbage-collects its children; no
 *   finalizers are needed for that (nothing lives outside the cluster). The
 *   one finalizer is a link-table NetworkFault's (reconcile/fault-finalizer.ts):
 *   its effect lives in the pods' memory.
 */

import { toHex, utf8 } from '../../services/core/bytes.js';
import { sha256 } from '../../services/core/crypto.js';
import type { OwnerReference } from '../api/schema.js';
import type { KubeObject } from '../kube/client.js';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_NETWORK = 'shallot.dev/network';
export const LABEL_RELAY_INDEX = 'shallot.dev/relay-index';
export const LABEL_ONION_SERVICE = 'shallot.dev/onion-service';
export const LABEL_LOAD_TEST = 'shallot.dev/loadtest';
export const MANAGER = 'shallot-operator';

export const ANN_ROTATE_NOW = 'shallot.dev/rotate-now';
export const ANN_ROTATE_AUTHORITY_NOW = 'shallot.dev/rotate-authority-keys-now';
export const ANN_ROTATE_HANDLED = 'shallot.dev/rotate-now-handled';
export const ANN_IDENTITY = 'shallot.dev/identity';
export const ANN_KEYS_HASH = 'shallot.dev/keys-hash';
export const ANN_AUTHORITIES_HASH = 'shallot.dev/authorities-hash';
export const ANN_INTRO_ROTATED_AT = 'shallot.dev/intro-keys-rotated-at';

export const DIR_PORT = 7000;
export const OR_PORT = 9001;
export const SOCKS_PORT = 9050;
/** The chart's client serves its HTTP CONNECT tunnel here (client.httpTunnel). */
export const HTTP_TUNNEL_PORT = 9080;
/** The operator's own /metrics port unless SHALLOT_OPS_PORT says otherwise (config.ts). */
export const OPERATOR_OPS_PORT = 8080;
export const SECRET_MOUNT = '/etc/shallot/secret';
export const DATA_DIR = '/var/lib/shallot';
export const USER_ID = 1000;

export interface Owner {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string };
}

export function ownerRef(o: Owner): OwnerReference {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    uid: o.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The controlling owner of `obj`, if it is of `kind`. */
export function controllerOf(obj: KubeObject, kind: string): string | null {
  const r = obj.metadata.ownerReferences?.find((o) => o.controller && o.kind === kind);
  return r ? r.name : null;
}

export function baseLabels(instance: string, component: string): Record<string, string> {
  return {
    [LABEL_NAME]: 'shallot',
    [LABEL_INSTANCE]: instance,
    [LABEL_COMPONENT]: component,
    [LABEL_MANAGED_BY]: MANAGER,
  };
}

/** Short stable digest for pod-template annotations (changes restart pods). */
export function shortHash(s: string): string {
  return toHex(sha256(utf8(s))).slice(0, 16);
}

export function networkConfigMapName(network: string): string {
  return `${network}-network`;
}

export const AUTHORITIES_KEY = 'authorities';

/** Env var fed from the network's ConfigMap: the authority list. */
export function authoritiesEnv(network: string) {
  return {
    name: 'SHALLOT_AUTHORITIES',
    valueFrom: { configMapKeyRef: { name: networkConfigMapName(network), key: AUTHORITIES_KEY } },
  };
}

/** The network's spec.networkModel as JSON, in the same ConfigMap; absent without a model. */
export const NETWORK_MODEL_KEY = 'networkModel';

/**
 * A client's model, read from the network's ConfigMap (optional: a network
 * without a model leaves it unset, and the client's links are undelayed).
 */
export function networkModelEnv(network: string) {
  return {
    name: 'SHALLOT_NETWORK_MODEL_JSON',
    valueFrom: {
      configMapKeyRef: { name: networkConfigMapName(network), key: NETWORK_MODEL_KEY, optional: true },
    },
  };
}

export const podNameEnv = { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } };

/**
 * Copies `${SECRET_MOUNT}/<src>` to `${DATA_DIR}/<dst>` with mode 0600. The
 * source name may use $POD_NAME (read by the script, not by Kubernetes).
 * Written as `node -e` so the images need no shell.
 */
export function keyCopyInitContainer(image: string, pullPolicy: string, src: string, dst: string) {
  const script =
    "const fs=require('fs');" +
    `const src='${SECRET_MOUNT}/'+${JSON.stringify(src)}.replace('$POD_NAME',process.env.POD_NAME||'');` +
    `const dst='${DATA_DIR}/${dst}';` +
    COPY_SRC_TO_DST_0600;
  return copyKeysContainer(image, pullPolicy, script, [podNameEnv]);
}

/** The script step that copies `src` to `dst` with mode 0600 (chmod too: the file may exist with another mode). */
export const COPY_SRC_TO_DST_0600 =
  'fs.writeFileSync(dst,fs.readFileSync(src),{mode:0o600});fs.chmodSync(dst,0o600);';

/** The init container that runs a key-copy `node -e` script with the Secret and the data volume mounted. */
export function copyKeysContainer(
  image: string,
  pullPolicy: string,
  script: string,
  env?: (typeof podNameEnv)[],
) {
  return {
    name: 'copy-keys',
    image,
    imagePullPolicy: pullPolicy,
    command: ['node', '-e', script],
    ...(env ? { env } : {}),
    volumeMounts: [
      { name: 'secret', mountPath: SECRET_MOUNT, readOnly: true },
      { name: 'data', mountPath: DATA_DIR },
    ],
    securityContext: containerSecurityContext,
  };
}

export const containerSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

export const podSecurityContext = {
  runAsNonRoot: true,
  runAsUser: USER_ID,
  runAsGroup: USER_ID,
  fsGroup: USER_ID,
  seccompProfile: { type: 'RuntimeDefault' },
};

export function keyVolumes(secretName: string) {
  return [
    { name: 'secret', secret: { secretName, defaultMode: 0o440 } },
    { name: 'data', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
}

export function opsProbes(port: number) {
  return {
    readinessProbe: {
      httpGet: { path: '/readyz', port },
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: '/healthz', port },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 6,
    },
  };
}

/** base64 of a UTF-8 string or bytes, for Secret.data. */
export function b64(v: string | Uint8Array): string {
  return Buffer.from(typeof v === 'string' ? utf8(v) : v).toString('base64');
}

export function unb64(v: string | undefined): Uint8Array | null {
  if (v === undefined) return null;
  return new Uint8Array(Buffer.from(v, 'base64'));
}
