/**
 * OnionNetwork (shallot.dev/v1alpha1): one Shallot network — directory
 * authorities, relays, the authority list, key rotation and autoscaling.
 *
 * Overview: the types below are what the operator reads and writes; the
 * schema beside them is what the apiserver enforces (defaults, ranges,
 * enums, cross-field rules in CEL).
 */
import {
  bool,
  type Condition,
  conditionsSchema,
  int,
  type JSONSchema,
  num,
  obj,
  type Resource,
  type ResourceRequirements,
  resourcesSchema,
  str,
} from './schema.js';

export interface AutoscaleSpec {
  /** Fewest relays the autoscaler keeps. */
  min: number;
  /** Most relays the autoscaler creates. */
  max: number;
  /** Wanted mean of shallot_relay_circuits_active per relay. */
  targetCircuitsPerRelay: number;
}

/** The network model as services/core/network-model.ts parses it (the relay checks the rest). */
export interface NetworkModelSpec {
  locations: string[];
  links?: { from: string; to: string; latencyMs: number; jitterMs?: number }[];
  defaultLatencyMs?: number;
  defaultJitterMs?: number;
  /** Relay nickname -> location. */
  nodes?: Record<string, string>;
  assign?: 'random' | 'explicit';
  seed?: number;
  /** Relay nickname -> BandwidthRate (bytes/s) and BandwidthBurst (bytes). */
  bandwidth?: Record<string, { rate: number; burst?: number }>;
}

export interface OnionNetworkSpec {
  authorities: {
    replicas: number;
    votingIntervalSeconds: number;
    resources?: ResourceRequirements;
  };
  relays: {
    replicas: number;
    /** Share of relays that exit (to the testnet exit policy), spread evenly over relay indices. */
    exitFraction: number;
    /** Advertised bandwidth per relay, bytes/s. */
    bandwidth: number;
    /** Each relay's BandwidthRate on its link reads, bytes/s (C tor's; 0: unlimited, else at least 76800). */
    bandwidthRate: number;
    /** Each relay's BandwidthBurst, bytes (0: the rate, as C tor). */
    bandwidthBurst: number;
    /**
     * Relays per pod (a relay pool, services/relay/pool.ts); replicas still
     * counts relays, in ceil(replicas / relaysPerPod) pods. 1: a pod per relay.
     */
    relaysPerPod: number;
    /** Per pod: with relaysPerPod > 1 a pool's relays share these. */
    resources?: ResourceRequirements;
    autoscale?: AutoscaleSpec;
  };
  keyRotation: {
    /** Relay ntor onion keys; 0 = never. */
    onionKeyIntervalMinutes: number;
    /** Authority signing (identity) keys; 0 = never. */
    authorityKeyIntervalMinutes: number;
    /** How long a replaced key stays in its Secret. */
    gracePeriodMinutes: number;
  };
  metrics: {
    enabled: boolean;
    port: number;
  };
  /** Links over TLS WebSocket (wss); false only for debugging. */
  tls: boolean;
  /**
   * Latency between locations, relay placement and per-relay bandwidth
   * (services/core/network-model.ts); relays are named by their nicknames.
   */
  networkModel?: NetworkModelSpec;
}

export interface OnionNetworkStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  authorities?: { desired: number; ready: number };
  relays?: { desired: number; ready: number; exits: number; retiring: number };
  /** "hexid@host:port,..." as relays and clients take it (also in ConfigMap <name>-network). */
  authorityList?: string;
  keyRotation?: {
    lastOnionKeyRotation?: string;
    lastAuthorityKeyRotation?: string;
    onionKeyRotations?: number;
    authorityKeyRotations?: number;
  };
  autoscale?: {
    /** Mean shallot_relay_circuits_active over relays scraped last time. */
    signal?: number;
    desired?: number;
    lastScaleTime?: string;
    /** Recent recommendations (time, replicas) inside the scale-down window. */
    recommendations?: { time: string; replicas: number }[];
  };
}

export type OnionNetwork = Resource<OnionNetworkSpec, OnionNetworkStatus>;

