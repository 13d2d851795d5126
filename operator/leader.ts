/**
 * Leader election on a coordination.k8s.io/v1 Lease, so that of several
 * operator replicas exactly one reconciles.
 *
 * Overview (client-go's leaderelection, simplified): every `retryMs` a
 * candidate reads the Lease; it takes it when the Lease is absent, already
 * its own, or expired (renewTime + leaseDurationSeconds in the past). Every
 * write is a create or a PUT carrying the read resourceVersion, so two
 * candidates racing for an expired Lease cannot both win: the loser gets
 * 409 Conflict. A leader that cannot renew within `renewDeadlineMs` stops
 * leading (`onStoppedLeading`) before the Lease can expire for the others
 * (renewDeadline < leaseDuration), so there is never a moment with two
 * leaders acting, as long as clocks advance at similar rates.
 */
import { isConflict, type Kube, type KubeObject } from './kube/client.js';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (e: unknown) => void;
  now?: () => number;
}

interface Lease extends KubeObject {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** RFC 3339 with microseconds, as metav1.MicroTime wants. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private timer: NodeJS.Timeout | null = null;
  private leading = false;
  private lastRenew = 0;
  private stopped = false;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly kube: Kube,
    private readonly o: LeaderElectionOptions,
  ) {
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryMs ?? 2_000;
    this.now = o.now ?? Date.now;
    if (this.renewDeadlineMs >= this.leaseDurationMs)
      throw new Error('renewDeadline must be < leaseDuration');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.onError?.(e);
      }
      if (this.leading && this.now() - this.lastRenew > this.renewDeadlineMs) this.lose();
      if (!this.stopped) this.timer = setTimeout(tick, this.retryMs);
    };
    void tick();
  }

  /** Stops campaigning; a leader releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.kube.get<Lease>(this.ref());
      if (lease && lease.spec.holderIdentity === this.o.identity) {
        lease.spec.holderIdentity = '';
        lease.spec.leaseDurationSeconds = 1;
        await this.kube.update(lease);
      }
    } catch (e) {
      this.o.onError?.(e);
    }
  }

  private ref() {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      namespace: this.o.namespace,
      name: this.o.name,
    };
  }

  private lose(): void {
    if (!this.leading) return;
    this.leading = false;
    this.o.onStoppedLeading();
  }

  private win(): void {
    this.lastRenew = this.now();
    if (this.leading) return;
    this.leading = true;
    this.o.onStartedLeading();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.now();
    const durationSec = Math.ceil(this.leaseDurationMs / 1000);
    const lease = await this.kube.get<Lease>(this.ref());
    if (!lease) {
      try {
        await this.kube.create({
          ...this.ref(),
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: {
            holderIdentity: this.o.identity,
            leaseDurationSeconds: durationSec,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        this.win();
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
      return;
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = renewed + (lease.spec.leaseDurationSeconds ?? durationSec) * 1000 < now;
    if (holder !== this.o.identity && holder !== '' && !expired) {
      if (this.leading) this.lose();
      return;
    }
    const spec = { ...lease.spec, renewTime: microTime(now), leaseDurationSeconds: durationSec };
    if (holder !== this.o.identity) {
      spec.holderIdentity = this.o.identity;
      spec.acquireTime = microTime(now);
      spec.leaseTransitions = (lease.spec.leaseTransitions ?? 0) + 1;
    }
    try {
      await this.kube.update({ ...lease, spec });
      this.win();
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
  }
}
