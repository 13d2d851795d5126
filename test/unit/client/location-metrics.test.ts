// Circuit build and onion connect time by location (issue 18): labels from
// the client's location and the path's hop locations under a network model,
// a bounded number of path values, nothing without a model; and the model
// itself as series (metrics/model-series.ts).
import { describe, expect, it } from 'vitest';
import { LocationMetrics, MAX_PATH_LABELS } from '../../../services/client/location-metrics.js';
import { parseNetworkModel } from '../../../services/core/network-model.js';
import { createRegistry, metricsFor } from '../../../services/metrics/metrics.js';
import { MAX_MODEL_SERIES_LOCATIONS, recordNetworkModel } from '../../../services/metrics/model-series.js';
import { linkShaping } from '../../../services/runtime/shaping-options.js';

const model = parseNetworkModel({
  locations: ['us', 'eu', 'asia'],
  links: [
    { from: 'us', to: 'eu', latencyMs: 40, jitterMs: 5 },
    { from: 'eu', to: 'asia', latencyMs: 90 },
    { from: 'asia', to: 'us', latencyMs: 80 },
  ],
  nodes: { client: 'us', g: 'eu', m: 'eu', x: 'asia' },
});

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };
async function samples(reg: ReturnType<typeof createRegistry>, name: string): Promise<Sample[]> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []) as Sample[];
}
const hop = (nickname: string) => ({ nickname });

describe('LocationMetrics', () => {
  it("files a build under the client's location and its hops' locations", async () => {
    const reg = createRegistry();
    const lm = new LocationMetrics(metricsFor(reg), linkShaping('client', model, null));
    expect(lm.location).toBe('us');
    lm.circuitBuilt([hop('g'), hop('m'), hop('x')], 0.42);
    lm.circuitBuilt([hop('g'), hop('m'), hop('x')], 0.44);
    lm.circuitBuilt([hop('g'), hop('stranger')], 0.2);
    lm.onionConnected(1.5);
    const counts = (await samples(reg, 'shallot_circuit_build_path_seconds')).filter(
      (s) => s.metricName === 'shallot_circuit_build_path_seconds_count',
    );
    expect(counts.map((s) => [s.labels.location, s.labels.path, s.value]).sort()).toEqual([
      ['us', 'eu>eu>asia', 2],
      ['us', 'eu>unknown', 1],
    ]);
    const onion = (await samples(reg, 'shallot_onion_connect_location_seconds')).find(
      (s) => s.metricName === 'shallot_onion_connect_location_seconds_sum',
    );
    expect(onion).toMatchObject({ labels: { location: 'us' }, value: 1.5 });
  });

  it(`keeps the path label bounded: past ${MAX_PATH_LABELS} distinct paths, "other"`, () => {
    const names = Array.from({ length: 9 }, (_, i) => `r${i}`); // 81 two-hop paths
    const big = parseNetworkModel({
      locations: names.map((n) => `l${n}`),
      defaultLatencyMs: 10,
      nodes: { client: 'lr0', ...Object.fromEntries(names.map((n) => [n, `l${n}`])) },
    });
    const lm = new LocationMetrics(metricsFor(createRegistry()), linkShaping('client', big, null));
    const seen = new Set<string>();
    for (const a of names) for (const b of names) seen.add(lm.pathLabel([a, b]));
    expect(seen.size).toBe(MAX_PATH_LABELS + 1);
    expect(seen.has('other')).toBe(true);
    // A path already seen keeps its own label after the cap.
    expect(lm.pathLabel(['r0', 'r0'])).toBe('lr0>lr0');
    expect(lm.pathLabel(['r8', 'r8'])).toBe('other');
  });

  it('observes nothing by location without a model (a bandwidth limit alone is no model)', async () => {
    const reg = createRegistry();
    for (const shaping of [null, linkShaping('client', null, { rate: 1 << 20, burst: 1 << 20 })]) {
      const lm = new LocationMetrics(metricsFor(reg), shaping);
      expect(lm.location).toBeNull();
      lm.circuitBuilt([hop('g')], 0.1);
      lm.onionConnected(0.1);
    }
    expect(await samples(reg, 'shallot_circuit_build_path_seconds')).toEqual([]);
    expect(await samples(reg, 'shallot_onion_connect_location_seconds')).toEqual([]);
    expect(await samples(reg, 'shallot_network_model_latency_seconds')).toEqual([]);
  });
});

describe('recordNetworkModel', () => {
  it('one series per unordered pair of locations, seconds, self pairs included', async () => {
    const reg = createRegistry();
    new LocationMetrics(metricsFor(reg), linkShaping('client', model, null));
    const lat = await samples(reg, 'shallot_network_model_latency_seconds');
    const byPair = new Map(lat.map((s) => [`${s.labels.from}|${s.labels.to}`, s.value]));
    expect(byPair).toEqual(
      new Map([
        ['asia|asia', 0],
        ['asia|eu', 0.09],
        ['asia|us', 0.08],
        ['eu|eu', 0],
        ['eu|us', 0.04],
        ['us|us', 0],
      ]),
    );
    const jit = await samples(reg, 'shallot_network_model_jitter_seconds');
    expect(jit.find((s) => s.labels.from === 'eu' && s.labels.to === 'us')?.value).toBe(0.005);
  });

  it(`exports nothing pair by pair for a model of more than ${MAX_MODEL_SERIES_LOCATIONS} locations`, async () => {
    const reg = createRegistry();
    const many = parseNetworkModel({
      locations: Array.from({ length: MAX_MODEL_SERIES_LOCATIONS + 1 }, (_, i) => `l${i}`),
      defaultLatencyMs: 5,
    });
    expect(recordNetworkModel(metricsFor(reg).model, many)).toBe(false);
    expect(await samples(reg, 'shallot_network_model_latency_seconds')).toEqual([]);
  });
});
