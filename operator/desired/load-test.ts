/**
 * Desired state of a LoadTest: one Job whose pods each run a Shallot client
 * (a native sidecar: an init container with restartPolicy Always, started
 * and probed before the load container) and `shallot load` through it.
 *
 * How the summary reaches status (kept simple on purpose): the load
 * container runs `node dist/services/testnet/main.js load ... --out F`
 * under a tiny `node -e` wrapper that, when the run ends, writes a compact
 * summary (counts, rates, p50/p90/p99, top failure reasons — well under
 * the 4 KiB limit) to /dev/termination-log and exits with load's exit
 * code. Kubernetes copies that file into the pod's
 * status.containerStatuses[].state.terminated.message, which the operator
 * reads (pods list, no log access needed), validates with
 * `parseLoadSummary`, and sums over the clients into status.summary.
 *
 * With `clientAuthSecret`, an init container copies that Secret's
 * `*.auth_private` keys to a 0600 directory the client reads
 * (SHALLOT_ONION_AUTH_DIR), for targets that use client authorization.
 */
import type { LoadSummary, LoadTest } from '../api/load-test.js';
import type { Images } from '../config.js';
import type { KubeObject } from '../kube/client.js';
import {
  authoritiesEnv,
  baseLabels,
  containerSecurityContext,
  DATA_DIR,
  LABEL_LOAD_TEST,
  LABEL_NETWORK,
  networkModelEnv,
  ownerRef,
  podSecurityContext,
  SOCKS_PORT,
} from './common.js';

export const loadJobName = (lt: string) => `${lt}-load`;
const ONION_AUTH_MOUNT = '/etc/shallot/onion-auth';
/** Where the clients read their client-auth keys: 0600 copies, as the client requires of private keys. */
export const ONION_AUTH_DIR = `${DATA_DIR}/onion-auth`;

/**
 * Copies `src`'s `*.auth_private` files to `dst` with mode 0600 (Secret
 * volumes are group-readable, which the client refuses for private keys).
 * `node -e`, so the image needs no shell.
 */
export function onionAuthCopyScript(src = ONION_AUTH_MOUNT, dst = ONION_AUTH_DIR): string {
  return (
    "const fs=require('fs'),p=require('path');" +
    `const s=${JSON.stringify(src)},d=${JSON.stringify(dst)};` +
    'fs.mkdirSync(d,{recursive:true,mode:0o700});' +
    "for(const f of fs.readdirSync(s)){if(!f.endsWith('.auth_private'))continue;" +
    'const t=p.join(d,f);fs.writeFileSync(t,fs.readFileSync(p.join(s,f)),{mode:0o600});fs.chmodSync(t,0o600);}'
  );
}

function onionAuthCopyContainer(image: string, pullPolicy: string) {
  return {
    name: 'copy-onion-auth',
    image,
    imagePullPolicy: pullPolicy,
    command: ['node', '-e', onionAuthCopyScript()],
    volumeMounts: [
      { name: 'onion-auth', mountPath: ONION_AUTH_MOUNT, readOnly: true },
      { name: 'state', mountPath: DATA_DIR },
    ],
    securityContext: containerSecurityContext,
  };
}
export const CLIENT_OPS_PORT = 9101;
export const RESULT_FILE = '/tmp/shallot-load.json';

/**
 * Runs inside the load container (via Function.prototype.toString, so it
 * must not use anything outside its own body): LoadResult JSON in, the
 * compact LoadSummary out.
 */
export function summarizeLoadResult(r: unknown): LoadSummary {
  // biome-ignore lint/suspicious/noExplicitAny: untyped JSON from the load run, checked field by field
  const o = (r ?? {}) as Record<string, any>;
  const counts = o.counts ?? {};
  const lat = o.latency ?? {};
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const pick = (s: any) => ({
    p50: typeof s?.p50 === 'number' ? Math.round(s.p50 * 10) / 10 : null,
    p90: typeof s?.p90 === 'number' ? Math.round(s.p90 * 10) / 10 : null,
    p99: typeof s?.p99 === 'number' ? Math.round(s.p99 * 10) / 10 : null,
  });
  const failures = Object.entries((o.failuresByReason ?? {}) as Record<string, number>)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, v]) => [String(k).slice(0, 64), v]);
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    requests: num(counts.requests),
    ok: num(counts.ok),
    failed: num(counts.failed),
    bytes: num(counts.bytes),
    successRatio: num(o.successRatio),
    requestsPerSec: Math.round(num(o.throughput?.requestsPerSec) * 1000) / 1000,
    ttlbMs: pick(lat.ttlb),
    connectMs: pick(lat.connect),
    failuresByReason: Object.fromEntries(failures),
  };
}

