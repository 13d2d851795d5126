// The Helm chart (charts/shallot) rendered by real `helm` and checked the
// way a cluster would: `helm lint --strict`; every scenario (default values
// and charts/shallot/ci/*-values.yaml) through `kubeconform -strict` with
// schemas from the CRDs, the vendored built-in kinds and the minimal
// prometheus-operator kinds (see chart-schemas.ts); values.schema.json
// rejecting bad values; the network model and relay bandwidth limits
// reaching the example OnionNetwork; the dashboard ConfigMaps byte-identical to
// dashboards/; the alert rules through promtool (syntax, and each alert
// firing on a synthetic series while a healthy network stays quiet); NOTES;
// and the `helm test` hook's script run against a local network.
// Needs helm, kubeconform and promtool (`bash test/setup/install-tools.sh`,
// which `npm run test:all` runs) and `npm run build` (for the hook script).
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { AUTHORITIES_KEY, networkConfigMapName } from '../../operator/desired/common.js';
import { relayNickname } from '../../operator/desired/network-layout.js';
import { parseNetworkModel, placeNodes } from '../../services/core/network-model.js';
import { metricsFor } from '../../services/metrics/metrics.js';
import { type RunningNetwork, up } from '../../services/testnet/up.js';
import { type CommandRun, runCommand } from '../helpers/run-command.js';
import {
  crdSchemas,
  type KindSchema,
  prometheusOperatorSchemas,
  schemaLocation,
  writeSchemas,
} from './chart-schemas.js';

const repo = path.resolve(import.meta.dirname, '../..');
const chart = path.join(repo, 'charts/shallot');
const KUBE_VERSION = '1.36.0';
const RELEASE = 'shallot';
const NAMESPACE = 'shallot-test';

// biome-ignore lint/suspicious/noExplicitAny: parsed manifests, walked along paths the assertions name
type Obj = Record<string, any>;

/** A tool from $SHALLOT_TOOLS/bin, ~/.cache/shallot-tools/bin or PATH; a clear failure otherwise. */
function tool(name: string): string {
  const dirs = [
    process.env.SHALLOT_TOOLS && path.join(process.env.SHALLOT_TOOLS, 'bin'),
    path.join(homedir(), '.cache/shallot-tools/bin'),
    ...(process.env.PATH ?? '').split(path.delimiter),
  ].filter((d): d is string => !!d);
  for (const d of dirs) {
    const p = path.join(d, name);
    if (existsSync(p)) return p;
  }
  throw new Error(
    `${name} not found (looked in ${dirs.slice(0, 2).join(', ')} and PATH): run \`bash test/setup/install-tools.sh\` ` +
      '(it go-installs helm v3.21.4 and kubeconform v0.7.0 and apt-installs prometheus for promtool)',
  );
}

type Run = CommandRun;

function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Run> {
  return runCommand(cmd, args, { cwd: repo, ...opts });
}

let helm: string;
let kubeconform: string;
let promtool: string;
let work: string;
let schemaDir: string;

async function template(args: string[] = []): Promise<Run> {
  return run(helm, [
    'template',
    RELEASE,
    chart,
    '--namespace',
    NAMESPACE,
    '--kube-version',
    KUBE_VERSION,
    ...args,
  ]);
}

async function render(args: string[] = []): Promise<Obj[]> {
  const r = await template(args);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

const find = (objs: Obj[], kind: string, name?: string) =>
  objs.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));

const notHooks = (objs: Obj[]) => objs.filter((o) => !o.metadata?.annotations?.['helm.sh/hook']);

const one = (objs: Obj[], kind: string, name?: string): Obj => {
  const found = find(objs, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0]!;
};

const ciFiles = async () =>
  (await readdir(path.join(chart, 'ci'))).filter((f) => f.endsWith('-values.yaml')).sort();

