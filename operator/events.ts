/**
 * Kubernetes Events about the custom resources (`kubectl describe` shows
 * them): what the operator created, scaled, rotated, retired, and why a
 * spec was refused. Best effort: a failed Event never fails a reconcile.
 */
import type { Kube, KubeObject } from './kube/client.js';
import type { Logger } from './log.js';

export interface EventRecorder {
  event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export class KubeEventRecorder implements EventRecorder {
  private seq = 0;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly component = 'shallot-operator',
  ) {}

  async event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    const ns = obj.metadata.namespace ?? 'default';
    try {
      await this.kube.create({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: {
          name: `${obj.metadata.name}.${Date.now().toString(16)}${(this.seq++).toString(16)}`,
          namespace: ns,
        },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: ns,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (e) {
      this.log.warn('event not recorded', { reason, error: (e as Error).message });
    }
  }
}

/** Collects events in memory (unit tests). */
export class MemoryRecorder implements EventRecorder {
  readonly events: { kind: string; name: string; type: string; reason: string; message: string }[] = [];
  async event(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.events.push({ kind: obj.kind, name: obj.metadata.name, type, reason, message });
  }
}
