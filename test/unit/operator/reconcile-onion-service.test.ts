/** OnionService reconcile: identity Secret, the address in status, the Deployment, the instances' headless Service, intro-key rotation, missing network, client authorization. */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { ANN_ROTATE_NOW, unb64 } from '../../../operator/desired/common.js';
import { reconcileNetwork } from '../../../operator/reconcile/network.js';
import { reconcileOnionService } from '../../../operator/reconcile/onion-service.js';
import { fromUtf8, toBase32 } from '../../../services/core/bytes.js';
import { generateClientAuthKey } from '../../../services/core/client-auth.js';
import { ed25519PublicFromSeed, randomBytes } from '../../../services/core/crypto.js';
import { decodeOnionAddress } from '../../../services/core/onion-address.js';
import { decodeIdentityFile } from '../../../services/core/onion-identity-file.js';
import { parsePeerAddress } from '../../../services/onion-service/instance-peers.js';
import { expectInvalidLocation, networkWithService, testContext } from './ctx.js';

const NS = 'tn';

const setup = (svcSpec: Record<string, unknown> = {}) =>
  networkWithService(NS, { spec: svcSpec, annotations: {} });

describe('OnionService reconcile', () => {
  it('creates the identity Secret and a Deployment, and shows the address derived from the identity', async () => {
    const { ctx, kube } = await setup({
      instances: 3,
      backend: { type: 'tcp', host: 'web.tn.svc', port: 8080 },
    });
    await reconcileOnionService(ctx, NS, 'web');
    const secret = kube.getObj('Secret', NS, 'web-onion-identity')!;
    const seed = decodeIdentityFile(fromUtf8(unb64(secret.data['identity.json'])!));
    const st = kube.getObj<any>('OnionService', NS, 'web')!.status;
    expect(st.onionAddress).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(decodeOnionAddress(st.onionAddress)).toEqual(ed25519PublicFromSeed(seed));
    const dep = kube.getObj('Deployment', NS, 'web-onion')!;
    expect(dep.spec.replicas).toBe(3);
    expect(dep.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'OnionService',
      name: 'web',
      controller: true,
    });
    const env = Object.fromEntries(
      dep.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env.SHALLOT_BACKEND).toBe('web.tn.svc:8080');
    expect(env.SHALLOT_AUTHORITIES).toEqual({ configMapKeyRef: { name: 'net-network', key: 'authorities' } });
    expect(env.SHALLOT_INSTANCE).toBe('$(POD_NAME)');
    expect(st.observedGeneration).toBe(1);
    // Second pass: same identity, nothing rewritten.
    await reconcileOnionService(ctx, NS, 'web');
    kube.clearWrites();
    await reconcileOnionService(ctx, NS, 'web');
    expect(kube.writes).toEqual([]);
  });

  it('lets the instances find each other: a headless Service over all of them, named in their env', async () => {
    const { ctx, kube } = await setup({ instances: 2 });
    await reconcileOnionService(ctx, NS, 'web');
    const dep = kube.getObj<any>('Deployment', NS, 'web-onion')!;
    const svc = kube.getObj<any>('Service', NS, 'web-onion-peers')!;
    // Headless, and listing pods before they are ready (an instance is ready once it has published).
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.publishNotReadyAddresses).toBe(true);
    expect(svc.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'OnionService',
      name: 'web',
      controller: true,
    });
    // It selects exactly the Deployment's pods.
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    const podLabels = dep.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(podLabels[k]).toBe(v);
    const c = dep.spec.template.spec.containers[0];
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    // The name the instances resolve is this Service's, with the port they serve on.
    const dns = parsePeerAddress(env.SHALLOT_INSTANCE_PEERS_DNS);
    expect(dns.host).toBe(`web-onion-peers.${NS}.svc`);
    expect(String(dns.port)).toBe(env.SHALLOT_INSTANCE_PORT);
    expect(env.SHALLOT_INSTANCE_HOST).toBe('0.0.0.0');
    expect(svc.spec.ports).toEqual([
      { name: 'instances', port: dns.port, targetPort: dns.port, protocol: 'TCP' },
    ]);
    expect(c.ports).toContainEqual({ name: 'instances', containerPort: dns.port });
  });

  it('rotates intro keys on the annotation by rolling the instances, keeping the address', async () => {
    const { ctx, kube, clock, registry } = await setup();
    await reconcileOnionService(ctx, NS, 'web');
    const addr = kube.getObj<any>('OnionService', NS, 'web')!.status.onionAddress;
    const before = kube.getObj('Deployment', NS, 'web-onion')!.spec.template.metadata.annotations[
      'shallot.dev/intro-keys-rotated-at'
    ];
    clock.now += 5000;
    kube.getObj('OnionService', NS, 'web')!.metadata.annotations = { [ANN_ROTATE_NOW]: '1' };
    await reconcileOnionService(ctx, NS, 'web');
    const after = kube.getObj('Deployment', NS, 'web-onion')!.spec.template.metadata.annotations[
      'shallot.dev/intro-keys-rotated-at'
    ];
    expect(after).not.toBe(before);
    const st = kube.getObj<any>('OnionService', NS, 'web')!.status;
    expect(st.onionAddress).toBe(addr);
    expect(st.keyRotation.introKeyRotations).toBe(1);
    expect(await registry.metrics()).toMatch(
      /shallot_operator_key_rotations_total\{namespace="tn",network="net",key="intro"\} 1/,
    );
  });

  it('is Degraded while its network does not exist, and never overwrites an unreadable identity', async () => {
    const t = testContext();
    t.kube.seed({
      apiVersion: API_VERSION,
      kind: 'OnionService',
      metadata: { name: 'web', namespace: NS },
      spec: { network: 'missing' },
    });
    const r = await reconcileOnionService(t.ctx, NS, 'web');
    expect(r.requeueAfterMs).toBe(30_000);
    expect(
      t.kube
        .getObj<any>('OnionService', NS, 'web')!
        .status.conditions.find((c: any) => c.type === 'Degraded'),
    ).toMatchObject({ status: 'True', reason: 'NetworkNotFound' });

    const { ctx, kube } = await setup();
    kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'web-onion-identity', namespace: NS },
      data: { 'identity.json': Buffer.from('garbage').toString('base64') },
    });
    await reconcileOnionService(ctx, NS, 'web');
    expect(kube.getObj('Secret', NS, 'web-onion-identity')!.data['identity.json']).toBe(
      Buffer.from('garbage').toString('base64'),
    );
    expect(
      kube.getObj<any>('OnionService', NS, 'web')!.status.conditions.find((c: any) => c.type === 'Degraded'),
    ).toMatchObject({ reason: 'InvalidIdentity' });
  });
});

