/**
 * A small Kubernetes REST client: get, list, watch, server-side apply,
 * merge-patch (status), update, create, delete — just what the operator
 * calls, so its RBAC can list exactly these verbs.
 *
 * Overview: authentication and TLS come from @kubernetes/client-node's
 * KubeConfig (in-cluster ServiceAccount token, or a kubeconfig file); the
 * requests themselves are plain node:https so that paths, verbs and patch
 * types are explicit. `Kube` is the interface reconcilers depend on; unit
 * tests use an in-memory fake (test/unit/operator/fake-kube.ts).
 *
 * Not in this module: caching (informer.ts), retries (queue.ts).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ObjectMeta } from '../api/schema.js';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  // biome-ignore lint/suspicious/noExplicitAny: arbitrary Kubernetes object bodies
  [field: string]: any;
}

export interface ObjRef {
  apiVersion: string;
  kind: string;
  namespace?: string | undefined;
  name: string;
}

export interface WatchEvent<T = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface Kube {
  get<T extends KubeObject>(ref: ObjRef): Promise<T | null>;
  list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    labelSelector?: string,
  ): Promise<ListResult<T>>;
  /** Server-side apply as `fieldManager` (force): creates or converges the fields we own. */
  apply<T extends KubeObject>(obj: KubeObject): Promise<T>;
  /** JSON merge patch of the status subresource. */
  patchStatus<T extends KubeObject>(ref: ObjRef, status: unknown): Promise<T>;
  create<T extends KubeObject>(obj: KubeObject): Promise<T>;
  /** PUT with metadata.resourceVersion: fails with 409 if someone else wrote first. */
  update<T extends KubeObject>(obj: KubeObject): Promise<T>;
  /** False when it was already gone. `gracePeriodSeconds` 0 deletes a pod without its shutdown (a NetworkFault kill). */
  delete(
    ref: ObjRef,
    propagationPolicy?: 'Background' | 'Foreground' | 'Orphan',
    gracePeriodSeconds?: number,
  ): Promise<boolean>;
  /** Streams events until the server ends the watch or `signal` aborts. */
  watch<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    signal: AbortSignal,
    labelSelector?: string,
  ): Promise<void>;
}

export class KubeError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeError && e.statusCode === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeError && e.statusCode === 409;
export const isGone = (e: unknown): boolean => e instanceof KubeError && e.statusCode === 410;

/** What `p` resolves to, or `absent` when the object is not there (404); other errors pass. */
async function unlessNotFound<T, A>(p: Promise<T>, absent: A): Promise<T | A> {
  try {
    return await p;
  } catch (e) {
    if (isNotFound(e)) return absent;
    throw e;
  }
}

interface ResourceInfo {
  plural: string;
  namespaced: boolean;
}

/** Kinds the operator and its tests touch: plural and scope. */
const RESOURCES: Record<string, ResourceInfo> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  Secret: { plural: 'secrets', namespaced: true },
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Service: { plural: 'services', namespaced: true },
  Pod: { plural: 'pods', namespaced: true },
  Event: { plural: 'events', namespaced: true },
  StatefulSet: { plural: 'statefulsets', namespaced: true },
  Deployment: { plural: 'deployments', namespaced: true },
  Job: { plural: 'jobs', namespaced: true },
  Lease: { plural: 'leases', namespaced: true },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
  NetworkPolicy: { plural: 'networkpolicies', namespaced: true },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
  OnionNetwork: { plural: 'onionnetworks', namespaced: true },
  OnionService: { plural: 'onionservices', namespaced: true },
  LoadTest: { plural: 'loadtests', namespaced: true },
  NetworkFault: { plural: 'networkfaults', namespaced: true },
};