/** The `node -e` wrapper: run load, write the summary to the termination log, keep load's exit code. */
export function loadWrapperScript(): string {
  return [
    "const cp=require('child_process'),fs=require('fs');",
    `const summarize=${summarizeLoadResult.toString()};`,
    "const r=cp.spawnSync(process.execPath,['dist/services/testnet/main.js','load',...process.argv.slice(1)],{stdio:'inherit'});",
    "const out=process.argv[process.argv.lastIndexOf('--out')+1];",
    'let s;',
    "try{s=summarize(JSON.parse(fs.readFileSync(out,'utf8')));}catch(e){s={error:String(e&&e.message||e).slice(0,200)};}",
    "try{fs.writeFileSync(process.env.SHALLOT_TERMINATION_LOG||'/dev/termination-log',JSON.stringify(s));}catch(e){}",
    'process.exit(r.status===null?1:r.status);',
  ].join('');
}

/** `shallot load` arguments for this LoadTest and a resolved target. */
export function loadArgs(lt: LoadTest, target: string): string[] {
  const s = lt.spec;
  const a = [
    '--target',
    target,
    '--socks',
    `127.0.0.1:${SOCKS_PORT}`,
    '--concurrency',
    String(s.concurrency),
    '--duration',
    String(s.durationSeconds),
    '--size',
    s.payloadSize,
    '--timeout',
    String(s.timeoutSeconds),
    '--client-metrics',
    `127.0.0.1:${CLIENT_OPS_PORT}`,
    '--progress',
    'lines',
    '--out',
    RESULT_FILE,
  ];
  if (s.rate !== undefined) a.push('--rate', String(s.rate));
  if (s.count !== undefined) a.push('--count', String(s.count));
  if (s.newCircuit) a.push('--new-circuit');
  // A run at 4 % success reported Succeeded (issue 14): the threshold travels with the Job.
  a.push('--min-success', String(s.minSuccess ?? 0.99));
  return a;
}

export interface LoadTestInputs {
  lt: LoadTest;
  images: Images;
  /** host:port or <addr>.onion:port. */
  target: string;
}

export function desiredLoadJob(inp: LoadTestInputs): KubeObject {
  const { name, namespace } = inp.lt.metadata;
  const s = inp.lt.spec;
  const labels = { ...baseLabels(name, 'loadtest'), [LABEL_LOAD_TEST]: name, [LABEL_NETWORK]: s.network };
  const auth = s.clientAuthSecret;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: loadJobName(name), namespace, labels, ownerReferences: [ownerRef(inp.lt)] },
    spec: {
      parallelism: s.clients,
      completions: s.clients,
      completionMode: 'Indexed',
      backoffLimit: 0,
      // Duration, the last requests' timeout, and time for the client to bootstrap.
      activeDeadlineSeconds: s.durationSeconds + s.timeoutSeconds + 600,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurityContext,
          initContainers: [
            ...(auth ? [onionAuthCopyContainer(inp.images.client, inp.images.pullPolicy)] : []),
            {
              name: 'client',
              image: inp.images.client,
              imagePullPolicy: inp.images.pullPolicy,
              restartPolicy: 'Always',
              env: [
                authoritiesEnv(s.network),
                { name: 'SHALLOT_SOCKS_HOST', value: '127.0.0.1' },
                { name: 'SHALLOT_DATA_DIR', value: DATA_DIR },
                { name: 'SHALLOT_SOCKS_PORT', value: String(SOCKS_PORT) },
                { name: 'SHALLOT_OPS_HOST', value: '0.0.0.0' },
                { name: 'SHALLOT_OPS_PORT', value: String(CLIENT_OPS_PORT) },
                ...(auth ? [{ name: 'SHALLOT_ONION_AUTH_DIR', value: ONION_AUTH_DIR }] : []),
                // The network's model (from its ConfigMap, when it has one) and the clients' place in it.
                networkModelEnv(s.network),
                ...(s.location ? [{ name: 'SHALLOT_LOCATION', value: s.location }] : []),
              ],
              ports: [{ name: 'metrics', containerPort: CLIENT_OPS_PORT }],
              // Guard state goes to SHALLOT_DATA_DIR (the image's /var/lib/shallot); the root FS is read-only.
              volumeMounts: [{ name: 'state', mountPath: DATA_DIR }],
              startupProbe: {
                httpGet: { path: '/readyz', port: CLIENT_OPS_PORT },
                periodSeconds: 2,
                failureThreshold: 150,
              },
              securityContext: containerSecurityContext,
            },
          ],
          containers: [
            {
              name: 'load',
              image: inp.images.client,
              imagePullPolicy: inp.images.pullPolicy,
              command: ['node', '-e', loadWrapperScript(), '--', ...loadArgs(inp.lt, inp.target)],
              terminationMessagePolicy: 'File',
              ...(s.resources ? { resources: s.resources } : {}),
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
              securityContext: containerSecurityContext,
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
            { name: 'state', emptyDir: { sizeLimit: '16Mi' } },
            // Optional: a Secret deleted after the Job started leaves clients without keys (F4s in the
            // summary), not pods stuck until the deadline.
            ...(auth
              ? [{ name: 'onion-auth', secret: { secretName: auth, defaultMode: 0o440, optional: true } }]
              : []),
          ],
        },
      },
    },
  };
}

