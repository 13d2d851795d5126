/** LoadTest: the Job, the summary path (wrapper script → termination message → status), phases. */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../operator/api/crds.js';
import {
  aggregateSummaries,
  loadWrapperScript,
  ONION_AUTH_DIR,
  onionAuthCopyScript,
  parseLoadSummary,
  summarizeLoadResult,
} from '../../../operator/desired/load-test.js';
import { reconcileLoadTest } from '../../../operator/reconcile/load-test.js';
import { reconcileNetwork } from '../../../operator/reconcile/network.js';
import { reconcileOnionService } from '../../../operator/reconcile/onion-service.js';
import { expectInvalidLocation, networkWithService, testContext } from './ctx.js';

const NS = 'tn';

const RESULT = {
  version: 1,
  counts: { requests: 100, ok: 97, failed: 3, bytes: 5_000_000 },
  successRatio: 0.97,
  throughput: { requestsPerSec: 12.3456, bytesPerSec: 1 },
  latency: {
    connect: { count: 100, p50: 120.04, p90: 300, p99: 512.55, min: 1, max: 2, mean: 3 },
    ttfb: { count: 100, p50: 1, p90: 2, p99: 3 },
    ttlb: { count: 97, p50: 200, p90: null, p99: 900 },
  },
  failuresByReason: { timeout: 2, 'socks-F2': 1 },
  samples: new Array(5000).fill({ i: 0 }),
};

describe('load summary', () => {
  it('summarizes a LoadResult compactly and parses back', () => {
    const s = summarizeLoadResult(RESULT);
    expect(s).toEqual({
      requests: 100,
      ok: 97,
      failed: 3,
      bytes: 5_000_000,
      successRatio: 0.97,
      requestsPerSec: 12.346,
      ttlbMs: { p50: 200, p90: null, p99: 900 },
      connectMs: { p50: 120, p90: 300, p99: 512.6 },
      failuresByReason: { timeout: 2, 'socks-F2': 1 },
    });
    const msg = JSON.stringify(s);
    expect(msg.length).toBeLessThan(4096);
    expect(parseLoadSummary(msg)).toEqual(s);
  });

  it('rejects garbage, errors and oversized messages without throwing', () => {
    expect(parseLoadSummary(undefined)).toBeNull();
    expect(parseLoadSummary('{"error":"ENOENT"}')).toBeNull();
    expect(parseLoadSummary('x'.repeat(5000))).toBeNull();
    expect(parseLoadSummary('{"requests":-1}')).toBeNull();
    fc.assert(
      fc.property(
        fc.string(),
        (s) => parseLoadSummary(s) === null || typeof parseLoadSummary(s) === 'object',
      ),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseLoadSummary(JSON.stringify(v));
        return r === null || r.requests >= 0;
      }),
    );
  });

  it('aggregates clients: sums, recomputed ratio, worst percentiles', () => {
    const a = summarizeLoadResult(RESULT);
    const b = {
      ...a,
      ok: 50,
      failed: 50,
      requests: 100,
      ttlbMs: { p50: 100, p90: 400, p99: 1000 },
      failuresByReason: { timeout: 50 },
    };
    expect(aggregateSummaries([a, b])).toMatchObject({
      clients: 2,
      requests: 200,
      ok: 147,
      successRatio: 0.735,
      ttlbMs: { p50: 200, p90: 400, p99: 1000 },
      failuresByReason: { timeout: 52, 'socks-F2': 1 },
    });
    expect(aggregateSummaries([])).toBeNull();
  });

  it('the wrapper runs load, writes the summary to the termination log and keeps the exit code', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shallot-lt-'));
    mkdirSync(path.join(dir, 'dist/services/testnet'), { recursive: true });
    // A stand-in for `shallot load`: writes the result where --out says and exits 1.
    writeFileSync(
      path.join(dir, 'dist/services/testnet/main.js'),
      `const a=process.argv;const out=a[a.indexOf('--out')+1];
       if(a[2]!=='load'||a[a.indexOf('--target')+1]!=='x.onion:80')process.exit(9);
       require('fs').writeFileSync(out, ${JSON.stringify(JSON.stringify(RESULT))});process.exit(1);`,
    );
    const log = path.join(dir, 'termination-log');
    const args = ['--target', 'x.onion:80', '--out', path.join(dir, 'r.json')];
    const r = spawnSync(process.execPath, ['-e', loadWrapperScript(), '--', ...args], {
      cwd: dir,
      env: { ...process.env, SHALLOT_TERMINATION_LOG: log },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(parseLoadSummary(readFileSync(log, 'utf8'))).toEqual(summarizeLoadResult(RESULT));
  });
});

