/**
 * List-then-watch of one kind, the trigger side of level-triggered
 * reconciling: every add/update/delete and every periodic resync calls
 * `onChange(obj)`; the controller turns that into a queue key.
 *
 * Overview: list (remember resourceVersion) → watch from it → on a closed
 * watch, watch again from the last seen version; on 410 Gone or any error,
 * list again after a short pause. A resync timer re-announces every cached
 * object so a missed event can only delay a reconcile, never lose it.
 */
import type { Kube, KubeObject } from './kube/client.js';
import { isGone } from './kube/client.js';

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  /** Undefined: all namespaces. */
  namespace?: string | undefined;
  labelSelector?: string;
  resyncMs: number;
  onChange: (obj: KubeObject, event: 'add' | 'update' | 'delete' | 'resync') => void;
  onError?: (err: unknown) => void;
}

export class Informer {
  private readonly cache = new Map<string, KubeObject>();
  private readonly abort = new AbortController();
  private resyncTimer: NodeJS.Timeout | null = null;
  private synced = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly kube: Kube,
    private readonly o: InformerOptions,
  ) {}

  get hasSynced(): boolean {
    return this.synced;
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  private static key(o: KubeObject): string {
    return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  }

  /** Resolves after the first list; the watch keeps running in the background. */
  async start(): Promise<void> {
    // The first list may fail while the API is settling (a new CRD answers 429 for a moment): retry.
    let first: string | null = null;
    let delay = 250;
    while (first === null) {
      try {
        first = await this.relist();
      } catch (e) {
        if (this.abort.signal.aborted) return;
        this.o.onError?.(e);
        await sleep(delay, this.abort.signal);
        delay = Math.min(delay * 2, 5000);
      }
    }
    this.synced = true;
    this.loop = this.run(first);
    this.resyncTimer = setInterval(() => {
      for (const o of this.cache.values()) this.o.onChange(o, 'resync');
    }, this.o.resyncMs);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.loop?.catch(() => {});
  }

  private async relist(): Promise<string> {
    const r = await this.kube.list(this.o.apiVersion, this.o.kind, this.o.namespace, this.o.labelSelector);
    const seen = new Set<string>();
    for (const item of r.items) {
      const k = Informer.key(item);
      seen.add(k);
      const old = this.cache.get(k);
      this.cache.set(k, item);
      if (!old) this.o.onChange(item, 'add');
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion)
        this.o.onChange(item, 'update');
    }
    for (const [k, old] of this.cache) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        this.o.onChange(old, 'delete');
      }
    }
    return r.resourceVersion;
  }

  private async run(resourceVersion: string): Promise<void> {
    let rv = resourceVersion;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await this.kube.watch(
          this.o.apiVersion,
          this.o.kind,
          this.o.namespace,
          rv,
          (ev) => {
            if (ev.object.metadata?.resourceVersion) rv = ev.object.metadata.resourceVersion;
            if (ev.type === 'BOOKMARK') return;
            const k = Informer.key(ev.object);
            if (ev.type === 'DELETED') {
              this.cache.delete(k);
              this.o.onChange(ev.object, 'delete');
            } else {
              const had = this.cache.has(k);
              this.cache.set(k, ev.object);
              this.o.onChange(ev.object, had ? 'update' : 'add');
            }
          },
          signal,
          this.o.labelSelector,
        );
        // A watch the server closes at once (rather than at its timeout) must not spin.
        if (Date.now() - started < 1000) await sleep(1000, signal);
      } catch (e) {
        if (signal.aborted) return;
        if (!isGone(e)) this.o.onError?.(e);
        await sleep(1000, signal);
        try {
          rv = await this.relist();
        } catch (e2) {
          this.o.onError?.(e2);
        }
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