export function resourcePath(
  apiVersion: string,
  kind: string,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const info = RESOURCES[kind];
  if (!info) throw new Error(`kube client: unknown kind ${kind}`);
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  let p = base;
  if (info.namespaced) {
    if (!namespace && name) throw new Error(`kube client: ${kind} ${name} needs a namespace`);
    if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  }
  p += `/${info.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export interface HttpKubeOptions {
  fieldManager?: string;
  /** Per-request timeout (not for watches). */
  timeoutMs?: number;
}

/** The `Kube` implementation over HTTPS, authenticated by a KubeConfig. */
export class HttpKube implements Kube {
  private readonly server: URL;
  private readonly fieldManager: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly kc: KubeConfig,
    opts: HttpKubeOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.fieldManager = opts.fieldManager ?? 'shallot-operator';
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  private async options(method: string, path: string, headers: Record<string, string>) {
    const o: https.RequestOptions = {
      method,
      hostname: this.server.hostname,
      port: this.server.port || (this.server.protocol === 'https:' ? 443 : 80),
      path,
      headers: { accept: 'application/json', ...headers },
    };
    await this.kc.applyToHTTPSOptions(o);
    return o;
  }

  private transport() {
    return this.server.protocol === 'https:' ? https : http;
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {};
    if (payload) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(payload.length);
    }
    const o = await this.options(method, path, headers);
    return new Promise((resolve, reject) => {
      const req = this.transport().request(o, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            // Not JSON (a proxy's error page): keep the text for the message.
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const st = parsed as { reason?: string; message?: string };
            reject(
              new KubeError(
                status,
                st?.reason ?? 'Unknown',
                `${method} ${path.split('?')[0]}: ${status} ${st?.message ?? String(text).slice(0, 200)}`,
              ),
            );
            return;
          }
          resolve({ status, body: parsed as T });
        });
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  async get<T extends KubeObject>(ref: ObjRef): Promise<T | null> {
    const path = resourcePath(ref.apiVersion, ref.kind, ref.namespace, ref.name);
    return unlessNotFound(
      this.request<T>('GET', path).then((r) => r.body),
      null,
    );
  }

  async list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace?: string,
    labelSelector?: string,
  ): Promise<ListResult<T>> {
    const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
    const r = await this.request<{ items?: T[]; metadata?: { resourceVersion?: string } }>(
      'GET',
      resourcePath(apiVersion, kind, namespace) + q,
    );
    const items = (r.body.items ?? []).map((i) => ({ ...i, apiVersion, kind }));
    return { items, resourceVersion: r.body.metadata?.resourceVersion ?? '' };
  }

  async apply<T extends KubeObject>(obj: KubeObject): Promise<T> {
    const p = resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    const q = `?fieldManager=${encodeURIComponent(this.fieldManager)}&force=true`;
    return (await this.request<T>('PATCH', p + q, obj, 'application/apply-patch+yaml')).body;
  }

  async patchStatus<T extends KubeObject>(ref: ObjRef, status: unknown): Promise<T> {
    const p = resourcePath(ref.apiVersion, ref.kind, ref.namespace, ref.name, 'status');
    const q = `?fieldManager=${encodeURIComponent(this.fieldManager)}`;
    return (await this.request<T>('PATCH', p + q, { status }, 'application/merge-patch+json')).body;
  }

  async create<T extends KubeObject>(obj: KubeObject): Promise<T> {
    const p = resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace);
    return (await this.request<T>('POST', `${p}?fieldManager=${encodeURIComponent(this.fieldManager)}`, obj))
      .body;
  }

  async update<T extends KubeObject>(obj: KubeObject): Promise<T> {
    const p = resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    return (await this.request<T>('PUT', `${p}?fieldManager=${encodeURIComponent(this.fieldManager)}`, obj))
      .body;
  }

  async delete(
    ref: ObjRef,
    propagationPolicy: 'Background' | 'Foreground' | 'Orphan' = 'Background',
    gracePeriodSeconds?: number,
  ) {
    const path = resourcePath(ref.apiVersion, ref.kind, ref.namespace, ref.name);
    const options = {
      kind: 'DeleteOptions',
      apiVersion: 'v1',
      propagationPolicy,
      ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }),
    };
    return unlessNotFound(
      this.request('DELETE', path, options).then(() => true),
      false,
    );
  }

  async watch<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    resourceVersion: string,
    onEvent: (e: WatchEvent<T>) => void,
    signal: AbortSignal,
    labelSelector?: string,
  ): Promise<void> {
    const sel = labelSelector ? `&labelSelector=${encodeURIComponent(labelSelector)}` : '';
    const q = `?watch=1&allowWatchBookmarks=true&timeoutSeconds=290&resourceVersion=${encodeURIComponent(resourceVersion)}${sel}`;
    const o = await this.options('GET', resourcePath(apiVersion, kind, namespace) + q, {});
    await new Promise<void>((resolve, reject) => {
      const req = this.transport().request({ ...o, signal }, (res) => {
        if ((res.statusCode ?? 0) >= 400) {
          const status = res.statusCode ?? 0;
          res.resume();
          reject(new KubeError(status, 'WatchFailed', `watch ${kind}: ${status}`));
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            nl = buf.indexOf('\n');
            if (!line) continue;
            let ev: { type: string; object: T & { code?: number; message?: string } };
            try {
              ev = JSON.parse(line);
            } catch {
              req.destroy(new Error(`watch ${kind}: bad event line`));
              return;
            }
            if (ev.type === 'ERROR') {
              const code = ev.object.code ?? 500;
              req.destroy(new KubeError(code, 'WatchError', `watch ${kind}: ${ev.object.message ?? code}`));
              return;
            }
            onEvent({ type: ev.type as WatchEvent['type'], object: { ...ev.object, apiVersion, kind } });
          }
        });
        res.on('end', () => resolve());
        res.on('error', (e) => reject(e));
        res.on('close', () => resolve());
      });
      req.on('error', (e) => (signal.aborted ? resolve() : reject(e)));
      req.end();
    });
  }
}
