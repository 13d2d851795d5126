// The Helm chart against a real kube-apiserver + etcd (test/setup/kube-env.ts):
// - the vendored built-in schemas kubeconform uses (test/slow/chart-schemas/)
//   are what this apiserver's /openapi/v2 yields (SHALLOT_UPDATE_CHART_SCHEMAS=1
//   rewrites them);
// - every scenario (default values, charts/shallot/ci/*, the kind values)
//   passes a server-side dry run of every object: schemas, defaults, CEL
//   rules, RBAC escalation checks, admission;
// - the chart installed as rendered, and the operator (dist/operator/main.js,
//   configured by the rendered Deployment's environment) authenticated only
//   as the chart's ServiceAccount, reconciles the chart's example network and
//   onion service;
// - the `helm test` hook's script reads the onion address with its own
//   ServiceAccount (and only with it).
// No controller-manager or kubelet runs: no pods start, so the network never
// becomes Ready; what is checked is what the operator writes.
// Needs `npm run build`, helm and the kube binaries (`bash test/setup/install-tools.sh`).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type HttpKube, KubeError, type KubeObject, resourcePath } from '../../operator/kube/client.js';
import { parseAuthorityList } from '../../services/net/dir-client.js';
import { runCommand } from '../helpers/run-command.js';
import {
  freePort,
  installShallotCrds,
  startTestCluster,
  type TestCluster,
  toolsDir,
  eventually as waitUntil,
} from '../setup/kube-env.js';
import { openApiV2Schemas, schemaFileName, writeSchemas } from './chart-schemas.js';

const repo = path.resolve(import.meta.dirname, '../..');
const chart = path.join(repo, 'charts/shallot');
const vendored = path.join(import.meta.dirname, 'chart-schemas/kubernetes');
const RELEASE = 'shallot';
const NS = 'shallot-test';

// biome-ignore lint/suspicious/noExplicitAny: parsed manifests, walked along paths the assertions name
type Obj = Record<string, any>;

let cluster: TestCluster;
let admin: HttpKube;
let work: string;
let operator: ChildProcess | undefined;
let operatorLog = '';

function eventually<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000) {
  return waitUntil(what, fn, { timeoutMs, intervalMs: 250, context: () => operatorLog });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000) {
  return runCommand(cmd, args, { cwd: repo, env, timeoutMs });
}

function helmBinary(): string {
  for (const p of [process.env.SHALLOT_HELM, path.join(toolsDir(), 'bin', 'helm')]) {
    if (p && existsSync(p)) return p;
  }
  throw new Error('helm not found: run `bash test/setup/install-tools.sh`');
}

async function render(args: string[] = []): Promise<Obj[]> {
  const r = await run(helmBinary(), [
    'template',
    RELEASE,
    chart,
    '--namespace',
    NS,
    '--kube-version',
    '1.36.0',
    ...args,
  ]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')}:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => !!o?.kind);
}

const isHook = (o: Obj) => !!o.metadata?.annotations?.['helm.sh/hook'];
// prometheus-operator's CRDs are not installed on the test apiserver (they are
// not part of this repository); kubeconform checks those kinds in chart.test.ts.
const isMonitoring = (o: Obj) => String(o.apiVersion).startsWith('monitoring.coreos.com/');

function objectPath(o: Obj): string {
  return resourcePath(o.apiVersion, o.kind, o.metadata.namespace ?? NS, o.metadata.name);
}

/** Server-side apply as helm's field manager; `dryRun` only validates. */
async function apply(o: Obj, dryRun: boolean): Promise<Obj> {
  const q = `?fieldManager=helm&force=true${dryRun ? '&dryRun=All' : ''}`;
  const obj = { ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? NS } };
  if (o.kind.startsWith('Cluster')) delete obj.metadata.namespace;
  return (await admin.request<Obj>('PATCH', objectPath(obj) + q, obj, 'application/apply-patch+yaml')).body;
}