/** Relays in one network: thousands fit a small cluster in pools (issue 17). */
export const MAX_RELAYS = 5000;
/** A pool's relays listen on ORPorts 9001.. one each: 32 keeps them below the SOCKS port 9050. */
export const MAX_RELAYS_PER_POD = 32;

export const onionNetworkSpecSchema: JSONSchema = obj(
  'The network to run.',
  {
    authorities: obj(
      'Directory authorities: one StatefulSet, a headless Service, keys in Secret <name>-auth-keys.',
      {
        replicas: int('Number of authorities (a majority must sign each consensus).', 1, 9, 3),
        votingIntervalSeconds: int('Seconds between consensuses.', 10, 86_400, 60),
        resources: resourcesSchema,
      },
      { default: {} },
    ),
    relays: obj(
      'Relays: one single-replica StatefulSet per pod of relaysPerPod relays, a key Secret per relay.',
      {
        replicas: int('Number of relays (the starting point when autoscale is set).', 0, MAX_RELAYS, 5),
        exitFraction: num('Share of relays that are exits.', 0, 1, 0.34),
        bandwidth: int('Advertised bandwidth per relay, bytes/s.', 1, 1_099_511_627_776, 1_000_000),
        bandwidthRate: int(
          "Each relay's BandwidthRate on reads from its links, bytes/s (C tor's; 0: unlimited, else at least 76800); caps the advertised bandwidth.",
          0,
          1_099_511_627_776,
          0,
        ),
        bandwidthBurst: int(
          "Each relay's BandwidthBurst, bytes (0: the rate, as C tor).",
          0,
          1_099_511_627_776,
          0,
        ),
        relaysPerPod: int(
          'Relays in one pod (a relay pool: fewer pods and less memory; a pod failure takes them all down).',
          1,
          MAX_RELAYS_PER_POD,
          1,
        ),
        resources: resourcesSchema,
        autoscale: obj(
          'Scale relays on mean shallot_relay_circuits_active (see operator/autoscale.ts).',
          {
            min: int('Fewest relays.', 1, MAX_RELAYS),
            max: int('Most relays.', 1, MAX_RELAYS),
            targetCircuitsPerRelay: int('Wanted active circuits per relay.', 1, 1_000_000, 50),
          },
          {
            required: ['min', 'max'],
            'x-kubernetes-validations': [{ rule: 'self.min <= self.max', message: 'min must be <= max' }],
          },
        ),
      },
      {
        default: {},
        // C tor's rules (options_validate_relay_bandwidth), as runtime/shaping-options.ts checks them.
        // has(): the apiserver checks the rules against the default `{}`
        // too, where the fields' own defaults are not filled in.
        'x-kubernetes-validations': [
          {
            rule: '!has(self.bandwidthRate) || self.bandwidthRate == 0 || self.bandwidthRate >= 76800',
            message: 'bandwidthRate must be 0 or at least 76800 (75 KiB/s)',
          },
          {
            rule: '!has(self.bandwidthBurst) || self.bandwidthBurst == 0 || self.bandwidthBurst >= (has(self.bandwidthRate) ? self.bandwidthRate : 0)',
            message: 'bandwidthBurst must be 0 or at least bandwidthRate',
          },
        ],
      },
    ),
    keyRotation: obj(
      'Scheduled key rotation; the replaced key stays in its Secret for the grace period.',
      {
        onionKeyIntervalMinutes: int('Rotate relay onion keys this often; 0 never.', 0, 525_600, 0),
        authorityKeyIntervalMinutes: int('Rotate authority signing keys this often; 0 never.', 0, 525_600, 0),
        gracePeriodMinutes: int('Keep a replaced key this long.', 1, 10_080, 60),
      },
      { default: {} },
    ),
    metrics: obj(
      'Prometheus endpoints of the network pods.',
      {
        enabled: bool('Serve /metrics (and probes) on the ops port.', true),
        port: int('Ops port (/metrics, /healthz, /readyz).', 1024, 65_535, 9100),
      },
      { default: {} },
    ),
    tls: bool('Links over TLS WebSocket; false only for debugging.', true),
    networkModel: obj(
      'Link latency and relay bandwidth inside Shallot (README: Realistic networks): named locations, one-way latency and jitter between them, relays placed by nickname or a seeded draw.',
      {
        locations: { type: 'array', items: str('A location name.', { maxLength: 63 }), maxItems: 256 },
        links: {
          type: 'array',
          maxItems: 4096,
          items: obj(
            'One-way latency between two locations (both ways).',
            {
              from: str('A location.', { maxLength: 63 }),
              to: str('A location.', { maxLength: 63 }),
              latencyMs: num('One-way latency, ms.', 0, 10_000),
              jitterMs: num('Uniform jitter, +- ms.', 0, 10_000),
            },
            { required: ['from', 'to', 'latencyMs'] },
          ),
        },
        defaultLatencyMs: num('Latency of every pair not listed, ms.', 0, 10_000),
        defaultJitterMs: num('Jitter of every pair not listed, ms.', 0, 10_000),
        // additionalProperties alone: Kubernetes refuses it beside properties.
        nodes: {
          type: 'object',
          description: 'Relay nickname -> location.',
          additionalProperties: str('A location.'),
        },
        assign: str('"random": relays not in nodes are placed by a draw seeded with seed.', {
          enum: ['random', 'explicit'],
        }),
        seed: int('Seed of the random placement.', 0, 2 ** 31),
        bandwidth: {
          type: 'object',
          description: 'Relay nickname -> its BandwidthRate (bytes/s) and optional BandwidthBurst (bytes).',
          additionalProperties: obj(
            'BandwidthRate and BandwidthBurst.',
            { rate: int('Bytes/s.', 76_800, 2 ** 40), burst: int('Bytes.', 1, 2 ** 40) },
            { required: ['rate'] },
          ),
        },
      },
      { required: ['locations'] },
    ),
  },
  { default: {} },
);

