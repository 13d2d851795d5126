/** Controller plumbing without a cluster: keys, dispatch, metrics, backoff on failure; config from env; API paths. */
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { configFromEnv, imagesFromEnv } from '../../../operator/config.js';
import { Controller, keyOf, parseKey } from '../../../operator/controller.js';
import { resourcePath } from '../../../operator/kube/client.js';
import { testContext } from './ctx.js';

describe('Controller.process', () => {
  it('reconciles a key, counts it, and schedules the requeue the reconciler asked for', async () => {
    const { ctx, kube, registry } = testContext();
    kube.seed({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'n', namespace: 'ns' },
      spec: { relays: { replicas: 1 } },
    });
    const c = new Controller(ctx, { resyncMs: 60_000, workers: 1 });
    await c.process(keyOf('OnionNetwork', 'ns', 'n'));
    expect(kube.getObj('StatefulSet', 'ns', 'n-relay-0')).toBeDefined();
    const text = await registry.metrics();
    expect(text).toMatch(/shallot_operator_reconcile_total\{kind="OnionNetwork",result="requeue"\} 1/);
    expect(text).toMatch(/shallot_operator_reconcile_seconds_count\{kind="OnionNetwork"\} 1/);
    c.queue.shutdown();
  });

  it('turns a failing reconcile into an error count and a backed-off retry, never a throw', async () => {
    const { ctx, kube, registry } = testContext();
    kube.get = async () => {
      throw new Error('apiserver down');
    };
    const c = new Controller(ctx, { resyncMs: 60_000, workers: 1, baseBackoffMs: 100 });
    const key = keyOf('OnionService', 'ns', 's');
    await c.process(key);
    await c.process(key);
    expect(c.queue.retries(key)).toBe(2);
    expect(await registry.metrics()).toMatch(
      /shallot_operator_reconcile_total\{kind="OnionService",result="error"\} 2/,
    );
    c.queue.shutdown();
  });

  it('keys round-trip', () => {
    expect(parseKey(keyOf('LoadTest', 'a', 'b'))).toEqual({ kind: 'LoadTest', namespace: 'a', name: 'b' });
  });
});

describe('config from the environment', () => {
  it('derives images from registry and tag, with per-image overrides', () => {
    expect(
      imagesFromEnv({
        SHALLOT_IMAGE_REGISTRY: 'reg.io/x/',
        SHALLOT_IMAGE_TAG: '1.2',
        SHALLOT_CLIENT_IMAGE: 'c:9',
      }),
    ).toEqual({
      relay: 'reg.io/x/shallot-relay:1.2',
      directory: 'reg.io/x/shallot-directory:1.2',
      onionService: 'reg.io/x/shallot-onion-service:1.2',
      client: 'c:9',
      pullPolicy: 'IfNotPresent',
    });
    expect(() => imagesFromEnv({ SHALLOT_IMAGE_PULL_POLICY: 'Sometimes' })).toThrow(/PULL_POLICY/);
  });

  it('reads the rest with defaults and range checks', () => {
    const c = configFromEnv({ POD_NAMESPACE: 'sys', POD_NAME: 'op-1', SHALLOT_RESYNC_SECONDS: '30' });
    expect(c).toMatchObject({
      leaseNamespace: 'sys',
      identity: 'op-1',
      resyncMs: 30_000,
      workers: 2,
      opsPort: 8080,
      leaderElection: true,
      watchNamespace: undefined,
    });
    expect(configFromEnv({ SHALLOT_LEADER_ELECTION: 'false', SHALLOT_WATCH_NAMESPACE: 'tn' })).toMatchObject({
      leaderElection: false,
      watchNamespace: 'tn',
    });
    expect(() => configFromEnv({ SHALLOT_WORKERS: '0' })).toThrow(/SHALLOT_WORKERS/);
  });
});

describe('resourcePath', () => {
  it('builds core, group, cluster-scoped and subresource paths', () => {
    expect(resourcePath('v1', 'Secret', 'ns', 'a')).toBe('/api/v1/namespaces/ns/secrets/a');
    expect(resourcePath('apps/v1', 'StatefulSet', undefined)).toBe('/apis/apps/v1/statefulsets');
    expect(resourcePath(API_VERSION, 'OnionNetwork', 'ns', 'n', 'status')).toBe(
      '/apis/shallot.dev/v1alpha1/namespaces/ns/onionnetworks/n/status',
    );
    expect(resourcePath('v1', 'Namespace', undefined, 'x')).toBe('/api/v1/namespaces/x');
    expect(() => resourcePath('v1', 'Widget')).toThrow(/unknown kind/);
    expect(() => resourcePath('v1', 'Secret', undefined, 'a')).toThrow(/namespace/);
  });
});
