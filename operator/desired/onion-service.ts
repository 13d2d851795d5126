/**
 * Desired state of an OnionService: the identity Secret, a Deployment of
 * instances that share it (onion-service/instances.ts: instances with one
 * key publish one address, each with its own intro points), and a headless
 * Service through which the instances find each other.
 *
 * Instances meet over HTTP (onion-service/instance-peers.ts): each serves
 * its sealed record on INSTANCE_PORT and fetches every address the headless
 * Service's name resolves to (one A record per pod). publishNotReadyAddresses,
 * because an instance becomes ready only once a descriptor is published,
 * and it should list its peers' intro points in that first descriptor.
 *
 * Design notes: the identity Secret holds the key file in the onion
 * service's own format (onion-service/identity.ts); the address shown in
 * status is derived from it here (rend-spec-v3 §6). Intro-point keys are
 * made fresh by each instance when it builds its intro circuits, so an
 * intro-key rotation is a rolling restart (maxUnavailable 0: old instances
 * keep serving on their old intro points until the new ones are ready).
 * Client authorization: the authorized clients' public keys (not secret)
 * go into a ConfigMap of Tor `.auth` files, mounted read-only; a change to
 * the list restarts the instances, which read the keys at start.
 */

import { formatAuthorizedClient, parseClientAuthPublicKey } from '../../services/core/client-auth.js';
import { ed25519PublicFromSeed } from '../../services/core/crypto.js';
import { encodeOnionAddress } from '../../services/core/onion-address.js';
import type { OnionService } from '../api/onion-service.js';
import type { Images } from '../config.js';
import type { KubeObject } from '../kube/client.js';
import {
  ANN_AUTHORITIES_HASH,
  ANN_INTRO_ROTATED_AT,
  authoritiesEnv,
  baseLabels,
  containerSecurityContext,
  DATA_DIR,
  keyCopyInitContainer,
  keyVolumes,
  LABEL_NETWORK,
  LABEL_ONION_SERVICE,
  networkModelEnv,
  opsProbes,
  ownerRef,
  podNameEnv,
  podSecurityContext,
  shortHash,
} from './common.js';
import { faultTokenEnv, faultTokenMount, faultTokenVolume } from './fault-token.js';

export const IDENTITY_KEY_FILE = 'identity.json';
export const OPS_PORT = 9100;
/** Where each instance serves its instance record to the others. */
export const INSTANCE_PORT = 9101;
export const onionDeploymentName = (svc: string) => `${svc}-onion`;
/** At most 50 + 12 characters: a Service name is a DNS label (63). */
export const onionPeersServiceName = (svc: string) => `${svc}-onion-peers`;
export const onionSecretName = (svc: string) => `${svc}-onion-identity`;
export const authorizedClientsName = (svc: string) => `${svc}-authorized-clients`;
export const AUTHORIZED_CLIENTS_DIR = '/etc/shallot/authorized-clients';
export const ANN_AUTHORIZED_CLIENTS_HASH = 'shallot.dev/authorized-clients-hash';

export function onionAddressOf(seed: Uint8Array): string {
  return encodeOnionAddress(ed25519PublicFromSeed(seed));
}

export function onionLabels(svc: string, network: string): Record<string, string> {
  return { ...baseLabels(svc, 'onion-service'), [LABEL_ONION_SERVICE]: svc, [LABEL_NETWORK]: network };
}

export interface OnionServiceInputs {
  svc: OnionService;
  images: Images;
  /** The network's authority list (its hash restarts instances when it changes). */
  authorityList: string;
  /** Last intro-key rotation (ISO time); a change rolls the instances. */
  introRotatedAt: string;
  /** The network's model as its ConfigMap holds it, if any: its hash rolls the instances when it changes. */
  networkModel?: string;
}

/** Hash of the model the instances started with (they read it from the ConfigMap at start). */
export const ANN_NETWORK_MODEL_HASH = 'shallot.dev/network-model-hash';

export function backendSpec(svc: OnionService): string {
  const b = svc.spec.backend;
  return b.type === 'tcp' ? `${b.host}:${b.port}` : 'builtin';
}

/** The `.auth` files, one per authorized client, by file name (empty: the service is open). */
export function authorizedClientFiles(svc: OnionService): Record<string, string> {
  // Sorted, so reordering the list changes neither the ConfigMap nor the restart hash.
  const clients = [...(svc.spec.authorizedClients ?? [])].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  return Object.fromEntries(
    clients.map((c) => [
      `${c.name}.auth`,
      `${formatAuthorizedClient(parseClientAuthPublicKey(c.publicKey))}\n`,
    ]),
  );
}

/** Always present (owned by the service), so shrinking the list to none needs no delete permission. */
export function desiredAuthorizedClientsConfigMap(svc: OnionService): KubeObject {
  const { name, namespace } = svc.metadata;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: authorizedClientsName(name),
      namespace,
      labels: onionLabels(name, svc.spec.network),
      ownerReferences: [ownerRef(svc)],
    },
    data: authorizedClientFiles(svc),
  };
}

