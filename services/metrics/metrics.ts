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
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** 1 ms to 60 s: covers loopback (sub-millisecond hops) and real clusters. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60,
];

function build(registry: Registry) {
  const r = [registry];
  return {
    client: {
      circuitBuild: new Histogram({
        name: 'shallot_circuit_build_seconds',
        help: 'Time to build a circuit (CREATE2 to the last EXTENDED2), by purpose.',
        labelNames: ['purpose'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      circuits: new Counter({
        name: 'shallot_circuits_total',
        help: 'Circuit build attempts by purpose and outcome (success, failure; timeouts are failures with reason timeout).',
        labelNames: ['purpose', 'outcome'] as const,
        registers: r,
      }),
      circuitFailures: new Counter({
        name: 'shallot_circuit_failures_total',
        help: 'Failed circuit builds by purpose and reason (DESTROY reason, timeout, no path, channel).',
        labelNames: ['purpose', 'reason'] as const,
        registers: r,
      }),
      onionConnect: new Histogram({
        name: 'shallot_onion_connect_seconds',
        help: 'Time from a SOCKS request for a .onion address to CONNECTED (descriptor, intro, rendezvous).',
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      onionConnects: new Counter({
        name: 'shallot_onion_connects_total',
        help: 'Onion-service connection attempts by outcome (ok or the SOCKS5 extended error name).',
        labelNames: ['outcome'] as const,
        registers: r,
      }),
      // -- By location under a network model (issue 18): services/client/location-metrics.ts.
      circuitBuildPath: new Histogram({
        name: 'shallot_circuit_build_path_seconds',
        help: 'Time to build a circuit under a network model, by the client\'s location and the locations of the path\'s hops (path="eu>eu>asia"; "other" past 64 paths per client, so the series stay bounded). All purposes.',
        labelNames: ['location', 'path'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      onionConnectLocation: new Histogram({
        name: 'shallot_onion_connect_location_seconds',
        help: "Time from a SOCKS request for a .onion address to CONNECTED under a network model, by the client's location.",
        labelNames: ['location'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      // -- Onion connect phases (issue 13, shallot load's report): services/client/onion.ts.
      onionConnectPhase: new Histogram({
        name: 'shallot_onion_connect_phase_seconds',
        help: 'Phases of a successful onion connect: descriptor (HSDir fetch; cache hits not observed), introduction (rendezvous point set up, intro circuit, INTRODUCE1 to a positive INTRODUCE_ACK), rendezvous (ACK to RENDEZVOUS2), stream (BEGIN to CONNECTED).',
        labelNames: ['phase'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      ttfb: new Histogram({
        name: 'shallot_stream_ttfb_seconds',
        help: 'Time from stream request to the first byte received, by server kind (onion, public).',
        labelNames: ['server'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      ttlb: new Histogram({
        name: 'shallot_stream_ttlb_seconds',
        help: 'Time from stream request to the last byte received, by server kind and payload size.',
        labelNames: ['server', 'size'] as const,
        buckets: LATENCY_BUCKETS,
        registers: r,
      }),
      streams: new Counter({
        name: 'shallot_client_streams_total',
        help: 'SOCKS streams by outcome.',
        labelNames: ['outcome'] as const,
        registers: r,
      }),
      cbtTimeout: new Gauge({
        name: 'shallot_cbt_timeout_seconds',
        help: 'The learned circuit-build timeout (path-spec §2.4).',
        registers: r,
      }),
      rendezvousChosen: new Counter({
        name: 'shallot_client_rendezvous_chosen_total',
        help: 'Rendezvous points chosen by this client, by relay nickname.',
        labelNames: ['relay'] as const,
        registers: r,
      }),
      vanguardCircuits: new Counter({
        name: 'shallot_client_vanguard_circuits_total',
        help: 'Onion-service circuits built through a layer-2 vanguard (vanguards-lite), by that relay.',
        labelNames: ['relay'] as const,
        registers: r,
      }),
      // -- SOCKS exhaustion defences (issue 12): services/client/socks-server.ts.
      socksClosed: new Counter({
        name: 'shallot_client_socks_closed_total',
        help: 'SOCKS connections closed before their request was read, by reason (handshake_timeout; evicted: the least recently active one when too many were in handshake; refused: all connections were working streams).',
        labelNames: ['reason'] as const,
        registers: r,
      }),
      socksHandshaking: new Gauge({
        name: 'shallot_client_socks_handshaking',
        help: 'SOCKS connections whose request has not been read yet.',
        registers: r,
      }),
      // -- Circuit lifetimes, stream retries, SOCKS replies (issue 13): services/client/circuit-manager.ts, client.ts, socks-server.ts.
      circuitBuildTimeouts: new Counter({
        name: 'shallot_client_circuit_build_timeouts_total',
        help: 'Builds past the learned circuit-build timeout, by purpose: another build was launched beside each; the slow one goes on until the close timeout (abandoned ones count in shallot_circuit_failures_total{reason="timeout"}).',
        labelNames: ['purpose'] as const,
        registers: r,
      }),
      circuitsOpen: new Gauge({
        name: 'shallot_client_circuits_open',
        help: 'Open client circuits held for streams (exit circuits and joined rendezvous circuits).',
        registers: r,
      }),
      circuitsExpired: new Counter({
        name: 'shallot_client_circuits_expired_total',
        help: 'Client circuits closed by the expiry timer, by reason (dirty: past MaxCircuitDirtiness with no stream open; idle: clean past the idle timeout).',
        labelNames: ['reason'] as const,
        registers: r,
      }),
      circuitsRetired: new Counter({
        name: 'shallot_client_circuits_retired_total',
        help: 'Client circuits made unusable for new streams, by reason (stream_timeout: no CONNECTED in time; refused: the exit refused a stream; first_hop: the first hop left CREATE2 unanswered, counted once per channel event).',
        labelNames: ['reason'] as const,
        registers: r,
      }),
      streamRetries: new Counter({
        name: 'shallot_client_stream_retries_total',
        help: 'Streams retried on another circuit, by server kind (exit, onion) and reason (timeout: no CONNECTED within CircuitStreamTimeout, 10 s then 15 s; circuit: the circuit failed or the exit refused for a reason that is not final).',
        labelNames: ['server', 'reason'] as const,
        registers: r,
      }),
      socksReplies: new Counter({
        name: 'shallot_client_socks_replies_total',
        help: 'SOCKS5 replies sent to a CONNECT, by reply code (hex: 0x00 success, 0x06 TTL expired when SocksTimeout ran out, 0xF0-0xF7 onion errors).',
        labelNames: ['code'] as const,
        registers: r,
      }),
      // -- SOCKS4/4a and the HTTP CONNECT tunnel (issue 20): services/client/proxy-server.ts.
      proxyRequests: new Counter({
        name: 'shallot_client_proxy_requests_total',
        help: 'Requests answered on the SOCKS and HTTP tunnel ports, by protocol (socks4, socks4a, socks5, http_connect; not_socks: HTTP sent to the SOCKS port) and result (success; malformed: refused before any connect; otherwise the failure as its SOCKS5 reply name, e.g. not_allowed, connection_refused, ttl_expired, onion_desc_not_found).',
        labelNames: ['protocol', 'result'] as const,
        registers: r,
      }),
    },
    relay: {
      cells: new Counter({
        name: 'shallot_relay_cells_total',
        help: 'Cells handled by the relay, by direction (in, out).',
        labelNames: ['relay', 'direction'] as const,
        registers: r,
      }),
      bytes: new Counter({
        name: 'shallot_relay_bytes_total',
        help: 'Link bytes read and written by the relay, by direction.',
        labelNames: ['relay', 'direction'] as const,
        registers: r,
      }),
      circuitsActive: new Gauge({
        name: 'shallot_relay_circuits_active',
        help: 'Circuits open through the relay.',
        labelNames: ['relay'] as const,
        registers: r,
      }),
      channelsActive: new Gauge({
        name: 'shallot_relay_channels_active',
        help: 'Open link channels, by direction (inbound, outbound).',
        labelNames: ['relay', 'direction'] as const,
        registers: r,
      }),
      onionskins: new Counter({
        name: 'shallot_relay_onionskins_total',
        help: 'CREATE2 onionskins by handshake type and action (processed, failed, dropped: channel full, shed: waited over MaxOnionQueueDelay, refused: DoSCircuitCreation).',
        labelNames: ['relay', 'type', 'action'] as const,
        registers: r,
      }),
      streams: new Counter({
        name: 'shallot_relay_streams_total',
        help: 'Streams opened at the relay by type (BEGIN, BEGIN_DIR) and outcome.',
        labelNames: ['relay', 'type', 'outcome'] as const,
        registers: r,
      }),
      rendezvous: new Counter({
        name: 'shallot_relay_rendezvous_total',
        help: 'Rendezvous-point events: established, joined, expired.',
        labelNames: ['relay', 'event'] as const,
        registers: r,
      }),
      intro: new Counter({
        name: 'shallot_relay_intro_total',
        help: 'Introduction-point events: established, rejected, introduce1, introduce2_sent, nack.',
        labelNames: ['relay', 'event'] as const,
        registers: r,
      }),
      hsdir: new Counter({
        name: 'shallot_relay_hsdir_total',
        help: 'HSDir operations (store, fetch) by outcome.',
        labelNames: ['relay', 'op', 'outcome'] as const,
        registers: r,
      }),
      streamSendBlocked: new Counter({
        name: 'shallot_relay_stream_send_blocked_seconds_total',
        help: "Seconds the relay's exit streams had data to send and could not, by what held them: stream-window (the stream's SENDME window, 500 cells), circuit-window (the circuit's, 1000 cells) or link (a congested link). Close to a download's duration: flow control, not CPU, sets its rate.",
        labelNames: ['relay', 'reason'] as const,
        registers: r,
      }),
      destroy: new Counter({
        name: 'shallot_relay_destroy_total',
        help: 'DESTROY cells sent or received, by reason.',
        labelNames: ['relay', 'reason'] as const,
        registers: r,
      }),
      keyAge: new Gauge({
        name: 'shallot_key_age_seconds',
        help: 'Age of each of the node key kinds (identity, onion, signing).',
        labelNames: ['relay', 'key'] as const,
        registers: r,
      }),
      keyRotations: new Counter({
        name: 'shallot_relay_key_rotations_total',
        help: 'Key rotations a relay performed, by key kind.',
        labelNames: ['relay', 'key'] as const,
        registers: r,
      }),
      // -- Channel and circuit defences (issue 12): relay/client-dos.ts, relay/onionskin-queue.ts, relay/channel-guard.ts, relay/queue-memory.ts.
      dosRefusals: new Counter({
        name: 'shallot_relay_dos_refusals_total',
        help: 'What the channel and circuit defences refused or closed, by defense (conn_concurrent, conn_rate: DoSConnection*; circuit_rate: DoSCircuitCreation*; idle_channel, partial_cell: timeouts; oom: circuit closed by MaxMemInQueues).',
        labelNames: ['relay', 'defense'] as const,
        registers: r,
      }),
      edgeStreams: new Gauge({
        name: 'shallot_relay_edge_streams',
        help: "Streams at this relay's circuit edges (exit, BEGIN_DIR), by state: open, half_closed (END sent, the client's END due).",
        labelNames: ['relay', 'state'] as const,
        registers: r,
      }),
      onionskinQueue: new Gauge({
        name: 'shallot_relay_onionskin_queue',
        help: 'CREATE2 onionskins waiting for a cpuworker.',
        labelNames: ['relay'] as const,
        registers: r,
      }),
      dosClients: new Gauge({
        name: 'shallot_relay_dos_clients',
        help: 'Client addresses (or loopback connections) the DoS defences are tracking.',
        labelNames: ['relay'] as const,
        registers: r,
      }),
      queueMemory: new Gauge({
        name: 'shallot_relay_queued_bytes',
        help: 'Bytes of cells queued in the process (circuit queues and link send buffers), the total MaxMemInQueues caps.',
        registers: r,
      }),
      // -- Stream and BEGIN_DIR defences (issue 12): relay/stream-dos.ts, relay/exit-sockets.ts, net/dir-http.ts.
      streamRefusals: new Counter({
        name: 'shallot_relay_stream_refusals_total',
        help: 'BEGIN and BEGIN_DIR refused with END RESOURCELIMIT, by type and reason (rate: DoSStreamCreation bucket empty, circuit: streams per circuit at the cap, exit_sockets: the process-wide exit socket cap reached).',
        labelNames: ['relay', 'type', 'reason'] as const,
        registers: r,
      }),
      dirRefusals: new Counter({
        name: 'shallot_relay_dir_refusals_total',
        help: 'BEGIN_DIR requests refused, by reason (head_too_large, body_too_large: 413; malformed, truncated: 400).',
        labelNames: ['relay', 'reason'] as const,
        registers: r,
      }),
      // -- Pivot defences (issue 12): core/relay-pivot.ts, relay/network-view.ts, relay/exit.ts.
      extendRefused: new Counter({
        name: 'shallot_relay_extend_refused_total',
        help: 'EXTEND2 refused with DESTROY, by reason (unlisted, address: not the identity/address/ORPort the consensus lists; no-consensus; self; identity; specifiers).',
        labelNames: ['relay', 'reason'] as const,
        registers: r,
      }),
      // -- Realistic networks (issue 18): net/link-delay.ts, relay/node.ts.
      bandwidthRate: new Gauge({
        name: 'shallot_relay_bandwidth_rate_bytes',
        help: "The relay's configured BandwidthRate, bytes/s, on reads from all its links (absent: unlimited).",
        labelNames: ['relay'] as const,
        registers: r,
      }),
      bandwidthBurst: new Gauge({
        name: 'shallot_relay_bandwidth_burst_bytes',
        help: "The relay's configured BandwidthBurst, bytes.",
        labelNames: ['relay'] as const,
        registers: r,
      }),
      bandwidthObserved: new Gauge({
        name: 'shallot_relay_bandwidth_observed_bytes',
        help: "The relay's observed bandwidth, bytes/s: the best 10 s average of link reads so far (C tor rep_hist); relays with a BandwidthRate only.",
        labelNames: ['relay'] as const,
        registers: r,
      }),
      bandwidthAdvertised: new Gauge({
        name: 'shallot_relay_bandwidth_advertised_bytes',
        help: "The bandwidth the relay's descriptor advertises, bytes/s: min(configured bandwidth, BandwidthRate).",
        labelNames: ['relay'] as const,
        registers: r,
      }),
      location: new Gauge({
        name: 'shallot_relay_location',
        help: "1 for the relay's location in the network model (join with shallot_network_model_latency_seconds); relays under a model only.",
        labelNames: ['relay', 'location'] as const,
        registers: r,
      }),
      exitDnsQueries: new Counter({
        name: 'shallot_relay_exit_dns_queries_total',
        help: 'Hostnames an exit resolved for BEGIN, by outcome (ok, error); as C tor\'s relay_exit_dns_query_total. Exit streams refused as network re-entry count in shallot_relay_streams_total{outcome="reentry"}.',
        labelNames: ['relay', 'outcome'] as const,
        registers: r,
      }),
    },
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
        help: 'A fault in force on a node (1 from injection until it heals), by kind (stop, kill, pause, restart) and target node: a Grafana annotation marks its start and end.',
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
