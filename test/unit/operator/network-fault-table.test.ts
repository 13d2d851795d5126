// NetworkFault pause, cut and slow (issue 18): the pure table logic
// (operator/desired/network-fault.ts linkFaultTable, inForce, faultStep's
// resend interval, link labels), and the reconcile over FakeKube sending the
// table to a real relay ops endpoint (services/runtime/ops-server.ts with its
// PUT /link-faults) on 127.0.0.1: start sends the table with the fault,
// holding sends it again (a relay that restarted gets it back), healing and
// deleting send it without; a wrong token or no metrics reach nobody and say so.
// Authorities are named by pod name and take the table as relays do. The
// finalizer (reconcile/fault-finalizer.ts) keeps a fault deleted while the
// operator was down until its pods have the table without it, and lets go
// after bounded tries (Warning) or at once when the network is gone.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import { MAX_SLOW_MS, type NetworkFault } from '../../../operator/api/network-fault.js';
import {
  faultStep,
  faultTargetLabel,
  inForce,
  linkFaultTable,
  TABLE_RESEND_MS,
} from '../../../operator/desired/network-fault.js';
import type { KubeObject } from '../../../operator/kube/client.js';
import {
  DELETE_RETRY_MS,
  FAULT_FINALIZER,
  MAX_DELETE_SENDS,
} from '../../../operator/reconcile/fault-finalizer.js';
import { reconcileNetworkFault } from '../../../operator/reconcile/network-fault.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import {
  applyLinkFaults,
  currentLinkFaults,
  EMPTY_LINK_FAULTS,
  MAX_SLOW_MS as NET_MAX_SLOW_MS,
  parseLinkFaultTable,
} from '../../../services/net/link-faults.js';
import { type OpsServer, serveOps } from '../../../services/runtime/ops-server.js';
import { testContext } from './ctx.js';

const NS = 'tn';
const T0 = Date.parse('2025-06-01T00:00:00Z');
const started = new Date(T0).toISOString();

const nf = (
  name: string,
  spec: Partial<NetworkFault['spec']>,
  status: NetworkFault['status'] = { phase: 'Active', startedAt: started },
  network = 'net',
): NetworkFault => ({
  apiVersion: API_VERSION,
  kind: 'NetworkFault',
  metadata: { name, namespace: NS },
  spec: { network, kind: 'pause', target: { relay: 0 }, durationSeconds: 60, ...spec },
  status,
});

