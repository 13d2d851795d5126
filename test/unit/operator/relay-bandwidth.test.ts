// OnionNetwork spec.relays.bandwidthRate/bandwidthBurst and spec.networkModel
// (issue 18): the relay pods get SHALLOT_BANDWIDTH_RATE/BURST and
// SHALLOT_NETWORK_MODEL_JSON only when set, and the CRD's CEL rules carry C
// tor's minimum rate and burst >= rate.
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { type OnionNetwork, onionNetworkSpecSchema } from '../../../operator/api/onion-network.js';
import { imagesFromEnv } from '../../../operator/config.js';
import { desiredRelayStatefulSet } from '../../../operator/desired/network.js';
import { withDefaults } from '../../../operator/reconcile/network.js';
import { parseNetworkModel } from '../../../services/core/network-model.js';

const network = (relays: Record<string, number>, networkModel?: Record<string, unknown>) =>
  withDefaults({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    metadata: { name: 'alpha', namespace: 'tn', uid: 'u1' },
    // What the apiserver hands over: a partial spec that withDefaults fills.
    spec: { relays, ...(networkModel ? { networkModel } : {}) },
  } as unknown as OnionNetwork);

function relayEnv(
  relays: Record<string, number>,
  networkModel?: Record<string, unknown>,
): { name: string; value?: string }[] {
  const sts = desiredRelayStatefulSet(
    {
      net: network(relays, networkModel),
      images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test' }),
      authorityIds: ['aa'.repeat(32)],
      relays: 1,
      relayIdentities: ['11'.repeat(32)],
    },
    0,
  );
  const spec = sts.spec as {
    template: { spec: { containers: { env: { name: string; value?: string }[] }[] } };
  };
  return spec.template.spec.containers[0]?.env ?? [];
}

describe('relay bandwidth in the OnionNetwork', () => {
  it('no rate by default: no limit in the pods', () => {
    expect(relayEnv({}).some((e) => e.name.startsWith('SHALLOT_BANDWIDTH_'))).toBe(false);
  });

  it('a rate (and burst) reach the relay as SHALLOT_BANDWIDTH_RATE/BURST', () => {
    const env = relayEnv({ bandwidthRate: 1_048_576, bandwidthBurst: 2_097_152 });
    expect(env).toContainEqual({ name: 'SHALLOT_BANDWIDTH_RATE', value: '1048576' });
    expect(env).toContainEqual({ name: 'SHALLOT_BANDWIDTH_BURST', value: '2097152' });
  });

  it('spec.networkModel reaches the relay as SHALLOT_NETWORK_MODEL_JSON, which the relay parses', () => {
    expect(relayEnv({}).some((e) => e.name === 'SHALLOT_NETWORK_MODEL_JSON')).toBe(false);
    const model = { locations: ['us', 'eu'], defaultLatencyMs: 40, assign: 'random', seed: 3 };
    const v = relayEnv({}, model).find((e) => e.name === 'SHALLOT_NETWORK_MODEL_JSON')?.value;
    expect(parseNetworkModel(v ?? '').locations).toEqual(['us', 'eu']);
  });

  // What the rules accept and refuse is tested on the real apiserver
  // (test/slow/operator-pools.test.ts); here, that they are written
  // against fields that may be absent (the apiserver also checks the
  // default {}).
  it("the schema's CEL rules are C tor's, guarded by has()", () => {
    const relays = (onionNetworkSpecSchema.properties as Record<string, Record<string, unknown>>).relays;
    expect(relays?.['x-kubernetes-validations']).toEqual([
      {
        rule: '!has(self.bandwidthRate) || self.bandwidthRate == 0 || self.bandwidthRate >= 76800',
        message: expect.any(String),
      },
      {
        rule: '!has(self.bandwidthBurst) || self.bandwidthBurst == 0 || self.bandwidthBurst >= (has(self.bandwidthRate) ? self.bandwidthRate : 0)',
        message: expect.any(String),
      },
    ]);
  });
});
