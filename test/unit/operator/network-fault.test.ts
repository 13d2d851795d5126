// NetworkFault reconcile (operator/reconcile/network-fault.ts) over FakeKube
// with a settable clock: a kill deletes the relay's pod (grace 0), deletes
// it again when it comes back while in force, heals after durationSeconds
// (then leaves the pod alone), with status, Events and shallot_fault_active;
// a restart deletes once and heals; an onion-service instance is picked by
// pod name order; a missing network keeps it Pending; deleting the
// NetworkFault drops the series to 0.
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import type { KubeObject, ObjRef } from '../../../operator/kube/client.js';
import { reconcileNetworkFault } from '../../../operator/reconcile/network-fault.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { testContext } from './ctx.js';

const NS = 'tn';

function setup() {
  const t = testContext();
  t.ctx.faultMetrics = metricsFor(t.registry).faults;
  const deletes: { name: string; grace: number | undefined }[] = [];
  const del = t.kube.delete.bind(t.kube);
  // FakeKube ignores the grace period; record what the reconcile asked for.
  t.kube.delete = async (ref: ObjRef, ...rest: [unknown?, number?]) => {
    deletes.push({ name: ref.name, grace: rest[1] });
    return del(ref);
  };
  t.kube.seed({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    metadata: { name: 'net', namespace: NS },
    spec: {},
  });
  return { ...t, deletes };
}

const pod = (name: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NS, labels },
});
const relayPod = () =>
  pod('net-relay-2-0', {
    'shallot.dev/network': 'net',
    'app.kubernetes.io/component': 'relay',
    'shallot.dev/relay-index': '2',
  });

const fault = (name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: API_VERSION,
  kind: 'NetworkFault',
  metadata: { name, namespace: NS, generation: 1 },
  spec: { network: 'net', ...spec },
});

const statusOf = async (t: ReturnType<typeof setup>, name: string) =>
  (await t.kube.get({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name }))?.status;

const active = async (t: ReturnType<typeof setup>) =>
  (await t.registry.metrics()).split('\n').filter((l) => l.startsWith('shallot_fault_active{'));

describe('NetworkFault reconcile', () => {
  it('kill: deletes the pod without grace, again while in force, then heals and leaves it', async () => {
    const t = setup();
    t.kube.seed(relayPod());
    t.kube.seed(fault('k', { kind: 'kill', target: { relay: 2 }, durationSeconds: 10 }));
    expect(await reconcileNetworkFault(t.ctx, NS, 'k')).toEqual({ requeueAfterMs: 1000 });
    expect(t.deletes).toEqual([{ name: 'net-relay-2-0', grace: 0 }]);
    expect(await statusOf(t, 'k')).toMatchObject({
      phase: 'Active',
      podsDeleted: 1,
      startedAt: expect.any(String),
    });
    expect(t.recorder.events.map((e) => e.reason)).toEqual(['FaultStarted']);
    expect(await active(t)).toEqual(['shallot_fault_active{kind="kill",target="relay-2"} 1']);
    // Its StatefulSet brings it back: deleted again.
    t.kube.seed(relayPod());
    t.clock.now += 3000;
    await reconcileNetworkFault(t.ctx, NS, 'k');
    expect(t.deletes).toHaveLength(2);
    expect((await statusOf(t, 'k'))?.podsDeleted).toBe(2);
    // Over: healed, and the pod that comes back stays.
    t.kube.seed(relayPod());
    t.clock.now += 7000;
    expect(await reconcileNetworkFault(t.ctx, NS, 'k')).toEqual({});
    expect(await statusOf(t, 'k')).toMatchObject({ phase: 'Healed', healedAt: expect.any(String) });
    expect(t.recorder.events.map((e) => e.reason)).toEqual(['FaultStarted', 'FaultHealed']);
    expect(await active(t)).toEqual(['shallot_fault_active{kind="kill",target="relay-2"} 0']);
    await reconcileNetworkFault(t.ctx, NS, 'k');
    expect(t.deletes).toHaveLength(2);
    expect(
      await t.kube.get({ apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'net-relay-2-0' }),
    ).not.toBeNull();
  });

  it('shallot_fault_active is set before the status says Active, and cleared before it says Healed', async () => {
    // Whoever reads the status and then the gauge (a dashboard, the real-apiserver test) must agree.
    const t = setup();
    t.kube.seed(relayPod());
    t.kube.seed(fault('k', { kind: 'kill', target: { relay: 2 }, durationSeconds: 10 }));
    const seen: { phase: unknown; gauge: string[] }[] = [];
    const patch = t.kube.patchStatus.bind(t.kube);
    t.kube.patchStatus = async (ref: ObjRef, status: Record<string, unknown>) => {
      seen.push({ phase: status.phase, gauge: await active(t) });
      return patch(ref, status);
    };
    await reconcileNetworkFault(t.ctx, NS, 'k');
    t.clock.now += 11_000;
    await reconcileNetworkFault(t.ctx, NS, 'k');
    expect(seen).toEqual([
      { phase: 'Active', gauge: ['shallot_fault_active{kind="kill",target="relay-2"} 1'] },
      { phase: 'Healed', gauge: ['shallot_fault_active{kind="kill",target="relay-2"} 0'] },
    ]);
  });

  it('restart: one graceful deletion, healed at once; an authority by pod name', async () => {
    const t = setup();
    t.kube.seed(pod('net-auth-1', {}));
    t.kube.seed(fault('r', { kind: 'restart', target: { authority: 1 } }));
    await reconcileNetworkFault(t.ctx, NS, 'r');
    await reconcileNetworkFault(t.ctx, NS, 'r');
    expect(t.deletes).toEqual([{ name: 'net-auth-1', grace: undefined }]);
    expect(await statusOf(t, 'r')).toMatchObject({ phase: 'Healed', podsDeleted: 1 });
  });

  it('stop on an onion-service instance picks the pod by name order', async () => {
    const t = setup();
    for (const n of ['web-b', 'web-a', 'web-c']) t.kube.seed(pod(n, { 'shallot.dev/onion-service': 'web' }));
    t.kube.seed(
      fault('s', { kind: 'stop', target: { onionService: 'web', instance: 1 }, durationSeconds: 5 }),
    );
    await reconcileNetworkFault(t.ctx, NS, 's');
    expect(t.deletes).toEqual([{ name: 'web-b', grace: undefined }]);
  });

  it('waits for a missing network; a deleted NetworkFault heals its series', async () => {
    const t = setup();
    t.kube.seed(fault('p', { network: 'other', kind: 'kill', target: { relay: 0 }, durationSeconds: 5 }));
    expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({ requeueAfterMs: 10_000 });
    expect(await statusOf(t, 'p')).toMatchObject({
      phase: 'Pending',
      message: 'OnionNetwork other not found',
    });
    t.kube.seed(relayPod());
    t.kube.seed(fault('d', { kind: 'stop', target: { relay: 2 }, durationSeconds: 60 }));
    await reconcileNetworkFault(t.ctx, NS, 'd');
    expect(await active(t)).toEqual(['shallot_fault_active{kind="stop",target="relay-2"} 1']);
    await t.kube.delete({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name: 'd' });
    await reconcileNetworkFault(t.ctx, NS, 'd');
    expect(await active(t)).toEqual(['shallot_fault_active{kind="stop",target="relay-2"} 0']);
  });
});
