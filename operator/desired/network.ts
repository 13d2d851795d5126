/**
 * Desired state of an OnionNetwork, as pure functions of its spec, the
 * authority identities and the relay keys: the ConfigMap with the authority
 * list, Services, the authority StatefulSet and one StatefulSet per relay.
 * Names, the authority list's format, nicknames and the exit spread:
 * network-layout.ts.
 *
 * Design notes:
 * - Authorities are one StatefulSet (`<net>-auth`, pods `<net>-auth-<i>`)
 *   behind a headless Service that publishes not-ready addresses, so each
 *   authority has the stable DNS name the authority list names
 *   (`<net>-auth-<i>.<net>-auth.<ns>.svc:7000`) before the first consensus.
 *   Their keys share one Secret (`<net>-auth-keys`, a file per pod); each
 *   pod's init container copies only its own file. podManagementPolicy is
 *   Parallel: a consensus needs a majority, so ordered start would deadlock.
 * - Relays are one single-replica StatefulSet per relay (`<net>-relay-<i>`):
 *   each relay has its own key Secret, nickname and exit role, which one
 *   pod template cannot vary per pod. A StatefulSet (rather than a bare
 *   Pod) gives a stable pod name and replacement on node loss. Exits are
 *   spread by index (network-layout.ts isExitIndex), so a relay keeps its
 *   role when the network scales.
 * - With spec.relays.relaysPerPod = K > 1 that StatefulSet holds a pool of
 *   K consecutive relays in one pod instead (relay-pool.ts); keys, nicknames
 *   and exit roles stay per relay.
 * - Relay onion-key rotation restarts nothing (issue 14: restarting every
 *   relay at once cost the network its pod IPs, HSDir descriptors and
 *   circuits for minutes). The relay container mounts its key Secret
 *   without subPath, so kubelet updates the file in place, and polls it
 *   (SHALLOT_KEY_WATCH, services/relay/key-watch.ts): it takes the new key,
 *   keeps the previous one for the grace period and publishes a fresh
 *   descriptor, as C tor's in-process rotate_onion_key does. The relay pod
 *   template carries only the identity and the authority list, which a
 *   running relay cannot change in place.
 * - Authority key rotation still restarts pods: an authority's identity is
 *   its signing key here (no separate signing-key certificate, as dir-spec
 *   §3.1 has), so every node's authority list changes with it, and that
 *   list is read at start. The authority StatefulSet rolls one pod at a time
 *   (RollingUpdate; podManagementPolicy only affects scaling); the relays,
 *   one StatefulSet each, all restart at once, and clients trusting the old
 *   list refuse the new consensus signatures until they restart too.
 */

import type { OnionNetwork } from '../api/onion-network.js';
import type { Images } from '../config.js';
import type { KubeObject } from '../kube/client.js';
import {
  ANN_AUTHORITIES_HASH,
  ANN_IDENTITY,
  ANN_KEYS_HASH,
  AUTHORITIES_KEY,
  authoritiesEnv,
  baseLabels,
  containerSecurityContext,
  DATA_DIR,
  DIR_PORT,
  HTTP_TUNNEL_PORT,
  keyCopyInitContainer,
  keyVolumes,
  LABEL_NETWORK,
  LABEL_RELAY_INDEX,
  NETWORK_MODEL_KEY,
  networkConfigMapName,
  OPERATOR_OPS_PORT,
  OR_PORT,
  opsProbes,
  ownerRef,
  podNameEnv,
  podSecurityContext,
  SECRET_MOUNT,
  SOCKS_PORT,
  shortHash,
} from './common.js';
import { faultTokenEnv, faultTokenMount, faultTokenVolume } from './fault-token.js';
import { CLIENT_OPS_PORT } from './load-test.js';
import {
  authorityName,
  authoritySecretName,
  formatAuthorityList,
  isExitIndex,
  metricsServiceName,
  relayName,
  relayNickname,
  relaySecretName,
  relayServiceName,
} from './network-layout.js';
import { OPS_PORT as ONION_OPS_PORT } from './onion-service.js';
import {
  LABEL_RELAY_LAST,
  type PoolRelay,
  poolKeyCopyInitContainer,
  poolPorts,
  poolRanges,
  poolSpecJson,
  poolVolumes,
  RELAY_KEY_FILE,
} from './relay-pool.js';

