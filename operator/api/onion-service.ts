/**
 * OnionService (shallot.dev/v1alpha1): a v3 onion service on an
 * OnionNetwork — a Deployment of instances sharing one identity Secret;
 * the onion address (derived from that identity) goes into status.
 */
import { LOCATION_PATTERN } from '../../services/core/network-model.js';
import {
  type Condition,
  conditionsSchema,
  int,
  type JSONSchema,
  NAME_PATTERN,
  obj,
  type Resource,
  type ResourceRequirements,
  resourcesSchema,
  str,
} from './schema.js';

export interface OnionServiceSpec {
  /** OnionNetwork in the same namespace. */
  network: string;
  /** Instances (pods) serving the same address. */
  instances: number;
  /** Introduction points per instance. */
  introPoints: number;
  /** The onion port clients connect to. */
  virtualPort: number;
  backend: {
    type: 'builtin' | 'tcp';
    host?: string;
    port?: number;
  };
  keyRotation: {
    /** Restart instances onto fresh introduction-point keys this often; 0 never. */
    introKeyIntervalMinutes: number;
  };
  /** Client authorization: only these clients' x25519 keys open the descriptor (none: anyone). */
  authorizedClients?: AuthorizedClient[];
  /** The instances' location in the network's model (default: where the model places the service's name). */
  location?: string;
  resources?: ResourceRequirements;
}

export interface AuthorizedClient {
  /** Names the client's `.auth` file. */
  name: string;
  /** The client's x25519 public key in base32, as in Tor's `descriptor:x25519:<key>`. */
  publicKey: string;
}

/** Enough for a descriptor under the 50 000-byte HSDir cap (about 85 bytes per client line). */
export const MAX_AUTHORIZED_CLIENTS = 200;

export interface OnionServiceStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** "<56 base32 chars>.onion". */
  onionAddress?: string;
  instances?: { desired: number; ready: number };
  /** Clients allowed by client authorization (0: open to anyone with the address). */
  authorizedClients?: number;
  keyRotation?: { lastIntroKeyRotation?: string; introKeyRotations?: number };
}

export type OnionService = Resource<OnionServiceSpec, OnionServiceStatus>;

export const onionServiceSpecSchema: JSONSchema = obj(
  'The onion service to run.',
  {
    network: str('OnionNetwork (same namespace) the service runs on.', {
      minLength: 1,
      maxLength: 50,
      pattern: NAME_PATTERN,
    }),
    instances: int('Instances sharing the identity key.', 1, 20, 2),
    introPoints: int('Introduction points per instance.', 1, 20, 3),
    virtualPort: int('Onion port clients connect to.', 1, 65_535, 80),
    backend: obj(
      'Where streams go: the built-in HTTP test server, or a TCP host:port.',
      {
        type: str('builtin or tcp.', { enum: ['builtin', 'tcp'], default: 'builtin' }),
        host: str('TCP backend host (type tcp).', { minLength: 1, maxLength: 253 }),
        port: int('TCP backend port (type tcp).', 1, 65_535),
      },
      {
        default: { type: 'builtin' },
        'x-kubernetes-validations': [
          {
            rule: "!has(self.type) || self.type != 'tcp' || (has(self.host) && has(self.port))",
            message: 'a tcp backend needs host and port',
          },
        ],
      },
    ),
    keyRotation: obj(
      'Scheduled rotation of introduction-point keys (a rolling restart of the instances).',
      {
        introKeyIntervalMinutes: int('Rotate intro keys this often; 0 never.', 0, 525_600, 0),
      },
      { default: {} },
    ),
    authorizedClients: {
      type: 'array',
      description:
        'Client authorization (rend-spec-v3 §2.5.1.2): only clients holding one of these keys can read the descriptor; others get SOCKS F4/F5. Make a pair with `shallot client-auth <address>`.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      maxItems: MAX_AUTHORIZED_CLIENTS,
      items: obj(
        'One authorized client.',
        {
          name: str('File name of the client key (letters, digits, "-", "_").', {
            pattern: '^[A-Za-z0-9_-]{1,64}$',
          }),
          publicKey: str('x25519 public key, 52 base32 characters (the part after "descriptor:x25519:").', {
            pattern: '^[A-Za-z2-7]{52}$',
          }),
        },
        { required: ['name', 'publicKey'] },
      ),
    },
    location: str(
      "The instances' location in the network's spec.networkModel, so their links (intro, rendezvous and HSDir circuits) get its latency (README: Realistic networks); unset: where the model places this OnionService's name (explicitly or by its seeded draw). Ignored without a model.",
      { minLength: 1, maxLength: 63, pattern: LOCATION_PATTERN },
    ),
    resources: resourcesSchema,
  },
  { required: ['network'] },
);

export const onionServiceStatusSchema: JSONSchema = obj('Observed state, written by the operator.', {
  observedGeneration: int('metadata.generation last reconciled.', 0, Number.MAX_SAFE_INTEGER),
  conditions: conditionsSchema,
  onionAddress: str('The v3 onion address.', { maxLength: 62 }),
  instances: obj('Instances.', {
    desired: int('Wanted.', 0, 100),
    ready: int('Ready pods.', 0, 100),
  }),
  authorizedClients: int(
    'Clients allowed by client authorization; 0 open to anyone.',
    0,
    MAX_AUTHORIZED_CLIENTS,
  ),
  keyRotation: obj('Key rotation record.', {
    lastIntroKeyRotation: str('Last intro-key rotation.', { format: 'date-time' }),
    introKeyRotations: int('Intro-key rotations.', 0, Number.MAX_SAFE_INTEGER),
  }),
});

export const ONION_SERVICE_COLUMNS = [
  { name: 'Network', type: 'string', jsonPath: '.spec.network' },
  { name: 'Instances', type: 'integer', jsonPath: '.status.instances.ready' },
  { name: 'Address', type: 'string', jsonPath: '.status.onionAddress' },
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