beforeAll(async () => {
  helm = tool('helm');
  kubeconform = tool('kubeconform');
  promtool = tool('promtool');
  work = await mkdtemp(path.join(tmpdir(), 'shallot-chart-'));
  // kubeconform's schema directory: vendored built-in kinds + CRDs + prometheus-operator kinds.
  schemaDir = path.join(work, 'schemas');
  await cp(path.join(import.meta.dirname, 'chart-schemas/kubernetes'), schemaDir, { recursive: true });
  const crdDir = path.join(chart, 'crds');
  const crds: KindSchema[] = [];
  for (const f of (await readdir(crdDir)).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(await readFile(path.join(crdDir, f), 'utf8'))) {
      const crd = doc.toJS() as Obj | null;
      if (crd?.kind === 'CustomResourceDefinition') crds.push(...crdSchemas(crd));
    }
  }
  expect(crds.map((c) => c.kind).sort()).toEqual([
    'LoadTest',
    'NetworkFault',
    'OnionNetwork',
    'OnionService',
  ]);
  writeSchemas(schemaDir, [...crds, ...prometheusOperatorSchemas()]);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('helm lint', () => {
  it('passes --strict with the default values and every ci/ scenario', async () => {
    const files = await ciFiles();
    for (const values of [[], ...files.map((f) => ['-f', path.join(chart, 'ci', f)])]) {
      const r = await run(helm, ['lint', '--strict', '--kube-version', KUBE_VERSION, chart, ...values]);
      expect(r.code, `helm lint --strict ${values.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('0 chart(s) failed');
    }
  });
});

describe('kubeconform -strict', () => {
  async function validate(args: string[]) {
    const r = await template(args);
    expect(r.code, r.stderr).toBe(0);
    const v = await run(
      kubeconform,
      [
        '-strict',
        '-summary',
        '-verbose',
        '-output',
        'json',
        '-schema-location',
        schemaLocation(schemaDir),
        '-',
      ],
      { input: r.stdout },
    );
    const out = JSON.parse(v.stdout) as {
      resources: { kind: string; name: string; status: string; msg: string }[];
      summary: { valid: number; invalid: number; errors: number; skipped: number };
    };
    const bad = out.resources.filter((x) => x.status !== 'statusValid');
    expect(bad, JSON.stringify(bad, null, 2)).toEqual([]);
    expect(v.code).toBe(0);
    expect(out.summary.skipped).toBe(0);
    return out.resources.map((x) => `${x.kind}/${x.name}`).sort();
  }

  it('ci/ holds the minimal, monitoring, large-network and network-policy scenarios', async () => {
    expect(await ciFiles()).toEqual(
      expect.arrayContaining([
        'large-network-values.yaml',
        'minimal-values.yaml',
        'monitoring-values.yaml',
        'network-model-values.yaml',
        'network-policy-values.yaml',
      ]),
    );
  });

  it('default values: operator, RBAC, client, example network and service, dashboards, test hook', async () => {
    const kinds = await validate([]);
    for (const k of [
      'Deployment/shallot-operator',
      'Deployment/shallot-client',
      'Service/shallot-client',
      'ServiceAccount/shallot',
      'ClusterRole/shallot-operator',
      'ClusterRoleBinding/shallot-operator',
      'OnionNetwork/demo',
      'OnionService/demo-web',
      'Pod/shallot-test',
    ]) {
      expect(kinds).toContain(k);
    }
    expect(kinds.filter((k) => k.startsWith('LoadTest/'))).toEqual([]);
    expect(kinds.filter((k) => k.startsWith('ServiceMonitor/'))).toEqual([]);
    // NetworkPolicies are opt-in (they need an enforcing CNI): none by default.
    expect(kinds.filter((k) => k.startsWith('NetworkPolicy/'))).toEqual([]);
  });

  it('ci/network-policy-values.yaml: valid NetworkPolicies for the client, the operator and the network pods', async () => {
    const kinds = await validate(['-f', path.join(chart, 'ci/network-policy-values.yaml')]);
    expect(kinds.filter((k) => k.startsWith('NetworkPolicy/'))).toEqual([
      'NetworkPolicy/shallot-client',
      'NetworkPolicy/shallot-network',
      'NetworkPolicy/shallot-operator',
    ]);
    // Without the client, no client policy; with only `enabled`, the defaults render valid too.
    const noClient = await validate(['--set', 'networkPolicy.enabled=true', '--set', 'client.enabled=false']);
    expect(noClient.filter((k) => k.startsWith('NetworkPolicy/'))).toEqual([
      'NetworkPolicy/shallot-network',
      'NetworkPolicy/shallot-operator',
    ]);
    const watched = await validate([
      '--set',
      'networkPolicy.enabled=true',
      '--set',
      'operator.watchNamespace=shallot-net',
      '--set',
      'networkPolicy.metrics.from=null',
    ]);
    expect(watched).toContain('NetworkPolicy/shallot-network');
  });

  it('ci/minimal-values.yaml: one authority, three relays, no dashboards', async () => {
    const kinds = await validate(['-f', path.join(chart, 'ci/minimal-values.yaml')]);
    expect(kinds).toContain('OnionNetwork/tiny');
    expect(kinds.filter((k) => k.startsWith('ConfigMap/shallot-dashboard'))).toEqual([]);
    // Leader election off: no Lease Role.
    expect(kinds).not.toContain('Role/shallot-operator-leader');
    const objs = await render(['-f', path.join(chart, 'ci/minimal-values.yaml')]);
    expect(one(objs, 'OnionNetwork', 'tiny').spec.relays.replicas).toBe(3);
    expect(one(objs, 'Deployment', 'shallot-operator').spec.template.metadata.annotations).toBeUndefined();
  });

  it('ci/monitoring-values.yaml: ServiceMonitors, PodMonitor, PrometheusRule and a LoadTest', async () => {
    const kinds = await validate(['-f', path.join(chart, 'ci/monitoring-values.yaml')]);
    for (const k of [
      'ServiceMonitor/shallot-operator',
      'ServiceMonitor/shallot-client',
      'PodMonitor/shallot-network',
      'PrometheusRule/shallot',
      'LoadTest/demo-load',
    ]) {
      expect(kinds).toContain(k);
    }
  });

  it('ci/large-network-values.yaml: namespaced RBAC, autoscaled relays in pools of 8, a heavy LoadTest', async () => {
    const kinds = await validate(['-f', path.join(chart, 'ci/large-network-values.yaml')]);
    expect(kinds).toContain('Role/shallot-operator');
    expect(kinds).not.toContain('ClusterRole/shallot-operator');
    expect(kinds).toContain('LoadTest/big-load');
    const objs = await render(['-f', path.join(chart, 'ci/large-network-values.yaml')]);
    expect(one(objs, 'OnionNetwork', 'big').spec.relays.autoscale).toEqual({
      min: 40,
      max: 200,
      targetCircuitsPerRelay: 100,
    });
    expect(one(objs, 'OnionNetwork', 'big').spec.relays.relaysPerPod).toBe(8);
  });

  it('ci/network-model-values.yaml: the model and the bandwidth limits reach the OnionNetwork, and the relays accept the model', async () => {
    const file = path.join(chart, 'ci/network-model-values.yaml');
    expect(await validate(['-f', file])).toContain('OnionNetwork/regions');
    const spec = one(await render(['-f', file]), 'OnionNetwork', 'regions').spec;
    const values = parseAllDocuments(await readFile(file, 'utf8'))[0]!.toJS() as Obj;
    expect(spec.relays).toMatchObject({ bandwidthRate: 1048576, bandwidthBurst: 2097152 });
    expect(spec.networkModel).toEqual(values.examples.network.networkModel);
    // What a relay pod does with SHALLOT_NETWORK_MODEL_JSON: every relay the operator names gets a location.
    const model = parseNetworkModel(JSON.stringify(spec.networkModel));
    const placed = placeNodes(
      model,
      Array.from({ length: spec.relays.replicas as number }, (_, i) => relayNickname('regions', i)),
    );
    expect(placed.get('regionsr0')).toBe('eu');
    expect(placed.size).toBe(4);
    // The SOCKS client: the model from the ConfigMap the operator writes (optional: absent without
    // a model), and its location from client.location.
    const client = one(await render(['-f', file]), 'Deployment', 'shallot-client');
    const env: Obj[] = client.spec.template.spec.containers[0].env;
    expect(env).toContainEqual({
      name: 'SHALLOT_NETWORK_MODEL_JSON',
      valueFrom: { configMapKeyRef: { name: 'regions-network', key: 'networkModel', optional: true } },
    });
    expect(env).toContainEqual({ name: 'SHALLOT_LOCATION', value: 'us' });
    expect(model.locations).toContain('us');
    // The example LoadTest's clients sit with the SOCKS client unless placed on their own.
    const lt = (args: string[]) =>
      render(['-f', file, '--set', 'examples.loadTest.enabled=true', ...args]).then(
        (objs) => one(objs, 'LoadTest', 'demo-load').spec.location,
      );
    expect(await lt([])).toBe('us');
    expect(await lt(['--set', 'examples.loadTest.location=eu'])).toBe('eu');
    expect(await lt(['--set', 'client.location='])).toBeUndefined();
  });

  it("refuses a client.location the example network's model lacks, or none where it does not place the client", async () => {
    const file = path.join(chart, 'ci/network-model-values.yaml');
    const mars = await template(['-f', file, '--set', 'client.location=mars']);
    expect(mars.code).not.toBe(0);
    expect(mars.stderr).toContain(
      'client.location: "mars" is not a location of examples.network.networkModel (eu, us)',
    );
    const explicit = await template([
      '--set-json',
      'examples.network.networkModel={"locations":["eu"],"assign":"explicit"}',
    ]);
    expect(explicit.code).not.toBe(0);
    expect(explicit.stderr).toContain('examples.network.networkModel does not place "client"');
    // Placed by the model itself, or joining another network (whose model the chart cannot see): fine.
    const named = await template([
      '--set-json',
      'examples.network.networkModel={"locations":["eu"],"nodes":{"client":"eu"}}',
    ]);
    expect(named.stderr).toBe('');
    const other = await template(['--set', 'client.network=other', '--set', 'client.location=anywhere']);
    expect(other.stderr).toBe('');
  });

  it('no model and no limits by default; a model file through --set-file arrives as the same object', async () => {
    const plain = one(await render([]), 'OnionNetwork', 'demo').spec;
    expect(plain.networkModel).toBeUndefined();
    expect(plain.relays.bandwidthRate).toBeUndefined();
    expect(plain.relays.bandwidthBurst).toBeUndefined();
    const model = {
      locations: ['eu', 'us'],
      links: [{ from: 'eu', to: 'us', latencyMs: 50 }],
      assign: 'random',
      seed: 3,
    };
    const json = path.join(work, 'model.json');
    await writeFile(json, JSON.stringify(model));
    const args = ['--set-file', `examples.network.networkModel=${json}`];
    const r = await template(args);
    expect(r.stderr).toBe('');
    expect(one(await render(args), 'OnionNetwork', 'demo').spec.networkModel).toEqual(model);
    await validate(args);
  });

  it('every ci/ scenario renders valid manifests', async () => {
    for (const f of await ciFiles()) await validate(['-f', path.join(chart, 'ci', f)]);
  });

  it('the kind walkthrough: deploy values (with and without monitoring) and the LoadTest `npm run loadtest` applies', async () => {
    const kind = path.join(repo, 'test/setup/kind');
    await validate(['-f', path.join(kind, 'shallot-values.yaml')]);
    const kinds = await validate([
      '-f',
      path.join(kind, 'shallot-values.yaml'),
      '-f',
      path.join(kind, 'shallot-monitoring-values.yaml'),
    ]);
    expect(kinds).toContain('PodMonitor/shallot-network');
    const manifest = await run('bash', [path.join(kind, 'kind.sh'), 'loadtest-manifest'], {
      env: {
        ...process.env,
        LOADTEST_NAME: 'walkthrough',
        LOADTEST_RATE: '2.5',
        LOADTEST_SIZE: '1MiB',
        LOADTEST_COUNT: '40',
        LOADTEST_NEW_CIRCUIT: 'true',
      },
    });
    expect(manifest.code, manifest.stderr).toBe(0);
    expect(manifest.stdout).toMatch(/^ {2}count: 40$/m);
    expect(manifest.stdout).toMatch(/^ {2}newCircuit: true$/m);
    const v = await run(
      kubeconform,
      ['-strict', '-summary', '-output', 'json', '-schema-location', schemaLocation(schemaDir), '-'],
      { input: manifest.stdout },
    );
    expect(v.code, v.stdout).toBe(0);
    expect(JSON.parse(v.stdout).summary).toMatchObject({ valid: 1, invalid: 0, errors: 0 });
  });

  it('`npm run deploy` finds the repo: it copies dashboards/ into the chart and installs charts/shallot', async () => {
    // kind.sh computed the repo root one level short (issue 14): `cp <repo>/test/dashboards/*.json` failed.
    // helm and kubectl stand in as recorders here; the real chart install is the apiserver suite's.
    const bin = await mkdtemp(path.join(tmpdir(), 'shallot-deploy-'));
    try {
      const log = path.join(bin, 'calls.log');
      const stub = (name: string, code: number) =>
        writeFile(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> "${log}"\nexit ${code}\n`, {
          mode: 0o755,
        });
      await stub('helm', 0);
      await stub('kubectl', 0);
      const r = await run('bash', [path.join(repo, 'test/setup/kind/kind.sh'), 'deploy'], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      });
      expect(r.code, r.stderr).toBe(0);
      const calls = await readFile(log, 'utf8');
      expect(calls).toContain(`helm upgrade --install shallot ${path.join(repo, 'charts/shallot')} `);
      for (const f of await readdir(path.join(repo, 'dashboards')))
        expect(await readFile(path.join(chart, 'dashboards', f), 'utf8')).toBe(
          await readFile(path.join(repo, 'dashboards', f), 'utf8'),
        );
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('rejects what the CRDs reject (a wrong field in an example reaches kubeconform)', async () => {
    // values.schema.json would stop this first, so feed kubeconform a hand-edited manifest.
    const objs = await render([]);
    const net = one(objs, 'OnionNetwork', 'demo');
    net.spec.relays.exitFraction = 2;
    net.spec.relays.colour = 'red';
    const v = await run(
      kubeconform,
      ['-strict', '-output', 'json', '-schema-location', schemaLocation(schemaDir), '-'],
      { input: stringify(net) },
    );
    expect(v.code).not.toBe(0);
    expect(v.stdout).toContain('exitFraction');
    expect(v.stdout).toContain("'colour' not allowed");
  });
});

describe('NetworkPolicies', () => {
  const policies = async (args: string[]) => {
    const objs = await render(args);
    return {
      client: one(objs, 'NetworkPolicy', 'shallot-client'),
      operator: one(objs, 'NetworkPolicy', 'shallot-operator'),
      network: one(objs, 'NetworkPolicy', 'shallot-network'),
    };
  };
  /** The sources the policy admits to `port` (named), over all its ingress rules. */
  const sourcesOf = (np: Obj, port: string): Obj[] =>
    (np.spec.ingress as Obj[])
      .filter((r) => (r.ports as Obj[]).some((p) => p.port === port))
      .flatMap((r) => r.from as Obj[]);
  const monitoringNs = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
  };
  const networkPods = {
    podSelector: { matchExpressions: [{ key: 'shallot.dev/network', operator: 'Exists' }] },
  };

  it('every policy is ingress-only and selects only its own pods', async () => {
    const p = await policies(['--set', 'networkPolicy.enabled=true']);
    for (const np of Object.values(p)) expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(p.client.spec.podSelector.matchLabels).toMatchObject({ 'app.kubernetes.io/component': 'client' });
    expect(p.operator.spec.podSelector.matchLabels).toMatchObject({
      'app.kubernetes.io/component': 'operator',
    });
    expect(p.network.spec.podSelector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'shallot',
      'app.kubernetes.io/managed-by': 'shallot-operator',
    });
    // The named ports exist on the pods they guard.
    const objs = await render([]);
    const ports = (name: string) =>
      one(objs, 'Deployment', name).spec.template.spec.containers.flatMap((c: Obj) =>
        (c.ports as Obj[]).map((x) => x.name),
      );
    expect(ports('shallot-client')).toEqual(expect.arrayContaining(['socks', 'http-tunnel', 'metrics']));
    expect(ports('shallot-operator')).toContain('metrics');
  });

  it('defaults: SOCKS from the release namespace; OR/Dir between network pods; metrics from `monitoring` (and the operator)', async () => {
    const p = await policies(['--set', 'networkPolicy.enabled=true']);
    expect(sourcesOf(p.client, 'socks')).toEqual([{ podSelector: {} }]);
    expect(sourcesOf(p.client, 'http-tunnel')).toEqual([{ podSelector: {} }]);
    expect(sourcesOf(p.client, 'metrics')).toEqual([monitoringNs]);
    expect(sourcesOf(p.operator, 'metrics')).toEqual([monitoringNs]);
    expect(sourcesOf(p.network, 'or')).toEqual([networkPods]);
    // A relay pool's further ORPorts (relaysPerPod up to 32: 9002-9032) admit the same peers.
    const poolPorts = (p.network.spec.ingress as Obj[])
      .flatMap((r) => r.ports as Obj[])
      .find((x) => x.port === 9002);
    expect(poolPorts).toEqual({ port: 9002, endPort: 9032, protocol: 'TCP' });
    expect(
      (p.network.spec.ingress as Obj[]).find((r) => (r.ports as Obj[]).includes(poolPorts!))!.from,
    ).toEqual([networkPods]);
    expect(sourcesOf(p.network, 'dir')).toEqual([networkPods]);
    // Onion-service instances fetch each other's records; nothing else needs that port.
    expect(sourcesOf(p.network, 'instances')).toEqual([
      { podSelector: { matchExpressions: [{ key: 'shallot.dev/onion-service', operator: 'Exists' }] } },
    ]);
    const metrics = sourcesOf(p.network, 'metrics');
    expect(metrics).toHaveLength(2);
    expect(metrics[0]?.podSelector.matchLabels).toMatchObject({ 'app.kubernetes.io/component': 'operator' });
    expect(metrics[1]).toEqual(monitoringNs);
    // Nothing else is open: each rule names its ports.
    for (const np of Object.values(p))
      for (const r of np.spec.ingress as Obj[]) expect(r.ports.length).toBeGreaterThan(0);
  });

  it('takes extra sources per port, and closes the ops ports when no scraper is configured', async () => {
    const p = await policies(['-f', path.join(chart, 'ci/network-policy-values.yaml')]);
    expect(sourcesOf(p.client, 'socks')).toEqual([
      { podSelector: {} },
      { ipBlock: { cidr: '10.20.0.0/16', except: ['10.20.99.0/24'] } },
    ]);
    expect(sourcesOf(p.network, 'or')).toEqual([networkPods, { ipBlock: { cidr: '192.0.2.10/32' } }]);
    expect(sourcesOf(p.network, 'metrics')[1]?.podSelector).toEqual({
      matchLabels: { 'app.kubernetes.io/name': 'prometheus' },
    });
    const closed = await policies([
      '--set',
      'networkPolicy.enabled=true',
      '--set',
      'networkPolicy.metrics.from=null',
    ]);
    expect(closed.operator.spec.ingress).toEqual([]);
    expect(sourcesOf(closed.client, 'metrics')).toEqual([]);
    // The operator still reads relay metrics (its autoscaler).
    expect(sourcesOf(closed.network, 'metrics')).toHaveLength(1);
  });

  it('with operator.watchNamespace, guards the network pods there and admits the release namespace by name', async () => {
    const objs = await render([
      '--set',
      'networkPolicy.enabled=true',
      '--set',
      'operator.watchNamespace=shallot-net',
    ]);
    const net = one(objs, 'NetworkPolicy', 'shallot-network');
    expect(net.metadata.namespace).toBe('shallot-net');
    const nsOf = (peer: Obj) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
    expect(sourcesOf(net, 'or').map(nsOf)).toEqual(['shallot-net', NAMESPACE]);
    expect(nsOf(sourcesOf(net, 'metrics')[0] as Obj)).toBe(NAMESPACE);
  });
});

describe('values.schema.json', () => {
  const bad: [string, Obj, RegExp][] = [
    ['a string where an integer goes', { operator: { replicas: 'two' } }, /operator\/replicas.*want integer/],
    ['an unknown key', { examples: { network: { relayz: 3 } } }, /relayz/],
    ['a value outside the enum', { image: { pullPolicy: 'Sometimes' } }, /pullPolicy/],
    ['a share above 1', { examples: { network: { relays: { exitFraction: 1.5 } } } }, /exitFraction/],
    ['an object where a bool goes', { monitoring: { serviceMonitor: { enabled: { yes: 1 } } } }, /enabled/],
    ['a bad scrape interval', { monitoring: { podMonitor: { interval: 'often' } } }, /interval/],
    [
      'an unknown NetworkPolicy peer field',
      { networkPolicy: { socks: { from: [{ ipblock: { cidr: '10.0.0.0/8' } }] } } },
      /ipblock/,
    ],
    [
      'a bad selector operator',
      {
        networkPolicy: {
          metrics: { from: [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'Has' }] } }] },
        },
      },
      /operator/,
    ],
    [
      'a negative BandwidthRate',
      { examples: { network: { relays: { bandwidthRate: -1 } } } },
      /bandwidthRate/,
    ],
    [
      "a BandwidthRate below C tor's relay minimum of 76800",
      { examples: { network: { relays: { bandwidthRate: 76799 } } } },
      /bandwidthRate/,
    ],
    [
      'a string BandwidthBurst',
      { examples: { network: { relays: { bandwidthBurst: '2MiB' } } } },
      /bandwidthBurst.*want integer/,
    ],
    [
      'a network model without locations',
      { examples: { network: { networkModel: { defaultLatencyMs: 10 } } } },
      /networkModel/,
    ],
    ['a client location that is no name', { client: { location: 'two words' } }, /client\/location/],
    [
      'a negative link latency',
      {
        examples: {
          network: {
            networkModel: { locations: ['a', 'b'], links: [{ from: 'a', to: 'b', latencyMs: -1 }] },
          },
        },
      },
      /networkModel/,
    ],
  ];
  for (const [what, values, message] of bad) {
    it(`makes helm template fail on ${what}`, async () => {
      const file = path.join(work, `bad-${what.replace(/\W+/g, '-')}.yaml`);
      await writeFile(file, stringify(values));
      const r = await template(['-f', file]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
      expect(r.stderr).toMatch(message);
    });
  }

  it('and template guards catch what a schema cannot (two load-test targets)', async () => {
    const r = await template([
      '--set',
      'examples.loadTest.enabled=true',
      '--set',
      'examples.loadTest.target.onionService=x',
      '--set',
      'examples.loadTest.target.address=127.0.0.1:80',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('set only one of target.onionService and target.address');
  });

  it('and a BandwidthBurst below the BandwidthRate (C tor refuses it), and model text that is no model', async () => {
    const burst = await template([
      '--set',
      'examples.network.relays.bandwidthRate=1048576',
      '--set',
      'examples.network.relays.bandwidthBurst=524288',
    ]);
    expect(burst.code).not.toBe(0);
    expect(burst.stderr).toContain('bandwidthBurst (524288) must be 0 or at least bandwidthRate (1048576)');
    for (const [i, text] of ['{"locations": [', 'links: []'].entries()) {
      const file = path.join(work, `not-a-model-${i}.json`);
      await writeFile(file, text);
      const r = await template(['--set-file', `examples.network.networkModel=${file}`]);
      expect(r.code, text).not.toBe(0);
      expect(r.stderr).toContain('examples.network.networkModel: not a model');
    }
  });

  it('documents every value with a `# --` comment (on the value or an enclosing key)', async () => {
    const lines = (await readFile(path.join(chart, 'values.yaml'), 'utf8')).split('\n');
    const stack: { indent: number; documented: boolean }[] = [];
    const undocumented: string[] = [];
    lines.forEach((line, i) => {
      const m = /^(\s*)([A-Za-z][\w]*):(.*)$/.exec(line);
      if (!m) return;
      const indent = m[1]!.length;
      while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
      // The comment block right above the key holds a `# --` line.
      let j = i - 1;
      let documented = false;
      while (j >= 0 && lines[j]!.trim().startsWith('#')) {
        if (lines[j]!.trim().startsWith('# --')) documented = true;
        j--;
      }
      const leaf = m[3]!.trim() !== '';
      if (leaf && !documented && !stack.some((s) => s.documented))
        undocumented.push(`${i + 1}: ${line.trim()}`);
      stack.push({ indent, documented });
    });
    expect(undocumented).toEqual([]);
  });
});

describe('wiring between the chart and the code', () => {
  it('the client reads the authority list the operator writes (ConfigMap <network>-network)', async () => {
    const objs = await render([]);
    const client = one(objs, 'Deployment', 'shallot-client');
    const env = client.spec.template.spec.containers[0].env as Obj[];
    const auth = env.find((e) => e.name === 'SHALLOT_AUTHORITIES');
    expect(auth?.valueFrom?.configMapKeyRef).toEqual({
      name: networkConfigMapName('demo'),
      key: AUTHORITIES_KEY,
    });
  });

  it("the client's HTTP tunnel: env, container port and Service agree on 9080; client.httpTunnel.enabled=false drops all three", async () => {
    const tunnelOf = async (args: string[]) => {
      const objs = await render(args);
      const c = one(objs, 'Deployment', 'shallot-client').spec.template.spec.containers[0];
      return {
        env: (c.env as Obj[]).find((e) => e.name === 'SHALLOT_HTTP_TUNNEL_PORT')?.value,
        containerPort: (c.ports as Obj[]).find((p) => p.name === 'http-tunnel')?.containerPort,
        service: (one(objs, 'Service', 'shallot-client').spec.ports as Obj[]).find(
          (p) => p.name === 'http-tunnel',
        ),
      };
    };
    expect(await tunnelOf([])).toEqual({
      env: '9080',
      containerPort: 9080,
      service: { name: 'http-tunnel', port: 9080, targetPort: 'http-tunnel', protocol: 'TCP' },
    });
    expect((await tunnelOf(['--set', 'client.service.httpTunnelPort=8118'])).service?.port).toBe(8118);
    expect(await tunnelOf(['--set', 'client.httpTunnel.enabled=false'])).toEqual({
      env: undefined,
      containerPort: undefined,
      service: undefined,
    });
  });

  it('every SHALLOT_* variable given to the operator is one operator/config.ts reads', async () => {
    const config = await readFile(path.join(repo, 'operator/config.ts'), 'utf8');
    const objs = await render([
      '-f',
      path.join(chart, 'ci/large-network-values.yaml'),
      '--set',
      'image.relay=r:1',
    ]);
    const op = one(objs, 'Deployment', 'shallot-operator');
    const names = (op.spec.template.spec.containers[0].env as Obj[]).map((e) => e.name as string);
    expect(names).toContain('SHALLOT_RELAY_IMAGE');
    for (const n of names.filter((n) => n.startsWith('SHALLOT_') || n.startsWith('POD_'))) {
      expect(config, `${n} is not read by operator/config.ts`).toMatch(new RegExp(`(env\\.|')${n}\\b`));
    }
  });

  it('the operator runs as the ServiceAccount the RBAC binds', async () => {
    const objs = notHooks(await render([]));
    const sa = one(objs, 'ServiceAccount').metadata.name;
    expect(one(objs, 'Deployment', 'shallot-operator').spec.template.spec.serviceAccountName).toBe(sa);
    for (const b of [...find(objs, 'ClusterRoleBinding'), ...find(objs, 'RoleBinding')]) {
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: NAMESPACE }]);
    }
  });

  it('scrape annotations only when no ServiceMonitor scrapes the pod', async () => {
    const plain = one(await render([]), 'Deployment', 'shallot-operator');
    expect(plain.spec.template.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8080',
    });
    const monitored = one(
      await render(['--set', 'monitoring.serviceMonitor.enabled=true']),
      'Deployment',
      'shallot-operator',
    );
    expect(monitored.spec.template.metadata.annotations?.['prometheus.io/scrape']).toBeUndefined();
  });
});