export function networkLabels(net: string, component: string): Record<string, string> {
  return { ...baseLabels(net, component), [LABEL_NETWORK]: net };
}

export interface NetworkInputs {
  net: OnionNetwork;
  images: Images;
  /** Hex identity of each authority, by ordinal. */
  authorityIds: string[];
  /** Relays wanted (spec or autoscaler). */
  relays: number;
  /** Hex identity of each relay, by index (a new identity needs a restart; onion keys do not). */
  relayIdentities: string[];
}

export function authorityListOf(inp: NetworkInputs): string {
  const { name, namespace } = inp.net.metadata;
  return formatAuthorityList(name, namespace ?? 'default', inp.authorityIds);
}

function meta(inp: NetworkInputs, name: string, component: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    namespace: inp.net.metadata.namespace,
    labels: networkLabels(inp.net.metadata.name, component),
    ownerReferences: [ownerRef(inp.net)],
    ...extra,
  };
}

export function desiredConfigMap(inp: NetworkInputs): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(inp, networkConfigMapName(inp.net.metadata.name), 'network'),
    data: {
      [AUTHORITIES_KEY]: authorityListOf(inp),
      // For the clients (the chart's, a LoadTest's): the relays get it in their env.
      ...(inp.net.spec.networkModel
        ? { [NETWORK_MODEL_KEY]: JSON.stringify(inp.net.spec.networkModel) }
        : {}),
    },
  };
}

export function desiredServices(inp: NetworkInputs): KubeObject[] {
  const net = inp.net.metadata.name;
  const m = inp.net.spec.metrics;
  const metricsPort = m.enabled ? [{ name: 'metrics', port: m.port, targetPort: m.port }] : [];
  const out: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(inp, authorityName(net), 'authority'),
      spec: {
        clusterIP: 'None',
        publishNotReadyAddresses: true,
        selector: networkLabelsSelector(net, 'authority'),
        ports: [{ name: 'dir', port: DIR_PORT, targetPort: DIR_PORT }, ...metricsPort],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(inp, relayServiceName(net), 'relay'),
      spec: {
        clusterIP: 'None',
        publishNotReadyAddresses: true,
        selector: networkLabelsSelector(net, 'relay'),
        ports: [{ name: 'or', port: OR_PORT, targetPort: OR_PORT }, ...metricsPort],
      },
    },
  ];
  if (m.enabled) {
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(inp, metricsServiceName(net), 'metrics', {
        labels: { ...networkLabels(net, 'metrics'), 'shallot.dev/metrics': 'true' },
      }),
      spec: {
        clusterIP: 'None',
        selector: { 'app.kubernetes.io/name': 'shallot', [LABEL_NETWORK]: net },
        ports: metricsPort,
      },
    });
  }
  return out;
}

function networkLabelsSelector(net: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'shallot',
    [LABEL_NETWORK]: net,
    'app.kubernetes.io/component': component,
  };
}

function opsEnv(inp: NetworkInputs) {
  const m = inp.net.spec.metrics;
  return m.enabled
    ? [
        { name: 'SHALLOT_OPS_HOST', value: '0.0.0.0' },
        { name: 'SHALLOT_OPS_PORT', value: String(m.port) },
      ]
    : [];
}

/**
 * What exits refuse besides the relays' ORPorts the consensus lists (issue
 * 12, network re-entry): every port of this testnet that is not an exit
 * target — authorities' DirPort (addressed by Service names, which relays do
 * not resolve), the SOCKS port of clients and load tests, the chart client's
 * HTTP tunnel port, and the ops ports
 * (/metrics) of the network's pods, onion services, load-test clients and
 * the operator (its default) — on any address, since pod IPs change.
 */
