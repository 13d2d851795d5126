// The figures a load report takes from scraped /metrics: onion connect
// phases, intro spread over intro points only, per-instance spread (and a
// missing service_instance label said, not guessed), network settings.
import { describe, expect, it } from 'vitest';
import type { UpState } from '../../../services/loadgen/network-state.js';
import type { Sample } from '../../../services/loadgen/prom-text.js';
import { snapshotOf } from '../../../services/loadgen/scrape.js';
import { scrapedFigures } from '../../../services/loadgen/scraped.js';

const ONION = `${'d'.repeat(56)}.onion`;
const c = (name: string, labels: Record<string, string>, value: number): Sample => ({ name, labels, value });

/** A cumulative histogram's series: every observation (seconds) in `values`. */
function histogram(name: string, labels: Record<string, string>, values: number[]): Sample[] {
  const les = [0.01, 0.1, 1, Number.POSITIVE_INFINITY];
  return [
    ...les.map((le) =>
      c(
        `${name}_bucket`,
        { ...labels, le: le === Number.POSITIVE_INFINITY ? '+Inf' : String(le) },
        values.filter((v) => v <= le).length,
      ),
    ),
    c(
      `${name}_sum`,
      labels,
      values.reduce((a, b) => a + b, 0),
    ),
    c(`${name}_count`, labels, values.length),
  ];
}

const relays = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
const relayBefore = snapshotOf([
  ...relays.map((r) => c('shallot_relay_cells_total', { relay: r, direction: 'in' }, 1)),
  // r0..r2 became intro points before the run.
  ...['r0', 'r1', 'r2'].map((r) => c('shallot_relay_intro_total', { relay: r, event: 'established' }, 1)),
  c('shallot_relay_intro_total', { relay: 'r0', event: 'introduce1' }, 50),
  c('shallot_hs_intro_requests_total', { service: 'web', outcome: 'accepted' }, 0),
]);
const relayAfter = snapshotOf([
  ...relays.map((r) => c('shallot_relay_cells_total', { relay: r, direction: 'in' }, 9)),
  ...['r0', 'r1', 'r2'].map((r) => c('shallot_relay_intro_total', { relay: r, event: 'established' }, 1)),
  c('shallot_relay_intro_total', { relay: 'r0', event: 'introduce1' }, 60),
  c('shallot_relay_intro_total', { relay: 'r1', event: 'introduce1' }, 10),
  c('shallot_hs_intro_points', { service: 'web', service_instance: 'a' }, 3),
  c('shallot_hs_intro_points', { service: 'web', service_instance: 'b' }, 2),
  c('shallot_hs_intro_points', { service: 'other', service_instance: 'z' }, 3),
  c('shallot_hs_intro_requests_total', { service: 'web', outcome: 'accepted' }, 20),
  c('shallot_relay_onionskins_total', { relay: 'r0', type: 'ntor-v3', action: 'processed' }, 40),
  c('shallot_relay_onionskins_total', { relay: 'r1', type: 'ntor-v3', action: 'processed' }, 2),
  c('shallot_relay_onionskins_total', { relay: 'r1', type: 'ntor', action: 'processed' }, 0),
  c('shallot_consensus_relays', { authority: 'a0', flag: 'all' }, 6),
]);
const phase = 'shallot_onion_connect_phase_seconds';
const clientBefore = snapshotOf([...histogram(phase, { phase: 'descriptor' }, [0.05])]);
const clientAfter = snapshotOf([
  ...histogram(phase, { phase: 'descriptor' }, [0.05, 0.08]),
  ...histogram(phase, { phase: 'introduction' }, [0.2, 0.4]),
  ...histogram(phase, { phase: 'rendezvous' }, [0.5]),
  ...histogram(phase, { phase: 'stream' }, []),
]);
const up: UpState = {
  socks: '127.0.0.1:9050',
  web: null,
  onionAddresses: [ONION],
  onionServices: [{ name: 'web', address: ONION, instances: 2 }],
  mode: 'process-per-node',
  relays: 6,
  targetsFile: null,
  clientMetrics: null,
  pid: null,
};

const figures = scrapedFigures({
  target: { host: ONION, onion: true },
  relays: [relayBefore, relayAfter],
  client: [clientBefore, clientAfter],
  up,
  version: '9.9.9',
});

