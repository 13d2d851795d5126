/**
 * The operator against a real kube-apiserver + etcd (test/setup/kube-env.ts).
 *
 * Shows: the CRDs install and their schemas default and reject bad specs;
 * the operator, authenticated only as the chart's ServiceAccount with the
 * chart's RBAC (rendered by helm), turns an OnionNetwork into StatefulSets,
 * Services, Secrets and a ConfigMap with ownerReferences; scaling
 * converges both ways; a rotation replaces the key and keeps the previous
 * one without touching the relay's StatefulSet; status conditions carry observedGeneration; an OnionService gets its
 * client-authorization ConfigMap,
 * address and a LoadTest its Job and summary; leader election hands over;
 * a role missing a verb makes reconciles fail (so the RBAC check can fail);
 * and no reconcile or watch failed along the way.
 *
 * No controller-manager runs: StatefulSets get no pods and Jobs do not run,
 * so readiness stays "WaitingForPods" (expected), and the LoadTest's Job
 * and pod status are written here as the Job controller and kubelet would.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../operator/api/crds.js';
import { imagesFromEnv, type OperatorConfig } from '../../operator/config.js';
import { summarizeLoadResult } from '../../operator/desired/load-test.js';
import { MemoryRecorder } from '../../operator/events.js';
import { HttpKube, KubeError, type KubeObject } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/log.js';
import { Operator } from '../../operator/main.js';
import { reconcileNetwork } from '../../operator/reconcile/network.js';
import { toBase32 } from '../../services/core/bytes.js';
import { generateClientAuthKey } from '../../services/core/client-auth.js';
import { randomBytes } from '../../services/core/crypto.js';
import { decodeNodeKeys } from '../../services/core/node-keys.js';
import { metricsFor } from '../../services/metrics/metrics.js';
import { parseAuthorityList } from '../../services/net/dir-client.js';
import {
  type DashboardFile,
  loadDashboards,
  panelQueries,
  parsePromQL,
  substitute,
} from '../dashboards/dashboards.js';
import {
  installShallotCrds,
  renderChartRbac,
  startTestCluster,
  type TestCluster,
  eventually as waitUntil,
} from '../setup/kube-env.js';
import { findPrometheus, startPrometheus } from '../setup/prometheus.js';

const SYS = 'shallot-system';
const NS = 'tn';
/** A client-authorization public key (base32), for OnionService.spec.authorizedClients. */
const CLIENT_KEY = toBase32(generateClientAuthKey(randomBytes).public).toUpperCase();
const SA = 'shallot'; // shallot.serviceAccountName for release "shallot"

let cluster: TestCluster;
let admin: HttpKube;
let opKube: HttpKube;
const logs: string[] = [];
const operators: Operator[] = [];

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function eventually<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000) {
  return waitUntil(what, fn, { timeoutMs, intervalMs: 150 });
}

const ref = (kind: string, name: string, namespace: string | undefined = NS, apiVersion = 'v1') => ({
  apiVersion,
  kind,
  namespace,
  name,
});
const cr = (kind: string, name: string) => ref(kind, name, NS, API_VERSION);

async function mergePatch(r: ReturnType<typeof ref>, body: unknown): Promise<void> {
  const plural = { OnionNetwork: 'onionnetworks', OnionService: 'onionservices', LoadTest: 'loadtests' }[
    r.kind as 'OnionNetwork'
  ];
  await admin.request(
    'PATCH',
    `/apis/${API_VERSION}/namespaces/${r.namespace}/${plural}/${r.name}`,
    body,
    'application/merge-patch+json',
  );
}

function operatorConfig(identity: string): OperatorConfig {
  return {
    images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test', SHALLOT_IMAGE_PULL_POLICY: 'Never' }),
    watchNamespace: undefined,
    leaderElection: true,
    leaseNamespace: SYS,
    leaseName: 'shallot-operator-leader',
    identity,
    opsHost: '127.0.0.1',
    opsPort: 0,
    resyncMs: 5_000,
    workers: 2,
    logLevel: 'info',
  };
}

function startOperator(identity: string): Operator {
  const op = new Operator({
    config: operatorConfig(identity),
    kube: opKube,
    log: createLogger('info', (line) => logs.push(line)),
    lease: { durationMs: 3000, renewDeadlineMs: 2000, retryMs: 300 },
    baseBackoffMs: 200,
  });
  operators.push(op);
  return op;
}

