/**
 * Relay pools (spec.relays.relaysPerPod, issue 17): the desired pods of a
 * pooled network, and reconcile scaling pools up and down against the
 * in-memory API, with one key Secret per relay throughout.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { unb64 } from '../../../operator/desired/common.js';
import { poolRanges } from '../../../operator/desired/relay-pool.js';
import type { KubeObject } from '../../../operator/kube/client.js';
import { reconcileNetwork } from '../../../operator/reconcile/network.js';
import { toHex } from '../../../services/core/bytes.js';
import { decodeNodeKeys } from '../../../services/core/node-keys.js';
import { parsePoolSpec } from '../../../services/relay/pool.js';
import { testContext } from './ctx.js';

const NS = 'tn';

function seed(kube: ReturnType<typeof testContext>['kube'], relays: Record<string, unknown>) {
  kube.seed<KubeObject>({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    metadata: { name: 'alpha', namespace: NS, annotations: {} },
    spec: { authorities: { replicas: 1 }, relays },
  });
}

const relaySts = (kube: ReturnType<typeof testContext>['kube']) =>
  kube
    .ofKind('StatefulSet')
    .filter((s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'relay')
    .map((s) => s.metadata.name)
    .sort();

const relaySecrets = (kube: ReturnType<typeof testContext>['kube']) =>
  kube
    .ofKind('Secret')
    .filter((s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'relay-keys')
    .map((s) => s.metadata.name)
    .sort();

function identity(kube: ReturnType<typeof testContext>['kube'], i: number): string {
  const s = kube.getObj<any>('Secret', NS, `alpha-relay-${i}-keys`)!;
  return toHex(decodeNodeKeys(unb64(s.data['keys.json'])!).identity);
}

function podOf(kube: ReturnType<typeof testContext>['kube'], sts: string): KubeObject {
  const o = kube.getObj<any>('StatefulSet', NS, sts)!;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...o.spec.template.metadata, name: `${sts}-0`, namespace: NS },
  };
}

describe('relay pools', () => {
  it('cuts relays into pools of K consecutive indexes, the last one shorter', () => {
    expect(poolRanges(10, 4)).toEqual([
      { first: 0, last: 3 },
      { first: 4, last: 7 },
      { first: 8, last: 9 },
    ]);
    expect(poolRanges(3, 1)).toEqual([
      { first: 0, last: 0 },
      { first: 1, last: 1 },
      { first: 2, last: 2 },
    ]);
    expect(poolRanges(0, 4)).toEqual([]);
  });

  it('desired state: ceil(replicas / relaysPerPod) pods, each relay with its own port, nickname, exit role and key Secret', async () => {
    const { ctx, kube } = testContext();
    seed(kube, { replicas: 10, relaysPerPod: 4, exitFraction: 0.34 });
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relaySts(kube)).toEqual(['alpha-relay-0', 'alpha-relay-4', 'alpha-relay-8']);
    expect(relaySecrets(kube)).toHaveLength(10);

    const sts = kube.getObj<any>('StatefulSet', NS, 'alpha-relay-4')!;
    expect(sts.metadata.labels).toMatchObject({
      'shallot.dev/relay-index': '4',
      'shallot.dev/relay-last': '7',
    });
    expect(sts.spec.selector.matchLabels['shallot.dev/relay-last']).toBeUndefined();
    const pod = sts.spec.template.spec;
    const c = pod.containers[0];
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    // The relay image's own parser accepts what the operator writes.
    const entries = parsePoolSpec(env.SHALLOT_POOL);
    expect(entries.map((e) => [e.nickname, e.port, e.exit])).toEqual([
      ['alphar4', 9001, true],
      ['alphar5', 9002, false],
      ['alphar6', 9003, false],
      ['alphar7', 9004, true],
    ]);
    expect(entries.map((e) => e.keyWatch)).toEqual(
      [4, 5, 6, 7].map((i) => `/etc/shallot/secret/r${i}/keys.json`),
    );
    expect(env.SHALLOT_KEY_FILE).toBeUndefined();
    expect(env.SHALLOT_REENTRY_REJECT).toBeDefined(); // the pool holds exits
    expect(
      c.ports.filter((p: any) => p.name.startsWith('or')).map((p: any) => [p.name, p.containerPort]),
    ).toEqual([
      ['or', 9001],
      ['or-1', 9002],
      ['or-2', 9003],
      ['or-3', 9004],
    ]);
    // One Secret per relay, projected without subPath so rotated keys arrive in place.
    const secret = pod.volumes.find((v: any) => v.name === 'secret');
    expect(secret.projected.sources.map((s: any) => [s.secret.name, s.secret.items[0].path])).toEqual(
      [4, 5, 6, 7].map((i) => [`alpha-relay-${i}-keys`, `r${i}/keys.json`]),
    );
    expect(c.volumeMounts.every((m: any) => m.subPath === undefined)).toBe(true);
    for (const i of [4, 5, 6, 7]) expect(pod.initContainers[0].command[2]).toContain(`r${i}/keys.json`);
    // The last pool holds two relays.
    const last = kube.getObj<any>('StatefulSet', NS, 'alpha-relay-8')!;
    const lastEnv = last.spec.template.spec.containers[0].env.find((e: any) => e.name === 'SHALLOT_POOL');
    expect(parsePoolSpec(lastEnv.value).map((e) => e.nickname)).toEqual(['alphar8', 'alphar9']);
  });

  it('counts ready relays, not ready pods', async () => {
    const { ctx, kube } = testContext();
    seed(kube, { replicas: 6, relaysPerPod: 4 });
    await reconcileNetwork(ctx, NS, 'alpha');
    kube.getObj('StatefulSet', NS, 'alpha-auth')!.status = { readyReplicas: 1 };
    kube.getObj('StatefulSet', NS, 'alpha-relay-0')!.status = { readyReplicas: 1 };
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status.relays).toMatchObject({
      desired: 6,
      ready: 4,
    });
    kube.getObj('StatefulSet', NS, 'alpha-relay-4')!.status = { readyReplicas: 1 };
    await reconcileNetwork(ctx, NS, 'alpha');
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.relays).toMatchObject({ desired: 6, ready: 6 });
    expect(st.conditions[0]).toMatchObject({ type: 'Ready', status: 'True' });
  });

  it('scales a pool up and down: relays leave from the last pool, keys stay per relay until no pod runs them', async () => {
    const { ctx, kube } = testContext();
    seed(kube, { replicas: 6, relaysPerPod: 4 });
    await reconcileNetwork(ctx, NS, 'alpha');
    const ids = [0, 1, 2, 3, 4, 5].map((i) => identity(kube, i));
    expect(relaySts(kube)).toEqual(['alpha-relay-0', 'alpha-relay-4']);

    // Up to 11: the last pool fills (4..7) and a third (8..10) appears; no key changes.
    kube.editSpec('OnionNetwork', NS, 'alpha', (s) => (s.relays.replicas = 11));
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relaySts(kube)).toEqual(['alpha-relay-0', 'alpha-relay-4', 'alpha-relay-8']);
    expect(relaySecrets(kube)).toHaveLength(11);
    expect([0, 1, 2, 3, 4, 5].map((i) => identity(kube, i))).toEqual(ids);
    expect(
      kube.getObj<any>('StatefulSet', NS, 'alpha-relay-4')!.metadata.labels['shallot.dev/relay-last'],
    ).toBe('7');

    // Down to 5 while the pools' pods still run: pool 8 goes, pool 4 shrinks to relay 4 alone.
    kube.seed(podOf(kube, 'alpha-relay-4'));
    kube.seed(podOf(kube, 'alpha-relay-8'));
    kube.editSpec('OnionNetwork', NS, 'alpha', (s) => (s.relays.replicas = 5));
    const r = await reconcileNetwork(ctx, NS, 'alpha');
    expect(relaySts(kube)).toEqual(['alpha-relay-0', 'alpha-relay-4']);
    expect(
      kube.getObj<any>('StatefulSet', NS, 'alpha-relay-4')!.metadata.labels['shallot.dev/relay-last'],
    ).toBe(undefined);
    // Relays 5..10 still run in the old pods: their keys stay, and they count as retiring.
    expect(relaySecrets(kube)).toHaveLength(11);
    expect(kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status.relays).toMatchObject({
      desired: 5,
      retiring: 6,
    });
    expect(r.requeueAfterMs).toBe(5000);

    // Pool 8's pod is gone, and pool 4's pod restarted with the new template (relay 4 only).
    await kube.delete({ apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'alpha-relay-8-0' });
    await kube.delete({ apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'alpha-relay-4-0' });
    kube.seed(podOf(kube, 'alpha-relay-4'));
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relaySecrets(kube)).toEqual([0, 1, 2, 3, 4].map((i) => `alpha-relay-${i}-keys`));
    expect([0, 1, 2, 3, 4].map((i) => identity(kube, i))).toEqual(ids.slice(0, 5));
    expect(kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status.relays.retiring).toBe(0);
  });

  it('changing relaysPerPod keeps every identity; StatefulSets no longer wanted go', async () => {
    const { ctx, kube } = testContext();
    seed(kube, { replicas: 4 });
    await reconcileNetwork(ctx, NS, 'alpha');
    const ids = [0, 1, 2, 3].map((i) => identity(kube, i));
    expect(relaySts(kube)).toEqual(['alpha-relay-0', 'alpha-relay-1', 'alpha-relay-2', 'alpha-relay-3']);
    kube.editSpec('OnionNetwork', NS, 'alpha', (s) => (s.relays.relaysPerPod = 2));
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relaySts(kube)).toEqual(['alpha-relay-0', 'alpha-relay-2']);
    expect([0, 1, 2, 3].map((i) => identity(kube, i))).toEqual(ids);
    expect(relaySecrets(kube)).toHaveLength(4);
  });

  it('refuses a metrics port among the pool ORPorts', async () => {
    const { ctx, kube } = testContext();
    kube.seed<KubeObject>({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'alpha', namespace: NS, annotations: {} },
      spec: { relays: { replicas: 4, relaysPerPod: 4 }, metrics: { port: 9003 } },
    });
    await reconcileNetwork(ctx, NS, 'alpha');
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.conditions.find((c: any) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'InvalidSpec',
    });
    expect(relaySts(kube)).toEqual([]);
  });
});