describe('linkFaultTable (pure)', () => {
  it('names relays by nickname: pauses, cuts and slows in force', () => {
    const t = linkFaultTable(
      'net',
      [
        nf('p', { kind: 'pause', target: { relay: 3 } }),
        nf('c', { kind: 'cut', target: { relay: 2 }, peer: { relay: 1 } }),
        nf('s', { kind: 'slow', target: { relay: 4 }, peer: { relay: 5 }, delayMs: 300 }),
      ],
      T0 + 1000,
    );
    expect(t).toEqual({
      cuts: [['netr1', 'netr2']],
      slows: [{ a: 'netr4', b: 'netr5', delayMs: 300 }],
      paused: ['netr3'],
    });
  });

  it('names authorities by pod name (what their links carry): pause, and cut and slow to a relay', () => {
    const t = linkFaultTable(
      'net',
      [
        nf('p', { kind: 'pause', target: { authority: 0 } }),
        nf('c', { kind: 'cut', target: { relay: 2 }, peer: { authority: 1 } }),
        nf('s', { kind: 'slow', target: { authority: 2 }, peer: { relay: 5 }, delayMs: 80 }),
      ],
      T0 + 1000,
    );
    expect(t).toEqual({
      cuts: [['net-auth-1', 'netr2']],
      slows: [{ a: 'net-auth-2', b: 'netr5', delayMs: 80 }],
      paused: ['net-auth-0'],
    });
    // Every name is one the link layer (and so the node's PUT /link-faults) accepts.
    expect(parseLinkFaultTable(JSON.parse(JSON.stringify(t)))).toEqual(t);
    expect(faultTargetLabel(nf('c', { kind: 'cut', target: { authority: 1 }, peer: { relay: 2 } }))).toBe(
      'auth-1~relay-2',
    );
  });

  it('a paused onion-service instance goes by the pod recorded in status.node', () => {
    const f = nf('o', { kind: 'pause', target: { onionService: 'web' } });
    expect(linkFaultTable('net', [f], T0).paused).toEqual([]);
    f.status = { ...f.status, node: 'web-abc-12345' };
    expect(linkFaultTable('net', [f], T0).paused).toEqual(['web-abc-12345']);
  });

  it('leaves out faults not in force: pending, healed, over, deleting, other networks, pod kinds', () => {
    const faults = [
      nf('pending', { kind: 'pause' }, { phase: 'Pending' }),
      nf('healed', { kind: 'pause' }, { phase: 'Healed', startedAt: started }),
      nf('over', { kind: 'pause', durationSeconds: 5 }),
      { ...nf('deleting', { kind: 'pause' }), metadata: { name: 'd', deletionTimestamp: started } },
      nf('other', { kind: 'pause' }, undefined, 'other'),
      nf('kill', { kind: 'kill' }),
    ];
    expect(linkFaultTable('net', faults, T0 + 6000)).toEqual(EMPTY_LINK_FAULTS);
    expect(faults.map((f) => inForce(f, T0 + 6000))).toEqual([false, false, false, false, true, false]);
    // The same pause a moment before its end is in force.
    expect(linkFaultTable('net', [nf('p', { durationSeconds: 5 })], T0 + 4999).paused).toEqual(['netr0']);
  });

  it('one link twice: a cut wins over a slow, the larger delay between slows; pairs in order', () => {
    const t = linkFaultTable(
      'net',
      [
        nf('s1', { kind: 'slow', target: { relay: 1 }, peer: { relay: 0 }, delayMs: 100 }),
        nf('s2', { kind: 'slow', target: { relay: 0 }, peer: { relay: 1 }, delayMs: 700 }),
        nf('s3', { kind: 'slow', target: { relay: 2 }, peer: { relay: 3 }, delayMs: 50 }),
        nf('c', { kind: 'cut', target: { relay: 3 }, peer: { relay: 2 } }),
      ],
      T0,
    );
    expect(t).toEqual({
      cuts: [['netr2', 'netr3']],
      slows: [{ a: 'netr0', b: 'netr1', delayMs: 700 }],
      paused: [],
    });
  });

  it('labels a link "a~b" in order, as shallot fault does; holds re-send every TABLE_RESEND_MS', () => {
    expect(faultTargetLabel(nf('c', { kind: 'cut', target: { relay: 7 }, peer: { relay: 2 } }))).toBe(
      'relay-2~relay-7',
    );
    expect(faultTargetLabel(nf('p', { kind: 'pause', target: { relay: 7 } }))).toBe('relay-7');
    const f = nf('p', { kind: 'pause', durationSeconds: 60 });
    expect(faultStep(f, f.status ?? {}, T0 + 1000)).toEqual({ action: 'hold', recheckMs: TABLE_RESEND_MS });
    expect(faultStep(f, f.status ?? {}, T0 + 58_000)).toEqual({ action: 'hold', recheckMs: 2000 });
    expect(faultStep(f, f.status ?? {}, T0 + 60_000)).toEqual({ action: 'heal' });
  });

  it("the CRD's delay bound is the link layer's", () => {
    expect(MAX_SLOW_MS).toBe(NET_MAX_SLOW_MS);
  });
});

