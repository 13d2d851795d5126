/**
 * The client's metrics (circuit builds, onion connects and their phases,
 * SOCKS and HTTP CONNECT front ends, circuit lifetimes): name, help,
 * labels and buckets, named after C tor's MetricsPort and OnionPerf where
 * they overlap (metrics.ts explains the conventions).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS } from './buckets.js';

export function clientMetrics(r: Registry[]) {
  return {
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
    // -- Relay use as the client sees it (issue 19, shallot load's report on networks whose relays it cannot scrape).
    circuitHops: new Counter({
      name: 'shallot_client_circuit_hops_total',
      help: 'Circuits this client built, by relay nickname and position: guard (first hop), middle, exit (last hop of an exit circuit), last (the chosen last hop of an onion-service circuit: HSDir, intro or rendezvous point).',
      labelNames: ['relay', 'position'] as const,
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
      help: 'Streams retried on another circuit, by server kind (exit, onion) and reason (timeout: no CONNECTED within CircuitStreamTimeout, 10 s then 15 s; circuit: the circuit failed or the exit refused for a reason that is not final; rendezvous: an onion connect introduced again on new circuits after a circuit failed or no RENDEZVOUS2 came; descriptor: every intro point failed, the descriptor was fetched again first).',
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
  };
}
