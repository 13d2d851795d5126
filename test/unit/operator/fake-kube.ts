/**
 * An in-memory `Kube` for reconcile unit tests: objects keyed by
 * kind/namespace/name, resourceVersion and generation bookkeeping, label
 * selectors (equality only), optimistic concurrency on update, finalizers
 * (a delete only marks an object that has some), and a log of
 * every write so tests can assert "nothing written" on a second pass.
 */
import {
  type Kube,
  KubeError,
  type KubeObject,
  type ListResult,
  type ObjRef,
} from '../../../operator/kube/client.js';

type Write = { verb: 'apply' | 'status' | 'create' | 'update' | 'delete'; kind: string; name: string };

function matches(labels: Record<string, string> | undefined, selector?: string): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=') as [string, string];
    return labels?.[k] === v;
  });
}

export class FakeKube implements Kube {
  readonly objects = new Map<string, KubeObject>();
  readonly writes: Write[] = [];
  private rv = 1;
  private uid = 1;

  private static key(kind: string, ns: string | undefined, name: string): string {
    return `${kind}/${ns ?? ''}/${name}`;
  }

  clearWrites(): void {
    this.writes.length = 0;
  }

  /** Puts an object as an admin would (no write logged). */
  seed<T extends KubeObject>(obj: T): T {
    const o = structuredClone(obj);
    o.metadata.uid ??= `uid-${this.uid++}`;
    o.metadata.resourceVersion = String(this.rv++);
    o.metadata.generation ??= 1;
    o.metadata.creationTimestamp ??= '2025-01-01T00:00:00Z';
    this.objects.set(FakeKube.key(o.kind, o.metadata.namespace, o.metadata.name), o);
    return o;
  }

  getObj<T = KubeObject>(kind: string, ns: string, name: string): T | undefined {
    return this.objects.get(FakeKube.key(kind, ns, name)) as T | undefined;
  }

  ofKind(kind: string): KubeObject[] {
    return [...this.objects.values()].filter((o) => o.kind === kind);
  }

  /** Changes a spec as `kubectl edit` would (bumps generation). */
  // biome-ignore lint/suspicious/noExplicitAny: tests edit arbitrary specs
  editSpec(kind: string, ns: string, name: string, edit: (spec: any) => void): void {
    const o = this.getObj(kind, ns, name)!;
    edit(o.spec);
    o.metadata.generation = (o.metadata.generation ?? 1) + 1;
    o.metadata.resourceVersion = String(this.rv++);
  }

  async get<T extends KubeObject>(ref: ObjRef): Promise<T | null> {
    const o = this.objects.get(FakeKube.key(ref.kind, ref.namespace, ref.name));
    return o ? (structuredClone(o) as T) : null;
  }

  async list<T extends KubeObject>(
    _apiVersion: string,
    kind: string,
    namespace?: string,
    labelSelector?: string,
  ): Promise<ListResult<T>> {
    const items = [...this.objects.values()].filter(
      (o) =>
        o.kind === kind &&
        (namespace === undefined || o.metadata.namespace === namespace) &&
        matches(o.metadata.labels, labelSelector),
    );
    return { items: structuredClone(items) as T[], resourceVersion: String(this.rv) };
  }

  async apply<T extends KubeObject>(obj: KubeObject): Promise<T> {
    this.writes.push({ verb: 'apply', kind: obj.kind, name: obj.metadata.name });
    const k = FakeKube.key(obj.kind, obj.metadata.namespace, obj.metadata.name);
    const have = this.objects.get(k);
    const o = structuredClone(obj);
    o.metadata.uid = have?.metadata.uid ?? `uid-${this.uid++}`;
    o.metadata.resourceVersion = String(this.rv++);
    o.metadata.generation = (have?.metadata.generation ?? 0) + 1;
    o.metadata.creationTimestamp = have?.metadata.creationTimestamp ?? '2025-01-01T00:00:00Z';
    if (have?.status) o.status = have.status;
    this.objects.set(k, o);
    return structuredClone(o) as T;
  }

  async patchStatus<T extends KubeObject>(ref: ObjRef, status: unknown): Promise<T> {
    this.writes.push({ verb: 'status', kind: ref.kind, name: ref.name });
    const o = this.objects.get(FakeKube.key(ref.kind, ref.namespace, ref.name));
    if (!o) throw new KubeError(404, 'NotFound', 'not found');
    o.status = { ...(o.status ?? {}), ...structuredClone(status as object) };
    o.metadata.resourceVersion = String(this.rv++);
    return structuredClone(o) as T;
  }

  async create<T extends KubeObject>(obj: KubeObject): Promise<T> {
    this.writes.push({ verb: 'create', kind: obj.kind, name: obj.metadata.name });
    const k = FakeKube.key(obj.kind, obj.metadata.namespace, obj.metadata.name);
    if (this.objects.has(k)) throw new KubeError(409, 'AlreadyExists', 'exists');
    return this.seed(obj) as T;
  }

  async update<T extends KubeObject>(obj: KubeObject): Promise<T> {
    this.writes.push({ verb: 'update', kind: obj.kind, name: obj.metadata.name });
    const k = FakeKube.key(obj.kind, obj.metadata.namespace, obj.metadata.name);
    const have = this.objects.get(k);
    if (!have) throw new KubeError(404, 'NotFound', 'not found');
    if (have.metadata.resourceVersion !== obj.metadata.resourceVersion)
      throw new KubeError(409, 'Conflict', 'conflict');
    const o = structuredClone(obj);
    o.metadata.resourceVersion = String(this.rv++);
    // As the apiserver: a deleted object goes once its last finalizer is removed.
    if (have.metadata.deletionTimestamp) {
      o.metadata.deletionTimestamp = have.metadata.deletionTimestamp;
      if (!o.metadata.finalizers?.length) {
        this.objects.delete(k);
        return structuredClone(o) as T;
      }
    }
    this.objects.set(k, o);
    return structuredClone(o) as T;
  }

  /** As the apiserver: an object with finalizers is only marked (deletionTimestamp) until they are removed. */
  async delete(ref: ObjRef): Promise<boolean> {
    this.writes.push({ verb: 'delete', kind: ref.kind, name: ref.name });
    const k = FakeKube.key(ref.kind, ref.namespace, ref.name);
    const o = this.objects.get(k);
    if (o?.metadata.finalizers?.length) {
      o.metadata.deletionTimestamp ??= '2025-01-01T00:00:00Z';
      o.metadata.resourceVersion = String(this.rv++);
      return true;
    }
    return this.objects.delete(k);
  }

  async watch(): Promise<void> {
    throw new Error('FakeKube does not watch');
  }
}
