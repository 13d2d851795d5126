/**
 * LoadTest (shallot.dev/v1alpha1): a run of `shallot load` against an onion
 * service or an exit destination, as a Job; the summary lands in status.
 *
 * A LoadTest runs once: editing its spec after the Job exists changes
 * nothing (delete and recreate it to run again), like a Job itself.
 */

import { LOCATION_PATTERN } from '../../services/core/network-model.js';
import {
  bool,
  type Condition,
  conditionsSchema,
  int,
  type JSONSchema,
  NAME_PATTERN,
  num,
  obj,
  type Resource,
  type ResourceRequirements,
  resourcesSchema,
  str,
} from './schema.js';

export interface LoadTestSpec {
  /** OnionNetwork in the same namespace. */
  network: string;
  /** Exactly one of onionService (an OnionService's name) or address (host:port or x.onion[:port]). */
  target: { onionService?: string; address?: string };
  /** Pods, each with its own Shallot client (a Job's parallelism and completions). */
  clients: number;
  /** Requests in flight per client. */
  concurrency: number;
  /** Requests started per second per client; unset = unpaced. */
  rate?: number;
  durationSeconds: number;
  /** Requests per client; unset = bounded by durationSeconds only. */
  count?: number;
  /** Payload per request: 51200, 50k, 1MiB. */
  payloadSize: string;
  timeoutSeconds: number;
  /** The LoadTest fails (each client exits non-zero) when a smaller share of requests succeeds (`shallot load --min-success`). */
  minSuccess: number;
  newCircuit: boolean;
  /** Secret whose `*.auth_private` keys (Tor format) the clients use for onion services with client authorization. */
  clientAuthSecret?: string;
  /** The clients' location in the network's model (default: where the model places "client"). */
  location?: string;
  resources?: ResourceRequirements;
}

/** What one client reports (its termination message; see operator/desired/load-test.ts). */
export interface LoadSummary {
  requests: number;
  ok: number;
  failed: number;
  bytes: number;
  successRatio: number;
  requestsPerSec: number;
  /** Milliseconds, SOCKS connect to last byte (OnionPerf's TTLB). */
  ttlbMs: { p50: number | null; p90: number | null; p99: number | null };
  connectMs: { p50: number | null; p90: number | null; p99: number | null };
  failuresByReason: Record<string, number>;
}

export interface LoadTestStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  jobName?: string;
  startTime?: string;
  completionTime?: string;
  /** Sums over clients; percentiles are the worst client's. */
  summary?: LoadSummary & { clients: number };
}

export type LoadTest = Resource<LoadTestSpec, LoadTestStatus>;

const pct = (d: string): JSONSchema => ({ ...num(d, 0, 1e12), nullable: true });
const percentiles = obj('Percentiles (ms); null when no request got that far.', {
  p50: pct('Median.'),
  p90: pct('90th percentile.'),
  p99: pct('99th percentile.'),
});

export const loadTestSpecSchema: JSONSchema = obj(
  'The load to generate.',
  {
    network: str('OnionNetwork (same namespace) whose clients run the load.', {
      minLength: 1,
      maxLength: 50,
      pattern: NAME_PATTERN,
    }),
    target: obj(
      'Exactly one of onionService or address.',
      {
        onionService: str('OnionService name (same namespace).', {
          minLength: 1,
          maxLength: 63,
          pattern: NAME_PATTERN,
        }),
        address: str('host:port (through an exit) or <56 chars>.onion[:port].', {
          minLength: 1,
          maxLength: 300,
          pattern: '^[A-Za-z0-9._-]+(:[0-9]{1,5})?$',
        }),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: 'has(self.onionService) != has(self.address)',
            message: 'set exactly one of onionService and address',
          },
        ],
      },
    ),
    clients: int('Client pods (Job parallelism).', 1, 50, 1),
    concurrency: int('Requests in flight per client.', 1, 1000, 4),
    rate: num('Requests started per second per client (unset: unpaced).', 0.001, 100_000),
    durationSeconds: int('Stop starting requests after this long.', 1, 86_400, 60),
    count: int('Requests per client (unset: duration only).', 1, 10_000_000),
    payloadSize: str('Payload per request: 51200, 50k, 1MiB.', {
      default: '50k',
      pattern: '^[0-9]+([kKmMgG](i?[bB])?|[bB])?$',
    }),
    timeoutSeconds: int('Per-request timeout.', 1, 3600, 60),
    minSuccess: num(
      'Fail when a smaller share of requests succeeds (each client exits non-zero, the Job and the LoadTest fail); 0 never fails. As `shallot load --min-success`.',
      0,
      1,
      0.99,
    ),
    newCircuit: bool('A fresh circuit per request.', false),
    clientAuthSecret: str(
      'Secret (same namespace) whose *.auth_private keys ("<address>:descriptor:x25519:<key>", as `shallot client-auth` writes) the clients hold, for targets with client authorization.',
      { minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' },
    ),
    location: str(
      'The clients\' location in the network\'s spec.networkModel, so their links get its latency (README: Realistic networks); unset: where the model places "client" (explicitly or by its seeded draw). Ignored without a model.',
      { minLength: 1, maxLength: 63, pattern: LOCATION_PATTERN },
    ),
    resources: resourcesSchema,
  },
  { required: ['network', 'target'] },
);

export const loadSummarySchema: JSONSchema = obj('Sums over clients; percentiles are the worst client.', {
  clients: int('Clients that reported.', 0, 1000),
  requests: int('Requests made.', 0, Number.MAX_SAFE_INTEGER),
  ok: int('Requests that succeeded.', 0, Number.MAX_SAFE_INTEGER),
  failed: int('Requests that failed.', 0, Number.MAX_SAFE_INTEGER),
  bytes: int('Body bytes received.', 0, Number.MAX_SAFE_INTEGER),
  successRatio: num('ok / requests.', 0, 1),
  requestsPerSec: num('Completed requests per second.', 0, 1e12),
  ttlbMs: percentiles,
  connectMs: percentiles,
  failuresByReason: { type: 'object', additionalProperties: { type: 'integer' } },
});

export const loadTestStatusSchema: JSONSchema = obj('Observed state, written by the operator.', {
  observedGeneration: int('metadata.generation last reconciled.', 0, Number.MAX_SAFE_INTEGER),
  conditions: conditionsSchema,
  phase: str('Pending, Running, Succeeded or Failed.', {
    enum: ['Pending', 'Running', 'Succeeded', 'Failed'],
  }),
  jobName: str('The Job running the load.', { maxLength: 63 }),
  startTime: str('When the Job was created.', { format: 'date-time' }),
  completionTime: str('When the Job finished.', { format: 'date-time' }),
  summary: loadSummarySchema,
});

export const LOAD_TEST_COLUMNS = [
  { name: 'Network', type: 'string', jsonPath: '.spec.network' },
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Requests', type: 'integer', jsonPath: '.status.summary.requests' },
  { name: 'Success', type: 'number', jsonPath: '.status.summary.successRatio' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
