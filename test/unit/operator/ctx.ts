/** A ReconcileContext over FakeKube with a settable clock and a seeded RNG. */
import { Registry } from 'prom-client';
import { expect } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { imagesFromEnv } from '../../../operator/config.js';
import { MemoryRecorder } from '../../../operator/events.js';
import { silentLogger } from '../../../operator/log.js';
import type { ReconcileContext } from '../../../operator/reconcile/context.js';
import { reconcileNetwork } from '../../../operator/reconcile/network.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { seededRng } from '../../helpers/seeded-rng.js';
import { FakeKube } from './fake-kube.js';

export function testContext(start = Date.parse('2025-06-01T00:00:00Z')) {
  const kube = new FakeKube();
  const registry = new Registry();
  const recorder = new MemoryRecorder();
  const clock = { now: start };
  const scrapes: Record<string, string> = {};
  const ctx: ReconcileContext = {
    kube,
    images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test' }),
    metrics: metricsFor(registry).operator,
    recorder,
    log: silentLogger,
    now: () => clock.now,
    rng: seededRng(7),
    scrape: async (url) => {
      const body = scrapes[url];
      if (body === undefined) throw new Error(`no scrape for ${url}`);
      return body;
    },
  };
  return { ctx, kube, registry, recorder, clock, scrapes };
}

/**
 * A context holding the reconciled OnionNetwork `net` and the OnionService
 * `web` on it (not yet reconciled) in namespace `ns`.
 */
export async function networkWithService(
  ns: string,
  svc: { spec?: Record<string, unknown>; annotations?: Record<string, string> } = {},
) {
  const t = testContext();
  t.kube.seed({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    metadata: { name: 'net', namespace: ns },
    spec: { relays: { replicas: 1 } },
  });
  await reconcileNetwork(t.ctx, ns, 'net');
  t.kube.seed({
    apiVersion: API_VERSION,
    kind: 'OnionService',
    metadata: { name: 'web', namespace: ns, ...(svc.annotations ? { annotations: svc.annotations } : {}) },
    spec: { network: 'net', ...svc.spec },
  });
  return t;
}

/**
 * `kind` `name` is Degraded for reason InvalidLocation with a message
 * matching `want`, and one InvalidLocation Event says so (a LoadTest's or an
 * OnionService's location the network's model cannot place).
 */
export function expectInvalidLocation(
  kube: FakeKube,
  recorder: MemoryRecorder,
  ref: { kind: string; ns: string; name: string },
  want: RegExp,
): void {
  const obj = kube.getObj<{ status?: { conditions?: { type: string; message?: string }[] } }>(
    ref.kind,
    ref.ns,
    ref.name,
  );
  const degraded = obj?.status?.conditions?.find((c) => c.type === 'Degraded');
  expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidLocation' });
  expect(degraded?.message).toMatch(want);
  expect(recorder.events.filter((e) => e.reason === 'InvalidLocation')).toHaveLength(1);
}
