/**
 * NetworkFault against a real kube-apiserver + etcd (test/setup/kube-env.ts),
 * the operator authenticated only as the chart's ServiceAccount with the
 * chart's RBAC (rendered by helm).
 *
 * Shows: the CRD installs and refuses a fault with no or two targets; the
 * operator applies a kill to a relay's pod (deletes it, and again when it
 * is back while the fault is in force), records phase, startedAt, healedAt
 * and podsDeleted in status with FaultStarted/FaultHealed Events, then
 * leaves the pod alone once healed; deleting an active fault heals it (the
 * recreated pod stays); shallot_fault_active follows.
 *
 * No controller-manager or kubelet runs: the relay "pod" is created here
 * as its StatefulSet controller would, and nothing recreates it but us.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../operator/api/crds.js';
import { imagesFromEnv } from '../../operator/config.js';
import { HttpKube, type KubeObject } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/log.js';
import { Operator } from '../../operator/main.js';
import {
  installShallotCrds,
  renderChartRbac,
  startTestCluster,
  type TestCluster,
  eventually as waitUntil,
} from '../setup/kube-env.js';

const SYS = 'shallot-system';
const NS = 'faults';
const SA = 'shallot';

let cluster: TestCluster;
let admin: HttpKube;
let op: Operator | null = null;
const logs: string[] = [];

const eventually = <T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000) =>
  waitUntil(what, fn, { timeoutMs, intervalMs: 150 });

const relayPod = (): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'net-relay-1-0',
    namespace: NS,
    labels: {
      'app.kubernetes.io/name': 'shallot',
      'shallot.dev/network': 'net',
      'app.kubernetes.io/component': 'relay',
      'shallot.dev/relay-index': '1',
    },
  },
  spec: { containers: [{ name: 'relay', image: 'shallot-relay:test' }] },
});
const podRef = { apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'net-relay-1-0' };
const faultRef = (name: string) => ({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name });
const fault = (name: string, durationSeconds: number): KubeObject => ({
  apiVersion: API_VERSION,
  kind: 'NetworkFault',
  metadata: { name, namespace: NS },
  spec: { network: 'net', kind: 'kill', target: { relay: 1 }, durationSeconds },
});
const activeSeries = async () =>
  (await op?.registry.metrics())?.split('\n').find((l) => l.startsWith('shallot_fault_active{')) ?? '';

beforeAll(async () => {
  cluster = await startTestCluster({ startupTimeoutMs: 90_000 });
  admin = cluster.admin;
  for (const ns of [SYS, NS])
    await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await installShallotCrds(admin);
  // No controller-manager makes the namespace's default ServiceAccount, which a pod needs.
  await admin.create({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default', namespace: NS },
  });
  for (const o of renderChartRbac(SYS)) await admin.create(o);
  const kube = new HttpKube(cluster.configForToken(await cluster.serviceAccountToken(SYS, SA)));
  // An empty network: the fault needs it to exist; its StatefulSets never get pods here.
  await admin.create({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    metadata: { name: 'net', namespace: NS },
    spec: {},
  });
  op = new Operator({
    config: {
      images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test', SHALLOT_IMAGE_PULL_POLICY: 'Never' }),
      watchNamespace: undefined,
      leaderElection: false,
      leaseNamespace: SYS,
      leaseName: 'shallot-operator-leader',
      identity: 'op-faults',
      opsHost: '127.0.0.1',
      opsPort: 0,
      resyncMs: 5_000,
      workers: 2,
      logLevel: 'info',
    },
    kube,
    log: createLogger('info', (line) => logs.push(line)),
    baseBackoffMs: 200,
  });
  await op.start();
}, 150_000);

afterAll(async () => {
  await op?.stop().catch(() => {});
  await cluster?.stop();
});

describe('NetworkFault on a real apiserver', () => {
  it('the CRD refuses a fault with no target or two', async () => {
    for (const target of [{}, { relay: 1, authority: 0 }]) {
      const bad = { ...fault('bad', 5), spec: { network: 'net', kind: 'kill', target } };
      await expect(
        admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/networkfaults?dryRun=All`, bad),
      ).rejects.toThrow(/exactly one of authority, relay and onionService/);
    }
  });

  it('a kill deletes the pod, again while in force, heals after its duration and leaves the pod', async () => {
    await admin.create(relayPod());
    await admin.create(fault('kill-relay', 6));
    await eventually('pod deleted', async () => !(await admin.get(podRef)));
    const started: any = await eventually('Active', async () => {
      const f = await admin.get(faultRef('kill-relay'));
      return f?.status?.phase === 'Active' ? f : null;
    });
    expect(started.status.startedAt).toBeDefined();
    expect(await activeSeries()).toMatch(/kind="kill",target="relay-1"[^}]*\} 1$/);
    // Its controller brings it back: the fault takes it down again.
    await admin.create(relayPod());
    await eventually('pod deleted again', async () => !(await admin.get(podRef)));
    const healed: any = await eventually('Healed', async () => {
      const f = await admin.get(faultRef('kill-relay'));
      return f?.status?.phase === 'Healed' ? f : null;
    });
    expect(healed.status.podsDeleted).toBeGreaterThanOrEqual(2);
    expect(Date.parse(healed.status.healedAt) - Date.parse(healed.status.startedAt)).toBeGreaterThanOrEqual(
      5_000,
    );
    expect(await activeSeries()).toMatch(/\} 0$/);
    const events = await admin.list('v1', 'Event', NS);
    const reasons = events.items
      .filter((e: any) => e.involvedObject?.name === 'kill-relay')
      .map((e: any) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['FaultStarted', 'FaultHealed']));
    // Healed: the pod that comes back stays.
    await admin.create(relayPod());
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await admin.get(podRef)).not.toBeNull();
    await admin.delete(podRef);
  }, 90_000);

  it('deleting an active fault heals it: the pod comes back and stays', async () => {
    await eventually('old pod gone', async () => !(await admin.get(podRef)));
    await admin.create(relayPod());
    await admin.create(fault('long-kill', 3600));
    await eventually('pod deleted', async () => !(await admin.get(podRef)));
    await eventually('series 1', async () => /\} 1$/.test(await activeSeries()));
    await admin.delete(faultRef('long-kill'));
    await eventually('series 0', async () => /\} 0$/.test(await activeSeries()));
    await admin.create(relayPod());
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await admin.get(podRef)).not.toBeNull();
  }, 90_000);
});
