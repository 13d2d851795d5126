/**
 * NetworkFault (shallot.dev/v1alpha1): a fault on one node, or on the link
 * between two, of an OnionNetwork for a while (issue 18), as `shallot
 * fault` does locally.
 *
 * On Kubernetes a node fault acts on the node's pod (operator/reconcile/network-fault.ts):
 *   - stop:    the pod is deleted (graceful, the node's own shutdown) and
 *              deleted again whenever its controller recreates it, until
 *              durationSeconds have passed; then it is left to come back.
 *   - kill:    the same with gracePeriodSeconds 0 (no shutdown).
 *   - restart: the pod is deleted once; its controller starts a new one.
 * Pause, cut and slow act inside the nodes' link layer instead
 * (services/net/link-faults.ts), as in `shallot up`'s thread modes:
 *   - pause:   every link of the relay, authority or onion-service instance
 *              holds what it carries, either way, until the fault heals (then
 *              delivers it in order); a paused authority also leaves its
 *              DirPort's requests unanswered (connections open) and sends
 *              its peers nothing until then, as a stopped process would;
 *   - cut:     every link between `target` and `peer` resets, and none forms;
 *   - slow:    `delayMs` more one-way delay between `target` and `peer`.
 * A link joins two relays, or a relay and an authority (the authority's
 * reachability tests and bandwidth measurements of that relay: cut, the
 * relay fails that authority's test and it votes the relay down). Two
 * authorities have no link: they talk HTTP, which carries no node names.
 * The operator sends the network's whole link-fault table (every pause,
 * cut and slow in force) to every relay, authority and onion-service pod's
 * ops endpoint on each reconcile while one is in force, and once more
 * without it when it heals (reconcile/fault-table.ts), authenticated by the
 * token in the Secret `<net>-fault-token` (desired/fault-token.ts) those
 * pods mount. Nodes are named as their links announce themselves: a relay
 * by nickname, an authority by its pod's name (desired/network-fault.ts
 * linkNodeName).
 * Status records the phase (Pending, Active, Healed), when it started and
 * healed, how many pods it deleted (node faults) or took the table (link
 * faults); Events mark both ends. Deleting an active NetworkFault heals it
 * at once: a pause, cut or slow in force holds the finalizer
 * `shallot.dev/link-fault-table` (reconcile/fault-finalizer.ts), so even one
 * deleted while the operator is down stays until the operator has sent
 * every pod the table without it (bounded tries, then a Warning Event).
 *
 * Pause also takes an onion-service instance: the instance's links are
 * named by its pod's name (services/onion-service/main.ts, with a fault
 * token), which the fault records in status.node when it starts.
 *
 * Limitations: the directory's HTTP between nodes is cut or slowed by no
 * fault (only an authority's own pause holds it); a node needs the
 * network's metrics (ops endpoint) enabled; a paused onion-service instance
 * whose pod is replaced (a new name) is no longer paused. Stop, kill and
 * restart of an authority delete its StatefulSet pod, which comes back with
 * the same name, keys and address. A node-fault relay target is found by its
 * pod's shallot.dev/relay-index label, which names a pool pod's first relay:
 * with relaysPerPod > 1 only a pool's first relay can be stopped, killed or
 * restarted, and that takes down the whole pool (pause, cut and slow name
 * each pooled relay by its own nickname and touch only it).
 */
import { int, type JSONSchema, NAME_PATTERN, obj, type Resource, str } from './schema.js';

export const NETWORK_FAULT_KINDS = ['stop', 'kill', 'restart', 'pause', 'cut', 'slow'] as const;
export type NetworkFaultKind = (typeof NETWORK_FAULT_KINDS)[number];

/** Kinds applied through the relays' link-fault table rather than to pods. */
export const LINK_TABLE_KINDS = ['pause', 'cut', 'slow'] as const;
export type LinkTableKind = (typeof LINK_TABLE_KINDS)[number];
export const isLinkTableKind = (k: NetworkFaultKind): k is LinkTableKind =>
  (LINK_TABLE_KINDS as readonly string[]).includes(k);

/**
 * Largest extra delay of a slow link: services/net/link-faults.ts
 * MAX_SLOW_MS (the operator does not import net/; a unit test keeps them equal).
 */
export const MAX_SLOW_MS = 10_000;

export interface FaultTarget {
  authority?: number;
  relay?: number;
  onionService?: string;
  instance?: number;
}