describe('OnionService client authorization', () => {
  const alice = toBase32(generateClientAuthKey(randomBytes).public).toUpperCase();
  const bob = toBase32(generateClientAuthKey(randomBytes).public);

  it('puts the keys in a ConfigMap of .auth files, mounted for the instances, and counts them in status', async () => {
    const { ctx, kube } = await setup({
      authorizedClients: [
        { name: 'alice', publicKey: alice },
        { name: 'bob', publicKey: bob },
      ],
    });
    await reconcileOnionService(ctx, NS, 'web');
    const cm = kube.getObj('ConfigMap', NS, 'web-authorized-clients')!;
    expect(Object.keys(cm.data).sort()).toEqual(['alice.auth', 'bob.auth']);
    expect(cm.data['bob.auth']).toBe(`descriptor:x25519:${bob.toUpperCase()}\n`);
    expect(cm.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'OnionService', name: 'web' });
    const pod = kube.getObj('Deployment', NS, 'web-onion')!.spec.template;
    const c = pod.spec.containers[0];
    expect(c.env).toContainEqual({
      name: 'SHALLOT_AUTHORIZED_CLIENTS_DIR',
      value: '/etc/shallot/authorized-clients',
    });
    expect(c.volumeMounts).toContainEqual({
      name: 'authorized-clients',
      mountPath: '/etc/shallot/authorized-clients',
      readOnly: true,
    });
    expect(pod.spec.volumes).toContainEqual({
      name: 'authorized-clients',
      configMap: { name: 'web-authorized-clients' },
    });
    expect(kube.getObj<any>('OnionService', NS, 'web')!.status.authorizedClients).toBe(2);
  });

  it('a changed list rewrites the ConfigMap (a removed client is gone) and restarts the instances', async () => {
    const { ctx, kube } = await setup({
      authorizedClients: [
        { name: 'alice', publicKey: alice },
        { name: 'bob', publicKey: bob },
      ],
    });
    await reconcileOnionService(ctx, NS, 'web');
    const hash = () =>
      kube.getObj('Deployment', NS, 'web-onion')!.spec.template.metadata.annotations[
        'shallot.dev/authorized-clients-hash'
      ];
    const before = hash();
    // Reordering the list is no change: no restart.
    kube.getObj<any>('OnionService', NS, 'web')!.spec.authorizedClients = [
      { name: 'bob', publicKey: bob },
      { name: 'alice', publicKey: alice },
    ];
    await reconcileOnionService(ctx, NS, 'web');
    expect(hash()).toBe(before);
    kube.getObj<any>('OnionService', NS, 'web')!.spec.authorizedClients = [
      { name: 'alice', publicKey: alice },
    ];
    await reconcileOnionService(ctx, NS, 'web');
    expect(Object.keys(kube.getObj('ConfigMap', NS, 'web-authorized-clients')!.data)).toEqual(['alice.auth']);
    expect(hash()).not.toBe(before);
    kube.getObj<any>('OnionService', NS, 'web')!.spec.authorizedClients = [];
    await reconcileOnionService(ctx, NS, 'web');
    const pod = kube.getObj('Deployment', NS, 'web-onion')!.spec.template;
    expect(pod.spec.containers[0].env.map((e: any) => e.name)).not.toContain(
      'SHALLOT_AUTHORIZED_CLIENTS_DIR',
    );
    expect(kube.getObj('ConfigMap', NS, 'web-authorized-clients')!.data ?? {}).toEqual({});
  });

  it('a key that is not an x25519 key, or a name given twice, makes it Degraded with the reason', async () => {
    // 52 base32 characters whose trailing bits are not zero: the CRD pattern lets it through.
    const { ctx, kube } = await setup({
      authorizedClients: [
        { name: 'alice', publicKey: `${alice.slice(0, 51)}7` },
        { name: 'alice', publicKey: bob },
      ],
    });
    await reconcileOnionService(ctx, NS, 'web');
    const degraded = kube
      .getObj<any>('OnionService', NS, 'web')!
      .status.conditions.find((c: any) => c.type === 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(degraded.message).toMatch(/authorizedClients\[0\].*base32/);
    expect(degraded.message).toMatch(/appears twice/);
    expect(kube.getObj('Deployment', NS, 'web-onion')).toBeFalsy();
  });
});