const MAX_MESSAGE = 4096;

function pct(v: unknown): { p50: number | null; p90: number | null; p99: number | null } | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const one = (x: unknown) =>
    x === null ? null : typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : NaN;
  const r = { p50: one(o.p50), p90: one(o.p90), p99: one(o.p99) };
  if ([r.p50, r.p90, r.p99].some((x) => Number.isNaN(x))) return null;
  return r;
}

/** A termination message back into a LoadSummary; null if it is not one (error, garbage, too big). */
export function parseLoadSummary(message: string | undefined): LoadSummary | null {
  if (!message || message.length > MAX_MESSAGE) return null;
  let o: unknown;
  try {
    o = JSON.parse(message);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const d = o as Record<string, unknown>;
  const n = (k: string) =>
    typeof d[k] === 'number' && Number.isFinite(d[k]) && (d[k] as number) >= 0 ? (d[k] as number) : null;
  const requests = n('requests');
  const ok = n('ok');
  const failed = n('failed');
  const bytes = n('bytes');
  const ratio = n('successRatio');
  const rps = n('requestsPerSec');
  const ttlb = pct(d.ttlbMs);
  const connect = pct(d.connectMs);
  if ([requests, ok, failed, bytes, ratio, rps].some((x) => x === null) || !ttlb || !connect) return null;
  const failures: Record<string, number> = {};
  if (typeof d.failuresByReason === 'object' && d.failuresByReason !== null) {
    for (const [k, v] of Object.entries(d.failuresByReason as Record<string, unknown>)) {
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) failures[k.slice(0, 64)] = v;
    }
  }
  return {
    requests: requests!,
    ok: ok!,
    failed: failed!,
    bytes: bytes!,
    successRatio: Math.min(1, ratio!),
    requestsPerSec: rps!,
    ttlbMs: ttlb,
    connectMs: connect,
    failuresByReason: failures,
  };
}

function worst(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** Sums over clients; percentiles are the worst client's (exact merging needs the raw samples). */
export function aggregateSummaries(list: LoadSummary[]): (LoadSummary & { clients: number }) | null {
  if (list.length === 0) return null;
  const out: LoadSummary & { clients: number } = {
    clients: list.length,
    requests: 0,
    ok: 0,
    failed: 0,
    bytes: 0,
    successRatio: 1,
    requestsPerSec: 0,
    ttlbMs: { p50: null, p90: null, p99: null },
    connectMs: { p50: null, p90: null, p99: null },
    failuresByReason: {},
  };
  for (const s of list) {
    out.requests += s.requests;
    out.ok += s.ok;
    out.failed += s.failed;
    out.bytes += s.bytes;
    out.requestsPerSec += s.requestsPerSec;
    for (const k of ['p50', 'p90', 'p99'] as const) {
      out.ttlbMs[k] = worst(out.ttlbMs[k], s.ttlbMs[k]);
      out.connectMs[k] = worst(out.connectMs[k], s.connectMs[k]);
    }
    for (const [k, v] of Object.entries(s.failuresByReason)) {
      out.failuresByReason[k] = (out.failuresByReason[k] ?? 0) + v;
    }
  }
  out.successRatio = out.requests === 0 ? 1 : out.ok / out.requests;
  out.requestsPerSec = Math.round(out.requestsPerSec * 1000) / 1000;
  return out;
}