describe('scrapedFigures', () => {
  it('splits the onion connect into the phases observed during the run, with means from _sum', () => {
    const p = figures.onionConnectPhases!;
    expect(Object.keys(p).sort()).toEqual(['descriptor', 'introduction', 'rendezvous']);
    expect(p.descriptor).toMatchObject({ count: 1 });
    expect(p.descriptor!.mean).toBeCloseTo(80, 6);
    expect(p.introduction!.mean).toBeCloseTo(300, 6);
    expect(p.introduction!.p50).toBeGreaterThan(100);
    expect(p.introduction!.p50).toBeLessThanOrEqual(1000);
    expect(p.rendezvous!.p999).not.toBeNull();
  });

  it('spreads introductions over the intro points only, not every relay', () => {
    const s = figures.introSpread!;
    expect(s.relays).toBe(3);
    expect(s.counts).toEqual({ r0: 10, r1: 10, r2: 0 });
    expect(s.maxOverMean).toBeCloseTo(1.5, 12);
    // The rendezvous spread still counts every relay (any relay can be a rendezvous point).
    expect(figures.rendezvousSpread!.relays).toBe(6);
  });

  it("gives the service's instances their intro points and says which per-instance counters lack the label", () => {
    const i = figures.instanceSpread!;
    expect(i.service).toBe('web');
    expect(i.introPoints).toEqual({ a: 3, b: 2 });
    expect(i.introductions).toBeNull();
    expect(i.rendezvous).toBeNull();
    expect(i.notes.join('\n')).toMatch(/shallot_hs_intro_requests_total has no service_instance label/);
    expect(i.notes.join('\n')).toMatch(/shallot_hs_rend_total has no service_instance label/);
  });

  it('spreads per-instance load when the counters carry service_instance', () => {
    const after = snapshotOf([
      c('shallot_hs_intro_points', { service: 'web', service_instance: 'a' }, 3),
      c('shallot_hs_intro_points', { service: 'web', service_instance: 'b' }, 3),
      c(
        'shallot_hs_intro_requests_total',
        { service: 'web', service_instance: 'a', outcome: 'accepted' },
        30,
      ),
      c(
        'shallot_hs_intro_requests_total',
        { service: 'web', service_instance: 'b', outcome: 'accepted' },
        10,
      ),
      c('shallot_hs_rend_total', { service: 'web', service_instance: 'a', outcome: 'success' }, 30),
    ]);
    const f = scrapedFigures({
      target: { host: ONION, onion: true },
      relays: [snapshotOf([]), after],
      client: null,
      up,
      version: 'x',
    });
    expect(f.instanceSpread!.introductions!.counts).toEqual({ a: 30, b: 10 });
    expect(f.instanceSpread!.rendezvous!.counts).toEqual({ a: 30, b: 0 });
    expect(f.instanceSpread!.notes).toEqual([]);
    // A lone service labelled otherwise than shallot up names it is still the target's.
    const renamed = scrapedFigures({
      target: { host: ONION, onion: true },
      relays: [
        snapshotOf([]),
        snapshotOf([c('shallot_hs_intro_points', { service: 'onion', service_instance: '0' }, 2)]),
      ],
      client: null,
      up,
      version: 'x',
    });
    expect(renamed.instanceSpread).toMatchObject({ service: 'onion', introPoints: { '0': 2 } });
  });

  it("takes the network's settings from shallot up and the relays' metrics", () => {
    expect(figures.network).toEqual({
      relays: 6,
      mode: 'process-per-node',
      handshakes: { 'ntor-v3': 42 },
      version: '9.9.9',
      onionService: { name: 'web', instances: 2 },
    });
    // Without a data dir: relays from the authorities' consensus gauge, mode unknown.
    const bare = scrapedFigures({
      target: { host: '127.0.0.1', onion: false },
      relays: [relayBefore, relayAfter],
      client: null,
      up: null,
      version: '9.9.9',
    });
    expect(bare.network).toMatchObject({ relays: 6, mode: null, onionService: null });
    expect(bare.introSpread).toBeNull();
    expect(bare.instanceSpread).toBeNull();
  });
});