describe('LoadTest reconcile', () => {
  const world = () => networkWithService(NS, { spec: { virtualPort: 8080 } });

  it('waits for the target address, then creates one Job aimed at it', async () => {
    const { ctx, kube } = await world();
    kube.seed({
      apiVersion: API_VERSION,
      kind: 'LoadTest',
      metadata: { name: 'lt', namespace: NS },
      spec: { network: 'net', target: { onionService: 'web' }, clients: 2, durationSeconds: 30 },
    });
    let r = await reconcileLoadTest(ctx, NS, 'lt');
    expect(r.requeueAfterMs).toBe(10_000);
    expect(kube.getObj<any>('LoadTest', NS, 'lt')!.status).toMatchObject({ phase: 'Pending' });
    expect(kube.ofKind('Job')).toEqual([]);

    await reconcileOnionService(ctx, NS, 'web');
    const addr = kube.getObj<any>('OnionService', NS, 'web')!.status.onionAddress;
    r = await reconcileLoadTest(ctx, NS, 'lt');
    const job = kube.getObj('Job', NS, 'lt-load')!;
    expect(job.spec.parallelism).toBe(2);
    expect(job.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'LoadTest', name: 'lt' });
    const load = job.spec.template.spec.containers[0];
    expect(load.command.slice(0, 2)).toEqual(['node', '-e']);
    expect(load.command).toEqual(expect.arrayContaining(['--target', `${addr}:8080`, '--duration', '30']));
    // The success threshold travels with the Job (a run at 4 % success once reported Succeeded).
    expect(load.command).toEqual(expect.arrayContaining(['--min-success', '0.99']));
    const client = job.spec.template.spec.initContainers[0];
    expect(client.restartPolicy).toBe('Always');
    expect(kube.getObj<any>('LoadTest', NS, 'lt')!.status.jobName).toBe('lt-load');
  });

  it('follows the Job to Succeeded and copies the clients’ summaries into status', async () => {
    const { ctx, kube, recorder } = await world();
    kube.seed({
      apiVersion: API_VERSION,
      kind: 'LoadTest',
      metadata: { name: 'lt', namespace: NS },
      spec: { network: 'net', target: { address: 'example.test:80' }, clients: 1 },
    });
    await reconcileLoadTest(ctx, NS, 'lt');
    const job = kube.getObj('Job', NS, 'lt-load')!;
    job.status = { active: 1 };
    await reconcileLoadTest(ctx, NS, 'lt');
    expect(kube.getObj<any>('LoadTest', NS, 'lt')!.status.phase).toBe('Running');
    job.status = {
      succeeded: 1,
      conditions: [{ type: 'Complete', status: 'True' }],
      completionTime: '2025-06-01T00:05:00Z',
    };
    kube.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'lt-load-0-abc', namespace: NS, labels: { 'shallot.dev/loadtest': 'lt' } },
      status: {
        containerStatuses: [
          {
            name: 'load',
            state: { terminated: { exitCode: 0, message: JSON.stringify(summarizeLoadResult(RESULT)) } },
          },
        ],
      },
    });
    await reconcileLoadTest(ctx, NS, 'lt');
    const st = kube.getObj<any>('LoadTest', NS, 'lt')!.status;
    expect(st).toMatchObject({
      phase: 'Succeeded',
      completionTime: '2025-06-01T00:05:00Z',
      summary: { clients: 1, requests: 100, ok: 97 },
    });
    expect(st.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Completed',
    });
    expect(recorder.events.filter((e) => e.kind === 'LoadTest').map((e) => e.reason)).toEqual([
      'Started',
      'Completed',
    ]);
    kube.clearWrites();
    await reconcileLoadTest(ctx, NS, 'lt');
    expect(kube.writes).toEqual([]);
  });

  it('a failed Job is Degraded', async () => {
    const { ctx, kube } = await world();
    kube.seed({
      apiVersion: API_VERSION,
      kind: 'LoadTest',
      metadata: { name: 'lt', namespace: NS },
      spec: { network: 'net', target: { address: 'example.test:80' } },
    });
    await reconcileLoadTest(ctx, NS, 'lt');
    kube.getObj('Job', NS, 'lt-load')!.status = {
      failed: 1,
      conditions: [{ type: 'Failed', status: 'True' }],
    };
    await reconcileLoadTest(ctx, NS, 'lt');
    const st = kube.getObj<any>('LoadTest', NS, 'lt')!.status;
    expect(st.phase).toBe('Failed');
    expect(st.conditions.find((c: any) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'JobFailed',
    });
  });
});

