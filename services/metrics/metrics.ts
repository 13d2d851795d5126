/**
 * Every Shallot metric, defined once: name, help, labels and buckets
 * (README: "Dashboards and metrics"). Names follow C tor's MetricsPort
 * (relay_metrics.c, hs_metrics_entry.c) and OnionPerf's fields where they
 * overlap, prefixed `shallot_`.
 *
 * Design notes: several nodes may share a process (the local launcher and
 * the integration tests run whole networks in one process), so metrics are
 * created once per prom-client Registry and every node-scoped metric
 * carries the node's name as a label (`relay`, `authority`, `service`), so
 * one query shows load per relay without joins.
 *
 * The client's and the relay's metrics are defined in client-metrics.ts
 * and relay-metrics.ts; the other roles' here.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './buckets.js';
import { clientMetrics } from './client-metrics.js';
import { relayMetrics } from './relay-metrics.js';

function build(registry: Registry) {
  const r = [registry];
  return {
    client: clientMetrics(r),
    relay: relayMetrics(r),
    service: {
      descriptorUploads: new Counter({
        name: 'shallot_hs_descriptor_upload_total',
        help: 'Onion-service descriptor uploads to HSDirs by outcome.',
        labelNames: ['service', 'outcome'] as const,
        registers: r,
      }),
      introRequests: new Counter({
        name: 'shallot_hs_intro_requests_total',
        help: 'INTRODUCE2 cells received by outcome (accepted, replay, rend_cookie_replay, bad_mac, rate_limited, invalid; bad_mac and invalid are junk, which never enters a replay cache), per service instance.',
        labelNames: ['service', 'service_instance', 'outcome'] as const,
        registers: r,
      }),
      rend: new Counter({
        name: 'shallot_hs_rend_total',
        help: 'Rendezvous circuits built by the service, by outcome, per service instance (how load spreads over instances).',
        labelNames: ['service', 'service_instance', 'outcome'] as const,
        registers: r,
      }),
      introPoints: new Gauge({
        name: 'shallot_hs_intro_points',
        help: 'Established introduction points of this service instance (label service_instance: Prometheus owns "instance").',
        labelNames: ['service', 'service_instance'] as const,
        registers: r,
      }),
      // INTRODUCE2 defences (issue 12): intro points rotated after their budget.
      introRotations: new Counter({
        name: 'shallot_hs_intro_rotations_total',
        help: 'Intro points replaced by the service, by reason (budget: hs_intro_max_introduce2 introductions; lifetime: hs_intro_max_lifetime).',
        labelNames: ['service', 'reason'] as const,
        registers: r,
      }),
      // Rendezvous retries (issue 13): C tor hs_circ_retry_service_rendezvous_point.
      rendRetries: new Counter({
        name: 'shallot_hs_rend_retries_total',
        help: 'Rendezvous circuits relaunched by the service after one failed to build (at most hs_service_max_rdv_failures builds per introduction, within 30 s).',
        labelNames: ['service', 'service_instance'] as const,
        registers: r,
      }),
      // Instances sharing intro points over the network (issue 14): peers merged, records refused.
      instancePeers: new Gauge({
        name: 'shallot_hs_instance_peers',
        help: 'Other instances of this service whose fresh records this instance merges into its descriptors.',
        labelNames: ['service', 'service_instance'] as const,
        registers: r,
      }),
      descriptorIntroPoints: new Gauge({
        name: 'shallot_hs_descriptor_intro_points',
        help: "Intro points listed in the last descriptor this instance uploaded with at least one HSDir accepting: its own and its peers' instances'.",
        labelNames: ['service', 'service_instance'] as const,
        registers: r,
      }),
      instanceRecordsRefused: new Counter({
        name: 'shallot_hs_instance_records_refused_total',
        help: 'Instance records fetched from peers and refused, by reason (bad_signature, stale, future, oversized, malformed).',
        labelNames: ['service', 'service_instance', 'reason'] as const,
        registers: r,
      }),
    },
    directory: {
      consensusRelays: new Gauge({
        name: 'shallot_consensus_relays',
        help: 'Relays listed in the latest consensus, total and per flag (flag="all" for the total).',
        labelNames: ['authority', 'flag'] as const,
        registers: r,
      }),
      consensusAge: new Gauge({
        name: 'shallot_consensus_age_seconds',
        help: 'Seconds since the valid-after time of the latest consensus.',
        labelNames: ['authority'] as const,
        registers: r,
      }),
      roundCompute: new Gauge({
        name: 'shallot_dir_round_compute_seconds',
        help: "Wall time of the latest voting round's own computation, by step: vote (flags and the signed vote, after the reachability re-tests) and consensus (computing and signing it from the votes).",
        labelNames: ['authority', 'step'] as const,
        registers: r,
      }),
      consensusSignatures: new Gauge({
        name: 'shallot_consensus_signatures',
        help: 'Authority signatures on the latest consensus.',
        labelNames: ['authority'] as const,
        registers: r,
      }),
      descriptors: new Counter({
        name: 'shallot_dir_descriptors_total',
        help: 'Relay descriptors received by outcome (accepted, rejected).',
        labelNames: ['authority', 'outcome'] as const,
        registers: r,
      }),
      // Authority admission (issue 12): refusals, reachability tests, bandwidth.
      descriptorsRefused: new Counter({
        name: 'shallot_dir_descriptors_refused_total',
        help: 'Relay descriptors refused or dropped by reason (invalid, not-newer, too-many-relays, unverified-full, address-taken, unreachable, wrong-identity).',
        labelNames: ['authority', 'reason'] as const,
        registers: r,
      }),
      unverifiedDescriptors: new Gauge({
        name: 'shallot_dir_unverified_descriptors',
        help: 'Descriptors stored while their reachability test is pending.',
        labelNames: ['authority'] as const,
        registers: r,
      }),
      reachabilityProbes: new Counter({
        name: 'shallot_dir_reachability_probes_total',
        help: 'Reachability tests (link handshake with the identity checked) by result (up, refused, timeout, wrong-identity, failed).',
        labelNames: ['authority', 'result'] as const,
        registers: r,
      }),
      bandwidthMeasurements: new Counter({
        name: 'shallot_dir_bandwidth_measurements_total',
        help: 'Bandwidth measurements of relays by result (ok, failed).',
        labelNames: ['authority', 'result'] as const,
        registers: r,
      }),
      bandwidthCapped: new Gauge({
        name: 'shallot_dir_vote_bandwidth_capped_relays',
        help: 'Relays in the latest vote whose claimed bandwidth exceeded the believable cap (10 MB/s).',
        labelNames: ['authority'] as const,
        registers: r,
      }),
      voteRelaysOmitted: new Gauge({
        name: 'shallot_dir_vote_relays_not_running',
        help: 'Relays the latest vote did not call Running, by reason (unreachable, sybil: over AuthDirMaxServersPerAddr).',
        labelNames: ['authority', 'reason'] as const,
        registers: r,
      }),
      peerDocumentsRefused: new Counter({
        name: 'shallot_dir_peer_documents_refused_total',
        help: 'Votes and consensus signatures refused, by kind and reason (bad-signature, unknown-authority, ...).',
        labelNames: ['authority', 'kind', 'reason'] as const,
        registers: r,
      }),
    },
    // -- The network model itself (issue 18): metrics/model-series.ts, set by every node that has one.
    model: {
      latency: new Gauge({
        name: 'shallot_network_model_latency_seconds',
        help: 'The network model: one-way latency between two locations, seconds (links are symmetric: one series per pair, from <= to; models of at most 32 locations).',
        labelNames: ['from', 'to'] as const,
        registers: r,
      }),
      jitter: new Gauge({
        name: 'shallot_network_model_jitter_seconds',
        help: 'The network model: jitter (uniform +-) between two locations, seconds; one series per pair, from <= to.',
        labelNames: ['from', 'to'] as const,
        registers: r,
      }),
    },
    // -- Faults on demand (issue 18): the local launcher (testnet/fault.ts) and the operator's NetworkFault.
    faults: {
      active: new Gauge({
        name: 'shallot_fault_active',
        help: 'A fault in force (1 from injection until it heals), by kind (stop, kill, pause, restart on a node; cut, slow on a link) and target (the node, or a link\'s two nodes as "a~b"): a Grafana annotation marks its start and end.',
        labelNames: ['kind', 'target'] as const,
        registers: r,
      }),
      started: new Counter({
        name: 'shallot_faults_started_total',
        help: 'Faults injected, by kind.',
        labelNames: ['kind'] as const,
        registers: r,
      }),
    },
    operator: {
      reconciles: new Counter({
        name: 'shallot_operator_reconcile_total',
        help: 'Reconciles by resource kind and result (success, error, requeue).',
        labelNames: ['kind', 'result'] as const,
        registers: r,
      }),
      reconcileSeconds: new Histogram({
        name: 'shallot_operator_reconcile_seconds',
        help: 'Reconcile duration by resource kind.',
        labelNames: ['kind'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      relays: new Gauge({
        name: 'shallot_operator_relays',
        help: 'Relays per network by state (desired, ready).',
        labelNames: ['namespace', 'network', 'state'] as const,
        registers: r,
      }),
      keyRotations: new Counter({
        name: 'shallot_operator_key_rotations_total',
        help: 'Key rotations performed, by key kind (onion, authority-signing, intro).',
        labelNames: ['namespace', 'network', 'key'] as const,
        registers: r,
      }),
    },
  };
}

export type Metrics = ReturnType<typeof build>;

const byRegistry = new WeakMap<Registry, Metrics>();

/** The metric set registered in `registry`, created on first use. */
export function metricsFor(registry: Registry): Metrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = build(registry);
    byRegistry.set(registry, m);
  }
  return m;
}

/** A registry with process metrics (CPU, memory) and Shallot's metric set. */
export function createRegistry(defaultLabels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry, prefix: 'shallot_' });
  metricsFor(registry);
  return registry;
}