describe('dashboards', () => {
  it('charts/shallot/dashboards/ is a byte-identical copy of dashboards/', async () => {
    const src = (await readdir(path.join(repo, 'dashboards'))).filter((f) => f.endsWith('.json')).sort();
    const copy = (await readdir(path.join(chart, 'dashboards'))).sort();
    const hint =
      'sync with: rm -f charts/shallot/dashboards/*.json && cp dashboards/*.json charts/shallot/dashboards/';
    expect(src.length).toBeGreaterThan(0);
    expect(copy, hint).toEqual(src);
    for (const f of src) {
      const a = await readFile(path.join(repo, 'dashboards', f));
      const b = await readFile(path.join(chart, 'dashboards', f));
      expect(a.equals(b), `${f} differs; ${hint}`).toBe(true);
    }
  });

  it('every dashboard is a ConfigMap labelled grafana_dashboard: "1" whose data is the file, byte for byte', async () => {
    const src = (await readdir(path.join(repo, 'dashboards'))).filter((f) => f.endsWith('.json')).sort();
    const maps = find(await render([]), 'ConfigMap').filter((c) =>
      c.metadata.name.startsWith('shallot-dashboard-'),
    );
    expect(maps.map((m) => Object.keys(m.data)[0]).sort()).toEqual(src);
    for (const m of maps) {
      expect(m.metadata.labels.grafana_dashboard).toBe('1');
      const [file, content] = Object.entries(m.data as Record<string, string>)[0]!;
      const original = await readFile(path.join(repo, 'dashboards', file));
      expect(Buffer.from(content, 'utf8').equals(original), `${file} in its ConfigMap differs`).toBe(true);
    }
  });

  it('the label, its value, annotations and namespace are configurable, and the ConfigMaps can be turned off', async () => {
    const maps = find(
      await render([
        '--set',
        'monitoring.dashboards.label=grafana_dash',
        '--set',
        'monitoring.dashboards.labelValue=shallot',
        '--set',
        'monitoring.dashboards.annotations.grafana_folder=Shallot',
        '--set',
        'monitoring.dashboards.namespace=monitoring',
      ]),
      'ConfigMap',
    ).filter((c) => c.metadata.name.startsWith('shallot-dashboard-'));
    expect(maps.length).toBeGreaterThan(0);
    for (const m of maps) {
      expect(m.metadata.labels.grafana_dash).toBe('shallot');
      expect(m.metadata.labels.grafana_dashboard).toBeUndefined();
      expect(m.metadata.annotations).toEqual({ grafana_folder: 'Shallot' });
      expect(m.metadata.namespace).toBe('monitoring');
    }
    const off = find(await render(['--set', 'monitoring.dashboards.enabled=false']), 'ConfigMap');
    expect(off.filter((c) => c.metadata.name.startsWith('shallot-dashboard-'))).toEqual([]);
  });
});

