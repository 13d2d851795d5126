/**
 * A real Kubernetes API for tests (the envtest recipe, MACHINE-NOTES):
 * etcd and kube-apiserver on 127.0.0.1, no controller-manager, no kubelet.
 *
 *   const c = await startTestCluster();      // bounded wait for /readyz
 *   c.admin                                  // Kube as system:masters (token file)
 *   await c.serviceAccountKube(ns, sa)       // Kube as that ServiceAccount (TokenRequest)
 *   await c.stop();
 *
 * Binaries come from test/setup/build-kube.sh's cache ($SHALLOT_TOOLS/bin,
 * default ~/.cache/shallot-tools/bin) or $SHALLOT_KUBE_APISERVER /
 * $SHALLOT_ETCD. Authorization is RBAC only: the admin token belongs to
 * system:masters; a ServiceAccount gets exactly what its bindings grant.
 * Service-account tokens are signed with an RSA key made here by openssl.
 *
 * Without a controller-manager nothing acts on workloads: StatefulSets get
 * no pods, Jobs never run, owner-reference garbage collection does not
 * happen, and namespaces get no "default" ServiceAccount (tests create it).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { HttpKube, type KubeObject } from '../../operator/kube/client.js';
import { ephemeralPort } from '../../services/testnet/ports.js';

export interface KubeBinaries {
  apiserver: string;
  etcd: string;
}

export function toolsDir(): string {
  return process.env.SHALLOT_TOOLS ?? path.join(os.homedir(), '.cache', 'shallot-tools');
}

/** The binaries, or null with the reason when they are not there. */
export function findKubeBinaries(): { bins: KubeBinaries | null; reason: string } {
  const bin = path.join(toolsDir(), 'bin');
  const apiserver = process.env.SHALLOT_KUBE_APISERVER ?? path.join(bin, 'kube-apiserver');
  const etcd = process.env.SHALLOT_ETCD ?? path.join(bin, 'etcd');
  for (const f of [apiserver, etcd]) {
    if (!existsSync(f)) return { bins: null, reason: `${f} not found: run test/setup/build-kube.sh` };
  }
  return { bins: { apiserver, etcd }, reason: '' };
}

/** A free 127.0.0.1 port (the launcher's own picker). */
export const freePort = (): Promise<number> => ephemeralPort();

export interface TestCluster {
  server: string;
  dir: string;
  admin: HttpKube;
  adminConfig: KubeConfig;
  /** A KubeConfig authenticating with `token` (CA from the apiserver's cert dir). */
  configForToken(token: string): KubeConfig;
  /** A token for namespace/sa via the TokenRequest API. */
  serviceAccountToken(namespace: string, sa: string, expirationSeconds?: number): Promise<string>;
  /** Writes a kubeconfig file for a token (for a child process's KUBECONFIG). */
  writeKubeconfig(token: string, file: string): void;
  stop(): Promise<void>;
}

export interface StartOptions {
  startupTimeoutMs?: number;
}

function startProcess(cmd: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: false });
  closeSync(fd);
  return child;
}

async function stopProcess(p: ChildProcess | null): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
    }, 5000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

function tail(file: string, n = 25): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

function kubeConfigFor(server: string, caFile: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'test', server, caData: readFileSync(caFile).toString('base64'), skipTLSVerify: false },
    ],
    users: [{ name: 'user', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'user' }],
    currentContext: 'test',
  });
  return kc;
}