describe('OnionService under a network model', () => {
  const model = { locations: ['us', 'eu'], defaultLatencyMs: 40, nodes: { netr0: 'eu' } };
  async function world(spec: Record<string, unknown>, networkModel: Record<string, unknown> | null = model) {
    const t = testContext();
    t.kube.seed({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'net', namespace: NS },
      spec: { relays: { replicas: 1 }, ...(networkModel ? { networkModel } : {}) },
    });
    await reconcileNetwork(t.ctx, NS, 'net');
    t.kube.seed({
      apiVersion: API_VERSION,
      kind: 'OnionService',
      metadata: { name: 'web', namespace: NS },
      spec: { network: 'net', ...spec },
    });
    await reconcileOnionService(t.ctx, NS, 'web');
    const dep = t.kube.getObj<any>('Deployment', NS, 'web-onion');
    const env: any[] = dep?.spec.template.spec.containers[0].env ?? [];
    return { ...t, dep, env };
  }

  it("gives the instances the network's model (from its ConfigMap) and spec.location; a model change rolls them", async () => {
    const { env, dep, kube, ctx } = await world({ location: 'us' });
    expect(env).toContainEqual({
      name: 'SHALLOT_NETWORK_MODEL_JSON',
      valueFrom: { configMapKeyRef: { name: 'net-network', key: 'networkModel', optional: true } },
    });
    expect(env).toContainEqual({ name: 'SHALLOT_LOCATION', value: 'us' });
    // The service's name is its name in the model (onion-service/main.ts places SHALLOT_NAME).
    expect(env).toContainEqual({ name: 'SHALLOT_NAME', value: 'web' });
    const hash = dep.spec.template.metadata.annotations['shallot.dev/network-model-hash'];
    expect(hash).toMatch(/\S/);
    // The instances read the model at start: a changed model changes the template.
    const net = kube.getObj<any>('OnionNetwork', NS, 'net')!;
    kube.seed({ ...net, spec: { ...net.spec, networkModel: { ...model, defaultLatencyMs: 90 } } });
    await reconcileNetwork(ctx, NS, 'net');
    await reconcileOnionService(ctx, NS, 'web');
    const after = kube.getObj<any>('Deployment', NS, 'web-onion')!;
    expect(after.spec.template.metadata.annotations['shallot.dev/network-model-hash']).not.toBe(hash);
  });

  it('refuses a location the model lacks, or none when the model does not place the service, before any Deployment', async () => {
    for (const [spec, want] of [
      [
        { location: 'mars' },
        /spec\.location: "mars" is not a location of OnionNetwork net's model \(us, eu\)/,
      ],
      [{}, /spec\.location is needed: OnionNetwork net's model does not place "web"/],
    ] as const) {
      const { dep, kube, recorder } = await world(spec);
      expect(dep).toBeUndefined();
      expectInvalidLocation(kube, recorder, { kind: 'OnionService', ns: NS, name: 'web' }, want);
    }
  });

  it('runs where the model places its name (nodes or the seeded draw), and ignores a location without a model', async () => {
    for (const m of [
      { ...model, nodes: { ...model.nodes, web: 'eu' } },
      { ...model, assign: 'random' },
    ]) {
      const placed = await world({}, m);
      expect(placed.dep).toBeDefined();
      expect(placed.env.some((e) => e.name === 'SHALLOT_LOCATION')).toBe(false);
    }
    const none = await world({ location: 'anywhere' }, null);
    expect(none.dep).toBeDefined();
    expect(none.dep.spec.template.metadata.annotations).not.toHaveProperty('shallot.dev/network-model-hash');
  });
});