export const onionNetworkStatusSchema: JSONSchema = obj('Observed state, written by the operator.', {
  observedGeneration: int('metadata.generation last reconciled.', 0, Number.MAX_SAFE_INTEGER),
  conditions: conditionsSchema,
  authorities: obj('Authorities.', {
    desired: int('Wanted.', 0, 100),
    ready: int('Ready pods.', 0, 100),
  }),
  relays: obj('Relays.', {
    desired: int('Wanted (spec or autoscaler).', 0, MAX_RELAYS),
    ready: int('Relays in ready pods.', 0, MAX_RELAYS),
    exits: int('Exits among the wanted relays.', 0, MAX_RELAYS),
    retiring: int('Relays being removed (waiting for their pod to go).', 0, MAX_RELAYS),
  }),
  authorityList: str('"hexid@host:port,..." for SHALLOT_AUTHORITIES.', { maxLength: 8192 }),
  keyRotation: obj('Key rotation record.', {
    lastOnionKeyRotation: str('Last relay onion-key rotation.', { format: 'date-time' }),
    lastAuthorityKeyRotation: str('Last authority-key rotation.', { format: 'date-time' }),
    onionKeyRotations: int('Relay onion keys rotated.', 0, Number.MAX_SAFE_INTEGER),
    authorityKeyRotations: int('Authority keys rotated.', 0, Number.MAX_SAFE_INTEGER),
  }),
  autoscale: obj('Autoscaler state (when spec.relays.autoscale is set).', {
    signal: num('Mean active circuits per relay.', 0, 1e12),
    desired: int('Relays the autoscaler wants.', 0, MAX_RELAYS),
    lastScaleTime: str('Last change of desired.', { format: 'date-time' }),
    recommendations: {
      type: 'array',
      maxItems: 64,
      items: obj(
        'One recommendation.',
        { time: str('When.', { format: 'date-time' }), replicas: int('Relays.', 0, MAX_RELAYS) },
        { required: ['time', 'replicas'] },
      ),
    },
  }),
});

export const ONION_NETWORK_COLUMNS = [
  { name: 'Authorities', type: 'integer', jsonPath: '.status.authorities.ready' },
  { name: 'Relays', type: 'integer', jsonPath: '.status.relays.desired' },
  { name: 'Ready Relays', type: 'integer', jsonPath: '.status.relays.ready' },
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