export interface NetworkFaultSpec {
  /** OnionNetwork in the same namespace. */
  network: string;
  kind: NetworkFaultKind;
  /** Exactly one of authority (index), relay (index) or onionService (name; `instance` picks its pod). */
  target: FaultTarget;
  /** The link's other end (cut, slow): a relay, or an authority when target is a relay. */
  peer?: FaultTarget;
  /** A slow link's extra one-way delay, ms. */
  delayMs?: number;
  /** How long the fault lasts (all but restart). */
  durationSeconds: number;
}

export interface NetworkFaultStatus {
  observedGeneration?: number;
  phase?: 'Pending' | 'Active' | 'Healed';
  startedAt?: string;
  healedAt?: string;
  /** Pods deleted so far (stop, kill, restart). */
  podsDeleted?: number;
  /** Pods that took the link-fault table on the last send (pause, cut, slow). */
  podsUpdated?: number;
  /** A paused onion-service instance's name in the table: its pod, found when the fault started. */
  node?: string;
  message?: string;
}

export type NetworkFault = Resource<NetworkFaultSpec, NetworkFaultStatus>;

const index = (d: string) => int(d, 0, 999);

function targetSchema(description: string): JSONSchema {
  return obj(
    description,
    {
      authority: index('Directory authority index (pod <network>-auth-<i>).'),
      relay: index('Relay index (nickname <network>r<i>, label shallot.dev/relay-index).'),
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
  );
}

export const networkFaultSpecSchema: JSONSchema = obj(
  'The fault: what, on which node, for how long.',
  {
    network: str('OnionNetwork (same namespace) the node belongs to.', {
      minLength: 1,
      maxLength: 50,
      pattern: NAME_PATTERN,
    }),
    kind: str(
      'stop (graceful), kill (no grace), restart (once), pause (the node holds its links, and an authority its DirPort), cut or slow (the link between target and peer).',
      { enum: [...NETWORK_FAULT_KINDS] },
    ),
    target: targetSchema(
      'The faulted node (a link: one end). Exactly one of authority, relay or onionService.',
    ),
    peer: targetSchema("The link's other end (cut, slow): a relay, or an authority when target is a relay."),
    delayMs: int("A slow link's extra one-way delay, ms (slow only).", 1, MAX_SLOW_MS),
    durationSeconds: int('How long the fault lasts; restart ignores it.', 1, 3600, 60),
  },
  {
    required: ['network', 'kind', 'target'],
    // Every value here is one the operator applies: links join relays, or a relay and an authority.
    'x-kubernetes-validations': [
      {
        rule: "!(self.kind in ['cut', 'slow']) || !has(self.target.onionService)",
        message: 'cut and slow apply to links of relays and authorities (target.relay or target.authority)',
      },
      {
        rule: "(self.kind in ['cut', 'slow']) == has(self.peer)",
        message: "cut and slow need peer (the link's other end); other kinds take none",
      },
      {
        rule: '!has(self.peer) || !has(self.peer.onionService)',
        message: 'peer must be a relay or an authority',
      },
      {
        rule: '!has(self.peer) || !(has(self.peer.relay) && has(self.target.relay) && self.peer.relay == self.target.relay)',
        message: 'peer must be another relay',
      },
      {
        // Authorities talk to each other over HTTP, which carries no node names: only their links to relays are faultable.
        rule: '!has(self.peer) || !(has(self.peer.authority) && has(self.target.authority))',
        message:
          'a link joins a relay and a relay or an authority; two authorities have none (they talk HTTP)',
      },
      {
        rule: "(self.kind == 'slow') == has(self.delayMs)",
        message: 'slow needs delayMs; other kinds take none',
      },
    ],
  },
);

export const networkFaultStatusSchema: JSONSchema = obj('Observed state, written by the operator.', {
  observedGeneration: int('metadata.generation last reconciled.', 0, Number.MAX_SAFE_INTEGER),
  phase: str('Pending, Active or Healed.', { enum: ['Pending', 'Active', 'Healed'] }),
  startedAt: str('When the fault took effect.', { format: 'date-time' }),
  healedAt: str('When the fault ended.', { format: 'date-time' }),
  podsDeleted: int('Pods deleted so far (stop, kill, restart).', 0, Number.MAX_SAFE_INTEGER),
  podsUpdated: int(
    'Pods that took the link-fault table on the last send (pause, cut, slow).',
    0,
    Number.MAX_SAFE_INTEGER,
  ),
  node: str("A paused onion-service instance's name in the link-fault table: its pod.", { maxLength: 63 }),
  message: str('Why the fault is pending, or what it did.', { maxLength: 1024 }),
});

export const NETWORK_FAULT_COLUMNS = [
  { name: 'Network', type: 'string', jsonPath: '.spec.network' },
  { name: 'Kind', type: 'string', jsonPath: '.spec.kind' },
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Started', type: 'date', jsonPath: '.status.startedAt' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
