// Options from a `shallot up` data dir: SOCKS, target shortcuts, targets
// file and client metrics; explicit options win.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyUpState, parseUpState, readUpState } from '../../../services/loadgen/network-state.js';
import { LoadConfigError } from '../../../services/loadgen/options.js';

const A = `${'a'.repeat(56)}.onion`;
const B = `${'b'.repeat(56)}.onion`;
const state = {
  version: 1,
  mode: 'one-process',
  pid: 4242,
  socks: '127.0.0.1:9050',
  web: '127.0.0.1:7180',
  onionServices: [
    { name: 'onion0', address: A, instances: 1 },
    { name: 'onion1', address: B, instances: 2 },
  ],
  nodes: [{ name: 'shallot', role: 'launcher', metrics: '127.0.0.1:7199', pid: 1 }],
  targetsFile: '.shallot/prometheus-targets.json',
};

describe('parseUpState', () => {
  it('takes SOCKS, web, onion addresses, targets file, the launcher pid; client metrics from the launcher in one process', () => {
    expect(parseUpState(JSON.stringify(state), 's')).toEqual({
      socks: '127.0.0.1:9050',
      web: '127.0.0.1:7180',
      onionAddresses: [A, B],
      targetsFile: '.shallot/prometheus-targets.json',
      clientMetrics: '127.0.0.1:7199',
      pid: 4242,
      onionServices: state.onionServices,
      mode: 'one-process',
      // One process lists no relay nodes: the report counts relays from metrics instead.
      relays: null,
    });
  });

  it('prefers the client node when each node is a process, and counts its relay processes', () => {
    const s = {
      ...state,
      mode: 'process-per-node',
      nodes: [
        ...state.nodes,
        { name: 'client', role: 'client', metrics: '127.0.0.1:7301' },
        { name: 'relay0', role: 'relay', metrics: '127.0.0.1:7302' },
        { name: 'relay1', role: 'relay', metrics: '127.0.0.1:7303' },
        { name: 'auth0', role: 'authority', metrics: '127.0.0.1:7304' },
      ],
    };
    const up = parseUpState(JSON.stringify(s), 's');
    expect(up.clientMetrics).toBe('127.0.0.1:7301');
    expect(up).toMatchObject({ mode: 'process-per-node', relays: 2 });
  });

  it('rejects what is not a state file', () => {
    expect(() => parseUpState('{', 's')).toThrow(LoadConfigError);
    expect(() => parseUpState('{"version":1}', 's')).toThrow(LoadConfigError);
    expect(() => parseUpState('null', 's')).toThrow(LoadConfigError);
  });
});

describe('applyUpState', () => {
  const s = parseUpState(JSON.stringify(state), 's');

  it('fills unset options; no target means the first onion service', () => {
    expect(applyUpState({}, s)).toMatchObject({
      target: A,
      socks: '127.0.0.1:9050',
      targetsFile: '.shallot/prometheus-targets.json',
      clientMetrics: '127.0.0.1:7199',
    });
  });

  it('resolves onion, onion:<i> and web', () => {
    expect(applyUpState({ target: 'onion' }, s).target).toBe(A);
    expect(applyUpState({ target: 'onion:1' }, s).target).toBe(B);
    expect(applyUpState({ target: 'web' }, s).target).toBe('127.0.0.1:7180');
    expect(applyUpState({ target: '127.0.0.1:1' }, s).target).toBe('127.0.0.1:1');
    expect(() => applyUpState({ target: 'onion:2' }, s)).toThrow(LoadConfigError);
  });

  it('keeps explicit options; explicit relay metrics replace the targets file', () => {
    const o = applyUpState({ socks: '127.0.0.1:1', clientMetrics: 'h:2', relayMetrics: ['h:3'] }, s);
    expect(o).toMatchObject({ socks: '127.0.0.1:1', clientMetrics: 'h:2', relayMetrics: ['h:3'] });
    expect(o.targetsFile).toBeUndefined();
  });

  it('needs a target when the network has neither onion services nor a web target', () => {
    expect(() => applyUpState({}, { ...s, onionAddresses: [], web: null })).toThrow(LoadConfigError);
    expect(() => applyUpState({ target: 'web' }, { ...s, web: null })).toThrow(LoadConfigError);
  });

  it('reads state.json from a data dir, and says so when there is none', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'shallot-load-'));
    try {
      await expect(readUpState(dir)).rejects.toThrow(/no running network/);
      // A running launcher: this process.
      await writeFile(path.join(dir, 'state.json'), JSON.stringify({ ...state, pid: process.pid }));
      expect((await readUpState(dir)).onionAddresses).toEqual([A, B]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
