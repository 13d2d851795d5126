/**
 * The relay's metrics (cells, circuits, streams, onionskins, the DoS and
 * pivot defences, link shaping): name, help, labels and buckets, named
 * after C tor's MetricsPort (relay_metrics.c) where they overlap
 * (metrics.ts explains the conventions). Every series carries the relay's
 * nickname as `relay`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export function relayMetrics(r: Registry[]) {
  return {
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
    oomClosed: new Counter({
      name: 'shallot_relay_oom_closed_total',
      help: 'Circuits MaxMemInQueues closed (also in dos_refusals{defense="oom"}), by reason: queued_cells (oldest queued data first, as C tor), circuit_count (the channel holding the most circuits, newest first).',
      labelNames: ['relay', 'reason'] as const,
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
      help: "Bytes MaxMemInQueues counts in the process: each open circuit's state (CIRCUIT_STATE_BYTES, relay/queue-memory.ts), queued cells and link send buffers.",
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
  };
}