export function reentryRejectList(inp: NetworkInputs): string {
  const ports = new Set([
    DIR_PORT,
    SOCKS_PORT,
    HTTP_TUNNEL_PORT,
    inp.net.spec.metrics.port,
    ONION_OPS_PORT,
    CLIENT_OPS_PORT,
    OPERATOR_OPS_PORT,
  ]);
  return [...ports].map((p) => `*:${p}`).join(',');
}

function opsPorts(inp: NetworkInputs) {
  const m = inp.net.spec.metrics;
  return m.enabled ? [{ name: 'metrics', containerPort: m.port }] : [];
}

function probes(inp: NetworkInputs) {
  const m = inp.net.spec.metrics;
  return m.enabled ? opsProbes(m.port) : {};
}

function resources(r: unknown) {
  return r ? { resources: r } : {};
}

export function desiredAuthorityStatefulSet(inp: NetworkInputs): KubeObject {
  const net = inp.net.metadata.name;
  const spec = inp.net.spec;
  const labels = networkLabels(net, 'authority');
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(inp, authorityName(net), 'authority'),
    spec: {
      replicas: spec.authorities.replicas,
      serviceName: authorityName(net),
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: networkLabelsSelector(net, 'authority') },
      template: {
        metadata: {
          labels,
          annotations: {
            [ANN_AUTHORITIES_HASH]: shortHash(authorityListOf(inp)),
            [ANN_KEYS_HASH]: shortHash(inp.authorityIds.join(',')),
          },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurityContext,
          initContainers: [
            keyCopyInitContainer(inp.images.directory, inp.images.pullPolicy, '$POD_NAME.json', 'keys.json'),
          ],
          containers: [
            {
              name: 'authority',
              image: inp.images.directory,
              imagePullPolicy: inp.images.pullPolicy,
              env: [
                podNameEnv,
                { name: 'SHALLOT_KEY_FILE', value: `${DATA_DIR}/keys.json` },
                { name: 'SHALLOT_HOST', value: '0.0.0.0' },
                { name: 'SHALLOT_PORT', value: String(DIR_PORT) },
                authoritiesEnv(net),
                { name: 'SHALLOT_VOTING_INTERVAL', value: String(spec.authorities.votingIntervalSeconds) },
                { name: 'SHALLOT_NAME', value: '$(POD_NAME)' },
                ...opsEnv(inp),
                // NetworkFault pause, cut and slow: the link-fault table on the ops port, as relays take it.
                faultTokenEnv,
              ],
              ports: [{ name: 'dir', containerPort: DIR_PORT }, ...opsPorts(inp)],
              ...probes(inp),
              ...resources(spec.authorities.resources),
              volumeMounts: [{ name: 'data', mountPath: DATA_DIR }, faultTokenMount],
              securityContext: containerSecurityContext,
            },
          ],
          volumes: [...keyVolumes(authoritySecretName(net)), faultTokenVolume(net)],
        },
      },
    },
  };
}

/**
 * The StatefulSet of relays first..last (one pod): a single relay as before
 * pools when first === last, else a relay pool (relay-pool.ts).
 */
