/**
 * Histogram buckets shared by every role's metrics.
 */

/** 1 ms to 60 s: covers loopback (sub-millisecond hops) and real clusters. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60,
];