export async function startTestCluster(opts: StartOptions = {}): Promise<TestCluster> {
  const { bins, reason } = findKubeBinaries();
  if (!bins) throw new Error(reason);
  const timeout = opts.startupTimeoutMs ?? 90_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shallot-kube-'));
  const certDir = path.join(dir, 'certs');
  mkdirSync(certDir);
  const adminToken = `admin-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  writeFileSync(path.join(dir, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`, {
    mode: 0o600,
  });
  execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'sa.key'), '2048'], { stdio: 'ignore' });
  execFileSync(
    'openssl',
    ['rsa', '-in', path.join(dir, 'sa.key'), '-pubout', '-out', path.join(dir, 'sa.pub')],
    {
      stdio: 'ignore',
    },
  );

  const [etcdClient, etcdPeer, securePort] = [await freePort(), await freePort(), await freePort()];
  let etcd: ChildProcess | null = null;
  let apiserver: ChildProcess | null = null;
  const stopAll = async () => {
    await stopProcess(apiserver);
    await stopProcess(etcd);
  };
  const onExit = () => {
    apiserver?.kill('SIGKILL');
    etcd?.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const etcdLog = path.join(dir, 'etcd.log');
  const apiLog = path.join(dir, 'apiserver.log');
  try {
    etcd = startProcess(
      bins.etcd,
      [
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      etcdLog,
    );
    const issuer = 'https://kubernetes.default.svc.cluster.local';
    apiserver = startProcess(
      bins.apiserver,
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${securePort}`,
        `--cert-dir=${certDir}`,
        `--service-account-issuer=${issuer}`,
        `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--authorization-mode=RBAC',
        `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        '--enable-priority-and-fairness=false',
        '--v=0',
      ],
      apiLog,
    );
    const server = `https://127.0.0.1:${securePort}`;
    const caFile = path.join(certDir, 'apiserver.crt');
    const deadline = Date.now() + timeout;
    let last = '';
    for (;;) {
      if (apiserver.exitCode !== null)
        throw new Error(`kube-apiserver exited ${apiserver.exitCode}\n${tail(apiLog)}`);
      if (etcd.exitCode !== null) throw new Error(`etcd exited ${etcd.exitCode}\n${tail(etcdLog)}`);
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver not ready after ${timeout} ms (${last})\n${tail(apiLog)}\n--- etcd\n${tail(etcdLog, 10)}`,
        );
      }
      if (existsSync(caFile)) {
        try {
          const k = new HttpKube(kubeConfigFor(server, caFile, adminToken), { timeoutMs: 3000 });
          await k.request('GET', '/readyz');
          break;
        } catch (e) {
          last = (e as Error).message;
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const adminConfig = kubeConfigFor(server, caFile, adminToken);
    const admin = new HttpKube(adminConfig, { fieldManager: 'test-admin' });
    return {
      server,
      dir,
      admin,
      adminConfig,
      configForToken: (token) => kubeConfigFor(server, caFile, token),
      async serviceAccountToken(namespace, sa, expirationSeconds = 3600) {
        const r = await admin.request<{ status: { token: string } }>(
          'POST',
          `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`,
          { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } },
        );
        return r.body.status.token;
      },
      writeKubeconfig(token, file) {
        const kc = kubeConfigFor(server, caFile, token);
        writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
      },
      async stop() {
        process.off('exit', onExit);
        await stopAll();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    process.off('exit', onExit);
    await stopAll();
    const keep = `${(e as Error).message}`;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(keep);
  }
}

/**
 * Polls `fn` until it returns something truthy; throws naming `what` (and
 * the last error, plus `context()` if given) after `timeoutMs`.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; context?: () => string } = {},
): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      const extra = opts.context ? `\n${opts.context()}` : '';
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}${extra}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

/** Creates Shallot's CRDs from the chart and waits until the apiserver serves them. */
export async function installShallotCrds(
  admin: HttpKube,
  crdDir = path.join('charts', 'shallot', 'crds'),
): Promise<void> {
  for (const f of readdirSync(crdDir).filter((x) => x.endsWith('.yaml'))) {
    await admin.create(parseAllDocuments(readFileSync(path.join(crdDir, f), 'utf8'))[0]?.toJSON());
  }
  await eventually('CRDs established', async () => {
    const crds = await Promise.all(
      ['onionnetworks', 'onionservices', 'loadtests', 'networkfaults'].map((p) =>
        admin.get({
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          name: `${p}.shallot.dev`,
        }),
      ),
    );
    return crds.every((c) =>
      (c?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.some(
        (x) => x.type === 'Established' && x.status === 'True',
      ),
    );
  });
}

/** The chart's rbac.yaml and serviceaccount.yaml, rendered by real helm for release "shallot" in `namespace`. */
export function renderChartRbac(namespace: string): KubeObject[] {
  const helm = process.env.SHALLOT_HELM ?? path.join(toolsDir(), 'bin', 'helm');
  if (!existsSync(helm)) throw new Error(`${helm} not found: run test/setup/install-tools.sh`);
  const out = execFileSync(
    helm,
    [
      'template',
      'shallot',
      'charts/shallot',
      '--namespace',
      namespace,
      '--show-only',
      'templates/rbac.yaml',
      '--show-only',
      'templates/serviceaccount.yaml',
    ],
    { encoding: 'utf8' },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJSON())
    .filter((o): o is KubeObject => !!o?.kind);
}