export function desiredRelayStatefulSet(inp: NetworkInputs, first: number, last = first): KubeObject {
  const net = inp.net.metadata.name;
  const spec = inp.net.spec;
  const i = first;
  const selector = { ...networkLabelsSelector(net, 'relay'), [LABEL_RELAY_INDEX]: String(i) };
  const labels = {
    ...networkLabels(net, 'relay'),
    [LABEL_RELAY_INDEX]: String(i),
    ...(last > first ? { [LABEL_RELAY_LAST]: String(last) } : {}),
  };
  const pool: PoolRelay[] = [];
  for (let r = first; r <= last; r++) {
    pool.push({
      index: r,
      nickname: relayNickname(net, r),
      exit: isExitIndex(r, spec.relays.exitFraction),
      secretName: relaySecretName(net, r),
    });
  }
  const anyExit = pool.some((r) => r.exit);
  const one =
    last > first
      ? null
      : {
          // Rotated onion keys arrive at KEY_WATCH (kubelet syncs the Secret within about a minute).
          env: [
            { name: 'SHALLOT_KEY_FILE', value: `${DATA_DIR}/keys.json` },
            { name: 'SHALLOT_KEY_WATCH', value: `${SECRET_MOUNT}/${RELAY_KEY_FILE}` },
            { name: 'SHALLOT_NICKNAME', value: relayNickname(net, i) },
          ],
          exitEnv: [{ name: 'SHALLOT_EXIT', value: anyExit ? '1' : '0' }],
        };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(inp, relayName(net, i), 'relay', { labels }),
    spec: {
      replicas: 1,
      serviceName: relayServiceName(net),
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels,
          annotations: {
            [ANN_AUTHORITIES_HASH]: shortHash(authorityListOf(inp)),
            ...(one
              ? { [ANN_IDENTITY]: inp.relayIdentities[i] ?? '' }
              : { [ANN_KEYS_HASH]: shortHash(inp.relayIdentities.slice(first, last + 1).join(',')) }),
          },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurityContext,
          initContainers: [
            one
              ? keyCopyInitContainer(inp.images.relay, inp.images.pullPolicy, 'keys.json', 'keys.json')
              : poolKeyCopyInitContainer(inp.images.relay, inp.images.pullPolicy, pool),
          ],
          containers: [
            {
              name: 'relay',
              image: inp.images.relay,
              imagePullPolicy: inp.images.pullPolicy,
              env: [
                ...(one
                  ? one.env
                  : [
                      podNameEnv,
                      // The process's own name (logs, the metrics' node label); each relay's is in the pool.
                      { name: 'SHALLOT_NICKNAME', value: '$(POD_NAME)' },
                      { name: 'SHALLOT_POOL', value: poolSpecJson(pool) },
                    ]),
                // The relay listens on and advertises its pod IP: that is what goes in its descriptor.
                { name: 'SHALLOT_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                ...(one ? [{ name: 'SHALLOT_PORT', value: String(OR_PORT) }] : []),
                authoritiesEnv(net),
                ...(one ? one.exitEnv : []),
                ...(anyExit ? [{ name: 'SHALLOT_REENTRY_REJECT', value: reentryRejectList(inp) }] : []),
                { name: 'SHALLOT_BANDWIDTH', value: String(spec.relays.bandwidth) },
                ...(spec.networkModel
                  ? [{ name: 'SHALLOT_NETWORK_MODEL_JSON', value: JSON.stringify(spec.networkModel) }]
                  : []),
                ...(spec.relays.bandwidthRate > 0
                  ? [{ name: 'SHALLOT_BANDWIDTH_RATE', value: String(spec.relays.bandwidthRate) }]
                  : []),
                ...(spec.relays.bandwidthRate > 0 && spec.relays.bandwidthBurst > 0
                  ? [{ name: 'SHALLOT_BANDWIDTH_BURST', value: String(spec.relays.bandwidthBurst) }]
                  : []),
                { name: 'SHALLOT_TLS', value: spec.tls ? '1' : '0' },
                ...opsEnv(inp),
                faultTokenEnv,
              ],
              ports: [...poolPorts(pool.length), ...opsPorts(inp)],
              ...probes(inp),
              ...resources(spec.relays.resources),
              volumeMounts: [
                { name: 'data', mountPath: DATA_DIR },
                // Without subPath: a subPath mount never sees the Secret's updates.
                { name: 'secret', mountPath: SECRET_MOUNT, readOnly: true },
                faultTokenMount,
              ],
              securityContext: containerSecurityContext,
            },
          ],
          volumes: [
            ...(one ? keyVolumes(relaySecretName(net, i)) : poolVolumes(pool)),
            faultTokenVolume(net),
          ],
        },
      },
    },
  };
}

/** Everything but the Secrets (which reconcile plans from the stored keys). */
export function desiredNetworkObjects(inp: NetworkInputs): KubeObject[] {
  const out = [desiredConfigMap(inp), ...desiredServices(inp), desiredAuthorityStatefulSet(inp)];
  for (const p of poolRanges(inp.relays, inp.net.spec.relays.relaysPerPod ?? 1)) {
    out.push(desiredRelayStatefulSet(inp, p.first, p.last));
  }
  return out;
}
