/**
 * The controller: watches → keys → work queue → reconcilers.
 *
 * Overview: informers on the three custom resources enqueue their own key
 * ("OnionNetwork/ns/name"); informers on what we create (StatefulSets,
 * Deployments, Jobs, selected by our managed-by label) enqueue their
 * controlling owner; a network's change also enqueues the OnionServices and
 * LoadTests that use it, and a service's change the LoadTests aimed at it.
 * Workers take keys and run the reconciler for the kind; errors requeue
 * with backoff, `requeueAfterMs` schedules the next look. Nothing a
 * reconcile throws escapes a worker: the process never crashes on a bad
 * object.
 *
 * Not in this module: leader election (main.ts starts the controller only
 * while leading).
 */
import { API_VERSION } from './api/crds.js';
import { controllerOf, LABEL_MANAGED_BY, MANAGER } from './desired/common.js';
import { Informer } from './informer.js';
import type { KubeObject } from './kube/client.js';
import { WorkQueue } from './queue.js';
import type { ReconcileContext, ReconcileResult } from './reconcile/context.js';
import { reconcileLoadTest } from './reconcile/load-test.js';
import { reconcileNetwork } from './reconcile/network.js';
import { reconcileNetworkFault } from './reconcile/network-fault.js';
import { reconcileOnionService } from './reconcile/onion-service.js';

export type Kind = 'OnionNetwork' | 'OnionService' | 'LoadTest' | 'NetworkFault';

const RECONCILERS: Record<
  Kind,
  (ctx: ReconcileContext, ns: string, name: string) => Promise<ReconcileResult>
> = {
  OnionNetwork: reconcileNetwork,
  OnionService: reconcileOnionService,
  LoadTest: reconcileLoadTest,
  NetworkFault: reconcileNetworkFault,
};

export interface ControllerOptions {
  watchNamespace?: string | undefined;
  resyncMs: number;
  workers: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

export function keyOf(kind: Kind, ns: string, name: string): string {
  return `${kind}/${ns}/${name}`;
}

export function parseKey(key: string): { kind: Kind; namespace: string; name: string } {
  const [kind, namespace, name] = key.split('/') as [Kind, string, string];
  return { kind, namespace, name };
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly informers: Informer[] = [];
  private workers: Promise<void>[] = [];
  private running = false;
  private synced = false;
  private readonly countedKinds = new Set<string>();

  constructor(
    private readonly ctx: ReconcileContext,
    private readonly o: ControllerOptions,
  ) {
    this.queue = new WorkQueue({
      baseDelayMs: o.baseBackoffMs ?? 500,
      maxDelayMs: o.maxBackoffMs ?? 300_000,
    });
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const ns = this.o.watchNamespace;
    const onError = (e: unknown) => this.ctx.log.warn('watch failed', { error: (e as Error).message });
    const crInformers = new Map<Kind, Informer>();
    for (const kind of ['OnionNetwork', 'OnionService', 'LoadTest', 'NetworkFault'] as Kind[]) {
      const inf = new Informer(this.ctx.kube, {
        apiVersion: API_VERSION,
        kind,
        namespace: ns,
        resyncMs: this.o.resyncMs,
        onError,
        onChange: (obj) => {
          const n = obj.metadata.namespace ?? '';
          this.queue.add(keyOf(kind, n, obj.metadata.name));
          if (kind === 'OnionNetwork') {
            for (const dep of [crInformers.get('OnionService'), crInformers.get('LoadTest')]) {
              for (const o of dep?.list() ?? []) {
                if (o.metadata.namespace === n && o.spec?.network === obj.metadata.name) {
                  this.queue.add(keyOf(o.kind as Kind, n, o.metadata.name));
                }
              }
            }
          }
          if (kind === 'OnionService') {
            for (const o of crInformers.get('LoadTest')?.list() ?? []) {
              if (o.metadata.namespace === n && o.spec?.target?.onionService === obj.metadata.name) {
                this.queue.add(keyOf('LoadTest', n, o.metadata.name));
              }
            }
          }
        },
      });
      crInformers.set(kind, inf);
      this.informers.push(inf);
    }
    const owned: [string, string, Kind][] = [
      ['apps/v1', 'StatefulSet', 'OnionNetwork'],
      ['apps/v1', 'Deployment', 'OnionService'],
      ['batch/v1', 'Job', 'LoadTest'],
    ];
    for (const [apiVersion, kind, ownerKind] of owned) {
      this.informers.push(
        new Informer(this.ctx.kube, {
          apiVersion,
          kind,
          namespace: ns,
          labelSelector: `${LABEL_MANAGED_BY}=${MANAGER}`,
          resyncMs: this.o.resyncMs,
          onError,
          onChange: (obj: KubeObject, ev) => {
            if (ev === 'resync') return; // the owners resync on their own
            const owner = controllerOf(obj, ownerKind);
            if (owner) this.queue.add(keyOf(ownerKind, obj.metadata.namespace ?? '', owner));
          },
        }),
      );
    }
    await Promise.all(this.informers.map((i) => i.start()));
    this.synced = true;
    for (let w = 0; w < this.o.workers; w++) this.workers.push(this.work());
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.queue.shutdown();
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(this.workers);
    this.workers = [];
    this.synced = false;
  }

  /** Runs one key now (tests and the worker loop). */
  async process(key: string): Promise<void> {
    const { kind, namespace, name } = parseKey(key);
    const reconcile = RECONCILERS[kind];
    if (!reconcile) return;
    const m = this.ctx.metrics;
    if (!this.countedKinds.has(kind)) {
      // Every outcome's series exists from the first pass, so rate() and
      // increase() see the first error too (dashboards' "Reconcile errors").
      this.countedKinds.add(kind);
      for (const result of ['success', 'requeue', 'error']) m.reconciles.labels({ kind, result }).inc(0);
    }
    const end = m.reconcileSeconds.startTimer({ kind });
    try {
      const r = await reconcile(this.ctx, namespace, name);
      this.queue.forget(key);
      if (r.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, r.requeueAfterMs);
        m.reconciles.labels({ kind, result: 'requeue' }).inc();
      } else {
        m.reconciles.labels({ kind, result: 'success' }).inc();
      }
    } catch (e) {
      const delay = this.queue.addRateLimited(key);
      m.reconciles.labels({ kind, result: 'error' }).inc();
      this.ctx.log.warn('reconcile failed', { key, retryInMs: delay, error: (e as Error).message });
    } finally {
      end();
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === null) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }
}
