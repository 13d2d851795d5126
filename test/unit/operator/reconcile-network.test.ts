/**
 * OnionNetwork reconcile against an in-memory API: desired state from the
 * spec, idempotence, scaling both ways, key rotation (schedule, manual
 * trigger, grace period), invalid specs, status conditions.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { ANN_ROTATE_NOW, unb64 } from '../../../operator/desired/common.js';
import type { KubeObject } from '../../../operator/kube/client.js';
import { reconcileNetwork } from '../../../operator/reconcile/network.js';
import { toHex } from '../../../services/core/bytes.js';
import { decodeNodeKeys } from '../../../services/core/node-keys.js';
import { parseHostPortList } from '../../../services/core/relay-pivot.js';
import { parseAuthorityList } from '../../../services/net/dir-client.js';
import { testContext } from './ctx.js';

const NS = 'tn';

function seedNetwork(
  kube: ReturnType<typeof testContext>['kube'],
  spec: Record<string, unknown> = {},
  name = 'alpha',
) {
  return kube.seed<KubeObject>({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    metadata: { name, namespace: NS, annotations: {} },
    spec,
  });
}

function relayKeys(kube: ReturnType<typeof testContext>['kube'], i: number, net = 'alpha') {
  const s = kube.getObj('Secret', NS, `${net}-relay-${i}-keys`);
  return s ? decodeNodeKeys(unb64(s.data['keys.json'])!) : undefined;
}

describe('OnionNetwork reconcile', () => {
  it('creates authorities, relays, services, the authority list and key Secrets, all owned by the network', async () => {
    const { ctx, kube } = testContext();
    const net = seedNetwork(kube, { authorities: { replicas: 3 }, relays: { replicas: 4 } });
    await reconcileNetwork(ctx, NS, 'alpha');

    const sts = kube
      .ofKind('StatefulSet')
      .map((s) => s.metadata.name)
      .sort();
    expect(sts).toEqual(['alpha-auth', 'alpha-relay-0', 'alpha-relay-1', 'alpha-relay-2', 'alpha-relay-3']);
    expect(
      kube
        .ofKind('Service')
        .map((s) => s.metadata.name)
        .sort(),
    ).toEqual(['alpha-auth', 'alpha-metrics', 'alpha-relay']);
    const secrets = kube
      .ofKind('Secret')
      .map((s) => s.metadata.name)
      .sort();
    expect(secrets).toEqual([
      'alpha-auth-keys',
      'alpha-fault-token',
      'alpha-relay-0-keys',
      'alpha-relay-1-keys',
      'alpha-relay-2-keys',
      'alpha-relay-3-keys',
    ]);
    for (const o of [
      ...kube.ofKind('StatefulSet'),
      ...kube.ofKind('Service'),
      ...kube.ofKind('Secret'),
      ...kube.ofKind('ConfigMap'),
    ]) {
      expect(o.metadata.ownerReferences, o.metadata.name).toEqual([
        {
          apiVersion: API_VERSION,
          kind: 'OnionNetwork',
          name: 'alpha',
          uid: net.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
    const auth = kube.getObj('StatefulSet', NS, 'alpha-auth')!;
    expect(auth.spec.replicas).toBe(3);
    expect(auth.spec.podManagementPolicy).toBe('Parallel');
    const svc = kube.getObj('Service', NS, 'alpha-auth')!;
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.publishNotReadyAddresses).toBe(true);

    // The authority list is what dir-client parses, with the headless-service DNS names.
    const cm = kube.getObj('ConfigMap', NS, 'alpha-network')!;
    const list = parseAuthorityList(cm.data.authorities);
    const authSecret = kube.getObj('Secret', NS, 'alpha-auth-keys')!;
    expect(list.map((a) => a.url)).toEqual(
      [0, 1, 2].map((i) => `http://alpha-auth-${i}.alpha-auth.${NS}.svc:7000`),
    );
    for (let i = 0; i < 3; i++) {
      const keys = decodeNodeKeys(unb64(authSecret.data[`alpha-auth-${i}.json`])!);
      expect(list[i]!.identity).toBe(toHex(keys.identity));
    }

    // Relay containers: env from the key Secret, the ConfigMap, the pod IP; an exit among them.
    const r1 = kube.getObj('StatefulSet', NS, 'alpha-relay-1')!;
    const c = r1.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env.SHALLOT_KEY_FILE).toBe('/var/lib/shallot/keys.json');
    expect(env.SHALLOT_NICKNAME).toBe('alphar1');
    expect(env.SHALLOT_AUTHORITIES).toEqual({
      configMapKeyRef: { name: 'alpha-network', key: 'authorities' },
    });
    expect(env.SHALLOT_HOST).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
    expect(env.SHALLOT_EXIT).toBe('1');
    expect(env.SHALLOT_OPS_PORT).toBe('9100');
    // The exit refuses re-entry to every non-target port of the testnet, as the relay parses it.
    expect(
      parseHostPortList(env.SHALLOT_REENTRY_REJECT)
        .map((h) => `${h.host}:${h.port}`)
        .sort(),
    ).toEqual(['*:7000', '*:8080', '*:9050', '*:9080', '*:9100', '*:9101'].sort());
    const nonExits = [0, 2, 3]
      .map((i) => kube.getObj('StatefulSet', NS, `alpha-relay-${i}`)!.spec.template.spec.containers[0].env)
      .filter((e: any[]) => e.some((x) => x.name === 'SHALLOT_EXIT' && x.value === '0'));
    expect(nonExits.length).toBeGreaterThan(0);
    for (const e of nonExits) expect(e.some((x: any) => x.name === 'SHALLOT_REENTRY_REJECT')).toBe(false);
    expect(r1.spec.template.spec.volumes[0]).toEqual({
      name: 'secret',
      secret: { secretName: 'alpha-relay-1-keys', defaultMode: 0o440 },
    });
    expect(c.image).toBe('shallot-relay:test');

    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.observedGeneration).toBe(1);
    expect(st.relays).toEqual({ desired: 4, ready: 0, exits: 1, retiring: 0 });
    expect(st.authorityList).toBe(cm.data.authorities);
    const ready = st.conditions.find((x: any) => x.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'WaitingForPods', observedGeneration: 1 });
    expect(st.conditions.find((x: any) => x.type === 'Degraded')).toMatchObject({ status: 'False' });
  });

  it('is idempotent: a second pass with nothing changed writes nothing', async () => {
    const { ctx, kube } = testContext();
    seedNetwork(kube, { relays: { replicas: 2 } });
    await reconcileNetwork(ctx, NS, 'alpha');
    await reconcileNetwork(ctx, NS, 'alpha'); // settles Progressing now that nothing was created
    kube.clearWrites();
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.writes).toEqual([]);
  });

  it('reports Ready once the StatefulSets report ready pods', async () => {
    const { ctx, kube } = testContext();
    seedNetwork(kube, { authorities: { replicas: 1 }, relays: { replicas: 1 } });
    await reconcileNetwork(ctx, NS, 'alpha');
    kube.getObj('StatefulSet', NS, 'alpha-auth')!.status = { readyReplicas: 1 };
    kube.getObj('StatefulSet', NS, 'alpha-relay-0')!.status = { readyReplicas: 1 };
    await reconcileNetwork(ctx, NS, 'alpha');
    await reconcileNetwork(ctx, NS, 'alpha');
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.conditions.map((c: any) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'AllReady'],
      ['Progressing', 'False', 'Stable'],
      ['Degraded', 'False', 'AsExpected'],
    ]);
  });

  it('scales up and down; a retired relay keeps its Secret until its pod is gone', async () => {
    const { ctx, kube, recorder } = testContext();
    seedNetwork(kube, { relays: { replicas: 2 } });
    await reconcileNetwork(ctx, NS, 'alpha');
    const id0 = relayKeys(kube, 0)!.identity;

    kube.editSpec('OnionNetwork', NS, 'alpha', (s) => (s.relays.replicas = 4));
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.ofKind('StatefulSet').filter((s) => s.metadata.name.includes('relay')).length).toBe(4);
    expect(relayKeys(kube, 0)!.identity).toEqual(id0); // existing keys untouched
    expect(kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status.observedGeneration).toBe(2);

    // Relay 3 still has a pod: its StatefulSet goes now, its Secret after the pod.
    kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'alpha-relay-3-0',
        namespace: NS,
        labels: {
          'shallot.dev/network': 'alpha',
          'app.kubernetes.io/component': 'relay',
          'shallot.dev/relay-index': '3',
        },
      },
    });
    kube.editSpec('OnionNetwork', NS, 'alpha', (s) => (s.relays.replicas = 2));
    const r = await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.getObj('StatefulSet', NS, 'alpha-relay-2')).toBeUndefined();
    expect(kube.getObj('StatefulSet', NS, 'alpha-relay-3')).toBeUndefined();
    expect(kube.getObj('Secret', NS, 'alpha-relay-2-keys')).toBeUndefined();
    expect(kube.getObj('Secret', NS, 'alpha-relay-3-keys')).toBeDefined();
    expect(kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status.relays).toMatchObject({
      desired: 2,
      retiring: 1,
    });
    expect(r.requeueAfterMs).toBe(5000);

    await kube.delete({ apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'alpha-relay-3-0' });
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.getObj('Secret', NS, 'alpha-relay-3-keys')).toBeUndefined();
    expect(kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status.relays.retiring).toBe(0);
    expect(recorder.events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['Scaled', 'ScalingDown', 'RelayRetired']),
    );
  });

  it('rotates onion keys on schedule, keeps the old key for the grace period, then drops it', async () => {
    const { ctx, kube, clock, registry } = testContext();
    seedNetwork(kube, {
      relays: { replicas: 1 },
      keyRotation: { onionKeyIntervalMinutes: 60, gracePeriodMinutes: 10 },
    });
    const r0 = await reconcileNetwork(ctx, NS, 'alpha');
    const before = relayKeys(kube, 0)!;
    const template = structuredClone(kube.getObj('StatefulSet', NS, 'alpha-relay-0')!.spec.template);
    expect(r0.requeueAfterMs).toBeLessThanOrEqual(60 * 60_000 + 1000);

    clock.now += 60 * 60_000;
    await reconcileNetwork(ctx, NS, 'alpha');
    const after = relayKeys(kube, 0)!;
    expect(after.identity).toEqual(before.identity);
    expect(after.onionKeys.length).toBe(2);
    expect(after.onionKeys[1]!.secret).toEqual(before.onionKeys[0]!.secret);
    expect(after.onionKeys[0]!.createdAt).toBe(clock.now);
    // Not one byte of the pod template changes: the running relay reads the
    // rotated key from its mounted Secret (issue 14: restarts cost minutes).
    expect(kube.getObj('StatefulSet', NS, 'alpha-relay-0')!.spec.template).toEqual(template);
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.keyRotation.onionKeyRotations).toBe(1);
    const text = await registry.metrics();
    expect(text).toMatch(
      /shallot_operator_key_rotations_total\{namespace="tn",network="alpha",key="onion"\} 1/,
    );

    clock.now += 10 * 60_000;
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relayKeys(kube, 0)!.onionKeys.length).toBe(1);
  });

  it('rotates now on the rotate-now annotation, once per value', async () => {
    const { ctx, kube } = testContext();
    seedNetwork(kube, { relays: { replicas: 2 } });
    await reconcileNetwork(ctx, NS, 'alpha');
    const k0 = relayKeys(kube, 0)!.onionKeys[0]!.secret;
    kube.getObj('OnionNetwork', NS, 'alpha')!.metadata.annotations = { [ANN_ROTATE_NOW]: 'please-1' };
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relayKeys(kube, 0)!.onionKeys.length).toBe(2);
    expect(relayKeys(kube, 0)!.onionKeys[1]!.secret).toEqual(k0);
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(relayKeys(kube, 0)!.onionKeys.length).toBe(2); // same value: no second rotation
    expect(relayKeys(kube, 1)!.onionKeys.length).toBe(2);
    for (const i of [0, 1]) {
      expect(kube.getObj('StatefulSet', NS, `alpha-relay-${i}`)!.metadata.generation ?? 1).toBe(1);
    }
  });

  it('rotates authority signing keys, keeps the previous file for the grace period, and updates the list', async () => {
    const { ctx, kube, clock } = testContext();
    seedNetwork(kube, {
      authorities: { replicas: 2 },
      relays: { replicas: 0 },
      keyRotation: { authorityKeyIntervalMinutes: 30, gracePeriodMinutes: 5 },
    });
    await reconcileNetwork(ctx, NS, 'alpha');
    const list1 = kube.getObj('ConfigMap', NS, 'alpha-network')!.data.authorities;
    const old0 = kube.getObj('Secret', NS, 'alpha-auth-keys')!.data['alpha-auth-0.json'];
    clock.now += 30 * 60_000;
    await reconcileNetwork(ctx, NS, 'alpha');
    const s = kube.getObj('Secret', NS, 'alpha-auth-keys')!;
    expect(s.data['alpha-auth-0.previous.json']).toBe(old0);
    expect(s.data['alpha-auth-0.json']).not.toBe(old0);
    const list2 = kube.getObj('ConfigMap', NS, 'alpha-network')!.data.authorities;
    expect(list2).not.toBe(list1);
    expect(parseAuthorityList(list2)).toHaveLength(2);
    clock.now += 5 * 60_000;
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(Object.keys(kube.getObj('Secret', NS, 'alpha-auth-keys')!.data).sort()).toEqual([
      'alpha-auth-0.json',
      'alpha-auth-1.json',
    ]);
  });

  it('marks a spec the schema could not catch Degraded, once, and creates nothing', async () => {
    const { ctx, kube, recorder } = testContext();
    seedNetwork(kube, { relays: { replicas: 3, autoscale: { min: 5, max: 2 } } });
    await reconcileNetwork(ctx, NS, 'alpha');
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.ofKind('StatefulSet')).toEqual([]);
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.conditions.find((c: any) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'InvalidSpec',
    });
    expect(recorder.events.filter((e) => e.reason === 'InvalidSpec')).toHaveLength(1);
  });

  it('refuses a network model the relays would refuse, naming the field, and creates nothing', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { locations: ['us', 'eu'], links: [{ from: 'us', to: 'mars', latencyMs: 40 }] },
        /spec\.networkModel: links\[0\]\.to: unknown location "mars"/,
      ],
      [{ locations: ['us', 'eu'] }, /no latency between "us" and "eu"/],
      // Three relays, the model places only the first and draws no one at random.
      [
        { locations: ['us'], nodes: { alphar0: 'us' } },
        /spec\.networkModel: nodes: node "alphar1" is in no location/,
      ],
      [{ locations: ['us'], latency: 5 }, /spec\.networkModel: latency: unknown field/],
    ];
    for (const [model, want] of cases) {
      const { ctx, kube } = testContext();
      seedNetwork(kube, { relays: { replicas: 3 }, networkModel: model });
      await reconcileNetwork(ctx, NS, 'alpha');
      expect(kube.ofKind('StatefulSet')).toEqual([]);
      const degraded = kube
        .getObj<any>('OnionNetwork', NS, 'alpha')!
        .status.conditions.find((c: any) => c.type === 'Degraded');
      expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
      expect(degraded.message).toMatch(want);
    }
  });

  it('an autoscaled network needs every relay up to its maximum placed', async () => {
    const { ctx, kube } = testContext();
    const nodes = { alphar0: 'us', alphar1: 'us' };
    seedNetwork(kube, {
      relays: { replicas: 2, autoscale: { min: 2, max: 3 } },
      networkModel: { locations: ['us'], nodes },
    });
    await reconcileNetwork(ctx, NS, 'alpha');
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.conditions.find((c: any) => c.type === 'Degraded').message).toMatch(
      /"alphar2" is in no location/,
    );
  });

  it('a good model goes to the relays and, as JSON, into the ConfigMap the clients read', async () => {
    const { ctx, kube } = testContext();
    const model = { locations: ['us', 'eu'], defaultLatencyMs: 40, assign: 'random', seed: 3 };
    seedNetwork(kube, { relays: { replicas: 3 }, networkModel: model });
    await reconcileNetwork(ctx, NS, 'alpha');
    expect(kube.ofKind('StatefulSet').length).toBeGreaterThan(0);
    const cm = kube.getObj('ConfigMap', NS, 'alpha-network')!;
    expect(JSON.parse(cm.data.networkModel)).toEqual(model);
    // Without a model, no key: the clients' optional reference leaves them undelayed.
    const other = testContext();
    seedNetwork(other.kube, { relays: { replicas: 1 } });
    await reconcileNetwork(other.ctx, NS, 'alpha');
    expect(other.kube.getObj('ConfigMap', NS, 'alpha-network')!.data).not.toHaveProperty('networkModel');
  });

  it('autoscales on scraped circuits with the decision function', async () => {
    const { ctx, kube, scrapes } = testContext();
    seedNetwork(kube, { relays: { replicas: 2, autoscale: { min: 2, max: 6, targetCircuitsPerRelay: 10 } } });
    await reconcileNetwork(ctx, NS, 'alpha');
    for (const i of [0, 1]) {
      kube.seed({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `alpha-relay-${i}-0`,
          namespace: NS,
          labels: {
            'shallot.dev/network': 'alpha',
            'app.kubernetes.io/component': 'relay',
            'shallot.dev/relay-index': String(i),
          },
        },
        status: { phase: 'Running', podIP: `10.0.0.${i + 1}` },
      });
      scrapes[`http://10.0.0.${i + 1}:9100/metrics`] =
        `shallot_relay_circuits_active{relay="alphar${i}"} 30\n`;
    }
    await reconcileNetwork(ctx, NS, 'alpha');
    const st = kube.getObj<any>('OnionNetwork', NS, 'alpha')!.status;
    expect(st.autoscale.signal).toBe(30);
    expect(st.relays.desired).toBe(4); // wants 6, doubling at most per step
    expect(kube.getObj('StatefulSet', NS, 'alpha-relay-3')).toBeDefined();
  });

  it('does nothing for a network that is gone', async () => {
    const { ctx, kube } = testContext();
    expect(await reconcileNetwork(ctx, NS, 'nope')).toEqual({});
    expect(kube.writes).toEqual([]);
  });
});
