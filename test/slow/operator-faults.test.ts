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
 * Pause, cut and slow: the CRD refuses what the operator would not apply;
 * the operator creates the network's fault-token Secret and PUTs the
 * link-fault table to the relay pod's ops endpoint (here a real one,
 * services/runtime/ops-server.ts, on 127.0.0.1, the pod's IP patched to it);
 * the table reaches it, comes back after the relay "restarts" (empty table),
 * and loses each fault when it heals or is deleted; status and Events follow;
 * a paused onion-service instance goes by its pod's name (status.node), an
 * authority by its pod's name at its own pod; a link-table fault holds a
 * finalizer, so one deleted while the operator is stopped stays (and stays
 * in force) until a new operator has sent the table without it.
 *
 * No controller-manager or kubelet runs: the relay "pod" is created here
 * as its StatefulSet controller would, and nothing recreates it but us.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../operator/api/crds.js';
import { imagesFromEnv } from '../../operator/config.js';
import { HttpKube, type KubeObject } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/log.js';
import { Operator } from '../../operator/main.js';
import { applyLinkFaults, currentLinkFaults, EMPTY_LINK_FAULTS } from '../../services/net/link-faults.js';
import { type OpsServer, serveOps } from '../../services/runtime/ops-server.js';
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
/** The "relay" of network lnet: a real ops endpoint taking link-fault tables. */
let relayOps: OpsServer | null = null;
let tokenDir = '';

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
  operatorKube = kube;
  op = newOperator();
  await op.start();
}, 150_000);

let operatorKube: HttpKube;
/** An operator as the chart runs it (its ServiceAccount), not started. */
function newOperator(): Operator {
  return new Operator({
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
    kube: operatorKube,
    log: createLogger('info', (line) => logs.push(line)),
    baseBackoffMs: 200,
  });
}

