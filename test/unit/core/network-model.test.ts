import { describe, expect, it } from 'vitest';
import {
  drawDelay,
  latencyBetween,
  NetworkModelError,
  parseNetworkModel,
  pathLocations,
  placeNodes,
} from '../../../services/core/network-model.js';

const three = {
  locations: ['us', 'eu', 'asia'],
  links: [
    { from: 'us', to: 'eu', latencyMs: 40, jitterMs: 5 },
    { from: 'eu', to: 'asia', latencyMs: 90 },
    { from: 'asia', to: 'us', latencyMs: 80 },
  ],
  nodes: { relay1: 'eu', exit1: 'asia' },
};

function refused(input: unknown, field: string, reason: RegExp): void {
  let err: unknown;
  try {
    parseNetworkModel(typeof input === 'string' ? input : JSON.stringify(input));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NetworkModelError);
  expect((err as NetworkModelError).code).toBe('ERR_NETWORK_MODEL');
  expect((err as NetworkModelError).context.field).toBe(field);
  expect((err as NetworkModelError).message).toMatch(reason);
}

describe('parseNetworkModel', () => {
  it('reads locations, symmetric links, 0 ms inside a location and explicit nodes', () => {
    const m = parseNetworkModel(JSON.stringify(three));
    expect(latencyBetween(m, 'eu', 'us')).toEqual({ latencyMs: 40, jitterMs: 5 });
    expect(latencyBetween(m, 'us', 'eu')).toEqual({ latencyMs: 40, jitterMs: 5 });
    expect(latencyBetween(m, 'asia', 'eu').latencyMs).toBe(90);
    expect(latencyBetween(m, 'us', 'us').latencyMs).toBe(0);
    expect(m.nodes.get('exit1')).toBe('asia');
  });

  it('defaultLatencyMs covers unlisted pairs and each location to itself', () => {
    const m = parseNetworkModel({ locations: ['a', 'b'], defaultLatencyMs: 50 });
    expect(latencyBetween(m, 'a', 'b').latencyMs).toBe(50);
    expect(latencyBetween(m, 'a', 'a').latencyMs).toBe(50);
  });

  it('refuses bad models with the field named', () => {
    refused('{"locations": [', '(file)', /not JSON/);
    refused([], '(top level)', /object/);
    refused({ locations: [] }, 'locations', /non-empty/);
    refused({ locations: ['a', 'a'], defaultLatencyMs: 1 }, 'locations[1]', /duplicate/);
    refused({ locations: ['a b'], defaultLatencyMs: 1 }, 'locations[0]', /name/);
    refused(
      { ...three, links: [{ from: 'us', to: 'mars', latencyMs: 1 }] },
      'links[0].to',
      /unknown location "mars"/,
    );
    refused({ ...three, links: [{ from: 'us', to: 'eu', latencyMs: -1 }] }, 'links[0].latencyMs', /negative/);
    refused(
      { ...three, links: [{ from: 'us', to: 'eu', latencyMs: 1, jitterMs: -2 }] },
      'links[0].jitterMs',
      /negative/,
    );
    refused({ ...three, links: [{ from: 'us', to: 'eu', latencyMs: '5' }] }, 'links[0].latencyMs', /number/);
    refused({ ...three, links: [{ from: 'us', to: 'eu', latencyMs: 1e9 }] }, 'links[0].latencyMs', /at most/);
    refused({ ...three, links: [three.links[0], three.links[0]] }, 'links[1]', /twice/);
    refused({ locations: ['a', 'b'] }, 'links', /no latency between "a" and "b"/);
    refused({ ...three, nodes: { relay1: 'mars' } }, 'nodes.relay1', /unknown location/);
    refused({ ...three, assign: 'roundrobin' }, 'assign', /random/);
    refused({ ...three, seed: -1 }, 'seed', /non-negative/);
    refused({ ...three, latency: 5 }, 'latency', /unknown field/);
  });
});

describe('placeNodes', () => {
  it('a node in no location is an error unless assign is random', () => {
    const m = parseNetworkModel(three);
    expect(() => placeNodes(m, ['relay1', 'exit1', 'guard9'])).toThrow(/"guard9" is in no location/);
    expect(placeNodes(m, ['relay1', 'exit1'])).toEqual(
      new Map([
        ['relay1', 'eu'],
        ['exit1', 'asia'],
      ]),
    );
  });

  it('a node named in the model but absent from the network is an error', () => {
    expect(() => placeNodes(parseNetworkModel(three), ['relay1'])).toThrow(/"exit1" is not in this network/);
  });

  it('random assignment is seeded, independent of order, keeps explicit nodes and spreads', () => {
    const names = Array.from({ length: 60 }, (_, i) => `relay${i}`);
    const m = parseNetworkModel({ ...three, nodes: { relay0: 'us' }, assign: 'random', seed: 7 });
    const a = placeNodes(m, names);
    const b = placeNodes(m, [...names].reverse());
    expect([...a.entries()].sort()).toEqual([...b.entries()].sort());
    expect(a.get('relay0')).toBe('us');
    const counts = new Set(a.values());
    expect(counts.size).toBe(3);
    const other = placeNodes(parseNetworkModel({ ...three, nodes: {}, assign: 'random', seed: 8 }), names);
    expect([...other.values()]).not.toEqual([...a.values()]);
  });
});

describe('drawDelay', () => {
  it('spreads latency by +-jitter and never goes below zero', () => {
    expect(drawDelay({ latencyMs: 40, jitterMs: 5 }, 0)).toBe(35);
    expect(drawDelay({ latencyMs: 40, jitterMs: 5 }, 0.5)).toBe(40);
    expect(drawDelay({ latencyMs: 2, jitterMs: 5 }, 0)).toBe(0);
  });
});

describe('pathLocations', () => {
  it("joins the hops' locations in order; a hop the model cannot place is unknown", () => {
    const m = parseNetworkModel(three);
    expect(pathLocations(m, ['relay1', 'relay1', 'exit1'])).toBe('eu>eu>asia');
    expect(pathLocations(m, ['relay1', 'stranger'])).toBe('eu>unknown');
    expect(pathLocations(m, [])).toBe('');
  });

  it('places unlisted hops by the seeded draw, as the relays place themselves', () => {
    const m = parseNetworkModel({ ...three, assign: 'random', seed: 3 });
    const names = ['relay0', 'relay5', 'relay9'];
    const placed = placeNodes(m, [...names, 'relay1', 'exit1']);
    expect(pathLocations(m, names)).toBe(names.map((n) => placed.get(n)).join('>'));
  });
});
