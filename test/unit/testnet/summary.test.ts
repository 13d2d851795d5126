// What `shallot up` prints when ready (services/testnet/summary.ts): the
// fault line appears when the launcher serves a fault-control endpoint
// (every mode since issue 18) and names the network's data dir.
import { describe, expect, it } from 'vitest';
import type { NetworkState } from '../../../services/testnet/state.js';
import { readySummary } from '../../../services/testnet/summary.js';

const state = (control?: string): NetworkState => ({
  version: 1,
  startedAt: '2026-01-01T00:00:00.000Z',
  pid: 1,
  mode: 'workers',
  authorities: [],
  socks: '127.0.0.1:9050',
  web: '127.0.0.1:8000',
  onionServices: [],
  nodes: [],
  targetsFile: '/tmp/x/prometheus-targets.json',
  ...(control ? { control } : {}),
});
const opts = { authorities: 3, relays: 6, exits: 2, socksPort: 9050, clientAuth: false, dataDir: '/tmp/x' };

describe('readySummary', () => {
  it('shows how to inject a fault when the launcher has a control endpoint', () => {
    expect(readySummary(state('127.0.0.1:7777'), opts)).toContain(
      'Faults: npx shallot fault pause relay1 --duration 30 --data-dir /tmp/x',
    );
    expect(readySummary(state(), opts)).not.toContain('Faults:');
  });
});