afterAll(async () => {
  await op?.stop().catch(() => {});
  await relayOps?.close();
  applyLinkFaults(EMPTY_LINK_FAULTS);
  if (tokenDir) await rm(tokenDir, { recursive: true, force: true });
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

  it('the CRD refuses pause, cut and slow values the operator would not apply', async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ kind: 'cut', target: { onionService: 'web' }, peer: { relay: 1 } }, /relays and authorities/],
      [{ kind: 'cut', target: { relay: 1 }, peer: { onionService: 'web' } }, /relay or an authority/],
      [{ kind: 'cut', target: { authority: 0 }, peer: { authority: 1 } }, /two authorities have none/],
      [{ kind: 'cut', target: { relay: 1 } }, /need peer/],
      [{ kind: 'kill', target: { relay: 1 }, peer: { relay: 2 } }, /need peer/],
      [{ kind: 'cut', target: { relay: 1 }, peer: { relay: 1 } }, /another relay/],
      [{ kind: 'slow', target: { relay: 1 }, peer: { relay: 2 } }, /slow needs delayMs/],
      [{ kind: 'cut', target: { relay: 1 }, peer: { relay: 2 }, delayMs: 5 }, /slow needs delayMs/],
      [{ kind: 'slow', target: { relay: 1 }, peer: { relay: 2 }, delayMs: 10_001 }, /delayMs/],
      [{ kind: 'slow', target: { relay: 1 }, peer: { relay: 2 }, delayMs: 0 }, /delayMs/],
    ];
    for (const [spec, why] of bad) {
      const f = { ...fault('bad', 5), spec: { network: 'net', durationSeconds: 5, ...spec } };
      await expect(
        admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/networkfaults?dryRun=All`, f),
        JSON.stringify(spec),
      ).rejects.toThrow(why);
    }
    const good = {
      ...fault('good', 5),
      spec: { network: 'net', kind: 'slow', target: { relay: 1 }, peer: { relay: 2 }, delayMs: 300 },
    };
    await admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/networkfaults?dryRun=All`, good);
    // An authority takes every kind a relay does; a link joins it to a relay.
    for (const spec of [
      { kind: 'pause', target: { authority: 0 } },
      { kind: 'stop', target: { authority: 1 } },
      { kind: 'cut', target: { relay: 1 }, peer: { authority: 0 } },
      { kind: 'slow', target: { authority: 2 }, peer: { relay: 0 }, delayMs: 50 },
    ]) {
      const f = { ...fault('good', 5), spec: { network: 'net', durationSeconds: 5, ...spec } };
      await admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/networkfaults?dryRun=All`, f);
    }
  });

  it('pause, cut and slow reach the relay through its ops endpoint, come back after a restart, heal', async () => {
    // A relay's ops endpoint with the fault route, its token file filled from the operator's Secret.
    tokenDir = await mkdtemp(path.join(tmpdir(), 'op-faults-'));
    const tokenFile = path.join(tokenDir, 'token');
    relayOps = await serveOps({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      health: () => ({ ok: true, ready: true }),
      faultTokenFile: tokenFile,
    });
    await admin.create({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'lnet', namespace: NS },
      spec: { metrics: { enabled: true, port: relayOps.port } },
    });
    const secret: any = await eventually('fault token Secret', () =>
      admin.get({ apiVersion: 'v1', kind: 'Secret', namespace: NS, name: 'lnet-fault-token' }),
    );
    const token = Buffer.from(secret.data.token, 'base64').toString('utf8');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(secret.metadata.ownerReferences?.[0]?.name).toBe('lnet');
    await writeFile(tokenFile, token);
    // The relay StatefulSet mounts it and names the file.
    const sts: any = await eventually('relay StatefulSet', () =>
      admin.get({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: NS, name: 'lnet-relay-0' }),
    );
    const pod = sts.spec.template.spec;
    expect(pod.volumes).toContainEqual(
      expect.objectContaining({
        secret: expect.objectContaining({ secretName: 'lnet-fault-token', optional: true }),
      }),
    );
    expect(pod.containers[0].env).toContainEqual({
      name: 'SHALLOT_FAULT_TOKEN_FILE',
      value: '/etc/shallot/fault/token',
    });
    await admin.create({
      ...relayPod(),
      metadata: {
        name: 'lnet-relay-0-0',
        namespace: NS,
        labels: { 'shallot.dev/network': 'lnet', 'app.kubernetes.io/component': 'relay' },
      },
      spec: {
        containers: [
          {
            name: 'relay',
            image: 'shallot-relay:test',
            ports: [{ name: 'metrics', containerPort: relayOps.port }],
          },
        ],
      },
    });
    await admin.patchStatus(
      { apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'lnet-relay-0-0' },
      {
        podIP: '127.0.0.1',
        podIPs: [{ ip: '127.0.0.1' }],
      },
    );
    const link = (name: string, spec: Record<string, unknown>) =>
      admin.create({ ...fault(name, 3600), spec: { network: 'lnet', durationSeconds: 3600, ...spec } });
    await link('pause-0', { kind: 'pause', target: { relay: 0 }, durationSeconds: 8 });
    await link('cut-1-2', { kind: 'cut', target: { relay: 2 }, peer: { relay: 1 } });
    await link('slow-0-3', { kind: 'slow', target: { relay: 0 }, peer: { relay: 3 }, delayMs: 200 });
    const want = {
      cuts: [['lnetr1', 'lnetr2']],
      slows: [{ a: 'lnetr0', b: 'lnetr3', delayMs: 200 }],
      paused: ['lnetr0'],
    };
    await eventually('whole table at the relay', async () => deepEq(currentLinkFaults(), want));
    const st: any = await eventually('cut Active with the relay updated', async () => {
      const f = await admin.get(faultRef('cut-1-2'));
      return f?.status?.phase === 'Active' && f.status.podsUpdated === 1 ? f : null;
    });
    expect(st.status.startedAt).toBeDefined();
    expect(await seriesFor('cut', 'relay-1~relay-2')).toBe(1);
    // The relay restarts (an empty table): the next send gives it back.
    applyLinkFaults(EMPTY_LINK_FAULTS);
    await eventually('table back after restart', async () => currentLinkFaults().cuts.length === 1, 15_000);
    // The pause's duration ends: healed, gone from the table, the rest stays.
    const healed: any = await eventually('pause Healed', async () => {
      const f = await admin.get(faultRef('pause-0'));
      return f?.status?.phase === 'Healed' ? f : null;
    });
    expect(healed.status.healedAt).toBeDefined();
    await eventually('pause gone from the table', async () => currentLinkFaults().paused.length === 0);
    expect(currentLinkFaults().cuts).toEqual(want.cuts);
    expect(await seriesFor('pause', 'relay-0')).toBe(0);
    // Deleting the cut heals it; then the slow.
    await admin.delete(faultRef('cut-1-2'));
    await eventually('cut gone', async () => currentLinkFaults().cuts.length === 0);
    expect(currentLinkFaults().slows).toEqual(want.slows);
    await admin.delete(faultRef('slow-0-3'));
    await eventually('table empty', async () => deepEq(currentLinkFaults(), EMPTY_LINK_FAULTS));
    const events = await admin.list('v1', 'Event', NS);
    const reasons = (name: string) =>
      events.items.filter((e: any) => e.involvedObject?.name === name).map((e: any) => e.reason);
    expect(reasons('pause-0')).toEqual(expect.arrayContaining(['FaultStarted', 'FaultHealed']));
    expect(reasons('cut-1-2')).toContain('FaultStarted');
  }, 120_000);
  it('pause of an onion-service instance names it by its pod, at the same endpoint', async () => {
    if (!relayOps) throw new Error('needs the previous test');
    await admin.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-6d4b9-xk2p7',
        namespace: NS,
        labels: {
          'shallot.dev/onion-service': 'web',
          'shallot.dev/network': 'lnet',
          'app.kubernetes.io/component': 'onion-service',
        },
      },
      spec: {
        containers: [
          {
            name: 'onion-service',
            image: 'shallot-onion-service:test',
            ports: [{ name: 'metrics', containerPort: relayOps.port }],
          },
        ],
      },
    });
    await admin.patchStatus(
      { apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'web-6d4b9-xk2p7' },
      {
        podIP: '127.0.0.1',
        podIPs: [{ ip: '127.0.0.1' }],
      },
    );
    await admin.create({
      ...fault('pause-web', 3600),
      spec: { network: 'lnet', kind: 'pause', target: { onionService: 'web' }, durationSeconds: 3600 },
    });
    await eventually('instance paused', async () => currentLinkFaults().paused[0] === 'web-6d4b9-xk2p7');
    const f: any = await eventually('Active with node', async () => {
      const x = await admin.get(faultRef('pause-web'));
      return x?.status?.phase === 'Active' ? x : null;
    });
    expect(f.status.node).toBe('web-6d4b9-xk2p7');
    // Two pods (the relay's and the instance's) share this endpoint here.
    expect(f.status.podsUpdated).toBe(2);
    expect(await seriesFor('pause', 'onion-web-0')).toBe(1);
    await admin.delete(faultRef('pause-web'));
    await eventually('unpaused', async () => deepEq(currentLinkFaults(), EMPTY_LINK_FAULTS));
  }, 60_000);

  it('an authority is paused at its pod; deleted while the operator is down, the fault stays until it is back', async () => {
    if (!relayOps) throw new Error('needs the previous tests');
    // The authority StatefulSet mounts the token as the relays' do.
    const sts: any = await eventually('authority StatefulSet', () =>
      admin.get({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: NS, name: 'lnet-auth' }),
    );
    expect(sts.spec.template.spec.containers[0].env).toContainEqual({
      name: 'SHALLOT_FAULT_TOKEN_FILE',
      value: '/etc/shallot/fault/token',
    });
    await admin.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'lnet-auth-0',
        namespace: NS,
        labels: { 'shallot.dev/network': 'lnet', 'app.kubernetes.io/component': 'authority' },
      },
      spec: {
        containers: [
          {
            name: 'authority',
            image: 'shallot-directory:test',
            ports: [{ name: 'metrics', containerPort: relayOps.port }],
          },
        ],
      },
    });
    await admin.patchStatus(
      { apiVersion: 'v1', kind: 'Pod', namespace: NS, name: 'lnet-auth-0' },
      { podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] },
    );
    await admin.create({
      ...fault('pause-auth', 3600),
      spec: { network: 'lnet', kind: 'pause', target: { authority: 0 }, durationSeconds: 3600 },
    });
    await eventually('authority paused', async () => currentLinkFaults().paused[0] === 'lnet-auth-0');
    const f: any = await eventually('finalizer on', async () => {
      const x = await admin.get(faultRef('pause-auth'));
      return x?.metadata.finalizers?.includes('shallot.dev/link-fault-table') ? x : null;
    });
    expect(f.status.phase).toBe('Active');
    // The operator goes away; the fault is deleted meanwhile.
    await op?.stop();
    op = null;
    await admin.delete(faultRef('pause-auth'));
    const marked: any = await admin.get(faultRef('pause-auth'));
    expect(marked?.metadata.deletionTimestamp).toBeDefined();
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await admin.get(faultRef('pause-auth'))).not.toBeNull();
    expect(currentLinkFaults().paused).toEqual(['lnet-auth-0']);
    // Back: it sends the table without the fault, then lets the object go.
    op = newOperator();
    await op.start();
    await eventually('unpaused', async () => deepEq(currentLinkFaults(), EMPTY_LINK_FAULTS));
    await eventually('object gone', async () => !(await admin.get(faultRef('pause-auth'))));
    const events = await admin.list('v1', 'Event', NS);
    expect(
      events.items.filter((e: any) => e.involvedObject?.name === 'pause-auth').map((e: any) => e.reason),
    ).toContain('FaultDeleted');
  }, 90_000);
});

const deepEq = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

const seriesFor = async (kind: string, target: string) => {
  const line = (await op?.registry.metrics())
    ?.split('\n')
    .find((l) => l.startsWith(`shallot_fault_active{kind="${kind}",target="${target}"`));
  return line === undefined ? null : Number(line.split(' ').pop());
};