beforeAll(async () => {
  // Under SHALLOT_TEST_ALL this must work: a failure to start fails the suite (no skipping).
  cluster = await startTestCluster({ startupTimeoutMs: 90_000 });
  admin = cluster.admin;
  for (const ns of [SYS, NS])
    await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await installShallotCrds(admin);
  const rbac = renderChartRbac(SYS);
  expect(rbac.map((o) => o.kind).sort()).toEqual([
    'ClusterRole',
    'ClusterRoleBinding',
    'Role',
    'RoleBinding',
    'ServiceAccount',
  ]);
  for (const o of rbac) await admin.create(o);
  opKube = new HttpKube(cluster.configForToken(await cluster.serviceAccountToken(SYS, SA)));
}, 150_000);

afterAll(async () => {
  // The operator's own log, for a failing run: SHALLOT_OPERATOR_TEST_LOG=/tmp/op.log.
  if (process.env.SHALLOT_OPERATOR_TEST_LOG)
    writeFileSync(process.env.SHALLOT_OPERATOR_TEST_LOG, logs.join(''));
  for (const op of operators) await op.stop().catch(() => {});
  await cluster?.stop();
});

describe('CRDs on a real apiserver', () => {
  const dry = (obj: KubeObject) => {
    const plural = { OnionNetwork: 'onionnetworks', OnionService: 'onionservices', LoadTest: 'loadtests' }[
      obj.kind as 'LoadTest'
    ];
    return admin.request('POST', `/apis/${API_VERSION}/namespaces/${NS}/${plural}?dryRun=All`, obj);
  };
  const bad: [string, KubeObject, RegExp][] = [
    [
      'negative relays',
      {
        apiVersion: API_VERSION,
        kind: 'OnionNetwork',
        metadata: { name: 'b1' },
        spec: { relays: { replicas: -1 } },
      },
      /replicas/,
    ],
    [
      'exit fraction above 1',
      {
        apiVersion: API_VERSION,
        kind: 'OnionNetwork',
        metadata: { name: 'b2' },
        spec: { relays: { exitFraction: 2 } },
      },
      /exitFraction/,
    ],
    [
      'autoscale min > max (CEL)',
      {
        apiVersion: API_VERSION,
        kind: 'OnionNetwork',
        metadata: { name: 'b3' },
        spec: { relays: { autoscale: { min: 5, max: 2 } } },
      },
      /min must be <= max/,
    ],
    [
      'a name too long for child names',
      { apiVersion: API_VERSION, kind: 'OnionNetwork', metadata: { name: 'n'.repeat(41) }, spec: {} },
      /at most 40/,
    ],
    [
      'wrong type',
      { apiVersion: API_VERSION, kind: 'OnionNetwork', metadata: { name: 'b5' }, spec: { tls: 'yes' } },
      /tls/,
    ],
    [
      'backend type outside the enum',
      {
        apiVersion: API_VERSION,
        kind: 'OnionService',
        metadata: { name: 'b6' },
        spec: { network: 'x', backend: { type: 'udp' } },
      },
      /Unsupported value/,
    ],
    [
      'tcp backend without host (CEL)',
      {
        apiVersion: API_VERSION,
        kind: 'OnionService',
        metadata: { name: 'b7' },
        spec: { network: 'x', backend: { type: 'tcp' } },
      },
      /needs host and port/,
    ],
    [
      'an authorized client key that is not 52 base32 characters',
      {
        apiVersion: API_VERSION,
        kind: 'OnionService',
        metadata: { name: 'b11' },
        spec: { network: 'x', authorizedClients: [{ name: 'alice', publicKey: 'not-a-key' }] },
      },
      /publicKey/,
    ],
    [
      'an authorized client named twice (list-map key)',
      {
        apiVersion: API_VERSION,
        kind: 'OnionService',
        metadata: { name: 'b12' },
        spec: {
          network: 'x',
          authorizedClients: [
            { name: 'alice', publicKey: CLIENT_KEY },
            { name: 'alice', publicKey: CLIENT_KEY },
          ],
        },
      },
      /Duplicate value/,
    ],
    [
      'a client-auth Secret name that is not a Kubernetes name',
      {
        apiVersion: API_VERSION,
        kind: 'LoadTest',
        metadata: { name: 'b13' },
        spec: { network: 'x', target: { address: 'b:1' }, clientAuthSecret: 'Alice_Keys' },
      },
      /clientAuthSecret/,
    ],
    [
      'an onion-service location that is no location name',
      {
        apiVersion: API_VERSION,
        kind: 'OnionService',
        metadata: { name: 'b14' },
        spec: { network: 'x', location: 'two words' },
      },
      /location/,
    ],
    [
      'service without network',
      { apiVersion: API_VERSION, kind: 'OnionService', metadata: { name: 'b8' }, spec: {} },
      /network/,
    ],
    [
      'load test with two targets (CEL)',
      {
        apiVersion: API_VERSION,
        kind: 'LoadTest',
        metadata: { name: 'b9' },
        spec: { network: 'x', target: { onionService: 'a', address: 'b:1' } },
      },
      /exactly one/,
    ],
    [
      'bad payload size',
      {
        apiVersion: API_VERSION,
        kind: 'LoadTest',
        metadata: { name: 'b10' },
        spec: { network: 'x', target: { address: 'b:1' }, payloadSize: 'lots' },
      },
      /payloadSize/,
    ],
  ];
  for (const [what, obj, msg] of bad) {
    it(`rejects ${what}`, async () => {
      const e = await dry(obj).then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(KubeError);
      expect((e as KubeError).statusCode).toBe(422);
      expect((e as KubeError).message).toMatch(msg);
    });
  }

  it('fills defaults into an empty spec', async () => {
    const r = await dry({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'd1' },
      spec: {},
    });
    expect((r.body as any).spec).toEqual({
      authorities: { replicas: 3, votingIntervalSeconds: 60 },
      relays: {
        replicas: 5,
        exitFraction: 0.34,
        bandwidth: 1_000_000,
        bandwidthRate: 0,
        bandwidthBurst: 0,
        relaysPerPod: 1,
      },
      keyRotation: { onionKeyIntervalMinutes: 0, authorityKeyIntervalMinutes: 0, gracePeriodMinutes: 60 },
      metrics: { enabled: true, port: 9100 },
      tls: true,
    });
  });
});