describe('alert rules', () => {
  let groups: Obj[];
  beforeAll(async () => {
    const objs = await render(['--set', 'monitoring.prometheusRule.enabled=true']);
    groups = one(objs, 'PrometheusRule').spec.groups as Obj[];
  });

  it('has the four alerts the issue names', () => {
    const alerts = groups.flatMap((g) => (g.rules as Obj[]).map((r) => r.alert));
    expect(alerts).toEqual([
      'ShallotCircuitSuccessRatioLow',
      'ShallotConsensusStale',
      'ShallotRelaysNotReady',
      'ShallotKeyRotationOverdue',
    ]);
  });

  it('queries only metrics the services register (services/metrics/metrics.ts)', async () => {
    const registered = new Set<string>();
    const registry = new Registry();
    metricsFor(registry);
    for (const m of await registry.getMetricsAsJSON()) registered.add(m.name);
    const used = new Set<string>();
    for (const r of groups.flatMap((g) => g.rules as Obj[])) {
      for (const m of String(r.expr).matchAll(/\bshallot_[a-z_]+/g))
        used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
    }
    expect(used.size).toBeGreaterThan(3);
    for (const m of used) expect(registered, `${m} is not registered`).toContain(m);
  });

  it('passes promtool check rules (PromQL and annotation templates)', async () => {
    const file = path.join(work, 'rules.yaml');
    await writeFile(file, stringify({ groups }));
    const r = await run(promtool, ['check', 'rules', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 4 rules found/);
  });

  it('each alert fires for a broken network and stays quiet for a healthy one (promtool test rules)', async () => {
    // Annotations are templates checked above; here only firing and labels matter.
    const plain = groups.map((g) => ({
      ...g,
      rules: (g.rules as Obj[]).map(({ annotations: _a, ...rest }) => rest),
    }));
    await writeFile(path.join(work, 'rules-plain.yaml'), stringify({ groups: plain }));
    const bad = 'namespace="ns",network="broken"';
    const ok = 'namespace="ns",network="healthy"';
    const series = [
      // 50% of circuits fail on the broken network, none on the healthy one.
      [`shallot_circuits_total{${bad},purpose="general",outcome="success"}`, '0+10x60'],
      [`shallot_circuits_total{${bad},purpose="general",outcome="failed"}`, '0+10x60'],
      [`shallot_circuits_total{${ok},purpose="general",outcome="success"}`, '0+10x60'],
      [`shallot_circuits_total{${ok},purpose="general",outcome="failed"}`, '0x60'],
      // The broken authority's consensus only ages; the healthy one is renewed every 30 s.
      [`shallot_consensus_age_seconds{${bad},authority="a0"}`, '0+60x60'],
      [`shallot_consensus_age_seconds{${ok},authority="a0"}`, '15x60'],
      [`shallot_operator_relays{${bad},state="desired"}`, '6x60'],
      [`shallot_operator_relays{${bad},state="ready"}`, '4x60'],
      [`shallot_operator_relays{${ok},state="desired"}`, '6x60'],
      [`shallot_operator_relays{${ok},state="ready"}`, '6x60'],
      // Onion keys rotate hourly (the example network); the broken relay's key is 2 h old and growing.
      [`shallot_key_age_seconds{${bad},relay="r0",key="onion"}`, '7200+60x60'],
      [`shallot_key_age_seconds{${ok},relay="r0",key="onion"}`, '600+60x60'],
      [`shallot_key_age_seconds{${ok},relay="r0",key="identity"}`, '999999+60x60'],
    ].map(([s, values]) => ({ series: s, values }));
    const labels = { namespace: 'ns', network: 'broken', severity: 'warning' };
    const test = {
      rule_files: ['rules-plain.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: series,
          alert_rule_test: [
            {
              eval_time: '30m',
              alertname: 'ShallotCircuitSuccessRatioLow',
              exp_alerts: [{ exp_labels: labels }],
            },
            {
              eval_time: '30m',
              alertname: 'ShallotConsensusStale',
              exp_alerts: [{ exp_labels: { ...labels, authority: 'a0' } }],
            },
            { eval_time: '30m', alertname: 'ShallotRelaysNotReady', exp_alerts: [{ exp_labels: labels }] },
            {
              eval_time: '30m',
              alertname: 'ShallotKeyRotationOverdue',
              exp_alerts: [{ exp_labels: { ...labels, relay: 'r0' } }],
            },
            // Conditions must hold for `for` (10m) first.
            { eval_time: '5m', alertname: 'ShallotRelaysNotReady', exp_alerts: [] },
          ],
        },
      ],
    };
    const file = path.join(work, 'rules-test.yaml');
    await writeFile(file, stringify(test));
    const r = await run(promtool, ['test', 'rules', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('leaves the rotation alert out when the network never rotates, and takes explicit thresholds', async () => {
    const never = one(
      await render([
        '--set',
        'monitoring.prometheusRule.enabled=true',
        '--set',
        'examples.network.keyRotation.onionKeyIntervalMinutes=0',
      ]),
      'PrometheusRule',
    );
    expect((never.spec.groups[0].rules as Obj[]).map((r) => r.alert)).not.toContain(
      'ShallotKeyRotationOverdue',
    );
    const set = one(
      await render([
        '--set',
        'monitoring.prometheusRule.enabled=true',
        '--set',
        'monitoring.prometheusRule.consensusStaleSeconds=1234',
        '--set',
        'monitoring.prometheusRule.keyRotationOverdueSeconds=4321',
      ]),
      'PrometheusRule',
    );
    const rules = set.spec.groups[0].rules as Obj[];
    expect(rules.find((r) => r.alert === 'ShallotConsensusStale')?.expr).toMatch(/> 1234$/);
    expect(rules.find((r) => r.alert === 'ShallotKeyRotationOverdue')?.expr).toMatch(/> 4321$/);
  });
});

describe('NOTES.txt', () => {
  it('tells how to reach SOCKS, the onion address, Grafana and helm test', async () => {
    // helm renders NOTES only on install (which needs a cluster): render it
    // through `include` from an extra template in a copy of the chart.
    const copy = path.join(work, 'notes-chart');
    await cp(chart, copy, { recursive: true });
    await writeFile(
      path.join(copy, 'templates/notes-render.yaml'),
      'notes: {{ include "shallot/templates/NOTES.txt" . | toJson }}\n',
    );
    const out = await run(helm, [
      'template',
      RELEASE,
      copy,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      '--show-only',
      'templates/notes-render.yaml',
    ]);
    expect(out.code, out.stderr).toBe(0);
    const r = { stdout: (parseAllDocuments(out.stdout)[0]!.toJS() as { notes: string }).notes };
    expect(r.stdout).toContain(`kubectl -n ${NAMESPACE} port-forward svc/shallot-client 9050:9050`);
    expect(r.stdout).toContain('curl --socks5-hostname 127.0.0.1:9050 http://$ONION/');
    expect(r.stdout).toContain(`kubectl -n ${NAMESPACE} port-forward svc/shallot-client 9080:9080`);
    expect(r.stdout).toContain('curl -p -x http://127.0.0.1:9080 http://$ONION/bytes/1048576 | sha256sum');
    expect(r.stdout).toContain(
      `kubectl -n ${NAMESPACE} get onionservice demo-web -o jsonpath='{.status.onionAddress}'`,
    );
    expect(r.stdout).toContain('port-forward svc/kube-prometheus-stack-grafana 3000:80');
    expect(r.stdout).toContain(`helm test ${RELEASE} -n ${NAMESPACE} --logs`);
  });
});

describe('helm test hook', () => {
  let hook: { pod: Obj; script: string; env: Record<string, string> };
  let net: RunningNetwork | undefined;
  let dataDir: string;

  beforeAll(async () => {
    const objs = await render([]);
    const pod = one(objs, 'Pod', 'shallot-test');
    const cm = one(objs, 'ConfigMap', 'shallot-test');
    const env = Object.fromEntries(
      (pod.spec.containers[0].env as Obj[]).map((e) => [e.name as string, String(e.value)]),
    );
    hook = { pod, script: cm.data['fetch.mjs'] as string, env };
  });

  afterAll(async () => {
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('is a test hook in the client image that goes through the client Service', () => {
    expect(hook.pod.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(hook.pod.spec.containers[0].image).toBe('shallot-client:dev');
    expect(hook.env.SOCKS).toBe('shallot-client:9050');
    expect(hook.env.ONION_SERVICE).toBe('demo-web');
    expect(hook.pod.spec.serviceAccountName).toBe('shallot-test');
  });

  it('keeps its pod after success, so `helm test --logs` (README, NOTES.txt) can read it', async () => {
    // hook-succeeded deleted the pod before helm fetched its logs: the test "failed" whenever it passed.
    for (const o of (await render([])).filter((x) => x.metadata?.annotations?.['helm.sh/hook'] === 'test')) {
      const policy = String(o.metadata.annotations['helm.sh/hook-delete-policy'] ?? '');
      expect(policy.split(','), `${o.kind}/${o.metadata.name}`).not.toContain('hook-succeeded');
      expect(policy.split(',')).toContain('before-hook-creation');
    }
  });

  it('may only read the example OnionService', async () => {
    const role = one(await render([]), 'Role', 'shallot-test');
    expect(role.rules).toEqual([
      {
        apiGroups: ['shallot.dev'],
        resources: ['onionservices'],
        resourceNames: ['demo-web'],
        verbs: ['get'],
      },
    ]);
  });

  it('fetches through a real network and checks the body; fails when the target is unreachable', async () => {
    const loadgen = path.join(repo, 'dist/services/loadgen/main.js');
    if (!existsSync(loadgen)) throw new Error(`${loadgen} missing: run \`npm run build\` first`);
    dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-chart-net-'));
    await mkdir(dataDir, { recursive: true });
    const quiet = { update() {}, line() {}, done() {} };
    net = await up(
      {
        authorities: 1,
        relays: 5,
        exits: 2,
        onionServices: 1,
        instances: 1,
        introPoints: 2,
        votingInterval: 5,
        dataDir,
        keyRotation: 0,
        basePort: 0,
        socksPort: 0,
        processPerNode: false,
        handshake: 'ntor',
        clientAuth: false,
        vanguardsLite: false,
        logLevel: 'warn',
        tls: true,
        bootstrapTimeout: 120,
      },
      quiet,
    );
    const script = path.join(work, 'fetch.mjs');
    await writeFile(script, hook.script);
    const onion = net.state.onionServices[0]!.address;
    const env = {
      ...process.env,
      ...hook.env,
      LOADGEN: loadgen,
      SOCKS: net.state.socks,
      TIMEOUT_SECONDS: '120',
    };
    const good = await run(process.execPath, [script], {
      env: { ...env, TARGET: onion },
      timeoutMs: 150_000,
    });
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain('ok: fetched through the network');
    // Nothing listens on port 1: the exit answers with an error and the hook fails once time is up.
    const refused = await run(process.execPath, [script], {
      env: { ...env, TARGET: '127.0.0.1:1', TIMEOUT_SECONDS: '1' },
      timeoutMs: 120_000,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('failed');
  }, 300_000);
});
