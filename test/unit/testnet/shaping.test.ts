// shallot up's network-model and bandwidth options are checked against the
// network before any node starts (testnet/launch.ts checkShaping), with the
// typed error of what is wrong.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NetworkModelError } from '../../../services/core/network-model.js';
import { BandwidthOptionError } from '../../../services/runtime/shaping-options.js';
import { checkShaping, type ShapingOptions, shapingFor } from '../../../services/testnet/launch.js';

const dir = mkdtempSync(path.join(tmpdir(), 'shallot-model-'));
function modelFile(model: unknown): string {
  const f = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify(model));
  return f;
}
const check = (over: ShapingOptions) => () => checkShaping({ relays: 4, ...over });

const regions = {
  locations: ['us', 'eu', 'asia'],
  defaultLatencyMs: 80,
  links: [{ from: 'us', to: 'eu', latencyMs: 40 }],
  nodes: { relay0: 'eu', relay1: 'eu', relay2: 'us', relay3: 'asia', client: 'us' },
  bandwidth: { relay3: { rate: 1048576 } },
};

describe('checkShaping', () => {
  it('accepts a model placing every relay and the client, and gives each its own location and limit', () => {
    const o = { networkModel: modelFile(regions) };
    expect(check(o)).not.toThrow();
    expect(shapingFor(o, 'relay3')?.location).toBe('asia');
    expect(shapingFor(o, 'relay3')?.limiter?.rate).toBe(1048576);
    expect(shapingFor(o, 'relay0')?.limiter).toBeNull();
    expect(shapingFor(o, 'client')?.location).toBe('us');
  });

  it('refuses a relay in no location, an unknown location, a node not in the network, a bad rate', () => {
    const { relay3: _, ...three } = regions.nodes;
    expect(check({ networkModel: modelFile({ ...regions, nodes: three }) })).toThrow(
      /"relay3" is in no location/,
    );
    expect(
      check({ networkModel: modelFile({ ...regions, nodes: { ...regions.nodes, relay0: 'mars' } }) }),
    ).toThrow(NetworkModelError);
    expect(
      check({ networkModel: modelFile({ ...regions, nodes: { ...regions.nodes, relay9: 'us' } }) }),
    ).toThrow(/"relay9" is not in this network/);
    expect(check({ networkModel: modelFile({ ...regions, defaultLatencyMs: -1 }) })).toThrow(/negative/);
    expect(check({ bandwidthRate: 10 })).toThrow(BandwidthOptionError);
    expect(check({ networkModel: path.join(dir, 'missing.json') })).toThrow(/cannot read/);
  });

  it('no model and no rate: no delay and no limit, only the name link faults find links by', () => {
    expect(check({})).not.toThrow();
    expect(shapingFor({}, 'relay0')).toEqual({ node: 'relay0', model: null, location: null, limiter: null });
  });
});