describe('NetworkFault pause/cut/slow reconcile, to a real relay ops endpoint', () => {
  const TOKEN = '5a'.repeat(32);
  let dir: string;
  let ops: OpsServer;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nf-table-'));
    await writeFile(path.join(dir, 'token'), TOKEN);
    ops = await serveOps({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      health: () => ({ ok: true, ready: true }),
      faultTokenFile: path.join(dir, 'token'),
    });
  });
  afterEach(() => applyLinkFaults(EMPTY_LINK_FAULTS));
  afterAll(async () => {
    await ops?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function setup(opts: { token?: string; metrics?: boolean } = {}) {
    const t = testContext(T0);
    t.ctx.faultMetrics = metricsFor(t.registry).faults;
    t.kube.seed({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'net', namespace: NS },
      spec: { metrics: { enabled: opts.metrics ?? true, port: ops.port } },
    });
    t.kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'net-fault-token', namespace: NS },
      data: { token: Buffer.from(opts.token ?? TOKEN).toString('base64') },
    });
    // A relay pod at the test's ops endpoint, and one terminating (not sent to).
    for (const [name, deleting] of [
      ['net-relay-0-0', false],
      ['net-relay-1-0', true],
    ] as const)
      t.kube.seed({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace: NS,
          labels: { 'shallot.dev/network': 'net', 'app.kubernetes.io/component': 'relay' },
          ...(deleting ? { deletionTimestamp: started } : {}),
        },
        // With metrics off the relay container has no ops port (desired/network.ts opsPorts).
        spec: {
          containers: [
            {
              name: 'relay',
              ports: opts.metrics === false ? [] : [{ name: 'metrics', containerPort: ops.port }],
            },
          ],
        },
        status: { podIP: '127.0.0.1' },
      } as KubeObject);
    return t;
  }
  const seedFault = (t: ReturnType<typeof setup>, name: string, spec: Record<string, unknown>) =>
    t.kube.seed({
      apiVersion: API_VERSION,
      kind: 'NetworkFault',
      metadata: { name, namespace: NS, generation: 1 },
      spec: { network: 'net', ...spec },
    });
  const statusOf = async (t: ReturnType<typeof setup>, name: string) =>
    (await t.kube.get({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name }))?.status;

  it('slow: start sends the table, hold sends it again to a restarted relay, heal sends it without', async () => {
    const t = setup();
    seedFault(t, 's', {
      kind: 'slow',
      target: { relay: 0 },
      peer: { relay: 1 },
      delayMs: 250,
      durationSeconds: 20,
    });
    expect(await reconcileNetworkFault(t.ctx, NS, 's')).toEqual({ requeueAfterMs: 1000 });
    expect(currentLinkFaults().slows).toEqual([{ a: 'netr0', b: 'netr1', delayMs: 250 }]);
    expect(await statusOf(t, 's')).toMatchObject({ phase: 'Active', podsUpdated: 1 });
    expect(t.recorder.events.map((e) => e.reason)).toEqual(['FaultStarted']);
    expect(t.kube.writes.filter((w) => w.verb === 'delete')).toEqual([]);
    // The relay restarted (empty table): the next hold gives it back.
    applyLinkFaults(EMPTY_LINK_FAULTS);
    t.clock.now += 5000;
    expect(await reconcileNetworkFault(t.ctx, NS, 's')).toEqual({ requeueAfterMs: TABLE_RESEND_MS });
    expect(currentLinkFaults().slows).toHaveLength(1);
    t.clock.now += 15_000;
    expect(await reconcileNetworkFault(t.ctx, NS, 's')).toEqual({});
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    expect(await statusOf(t, 's')).toMatchObject({ phase: 'Healed', healedAt: expect.any(String) });
    expect(t.recorder.events.map((e) => e.reason)).toEqual(['FaultStarted', 'FaultHealed']);
  });

  it('two faults share the table; deleting one sends the table without it', async () => {
    const t = setup();
    seedFault(t, 'p', { kind: 'pause', target: { relay: 2 }, durationSeconds: 600 });
    seedFault(t, 'c', { kind: 'cut', target: { relay: 0 }, peer: { relay: 3 }, durationSeconds: 600 });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    await reconcileNetworkFault(t.ctx, NS, 'c');
    expect(currentLinkFaults()).toEqual({ cuts: [['netr0', 'netr3']], slows: [], paused: ['netr2'] });
    const active = async () =>
      (await t.registry.metrics()).split('\n').filter((l) => l.startsWith('shallot_fault_active{'));
    expect(await active()).toEqual([
      'shallot_fault_active{kind="pause",target="relay-2"} 1',
      'shallot_fault_active{kind="cut",target="relay-0~relay-3"} 1',
    ]);
    await t.kube.delete({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name: 'p' });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    expect(currentLinkFaults()).toEqual({ cuts: [['netr0', 'netr3']], slows: [], paused: [] });
    expect(await active()).toContain('shallot_fault_active{kind="pause",target="relay-2"} 0');
    await t.kube.delete({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name: 'c' });
    await reconcileNetworkFault(t.ctx, NS, 'c');
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
  });

  it('a wrong token reaches no relay, and healing keeps trying for a while', async () => {
    const t = setup({ token: 'ee'.repeat(32) });
    seedFault(t, 'p', { kind: 'pause', target: { relay: 0 }, durationSeconds: 5 });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    expect(await statusOf(t, 'p')).toMatchObject({
      podsUpdated: 0,
      message: expect.stringMatching(/0 of 1/),
    });
    t.clock.now += 5000;
    expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({ requeueAfterMs: 2000 });
    expect((await statusOf(t, 'p'))?.phase).toBe('Active');
    t.clock.now += 31_000;
    expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({});
    expect((await statusOf(t, 'p'))?.phase).toBe('Healed');
  });

  it('pause of an onion-service instance: named by its pod (status.node), Pending until there is one', async () => {
    const t = setup();
    seedFault(t, 'po', { kind: 'pause', target: { onionService: 'web', instance: 0 }, durationSeconds: 30 });
    expect(await reconcileNetworkFault(t.ctx, NS, 'po')).toEqual({ requeueAfterMs: 5000 });
    expect(await statusOf(t, 'po')).toMatchObject({
      phase: 'Pending',
      message: expect.stringMatching(/no pod/),
    });
    expect(t.recorder.events).toEqual([]);
    t.kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-6d4b9-xk2p7',
        namespace: NS,
        labels: {
          'shallot.dev/onion-service': 'web',
          'shallot.dev/network': 'net',
          'app.kubernetes.io/component': 'onion-service',
        },
      },
      spec: {
        containers: [{ name: 'onion-service', ports: [{ name: 'metrics', containerPort: ops.port }] }],
      },
      status: { podIP: '127.0.0.1' },
    } as KubeObject);
    await reconcileNetworkFault(t.ctx, NS, 'po');
    expect(currentLinkFaults().paused).toEqual(['web-6d4b9-xk2p7']);
    // The relay pod and the onion-service pod both took it (the same endpoint here, twice).
    expect(await statusOf(t, 'po')).toMatchObject({
      phase: 'Active',
      node: 'web-6d4b9-xk2p7',
      podsUpdated: 2,
    });
    t.clock.now += 30_000;
    await reconcileNetworkFault(t.ctx, NS, 'po');
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    expect((await statusOf(t, 'po'))?.phase).toBe('Healed');
  });

  /** A pod of `component` in network net whose ops endpoint is at `port` on 127.0.0.1. */
  const seedPod = (t: ReturnType<typeof setup>, name: string, component: string, port: number) =>
    t.kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: NS,
        labels: { 'shallot.dev/network': 'net', 'app.kubernetes.io/component': component },
      },
      spec: { containers: [{ name: component, ports: [{ name: 'metrics', containerPort: port }] }] },
      status: { podIP: '127.0.0.1' },
    } as KubeObject);
  const faultObj = (t: ReturnType<typeof setup>, name: string) =>
    t.kube.getObj<KubeObject>('NetworkFault', NS, name);
  const deleteFault = (t: ReturnType<typeof setup>, name: string) =>
    t.kube.delete({ apiVersion: API_VERSION, kind: 'NetworkFault', namespace: NS, name });

  it('pause of an authority: its pod takes the table too, naming it by pod name', async () => {
    const t = setup();
    seedPod(t, 'net-auth-0', 'authority', ops.port);
    seedFault(t, 'pa', { kind: 'pause', target: { authority: 0 }, durationSeconds: 30 });
    await reconcileNetworkFault(t.ctx, NS, 'pa');
    expect(currentLinkFaults().paused).toEqual(['net-auth-0']);
    // The relay pod and the authority pod both took it (the same endpoint here, twice).
    expect(await statusOf(t, 'pa')).toMatchObject({ phase: 'Active', podsUpdated: 2 });
  });

  it('finalizer: on before the first table, off once healed; pod faults take none', async () => {
    const t = setup();
    seedFault(t, 'c', { kind: 'cut', target: { relay: 0 }, peer: { authority: 1 }, durationSeconds: 10 });
    await reconcileNetworkFault(t.ctx, NS, 'c');
    expect(currentLinkFaults().cuts).toEqual([['net-auth-1', 'netr0']]);
    expect(faultObj(t, 'c')?.metadata.finalizers).toEqual([FAULT_FINALIZER]);
    t.clock.now += 10_000;
    await reconcileNetworkFault(t.ctx, NS, 'c');
    expect((await statusOf(t, 'c'))?.phase).toBe('Healed');
    expect(faultObj(t, 'c')?.metadata.finalizers).toEqual([]);
    // A healed fault deletes at once.
    await deleteFault(t, 'c');
    expect(faultObj(t, 'c')).toBeUndefined();
    seedFault(t, 'k', { kind: 'kill', target: { relay: 0 }, durationSeconds: 10 });
    await reconcileNetworkFault(t.ctx, NS, 'k');
    expect(faultObj(t, 'k')?.metadata.finalizers ?? []).toEqual([]);
  });

  it('deleted while the operator is down: kept until every pod has the table without it', async () => {
    const t = setup();
    seedFault(t, 'p', { kind: 'pause', target: { relay: 0 }, durationSeconds: 600 });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    expect(currentLinkFaults().paused).toEqual(['netr0']);
    // No reconcile runs between the deletion and now: the object waits, the relay still holds the fault.
    await deleteFault(t, 'p');
    expect(faultObj(t, 'p')?.metadata.deletionTimestamp).toBeDefined();
    expect(currentLinkFaults().paused).toEqual(['netr0']);
    // The operator is back.
    expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({});
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    expect(faultObj(t, 'p')).toBeUndefined();
    expect(t.recorder.events.at(-1)).toMatchObject({ type: 'Normal', reason: 'FaultDeleted' });
  });

  it('a pod that never takes the table holds deletion for a bounded number of sends, then a Warning', async () => {
    const t = setup();
    // An authority pod whose ops port refuses connections (nothing listens there).
    const closed = await serveOps({
      host: '127.0.0.1',
      port: 0,
      registry: new Registry(),
      health: () => ({ ok: true, ready: true }),
    });
    const deadPort = closed.port;
    await closed.close();
    seedPod(t, 'net-auth-0', 'authority', deadPort);
    seedFault(t, 'p', { kind: 'pause', target: { authority: 0 }, durationSeconds: 600 });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    await deleteFault(t, 'p');
    for (let i = 1; i < MAX_DELETE_SENDS; i++)
      expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({ requeueAfterMs: DELETE_RETRY_MS });
    // The relay that answers has the table without it from the first send.
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    expect(faultObj(t, 'p')).toBeDefined();
    expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({});
    expect(faultObj(t, 'p')).toBeUndefined();
    expect(t.recorder.events.at(-1)).toMatchObject({
      type: 'Warning',
      reason: 'FaultHealIncomplete',
      message: expect.stringMatching(/1 of 2 pod/),
    });
  });

  it('deleted after its network is gone: released at once, nothing to heal', async () => {
    const t = setup();
    seedFault(t, 'p', { kind: 'pause', target: { relay: 0 }, durationSeconds: 600 });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    await t.kube.delete({ apiVersion: API_VERSION, kind: 'OnionNetwork', namespace: NS, name: 'net' });
    await deleteFault(t, 'p');
    expect(await reconcileNetworkFault(t.ctx, NS, 'p')).toEqual({});
    expect(faultObj(t, 'p')).toBeUndefined();
    expect(t.recorder.events.at(-1)?.message).toMatch(/OnionNetwork net is gone/);
  });

  it('with metrics off there is no endpoint: status says why', async () => {
    const t = setup({ metrics: false });
    seedFault(t, 'p', { kind: 'pause', target: { relay: 0 }, durationSeconds: 5 });
    await reconcileNetworkFault(t.ctx, NS, 'p');
    expect((await statusOf(t, 'p'))?.message).toMatch(/metrics\.enabled false/);
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
  });
});