function onionSelector(svc: string): Record<string, string> {
  return { [LABEL_ONION_SERVICE]: svc, 'app.kubernetes.io/component': 'onion-service' };
}

/** The headless Service whose name resolves to every instance's pod IP. */
export function desiredOnionPeersService(svc: OnionService): KubeObject {
  const { name, namespace } = svc.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: onionPeersServiceName(name),
      namespace,
      labels: onionLabels(name, svc.spec.network),
      ownerReferences: [ownerRef(svc)],
    },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: onionSelector(name),
      ports: [{ name: 'instances', port: INSTANCE_PORT, targetPort: INSTANCE_PORT, protocol: 'TCP' }],
    },
  };
}

export function desiredOnionDeployment(inp: OnionServiceInputs): KubeObject {
  const { name, namespace } = inp.svc.metadata;
  const spec = inp.svc.spec;
  const labels = onionLabels(name, spec.network);
  const authFiles = authorizedClientFiles(inp.svc);
  const clientAuth = Object.keys(authFiles).length > 0;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: onionDeploymentName(name),
      namespace,
      labels,
      ownerReferences: [ownerRef(inp.svc)],
    },
    spec: {
      replicas: spec.instances,
      selector: { matchLabels: onionSelector(name) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels,
          annotations: {
            [ANN_AUTHORITIES_HASH]: shortHash(inp.authorityList),
            [ANN_INTRO_ROTATED_AT]: inp.introRotatedAt,
            ...(clientAuth ? { [ANN_AUTHORIZED_CLIENTS_HASH]: shortHash(JSON.stringify(authFiles)) } : {}),
            ...(inp.networkModel ? { [ANN_NETWORK_MODEL_HASH]: shortHash(inp.networkModel) } : {}),
          },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurityContext,
          initContainers: [
            keyCopyInitContainer(
              inp.images.onionService,
              inp.images.pullPolicy,
              IDENTITY_KEY_FILE,
              IDENTITY_KEY_FILE,
            ),
          ],
          containers: [
            {
              name: 'onion-service',
              image: inp.images.onionService,
              imagePullPolicy: inp.images.pullPolicy,
              env: [
                podNameEnv,
                { name: 'SHALLOT_KEY_FILE', value: `${DATA_DIR}/${IDENTITY_KEY_FILE}` },
                { name: 'SHALLOT_DATA_DIR', value: DATA_DIR },
                authoritiesEnv(spec.network),
                { name: 'SHALLOT_NAME', value: name },
                { name: 'SHALLOT_INSTANCE', value: '$(POD_NAME)' },
                { name: 'SHALLOT_INTRO_POINTS', value: String(spec.introPoints) },
                { name: 'SHALLOT_VIRTUAL_PORT', value: String(spec.virtualPort) },
                { name: 'SHALLOT_BACKEND', value: backendSpec(inp.svc) },
                { name: 'SHALLOT_OPS_HOST', value: '0.0.0.0' },
                { name: 'SHALLOT_OPS_PORT', value: String(OPS_PORT) },
                { name: 'SHALLOT_INSTANCE_HOST', value: '0.0.0.0' },
                { name: 'SHALLOT_INSTANCE_PORT', value: String(INSTANCE_PORT) },
                {
                  name: 'SHALLOT_INSTANCE_PEERS_DNS',
                  value: `${onionPeersServiceName(name)}.${namespace}.svc:${INSTANCE_PORT}`,
                },
                ...(clientAuth
                  ? [{ name: 'SHALLOT_AUTHORIZED_CLIENTS_DIR', value: AUTHORIZED_CLIENTS_DIR }]
                  : []),
                // The network's model (from its ConfigMap, when it has one) and the service's place in it;
                // unset, the instance takes the model's placement of SHALLOT_NAME (onion-service/main.ts).
                networkModelEnv(spec.network),
                ...(spec.location ? [{ name: 'SHALLOT_LOCATION', value: spec.location }] : []),
                // NetworkFault pause of an instance: the network's link-fault table (desired/fault-token.ts).
                faultTokenEnv,
              ],
              ports: [
                { name: 'metrics', containerPort: OPS_PORT },
                { name: 'instances', containerPort: INSTANCE_PORT },
              ],
              ...opsProbes(OPS_PORT),
              ...(spec.resources ? { resources: spec.resources } : {}),
              volumeMounts: [
                { name: 'data', mountPath: DATA_DIR },
                ...(clientAuth
                  ? [{ name: 'authorized-clients', mountPath: AUTHORIZED_CLIENTS_DIR, readOnly: true }]
                  : []),
                faultTokenMount,
              ],
              securityContext: containerSecurityContext,
            },
          ],
          volumes: [
            ...keyVolumes(onionSecretName(name)),
            ...(clientAuth
              ? [{ name: 'authorized-clients', configMap: { name: authorizedClientsName(name) } }]
              : []),
            faultTokenVolume(spec.network),
          ],
        },
      },
    },
  };
}