const scenarios = () => [
  [],
  ...readdirSync(path.join(chart, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => ['-f', path.join(chart, 'ci', f)]),
  ['-f', path.join(repo, 'test/setup/kind/shallot-values.yaml')],
];

beforeAll(async () => {
  if (!existsSync(path.join(repo, 'dist/operator/main.js'))) {
    throw new Error('dist/operator/main.js missing: run `npm run build` first');
  }
  work = await mkdtemp(path.join(tmpdir(), 'shallot-chart-api-'));
  cluster = await startTestCluster({ startupTimeoutMs: 90_000 });
  admin = cluster.admin;
  // The large scenario's operator watches (and gets its Role in) shallot-load.
  for (const ns of [NS, 'shallot-load']) {
    await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }
  await installShallotCrds(admin, path.join(chart, 'crds'));
}, 150_000);

afterAll(async () => {
  if (operator && operator.exitCode === null) {
    operator.kill('SIGTERM');
    await new Promise((r) => operator?.once('exit', r));
  }
  await cluster?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the kube-apiserver the tests build', () => {
  // Unstamped builds said v0.0.0-master+$Format:%H$: helm refused the chart
  // (kubeVersion >=1.25.0-0) and kubectl could not parse it (issue 14).
  it("reports the release it was built from, which the chart's kubeVersion accepts", async () => {
    const v = (await admin.request<Obj>('GET', '/version')).body;
    expect(v.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    const chartYaml = readFileSync(path.join(chart, 'Chart.yaml'), 'utf8');
    const min = /kubeVersion:\s*['"]?>=\s*1\.(\d+)/.exec(chartYaml)?.[1];
    expect(v.major).toBe('1');
    expect(Number(v.minor)).toBeGreaterThanOrEqual(Number(min));
  });
});

describe('vendored built-in schemas', () => {
  it("match what this kube-apiserver's /openapi/v2 yields", async () => {
    const doc = (await admin.request<Obj>('GET', '/openapi/v2')).body;
    const files: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.json')) files.push(path.relative(vendored, p));
      }
    };
    await walk(vendored);
    const kinds = new Set<string>();
    for (const f of files) {
      const s = JSON.parse(readFileSync(path.join(vendored, f), 'utf8')) as Obj;
      kinds.add(`${s.properties.apiVersion.enum[0]}/${s.properties.kind.enum[0]}`);
    }
    expect(kinds.size).toBe(files.length);
    const live = openApiV2Schemas(doc, kinds);
    expect(live.length).toBe(kinds.size);
    if (process.env.SHALLOT_UPDATE_CHART_SCHEMAS === '1') {
      writeSchemas(vendored, live);
      await run('npx', ['biome', 'format', '--write', vendored]);
    }
    for (const s of live) {
      const file = path.join(vendored, schemaFileName(s.apiVersion, s.kind));
      expect(
        JSON.parse(readFileSync(file, 'utf8')),
        `${file} is stale: rerun with SHALLOT_UPDATE_CHART_SCHEMAS=1`,
      ).toEqual(s.schema);
    }
  });

  it('cover every built-in kind any scenario renders', async () => {
    for (const args of scenarios()) {
      for (const o of await render(args)) {
        if (isMonitoring(o) || String(o.apiVersion).startsWith('shallot.dev/')) continue;
        expect(
          existsSync(path.join(vendored, schemaFileName(o.apiVersion, o.kind))),
          `${o.apiVersion} ${o.kind}`,
        ).toBe(true);
      }
    }
  });
});

describe('chart installed on a real kube-apiserver', () => {
  let objs: Obj[];

  it('installs as rendered (default values)', async () => {
    objs = (await render([])).filter((o) => !isMonitoring(o));
    for (const o of objs.filter((o) => !isHook(o))) await apply(o, false);
    // `helm test` creates the hook's ServiceAccount, Role, RoleBinding and
    // ConfigMap (weight -1) before its Pod: they exist for the dry runs and
    // the hook check below; the Pod itself is only dry-run.
    for (const o of objs.filter((o) => isHook(o) && o.kind !== 'Pod')) await apply(o, false);
    expect(
      await admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: NS, name: 'shallot-operator' }),
    ).not.toBeNull();
  });

  it('every scenario passes a server-side dry run of every object', async () => {
    const failures: string[] = [];
    for (const args of scenarios()) {
      for (const o of (await render(args)).filter((o) => !isMonitoring(o))) {
        try {
          await apply(o, true);
        } catch (e) {
          failures.push(
            `${args.join(' ') || 'default'}: ${o.kind}/${o.metadata.name}: ${(e as Error).message}`,
          );
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('the dry run is real: CEL rules in the CRDs reject what values.schema.json lets through', async () => {
    const net = (
      await render([
        '--set',
        'examples.network.relays.autoscale.enabled=true',
        '--set',
        'examples.network.relays.autoscale.min=50',
        '--set',
        'examples.network.relays.autoscale.max=10',
      ])
    ).find((o) => o.kind === 'OnionNetwork')!;
    const e = await apply(net, true).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(KubeError);
    expect((e as KubeError).message).toMatch(/min must be <= max/);
  });

  it("the operator, as the chart's ServiceAccount with the chart's RBAC, reconciles the example network and onion service", async () => {
    const deployment = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shallot-operator')!;
    const podSpec = deployment.spec.template.spec;
    const token = await cluster.serviceAccountToken(NS, podSpec.serviceAccountName);
    const kubeconfig = path.join(work, 'operator.kubeconfig');
    cluster.writeKubeconfig(token, kubeconfig);
    // The container's environment as the chart renders it; the fieldRefs
    // filled as the kubelet would; the ops port moved off 8080 for this host.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, KUBECONFIG: kubeconfig };
    for (const e of podSpec.containers[0].env as Obj[]) {
      if (e.value !== undefined) env[e.name] = e.value;
    }
    env.POD_NAME = 'shallot-operator-0';
    env.POD_NAMESPACE = NS;
    env.SHALLOT_OPS_HOST = '127.0.0.1';
    const opsPort = await freePort();
    env.SHALLOT_OPS_PORT = String(opsPort);
    operator = spawn(process.execPath, [path.join(repo, 'dist/operator/main.js')], { cwd: repo, env });
    operator.stdout?.on('data', (d: Buffer) => {
      operatorLog += d.toString();
    });
    operator.stderr?.on('data', (d: Buffer) => {
      operatorLog += d.toString();
    });

    const net = objs.find((o) => o.kind === 'OnionNetwork')!;
    const name = net.metadata.name as string;
    const cm = await eventually('the network ConfigMap with the authority list', async () => {
      const c = await admin.get({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: NS,
        name: `${name}-network`,
      });
      return (c?.data as Obj | undefined)?.authorities ? c : null;
    });
    expect(parseAuthorityList((cm.data as Obj).authorities)).toHaveLength(net.spec.authorities.replicas);
    for (let i = 0; i < net.spec.relays.replicas; i++) {
      await eventually(`relay ${i}`, () =>
        admin.get({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: NS, name: `${name}-relay-${i}` }),
      );
    }
    const svc = objs.find((o) => o.kind === 'OnionService')!;
    const status = await eventually('the onion address', async () => {
      const s = await admin.get({
        apiVersion: 'shallot.dev/v1alpha1',
        kind: 'OnionService',
        namespace: NS,
        name: svc.metadata.name,
      });
      return (s?.status as Obj | undefined)?.onionAddress ? (s!.status as Obj) : null;
    });
    expect(status.onionAddress).toMatch(/^[a-z2-7]{56}\.onion$/);
    const netStatus = await eventually('network status', async () => {
      const n = await admin.get({
        apiVersion: 'shallot.dev/v1alpha1',
        kind: 'OnionNetwork',
        namespace: NS,
        name,
      });
      return (n?.status as Obj | undefined)?.observedGeneration === 1 ? (n!.status as Obj) : null;
    });
    expect(netStatus.relays).toMatchObject({ desired: net.spec.relays.replicas });
    // The chart's PodMonitor would scrape every pod the operator runs: its
    // selector matches their labels and its port name is one of their ports.
    const podMonitor = (await render(['--set', 'monitoring.podMonitor.enabled=true'])).find(
      (o) => o.kind === 'PodMonitor',
    )!;
    const sets = (await admin.list<KubeObject>('apps/v1', 'StatefulSet', NS)).items;
    expect(sets.length).toBe(1 + net.spec.relays.replicas);
    // The onion service's instances: workloads the operator manages (not the chart's own Deployments).
    const instances = await eventually('onion-service workloads', async () => {
      const d = (
        await admin.list<KubeObject>(
          'apps/v1',
          'Deployment',
          NS,
          'app.kubernetes.io/managed-by=shallot-operator',
        )
      ).items;
      return d.length > 0 ? d : null;
    });
    for (const set of [...sets, ...instances]) {
      const tpl = (set.spec as Obj).template;
      expect(tpl.metadata.labels, set.metadata.name).toMatchObject(podMonitor.spec.selector.matchLabels);
      expect(tpl.metadata.labels['shallot.dev/network']).toBe(name);
      const ports = (tpl.spec.containers as Obj[])
        .flatMap((c) => (c.ports ?? []) as Obj[])
        .map((p) => p.name);
      expect(ports, set.metadata.name).toContain(podMonitor.spec.podMetricsEndpoints[0].port);
    }
    // The probes the Deployment declares answer on the ops port.
    const ready = await eventually('operator /readyz', async () => {
      const r = await fetch(
        `http://127.0.0.1:${opsPort}${podSpec.containers[0].readinessProbe.httpGet.path}`,
      );
      return r.ok;
    });
    expect(ready).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toMatch(/^shallot_operator_reconcile_total\{[^}]*kind="OnionService"[^}]*\} [1-9]/m);
    // Least privilege worked: nothing was refused.
    expect(operatorLog).not.toMatch(/forbidden|\b403\b/i);
  }, 120_000);

  it('the helm test hook reads the onion address with its own ServiceAccount, and only with it', async () => {
    const hooks = objs.filter(isHook);
    const pod = hooks.find((o) => o.kind === 'Pod')!;
    const cm = hooks.find((o) => o.kind === 'ConfigMap')!;
    const script = path.join(work, 'fetch.mjs');
    await writeFile(script, cm.data['fetch.mjs']);
    const address = (
      (await admin.get({
        apiVersion: 'shallot.dev/v1alpha1',
        kind: 'OnionService',
        namespace: NS,
        name: 'demo-web',
      }))!.status as Obj
    ).onionAddress as string;
    const server = new URL(cluster.server);
    const runHook = async (sa: string) => {
      const saDir = path.join(work, `sa-${sa}`);
      await mkdir(saDir, { recursive: true });
      await writeFile(path.join(saDir, 'token'), await cluster.serviceAccountToken(NS, sa));
      await writeFile(
        path.join(saDir, 'ca.crt'),
        readFileSync(path.join(cluster.dir, 'certs/apiserver.crt')),
      );
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
      for (const e of pod.spec.containers[0].env as Obj[]) env[e.name] = String(e.value);
      Object.assign(env, {
        KUBERNETES_SERVICE_HOST: server.hostname,
        KUBERNETES_SERVICE_PORT: server.port,
        SA_DIR: saDir,
        LOADGEN: path.join(repo, 'dist/services/loadgen/main.js'),
        // No network runs here: nothing listens on this SOCKS port, so the fetch fails after the lookup.
        SOCKS: `127.0.0.1:${await freePort()}`,
        TIMEOUT_SECONDS: '3',
      });
      return run(process.execPath, [script], env, 60_000);
    };
    const own = await runHook(pod.spec.serviceAccountName);
    expect(own.stdout).toContain(`GET ${address} (`);
    expect(own.code).toBe(1);
    // A ServiceAccount without the hook's Role is refused.
    await admin.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'nobody', namespace: NS },
    });
    const other = await runHook('nobody');
    expect(other.stdout).toMatch(/HTTP 403/);
    expect(other.stdout).not.toContain(address);
    expect(other.code).toBe(1);
  }, 90_000);
});
