/**
 * NetworkFault (shallot.dev/v1alpha1): a fault on one node of an
 * OnionNetwork for a while (issue 18), as `shallot fault` does locally.
 *
 * On Kubernetes a fault acts on the node's pod (operator/reconcile/network-fault.ts):
 *   - stop:    the pod is deleted (graceful, the node's own shutdown) and
 *              deleted again whenever its controller recreates it, until
 *              durationSeconds have passed; then it is left to come back.
 *   - kill:    the same with gracePeriodSeconds 0 (no shutdown).
 *   - restart: the pod is deleted once; its controller starts a new one.
 * Status records the phase (Pending, Active, Healed), when it started and
 * healed and how many pods it deleted; Events mark both ends. Deleting an
 * active NetworkFault heals it at once.
 *
 * Limitations: pause (hang with links open) and cut/slow of one link need
 * the node's control endpoint and are not offered here yet. A relay target
 * is found by its pod's shallot.dev/relay-index label, which names a pool
 * pod's first relay: with relaysPerPod > 1 only a pool's first relay can
 * be named, and the fault takes down the whole pool.
 */
import { int, type JSONSchema, NAME_PATTERN, obj, type Resource, str } from './schema.js';

export const NETWORK_FAULT_KINDS = ['stop', 'kill', 'restart'] as const;
export type NetworkFaultKind = (typeof NETWORK_FAULT_KINDS)[number];

export interface NetworkFaultSpec {
  /** OnionNetwork in the same namespace. */
  network: string;
  kind: NetworkFaultKind;
  /** Exactly one of authority (index), relay (index) or onionService (name; `instance` picks its pod). */
  target: { authority?: number; relay?: number; onionService?: string; instance?: number };
  /** How long the node stays down (stop, kill); ignored by restart. */
  durationSeconds: number;
}

export interface NetworkFaultStatus {
  observedGeneration?: number;
  phase?: 'Pending' | 'Active' | 'Healed';
  startedAt?: string;
  healedAt?: string;
  /** Pods deleted so far. */
  podsDeleted?: number;
  message?: string;
}

export type NetworkFault = Resource<NetworkFaultSpec, NetworkFaultStatus>;

const index = (d: string) => int(d, 0, 999);

export const networkFaultSpecSchema: JSONSchema = obj(
  'The fault: what, on which node, for how long.',
  {
    network: str('OnionNetwork (same namespace) the node belongs to.', {
      minLength: 1,
      maxLength: 50,
      pattern: NAME_PATTERN,
    }),
    kind: str('stop (graceful), kill (no grace) or restart (once).', { enum: [...NETWORK_FAULT_KINDS] }),
    target: obj(
      'Exactly one of authority, relay or onionService.',
      {
        authority: index('Directory authority index (pod <network>-auth-<i>).'),
        relay: index('Relay index (label shallot.dev/relay-index).'),
        onionService: str('OnionService name (same namespace).', {
          minLength: 1,
          maxLength: 63,
          pattern: NAME_PATTERN,
        }),
        instance: index("Which of the onion service's pods, by name order (default 0)."),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: '(has(self.authority) ? 1 : 0) + (has(self.relay) ? 1 : 0) + (has(self.onionService) ? 1 : 0) == 1',
            message: 'set exactly one of authority, relay and onionService',
          },
        ],
      },
    ),
    durationSeconds: int('How long the node stays down (stop, kill); restart ignores it.', 1, 3600, 60),
  },
  { required: ['network', 'kind', 'target'] },
);

export const networkFaultStatusSchema: JSONSchema = obj('Observed state, written by the operator.', {
  observedGeneration: int('metadata.generation last reconciled.', 0, Number.MAX_SAFE_INTEGER),
  phase: str('Pending, Active or Healed.', { enum: ['Pending', 'Active', 'Healed'] }),
  startedAt: str('When the fault took effect.', { format: 'date-time' }),
  healedAt: str('When the fault ended.', { format: 'date-time' }),
  podsDeleted: int('Pods deleted so far.', 0, Number.MAX_SAFE_INTEGER),
  message: str('Why the fault is pending, or what it did.', { maxLength: 1024 }),
});

export const NETWORK_FAULT_COLUMNS = [
  { name: 'Network', type: 'string', jsonPath: '.spec.network' },
  { name: 'Kind', type: 'string', jsonPath: '.spec.kind' },
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Started', type: 'date', jsonPath: '.status.startedAt' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
