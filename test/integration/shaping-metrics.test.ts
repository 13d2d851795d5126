// A shaped relay shows its model and limits as Prometheus series (issue 18):
// configured rate and burst, advertised bandwidth, observed bandwidth, its
// location, and the model's one-way latency between every pair of locations.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { parseNetworkModel } from '../../services/core/network-model.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import { RelayNode } from '../../services/relay/node.js';
import { silentLogger } from '../../services/runtime/log.js';
import { bandwidthLimit, linkShaping } from '../../services/runtime/shaping-options.js';
import { LOCAL_EXIT_POLICY } from '../helpers/relays.js';

const registry = new Registry();
const model = parseNetworkModel({
  locations: ['us', 'eu'],
  links: [{ from: 'us', to: 'eu', latencyMs: 40, jitterMs: 5 }],
  nodes: { slow: 'eu' },
});
const node = new RelayNode(
  { logger: silentLogger, registry },
  {
    nickname: 'slow',
    host: '127.0.0.1',
    port: 0,
    tls: true,
    keys: generateNodeKeys(),
    exitPolicy: LOCAL_EXIT_POLICY,
    authorities: [],
    bandwidth: 5_000_000,
    shaping: linkShaping('slow', model, bandwidthLimit(1024 * 1024, 2 * 1024 * 1024)),
  },
);
afterAll(() => node.stop());

async function value(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, want]) => x.labels[k] === want));
  return v === undefined ? undefined : Number(v.value);
}

describe('shaping metrics', () => {
  it('reports configured, advertised and observed bandwidth, its location and the model', async () => {
    await node.start();
    expect(await value('shallot_relay_bandwidth_rate_bytes', { relay: 'slow' })).toBe(1024 * 1024);
    expect(await value('shallot_relay_bandwidth_burst_bytes', { relay: 'slow' })).toBe(2 * 1024 * 1024);
    expect(await value('shallot_relay_bandwidth_advertised_bytes', { relay: 'slow' })).toBe(1024 * 1024);
    expect(await value('shallot_relay_bandwidth_observed_bytes', { relay: 'slow' })).toBe(0);
    expect(await value('shallot_relay_location', { relay: 'slow', location: 'eu' })).toBe(1);
    expect(await value('shallot_network_model_latency_seconds', { from: 'eu', to: 'us' })).toBe(0.04);
    expect(await value('shallot_network_model_jitter_seconds', { from: 'eu', to: 'us' })).toBe(0.005);
    expect(await value('shallot_network_model_latency_seconds', { from: 'eu', to: 'eu' })).toBe(0);
  });
});
