/**
 * Relay pools (spec.relays.relaysPerPod, issue 17) against a real
 * kube-apiserver + etcd (test/setup/kube-env.ts): the CRD defaults and
 * bounds relaysPerPod; the apiserver accepts the pool StatefulSets (projected
 * key Secrets, one ORPort per relay); a pool scales up and down with relays
 * leaving from the last pool and each relay keeping its own key Secret until
 * no pod runs it; rotate-now replaces every relay's onion key in its own
 * Secret without touching the pool StatefulSets.
 *
 * No controller-manager or scheduler runs: pods are created here as the
 * StatefulSet controller would (unscheduled, so deleting one is immediate).
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../operator/api/crds.js';
import { imagesFromEnv } from '../../operator/config.js';
import { ANN_ROTATE_NOW, unb64 } from '../../operator/desired/common.js';
import { MemoryRecorder } from '../../operator/events.js';
import type { HttpKube, KubeObject } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/log.js';
import type { ReconcileContext } from '../../operator/reconcile/context.js';
import { reconcileNetwork } from '../../operator/reconcile/network.js';
import { toHex } from '../../services/core/bytes.js';
import { decodeNodeKeys } from '../../services/core/node-keys.js';
import { metricsFor } from '../../services/metrics/metrics.js';
import { parsePoolSpec } from '../../services/relay/pool.js';
import { installShallotCrds, startTestCluster, type TestCluster } from '../setup/kube-env.js';

const NS = 'pools';
let cluster: TestCluster;
let admin: HttpKube;
let ctx: ReconcileContext;

const net = (name: string) => ({ apiVersion: API_VERSION, kind: 'OnionNetwork', namespace: NS, name });

async function mergePatch(name: string, body: unknown): Promise<void> {
  await admin.request(
    'PATCH',
    `/apis/${API_VERSION}/namespaces/${NS}/onionnetworks/${name}`,
    body,
    'application/merge-patch+json',
  );
}

async function relayStsNames(): Promise<string[]> {
  const l = await admin.list('apps/v1', 'StatefulSet', NS, 'app.kubernetes.io/component=relay');
  return l.items.map((s) => s.metadata.name).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

async function relayKeys(): Promise<Map<number, { identity: string; onion: string }>> {
  const l = await admin.list('v1', 'Secret', NS, 'app.kubernetes.io/component=relay-keys');
  const out = new Map<number, { identity: string; onion: string }>();
  for (const s of l.items) {
    const k = decodeNodeKeys(unb64((s as any).data['keys.json'])!);
    out.set(Number(s.metadata.labels!['shallot.dev/relay-index']), {
      identity: toHex(k.identity),
      onion: toHex(k.onionKeys[0]!.public),
    });
  }
  return out;
}

/** The pod the StatefulSet controller would make from the StatefulSet's template. */
async function podFor(stsName: string): Promise<void> {
  const sts = await admin.get<any>({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    namespace: NS,
    name: stsName,
  });
  await admin.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${stsName}-0`, namespace: NS, labels: sts.spec.template.metadata.labels },
    spec: { containers: [{ name: 'relay', image: 'shallot-relay:test' }] },
  } as KubeObject);
}

const deletePod = (name: string) => admin.delete({ apiVersion: 'v1', kind: 'Pod', namespace: NS, name });

beforeAll(async () => {
  // Under SHALLOT_TEST_ALL this must work: a failure to start fails the suite (no skipping).
  cluster = await startTestCluster({ startupTimeoutMs: 90_000 });
  admin = cluster.admin;
  await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  // Pods need their ServiceAccount, which no controller-manager creates here.
  await admin.create({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default', namespace: NS },
  });
  await installShallotCrds(admin);
  ctx = {
    kube: admin,
    images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test' }),
    metrics: metricsFor(new Registry()).operator,
    recorder: new MemoryRecorder(),
    log: createLogger('silent'),
    now: Date.now,
    scrape: async () => '',
  };
}, 150_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('relay pools on a real apiserver', () => {
  it('the CRD defaults relaysPerPod to 1 and refuses 0 and more than 32', async () => {
    await admin.create({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'd', namespace: NS },
      spec: {},
    });
    expect(((await admin.get<any>(net('d'))) as any).spec.relays.relaysPerPod).toBe(1);
    for (const k of [0, 33]) {
      await expect(
        admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/onionnetworks?dryRun=All`, {
          apiVersion: API_VERSION,
          kind: 'OnionNetwork',
          metadata: { name: `bad${k}` },
          spec: { relays: { relaysPerPod: k } },
        }),
      ).rejects.toThrow(/relaysPerPod/);
    }
    await admin.delete(net('d'));
  });

  it("the CRD takes C tor's bandwidth rules: rate 0 or >= 75 KiB/s, burst 0 or >= rate", async () => {
    const dry = (relays: Record<string, number>) =>
      admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/onionnetworks?dryRun=All`, {
        apiVersion: API_VERSION,
        kind: 'OnionNetwork',
        metadata: { name: 'bw' },
        spec: { relays },
      });
    await dry({ bandwidthRate: 1_048_576, bandwidthBurst: 2_097_152 });
    await dry({ bandwidthRate: 1_048_576 });
    await dry({ bandwidthBurst: 100_000 });
    await expect(dry({ bandwidthRate: 1000 })).rejects.toThrow(/bandwidthRate must be 0 or at least 76800/);
    await expect(dry({ bandwidthRate: 1_048_576, bandwidthBurst: 100_000 })).rejects.toThrow(
      /bandwidthBurst must be 0 or at least bandwidthRate/,
    );
  });

  it('runs 10 relays in 3 pool StatefulSets, scales the last pool up and down, keeps keys per relay', async () => {
    await admin.create({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'p', namespace: NS },
      spec: { authorities: { replicas: 1 }, relays: { replicas: 10, relaysPerPod: 4 } },
    });
    await reconcileNetwork(ctx, NS, 'p');
    expect(await relayStsNames()).toEqual(['p-relay-0', 'p-relay-4', 'p-relay-8']);
    const keys = await relayKeys();
    expect([...keys.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set([...keys.values()].map((k) => k.identity)).size).toBe(10);
    // The apiserver stored the pool pod template as the relay image reads it.
    const sts = await admin.get<any>({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      namespace: NS,
      name: 'p-relay-4',
    });
    const c = sts.spec.template.spec.containers[0];
    const pool = parsePoolSpec(c.env.find((e: any) => e.name === 'SHALLOT_POOL').value);
    expect(pool.map((e) => e.port)).toEqual([9001, 9002, 9003, 9004]);
    expect(c.ports.map((p: any) => p.containerPort)).toEqual(
      expect.arrayContaining([9001, 9002, 9003, 9004]),
    );
    expect(sts.spec.template.spec.volumes[0].projected.sources).toHaveLength(4);

    // Up to 13: pool 8 grows to 8..11, pool 12 appears; existing relays keep their keys.
    await mergePatch('p', { spec: { relays: { replicas: 13 } } });
    await reconcileNetwork(ctx, NS, 'p');
    expect(await relayStsNames()).toEqual(['p-relay-0', 'p-relay-4', 'p-relay-8', 'p-relay-12']);
    const up = await relayKeys();
    expect(up.size).toBe(13);
    for (const [i, k] of keys) expect(up.get(i)).toEqual(k);

    // Down to 6 while pools 4, 8 and 12 have pods: pools 8 and 12 go, pool 4 shrinks to 4..5;
    // relays 6..12 still run in those pods, so their Secrets stay and they count as retiring.
    for (const s of ['p-relay-4', 'p-relay-8', 'p-relay-12']) await podFor(s);
    await mergePatch('p', { spec: { relays: { replicas: 6 } } });
    await reconcileNetwork(ctx, NS, 'p');
    expect(await relayStsNames()).toEqual(['p-relay-0', 'p-relay-4']);
    expect((await relayKeys()).size).toBe(13);
    let st = ((await admin.get<any>(net('p'))) as any).status;
    expect(st.relays).toMatchObject({ desired: 6, retiring: 7 });

    // The old pods go (pool 4's restarts with relays 4..5): the surplus Secrets go with them.
    for (const s of ['p-relay-4', 'p-relay-8', 'p-relay-12']) await deletePod(`${s}-0`);
    await podFor('p-relay-4');
    await reconcileNetwork(ctx, NS, 'p');
    const down = await relayKeys();
    expect([...down.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const [i, k] of down) expect(k).toEqual(keys.get(i));
    st = ((await admin.get<any>(net('p'))) as any).status;
    expect(st.relays).toMatchObject({ desired: 6, retiring: 0 });
  });

  it('rotate-now replaces each relay’s onion key in its own Secret and leaves the pool StatefulSets alone', async () => {
    const before = await relayKeys();
    const stsVersions = async () =>
      (await admin.list('apps/v1', 'StatefulSet', NS, 'app.kubernetes.io/component=relay')).items.map(
        (s) => s.metadata.resourceVersion,
      );
    const v0 = await stsVersions();
    await admin.request(
      'PATCH',
      `/apis/${API_VERSION}/namespaces/${NS}/onionnetworks/p`,
      { metadata: { annotations: { [ANN_ROTATE_NOW]: 'pools-1' } } },
      'application/merge-patch+json',
    );
    await reconcileNetwork(ctx, NS, 'p');
    const after = await relayKeys();
    expect(after.size).toBe(before.size);
    for (const [i, k] of before) {
      expect(after.get(i)!.identity).toBe(k.identity);
      expect(after.get(i)!.onion).not.toBe(k.onion);
    }
    expect(await stsVersions()).toEqual(v0);
  });
});
