// shallot up's network-model and bandwidth options are checked against the
// network before any node starts (testnet/launch.ts checkShaping), with the
// typed error of what is wrong.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NetworkModelError } from '../../../services/core/network-model.js';
import { BandwidthOptionError } from '../../../services/runtime/shaping-options.js';
import {
  checkShaping,
  onionShapingFor,
  type ShapingOptions,
  shapingFor,
} from '../../../services/testnet/launch.js';

const dir = mkdtempSync(path.join(tmpdir(), 'shallot-model-'));
function modelFile(model: unknown): string {
  const f = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify(model));
  return f;
}
const check =
  (over: ShapingOptions, onionServices = 0) =>
  () =>
    checkShaping({ authorities: 3, relays: 4, onionServices, ...over });

const regions = {
  locations: ['us', 'eu', 'asia'],
  defaultLatencyMs: 80,
  links: [{ from: 'us', to: 'eu', latencyMs: 40 }],
  nodes: {
    auth0: 'us',
    auth1: 'eu',
    auth2: 'asia',
    relay0: 'eu',
    relay1: 'eu',
    relay2: 'us',
    relay3: 'asia',
    client: 'us',
  },
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

  it('places each authority by its name auth<i>: explicitly, else by the seeded draw; never rate-limited', () => {
    const o = { networkModel: modelFile(regions), bandwidthRate: 1048576 };
    expect(check(o)).not.toThrow();
    expect(shapingFor(o, 'auth0')?.location).toBe('us');
    expect(shapingFor(o, 'auth2')?.location).toBe('asia');
    expect(shapingFor(o, 'auth2')?.node).toBe('auth2');
    // BandwidthRate is a relay option (C tor): the flag meters relays, not authorities.
    expect(shapingFor(o, 'auth1')?.limiter).toBeNull();
    expect(shapingFor(o, 'relay0')?.limiter?.rate).toBe(1048576);
    const { auth0: _a, auth1: _b, auth2: _c, ...noAuths } = regions.nodes;
    const drawn = { networkModel: modelFile({ ...regions, nodes: noAuths, assign: 'random', seed: 5 }) };
    expect(check(drawn)).not.toThrow();
    const first = [0, 1, 2].map((i) => shapingFor(drawn, `auth${i}`).location);
    for (const l of first) expect(regions.locations).toContain(l);
    expect([0, 1, 2].map((i) => shapingFor(drawn, `auth${i}`).location)).toEqual(first);
  });

  it('refuses an authority in no location, in an unknown location, or one the network lacks', () => {
    const { auth1: _, ...two } = regions.nodes;
    expect(check({ networkModel: modelFile({ ...regions, nodes: two }) })).toThrow(
      /"auth1" is in no location/,
    );
    expect(
      check({ networkModel: modelFile({ ...regions, nodes: { ...regions.nodes, auth0: 'mars' } }) }),
    ).toThrow(/nodes\.auth0: unknown location "mars"/);
    // Three authorities here: auth3 is no node of this network.
    expect(
      check({ networkModel: modelFile({ ...regions, nodes: { ...regions.nodes, auth3: 'us' } }) }),
    ).toThrow(/"auth3" is not in this network/);
    expect(() =>
      checkShaping({ authorities: 4, relays: 4, onionServices: 0, networkModel: modelFile(regions) }),
    ).toThrow(/"auth3" is in no location/);
  });

  it('no model and no rate: no delay and no limit, only the name link faults find links by', () => {
    expect(check({})).not.toThrow();
    expect(shapingFor({}, 'relay0')).toEqual({ node: 'relay0', model: null, location: null, limiter: null });
  });

  it('places each onion service under its name onion<s>: every instance in its location, links named onion<s>-<i>', () => {
    const o = {
      networkModel: modelFile({ ...regions, nodes: { ...regions.nodes, onion0: 'asia', onion1: 'eu' } }),
    };
    expect(check(o, 2)).not.toThrow();
    for (const i of [0, 1]) {
      const sh = onionShapingFor(o, 0, i);
      expect(sh.node).toBe(`onion0-${i}`);
      expect(sh.location).toBe('asia');
      expect(sh.model?.locations).toEqual(['us', 'eu', 'asia']);
      // BandwidthRate is a relay option (C tor): an onion service's links are not metered.
      expect(sh.limiter).toBeNull();
    }
    expect(onionShapingFor(o, 1, 0).location).toBe('eu');
    // Flags do not meter onion services either.
    expect(onionShapingFor({ ...o, bandwidthRate: 1048576 }, 1, 0).limiter).toBeNull();
  });

  it('places an onion service the model does not list by the seeded draw, the same every time', () => {
    const o = { networkModel: modelFile({ ...regions, assign: 'random', seed: 3 }) };
    expect(check(o, 3)).not.toThrow();
    const first = [0, 1, 2].map((s) => onionShapingFor(o, s, 0).location);
    for (const l of first) expect(regions.locations).toContain(l);
    expect([0, 1, 2].map((s) => onionShapingFor(o, s, 1).location)).toEqual(first);
    // A different seed moves at least one of a dozen services (the draw depends on the seed).
    const other = { networkModel: modelFile({ ...regions, assign: 'random', seed: 4 }) };
    const dozen = Array.from({ length: 12 }, (_, s) => s);
    expect(dozen.map((s) => onionShapingFor(other, s, 0).location)).not.toEqual(
      dozen.map((s) => onionShapingFor(o, s, 0).location),
    );
  });

  it('refuses an onion service in no location, and an onion service the network lacks', () => {
    expect(check({ networkModel: modelFile(regions) }, 1)).toThrow(/"onion0" is in no location/);
    const two = { ...regions, nodes: { ...regions.nodes, onion0: 'us', onion1: 'eu' } };
    expect(check({ networkModel: modelFile(two) }, 1)).toThrow(/"onion1" is not in this network/);
    expect(check({ networkModel: modelFile(two) }, 2)).not.toThrow();
    // Instances are not nodes of the model: the service is.
    const inst = { ...regions, nodes: { ...regions.nodes, onion0: 'us', 'onion0-0': 'eu' } };
    expect(check({ networkModel: modelFile(inst) }, 1)).toThrow(/"onion0-0" is not in this network/);
    expect(
      check({ networkModel: modelFile({ ...regions, nodes: { ...regions.nodes, onion0: 'mars' } }) }, 1),
    ).toThrow(/unknown location "mars"/);
  });

  it('no model: an onion instance gets only its name, for link faults', () => {
    expect(onionShapingFor({}, 2, 1)).toEqual({
      node: 'onion2-1',
      model: null,
      location: null,
      limiter: null,
    });
  });
});