describe('LoadTest under a network model', () => {
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
      kind: 'LoadTest',
      metadata: { name: 'lt', namespace: NS },
      spec: { network: 'net', target: { address: 'example.test:80' }, ...spec },
    });
    await reconcileLoadTest(t.ctx, NS, 'lt');
    const job = t.kube.getObj('Job', NS, 'lt-load');
    const env: any[] = job?.spec.template.spec.initContainers[0].env ?? [];
    return { ...t, job, env };
  }

  it("gives the clients the network's model (from its ConfigMap) and spec.location", async () => {
    const { env } = await world({ location: 'us' });
    expect(env).toContainEqual({
      name: 'SHALLOT_NETWORK_MODEL_JSON',
      valueFrom: { configMapKeyRef: { name: 'net-network', key: 'networkModel', optional: true } },
    });
    expect(env).toContainEqual({ name: 'SHALLOT_LOCATION', value: 'us' });
  });

  it('refuses a location the model lacks, or none when the model does not place "client", before any Job', async () => {
    for (const [spec, want] of [
      [
        { location: 'mars' },
        /spec\.location: "mars" is not a location of OnionNetwork net's model \(us, eu\)/,
      ],
      [{}, /spec\.location is needed: OnionNetwork net's model does not place "client"/],
    ] as const) {
      const { job, kube, recorder } = await world(spec);
      expect(job).toBeUndefined();
      expectInvalidLocation(kube, recorder, { kind: 'LoadTest', ns: NS, name: 'lt' }, want);
    }
  });

  it('runs with no location when the model places "client", and ignores one without a model', async () => {
    const placed = await world({}, { ...model, assign: 'random' });
    expect(placed.job).toBeDefined();
    expect(placed.env.some((e) => e.name === 'SHALLOT_LOCATION')).toBe(false);
    const none = await world({ location: 'anywhere' }, null);
    expect(none.job).toBeDefined();
    expect(none.kube.getObj('ConfigMap', NS, 'net-network')!.data).not.toHaveProperty('networkModel');
  });
});

describe('LoadTest with client authorization', () => {
  const world = () => networkWithService(NS, { spec: { virtualPort: 8080 } });

  it('waits for the client-auth Secret, then gives every client a copy of its keys', async () => {
    const { ctx, kube } = await world();
    await reconcileOnionService(ctx, NS, 'web');
    kube.seed({
      apiVersion: API_VERSION,
      kind: 'LoadTest',
      metadata: { name: 'lt', namespace: NS },
      spec: { network: 'net', target: { onionService: 'web' }, clientAuthSecret: 'alice-keys' },
    });
    await reconcileLoadTest(ctx, NS, 'lt');
    expect(
      kube.getObj<any>('LoadTest', NS, 'lt')!.status.conditions.find((c: any) => c.type === 'Ready'),
    ).toMatchObject({
      reason: 'WaitingForClientAuthSecret',
    });
    expect(kube.ofKind('Job')).toEqual([]);
    kube.seed({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'alice-keys', namespace: NS },
      data: {},
    });
    await reconcileLoadTest(ctx, NS, 'lt');
    const pod = kube.getObj('Job', NS, 'lt-load')!.spec.template.spec;
    expect(pod.initContainers.map((c: any) => c.name)).toEqual(['copy-onion-auth', 'client']);
    expect(pod.initContainers[1].env).toContainEqual({
      name: 'SHALLOT_ONION_AUTH_DIR',
      value: ONION_AUTH_DIR,
    });
    expect(pod.volumes).toContainEqual({
      name: 'onion-auth',
      secret: { secretName: 'alice-keys', defaultMode: 0o440, optional: true },
    });
  });

  it('the copy script makes 0600 copies of the *.auth_private files only', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shallot-lt-auth-'));
    const src = path.join(dir, 'secret');
    mkdirSync(src);
    writeFileSync(path.join(src, 'alice.auth_private'), 'key line\n', { mode: 0o644 });
    writeFileSync(path.join(src, 'README'), 'not a key');
    const dst = path.join(dir, 'state', 'onion-auth');
    const r = spawnSync(process.execPath, ['-e', onionAuthCopyScript(src, dst)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(dst)).toEqual(['alice.auth_private']);
    expect(readFileSync(path.join(dst, 'alice.auth_private'), 'utf8')).toBe('key line\n');
    expect(statSync(path.join(dst, 'alice.auth_private')).mode & 0o777).toBe(0o600);
  });
});