describe('operator with the chart RBAC', () => {
  let netUid = '';

  it('runs as the ServiceAccount, which is not an admin', async () => {
    await expect(opKube.list('v1', 'Namespace')).rejects.toThrow(/403/);
    await expect(opKube.list('v1', 'ConfigMap', NS)).rejects.toThrow(/403/); // get and patch only
    await expect(opKube.delete(ref('Deployment', 'x', NS, 'apps/v1'))).rejects.toThrow(/403/);
  });

  it('creates authorities, relays, services, key Secrets and the authority list, all owned by the network', async () => {
    const a = startOperator('op-a');
    await a.start();
    await eventually('op-a leading', async () => a.isLeader);
    const net = await admin.create({
      apiVersion: API_VERSION,
      kind: 'OnionNetwork',
      metadata: { name: 'alpha', namespace: NS },
      spec: {
        authorities: { replicas: 3 },
        relays: { replicas: 3 },
        keyRotation: { gracePeriodMinutes: 30 },
      },
    });
    netUid = net.metadata.uid!;
    const names = ['alpha-auth', 'alpha-relay-0', 'alpha-relay-1', 'alpha-relay-2'];
    await eventually('StatefulSets', async () =>
      (await Promise.all(names.map((n) => admin.get(ref('StatefulSet', n, NS, 'apps/v1'))))).every(Boolean),
    );
    const owned = async (kind: string, name: string, apiVersion = 'v1') => {
      const o = await admin.get(ref(kind, name, NS, apiVersion));
      expect(o, `${kind} ${name}`).not.toBeNull();
      expect(o!.metadata.ownerReferences).toEqual([
        {
          apiVersion: API_VERSION,
          kind: 'OnionNetwork',
          name: 'alpha',
          uid: netUid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      return o!;
    };
    for (const n of names) await owned('StatefulSet', n, 'apps/v1');
    for (const n of ['alpha-auth', 'alpha-relay', 'alpha-metrics']) await owned('Service', n);
    await eventually('relay Secrets', async () => admin.get(ref('Secret', 'alpha-relay-2-keys')));
    for (const n of ['alpha-auth-keys', 'alpha-relay-0-keys', 'alpha-relay-1-keys', 'alpha-relay-2-keys'])
      await owned('Secret', n);
    const cm = await owned('ConfigMap', 'alpha-network');
    const list = parseAuthorityList(cm.data.authorities);
    expect(list.map((x) => x.url)).toEqual(
      [0, 1, 2].map((i) => `http://alpha-auth-${i}.alpha-auth.${NS}.svc:7000`),
    );
    const auth = await admin.get(ref('StatefulSet', 'alpha-auth', NS, 'apps/v1'));
    expect(auth!.spec.replicas).toBe(3);

    const st = await eventually('status', async () => {
      const n = await admin.get(cr('OnionNetwork', 'alpha'));
      return n?.status?.observedGeneration === 1 && n.status.conditions?.length === 3 ? n.status : null;
    });
    expect(st.relays).toMatchObject({ desired: 3, ready: 0 });
    expect(st.authorityList).toBe(cm.data.authorities);
    const byType = Object.fromEntries(st.conditions.map((c: any) => [c.type, c]));
    // No kubelet: nothing becomes ready, which the status says plainly.
    expect(byType.Ready).toMatchObject({ status: 'False', reason: 'WaitingForPods', observedGeneration: 1 });
    expect(byType.Degraded).toMatchObject({ status: 'False', observedGeneration: 1 });
  });

  it('converges when replicas go up and down; retired relays lose their key Secrets', async () => {
    await mergePatch(cr('OnionNetwork', 'alpha'), { spec: { relays: { replicas: 5 } } });
    await eventually(
      '5 relays',
      async () =>
        (await admin.get(ref('Secret', 'alpha-relay-4-keys'))) &&
        admin.get(ref('StatefulSet', 'alpha-relay-4', NS, 'apps/v1')),
    );
    await eventually(
      'generation 2 observed',
      async () => (await admin.get(cr('OnionNetwork', 'alpha')))?.status?.observedGeneration === 2,
    );
    await mergePatch(cr('OnionNetwork', 'alpha'), { spec: { relays: { replicas: 2 } } });
    await eventually('relays 2-4 retired', async () => {
      const left = await Promise.all(
        [2, 3, 4].flatMap((i) => [
          admin.get(ref('StatefulSet', `alpha-relay-${i}`, NS, 'apps/v1')),
          admin.get(ref('Secret', `alpha-relay-${i}-keys`)),
        ]),
      );
      return left.every((x) => x === null);
    });
    expect(await admin.get(ref('Secret', 'alpha-relay-1-keys'))).not.toBeNull();
    const st = await eventually('status after scale-down', async () => {
      const n = await admin.get(cr('OnionNetwork', 'alpha'));
      return n?.status?.observedGeneration === 3 && n.status.relays.retiring === 0 ? n.status : null;
    });
    expect(st.relays.desired).toBe(2);
  });

  it('rotates a relay onion key on the rotate-now annotation and keeps the previous key', async () => {
    const readKeys = async () => {
      const s = await admin.get(ref('Secret', 'alpha-relay-0-keys'));
      return decodeNodeKeys(new Uint8Array(Buffer.from(s!.data['keys.json'], 'base64')));
    };
    const before = await readKeys();
    expect(before.onionKeys).toHaveLength(1);
    const relaySts = () => admin.get(ref('StatefulSet', 'alpha-relay-0', NS, 'apps/v1'));
    const stsBefore = (await relaySts())!;
    await mergePatch(cr('OnionNetwork', 'alpha'), {
      metadata: { annotations: { 'shallot.dev/rotate-now': 'test-1' } },
    });
    const after = await eventually('rotated key', async () => {
      const k = await readKeys();
      return k.onionKeys.length === 2 ? k : null;
    });
    expect(after.identity).toEqual(before.identity);
    expect(after.onionKeys[1]!.secret).toEqual(before.onionKeys[0]!.secret);
    expect(after.onionKeys[0]!.secret).not.toEqual(before.onionKeys[0]!.secret);
    const st = await eventually(
      'rotation in status',
      async () => (await admin.get(cr('OnionNetwork', 'alpha')))?.status?.keyRotation,
    );
    expect(st.onionKeyRotations).toBe(2); // both relays
    // A resync later the previous key is still there (grace period is 30 minutes).
    await wait(1500);
    expect((await readKeys()).onionKeys).toHaveLength(2);
    // The relay takes the key from its mounted Secret: its StatefulSet, and so its pod, is untouched (issue 14).
    const stsAfter = (await relaySts())!;
    expect(stsAfter.spec.template).toEqual(stsBefore.spec.template);
    expect(stsAfter.metadata.generation).toBe(stsBefore.metadata.generation);
    const text = await (await fetch(`${operators[0]!.opsUrl}/metrics`)).text();
    expect(text).toMatch(
      /shallot_operator_key_rotations_total\{namespace="tn",network="alpha",key="onion"[^}]*\} 2/,
    );
  });

  it('gives an OnionService its Deployment and address, and marks one on a missing network Degraded', async () => {
    await admin.create({
      apiVersion: API_VERSION,
      kind: 'OnionService',
      metadata: { name: 'web', namespace: NS },
      spec: { network: 'alpha', instances: 2, authorizedClients: [{ name: 'alice', publicKey: CLIENT_KEY }] },
    });
    await admin.create({
      apiVersion: API_VERSION,
      kind: 'OnionService',
      metadata: { name: 'lost', namespace: NS },
      spec: { network: 'nowhere' },
    });
    const st = await eventually('onion address', async () =>
      (await admin.get(cr('OnionService', 'web')))?.status?.onionAddress
        ? (await admin.get(cr('OnionService', 'web')))!.status
        : null,
    );
    expect(st.onionAddress).toMatch(/^[a-z2-7]{56}\.onion$/);
    const dep = await admin.get(ref('Deployment', 'web-onion', NS, 'apps/v1'));
    expect(dep!.spec.replicas).toBe(2);
    // The instances find each other through a headless Service over their pods, ready or not.
    const peers = await admin.get(ref('Service', 'web-onion-peers', NS));
    expect(peers!.spec).toMatchObject({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: dep!.spec.selector.matchLabels,
      ports: [{ name: 'instances', port: 9101, targetPort: 9101 }],
    });
    expect(dep!.spec.template.spec.containers[0].env).toContainEqual({
      name: 'SHALLOT_INSTANCE_PEERS_DNS',
      value: `web-onion-peers.${NS}.svc:9101`,
    });
    // Client authorization: the key as a Tor .auth file in a ConfigMap the instances mount.
    expect(st.authorizedClients).toBe(1);
    const clients = await admin.get(ref('ConfigMap', 'web-authorized-clients', NS));
    expect(clients!.data).toEqual({ 'alice.auth': `descriptor:x25519:${CLIENT_KEY}\n` });
    expect(dep!.spec.template.spec.volumes).toContainEqual({
      name: 'authorized-clients',
      configMap: { name: 'web-authorized-clients', defaultMode: 0o644 },
    });
    const lost = await eventually(
      'Degraded',
      async () => (await admin.get(cr('OnionService', 'lost')))?.status?.conditions,
    );
    expect(lost.find((c: any) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'NetworkNotFound',
    });
  });

  it('runs a LoadTest as a Job and copies the summary from the finished pod into status', async () => {
    await admin.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default', namespace: NS },
    });
    await admin.create({
      apiVersion: API_VERSION,
      kind: 'LoadTest',
      metadata: { name: 'lt', namespace: NS },
      spec: { network: 'alpha', target: { onionService: 'web' }, durationSeconds: 10 },
    });
    const job = await eventually('Job', async () => admin.get(ref('Job', 'lt-load', NS, 'batch/v1')));
    const addr = (await admin.get(cr('OnionService', 'web')))!.status.onionAddress;
    expect(job.spec.template.spec.containers[0].command).toEqual(
      expect.arrayContaining(['--target', `${addr}:80`]),
    );
    // Play kubelet and Job controller: a pod that ran and wrote its summary, then the Job's completion.
    const tpl = job.spec.template;
    const pod = await admin.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'lt-load-0-test', namespace: NS, labels: tpl.metadata.labels },
      spec: { ...tpl.spec, initContainers: [], containers: [{ name: 'load', image: 'shallot-client:test' }] },
    });
    const message = JSON.stringify(
      summarizeLoadResult({
        counts: { requests: 40, ok: 39, failed: 1, bytes: 400 },
        successRatio: 0.975,
        throughput: { requestsPerSec: 4 },
        latency: { ttlb: { p50: 10, p90: 20, p99: 30 }, connect: { p50: 5, p90: 6, p99: 7 } },
        failuresByReason: { timeout: 1 },
      }),
    );
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await admin.request(
      'PATCH',
      `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/status`,
      {
        status: {
          phase: 'Succeeded',
          containerStatuses: [
            {
              name: 'load',
              image: 'shallot-client:test',
              imageID: '',
              ready: false,
              restartCount: 0,
              state: {
                terminated: { exitCode: 0, reason: 'Completed', message, startedAt: now, finishedAt: now },
              },
            },
          ],
        },
      },
      'application/merge-patch+json',
    );
    await admin.request(
      'PATCH',
      `/apis/batch/v1/namespaces/${NS}/jobs/lt-load/status`,
      {
        status: {
          startTime: now,
          completionTime: now,
          succeeded: 1,
          completedIndexes: '0',
          conditions: [
            { type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: now, lastTransitionTime: now },
            { type: 'Complete', status: 'True', lastProbeTime: now, lastTransitionTime: now },
          ],
        },
      },
      'application/merge-patch+json',
    );
    const st = await eventually('LoadTest succeeded', async () => {
      const s = (await admin.get(cr('LoadTest', 'lt')))?.status;
      return s?.phase === 'Succeeded' && s.summary ? s : null;
    });
    expect(st.summary).toMatchObject({
      clients: 1,
      requests: 40,
      ok: 39,
      failed: 1,
      ttlbMs: { p50: 10, p99: 30 },
      failuresByReason: { timeout: 1 },
    });
    expect(st.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Completed',
    });
  });

  it('hands over leadership: a standby never acts, then takes over when the leader stops', async () => {
    const b = startOperator('op-b');
    await b.start();
    await wait(1500);
    expect(operators[0]!.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    const lease = await admin.get(ref('Lease', 'shallot-operator-leader', SYS, 'coordination.k8s.io/v1'));
    expect(lease!.spec.holderIdentity).toBe('op-a');
    await operators[0]!.stop();
    await eventually('op-b leading', async () => b.isLeader, 10_000);
    await mergePatch(cr('OnionNetwork', 'alpha'), { spec: { relays: { replicas: 3 } } });
    await eventually('op-b converges', async () => admin.get(ref('Secret', 'alpha-relay-2-keys')));
    const health = await fetch(`${b.opsUrl}/readyz`);
    expect(health.status).toBe(200);
  });

  it('reconciled without a single failure: no errors, no Forbidden, metrics exported', async () => {
    const b = operators[1]!;
    // The gauges are set late in a pass and its duration is observed when it returns; the
    // Secret the last test waited for comes earlier, so wait for both.
    const text = await eventually('gauges and a timed pass', async () => {
      const t = await (await fetch(`${b.opsUrl}/metrics`)).text();
      return /shallot_operator_relays\{namespace="tn",network="alpha",state="desired"[^}]*\} 3/.test(t) &&
        /shallot_operator_reconcile_seconds_bucket\{[^}]*kind="OnionNetwork"/.test(t)
        ? t
        : null;
    });
    expect(text).toMatch(
      /shallot_operator_reconcile_total\{kind="OnionNetwork",result="(success|requeue)"[^}]*\} \d+/,
    );
    expect(text).toMatch(/shallot_operator_relays\{namespace="tn",network="alpha",state="desired"[^}]*\} 3/);
    expect(text).toMatch(/shallot_operator_reconcile_seconds_bucket\{[^}]*kind="OnionNetwork"/);
    // Any 403 anywhere (reconcile, watch, event) is a verb missing from the chart's RBAC.
    const forbidden = logs.filter((l) => /forbidden|\b403\b/i.test(l));
    expect(forbidden).toEqual([]);
    // Transient API errors (429 while a CRD settles) may retry; nothing else may fail.
    const failures = logs.filter((l) => /reconcile failed|event not recorded/.test(l) && !/\b429\b/.test(l));
    expect(failures).toEqual([]);
  });

  it("operator.json: every panel on the operator's own metrics returns data from a real Prometheus scraping this operator", async () => {
    const bin = findPrometheus();
    if (!bin) throw new Error('prometheus not found: run test/setup/install-tools.sh');
    const opsUrl = operators[1]?.opsUrl;
    if (!opsUrl) throw new Error('the operator under test serves no ops endpoint');
    const ops = new URL(opsUrl);
    const dir = mkdtempSync(path.join(tmpdir(), 'shallot-op-prom-'));
    const targets = path.join(dir, 'targets.json');
    writeFileSync(targets, JSON.stringify([{ targets: [ops.host], labels: { job: 'shallot' } }]));
    const prom = await startPrometheus({ bin, targetFiles: [targets] });
    try {
      await prom.waitFor('count(up{job="shallot"} == 1)', (v) => v >= 1, 30_000);
      // Two more scrapes so rate() and increase() have two samples.
      await new Promise((r) => setTimeout(r, 2_500));
      const dash = loadDashboards().find((d) => d.name === 'operator') as DashboardFile;
      const own = panelQueries(dash).filter((q) =>
        parsePromQL(q.expr).metrics.every((m) => m.startsWith('shallot_operator_')),
      );
      expect(own.length).toBeGreaterThan(3);
      const empty: string[] = [];
      for (const q of own) {
        const res = await prom.query(
          substitute(q.expr, dash.json, { __rate_interval: '1m', __interval: '15s', __range: '5m' }),
        );
        const n = Array.isArray(res.result) && res.resultType !== 'scalar' ? res.result.length : 1;
        if (n === 0) empty.push(`${q.panel} ${q.refId}: ${q.expr}`);
      }
      expect(empty).toEqual([]);
    } finally {
      await prom.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('fails when the role lacks a verb the code needs (the RBAC check has teeth)', async () => {
    // Same ClusterRole minus "delete" on secrets, bound to a second ServiceAccount.
    const rbac = renderChartRbac(SYS);
    const role = structuredClone(rbac.find((o) => o.kind === 'ClusterRole')!);
    role.metadata = { name: 'shallot-operator-no-secret-delete' };
    for (const r of role.rules)
      if (r.resources.includes('secrets')) r.verbs = r.verbs.filter((v: string) => v !== 'delete');
    await admin.create(role);
    await admin.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'weak', namespace: SYS },
    });
    await admin.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'weak' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
      subjects: [{ kind: 'ServiceAccount', name: 'weak', namespace: SYS }],
    });
    for (const op of operators) await op.stop();
    const weak = new HttpKube(cluster.configForToken(await cluster.serviceAccountToken(SYS, 'weak')));
    await mergePatch(cr('OnionNetwork', 'alpha'), { spec: { relays: { replicas: 1 } } });
    const ctx = {
      kube: weak,
      images: imagesFromEnv({}),
      metrics: metricsFor(new Registry()).operator,
      recorder: new MemoryRecorder(),
      log: createLogger('silent'),
      now: Date.now,
      scrape: async () => '',
    };
    await expect(reconcileNetwork(ctx, NS, 'alpha')).rejects.toThrow(/403/);
  });

  it('the built entry point starts with a kubeconfig, serves /healthz and /readyz, and exits on SIGTERM', async () => {
    const main = 'dist/operator/main.js';
    if (!existsSync(main)) throw new Error(`${main} missing: npm run build (test:all builds first)`);
    const kc = path.join(cluster.dir, 'operator.kubeconfig');
    cluster.writeKubeconfig(await cluster.serviceAccountToken(SYS, SA), kc);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const child = spawn(process.execPath, [main], {
      env: {
        ...process.env,
        KUBECONFIG: kc,
        POD_NAMESPACE: SYS,
        POD_NAME: 'op-main',
        SHALLOT_OPS_HOST: '127.0.0.1',
        SHALLOT_OPS_PORT: String(port),
        SHALLOT_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      await eventually(
        'ready',
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
        20_000,
      );
      const h = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
      expect(h).toMatchObject({ ok: true });
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).not.toMatch(/forbidden|"level":"error"/i);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
