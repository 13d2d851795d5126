import { describe, expect, it } from 'vitest';
import { NetworkModelError, parseNetworkModel } from '../../../services/core/network-model.js';
import { advertisedBandwidth } from '../../../services/relay/node.js';
import {
  BandwidthOptionError,
  bandwidthLimit,
  linkShaping,
  loadNetworkModel,
  MIN_RELAY_BANDWIDTH_RATE,
  networkModelFrom,
  onionShaping,
} from '../../../services/runtime/shaping-options.js';

const model = parseNetworkModel({ locations: ['us', 'eu'], defaultLatencyMs: 40, nodes: { r1: 'eu' } });

describe('bandwidthLimit (C tor options_validate_relay_bandwidth)', () => {
  it('burst defaults to the rate; none without a rate', () => {
    expect(bandwidthLimit(MIN_RELAY_BANDWIDTH_RATE, undefined)).toEqual({
      rate: MIN_RELAY_BANDWIDTH_RATE,
      burst: MIN_RELAY_BANDWIDTH_RATE,
    });
    expect(bandwidthLimit(undefined, undefined)).toBeNull();
  });

  it('refuses a rate below 75 KiB/s, a burst below the rate, a burst alone', () => {
    expect(() => bandwidthLimit(1000, undefined)).toThrow(BandwidthOptionError);
    expect(() => bandwidthLimit(1_000_000, 500_000)).toThrow(/at least the rate/);
    expect(() => bandwidthLimit(undefined, 1_000_000)).toThrow(/needs a rate/);
  });
});

describe('linkShaping', () => {
  it('places the node by the model unless told, and refuses an unknown location', () => {
    expect(linkShaping('r1', model, null)?.location).toBe('eu');
    expect(linkShaping('r1', model, null, 'us')?.location).toBe('us');
    expect(() => linkShaping('r1', model, null, 'mars')).toThrow(NetworkModelError);
    expect(() => linkShaping('r2', model, null)).toThrow(/"r2" is in no location/);
    expect(linkShaping('r2', null, null)).toBeNull();
  });

  it('a missing model file is a NetworkModelError naming it', () => {
    expect(() => loadNetworkModel('/nonexistent/model.json')).toThrow(/model.json: cannot read \(ENOENT\)/);
  });
});

describe('advertisedBandwidth (C tor router_get_advertised_bandwidth)', () => {
  it('is the configured bandwidth capped by BandwidthRate', () => {
    const capped = linkShaping('r', null, bandwidthLimit(1024 * 1024, undefined));
    expect(advertisedBandwidth({ bandwidth: 5_000_000, shaping: capped })).toBe(1024 * 1024);
    expect(advertisedBandwidth({ bandwidth: 500_000, shaping: capped })).toBe(500_000);
    expect(advertisedBandwidth({ bandwidth: 5_000_000, shaping: null })).toBe(5_000_000);
  });
});

describe('per-node bandwidth in the model', () => {
  it("the model's entry for a node wins over the network-wide limit and follows C tor's rules", () => {
    const m = parseNetworkModel({
      locations: ['x'],
      assign: 'random',
      bandwidth: { slow: { rate: 1024 * 1024 }, bad: { rate: 1000 } },
    });
    const all = bandwidthLimit(10 * 1024 * 1024, undefined);
    expect(linkShaping('slow', m, all)?.limiter?.rate).toBe(1024 * 1024);
    expect(linkShaping('other', m, all)?.limiter?.rate).toBe(10 * 1024 * 1024);
    expect(() => linkShaping('bad', m, all)).toThrow(BandwidthOptionError);
    expect(() => parseNetworkModel({ locations: ['x'], bandwidth: { r: { rate: -5 } } })).toThrow(
      /bandwidth\.r\.rate: must be a positive integer/,
    );
    expect(() => parseNetworkModel({ locations: ['x'], bandwidth: { r: 5 } })).toThrow(NetworkModelError);
  });
});

describe('networkModelFrom', () => {
  it('reads inline JSON (the operator passes spec.networkModel so), none, or refuses both at once', () => {
    expect(networkModelFrom(undefined, '{"locations":["a"]}')?.locations).toEqual(['a']);
    expect(networkModelFrom(undefined, undefined)).toBeNull();
    expect(() => networkModelFrom('/x.json', '{}')).toThrow(/not both/);
    expect(() => networkModelFrom(undefined, '{"locations":[]}')).toThrow(NetworkModelError);
  });
});

describe('onionShaping (an onion-service instance in the model)', () => {
  const m = parseNetworkModel({
    locations: ['us', 'eu'],
    defaultLatencyMs: 40,
    nodes: { shop: 'eu' },
    bandwidth: { 'shop-0': { rate: MIN_RELAY_BANDWIDTH_RATE } },
  });

  it("sits where the model places the service's name, or at --location; links named by the instance", () => {
    expect(onionShaping('shop', 'shop-0', m)).toMatchObject({ node: 'shop-0', location: 'eu' });
    expect(onionShaping('shop', 'shop-abc12', m, 'us')).toMatchObject({ node: 'shop-abc12', location: 'us' });
  });

  it('no model: null (the caller names links for faults); a bad location or an unplaced name is typed', () => {
    expect(onionShaping('shop', 'shop-0', null)).toBeNull();
    expect(() => onionShaping('shop', 'shop-0', m, 'mars')).toThrow(NetworkModelError);
    expect(() => onionShaping('cafe', 'cafe-0', m)).toThrow(/"cafe" is in no location/);
  });

  it('the model can meter an instance by name (its bandwidth entry), as for any node', () => {
    expect(onionShaping('shop', 'shop-0', m)?.limiter?.rate).toBe(MIN_RELAY_BANDWIDTH_RATE);
    expect(onionShaping('shop', 'shop-1', m)?.limiter).toBeNull();
  });
});
