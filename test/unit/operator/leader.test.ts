/** Leader election on a Lease: one leader, takeover after expiry, release on stop, step-down when renewals fail. */
// biome-ignore-all lint/suspicious/noExplicitAny: assertions read untyped Kubernetes objects
import { describe, expect, it } from 'vitest';
import { LeaderElector } from '../../../operator/leader.js';
import { FakeKube } from './fake-kube.js';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function elector(kube: FakeKube, identity: string, log: string[]) {
  return new LeaderElector(kube, {
    namespace: 'sys',
    name: 'lead',
    identity,
    leaseDurationMs: 1000,
    renewDeadlineMs: 600,
    retryMs: 50,
    onStartedLeading: () => log.push(`${identity}+`),
    onStoppedLeading: () => log.push(`${identity}-`),
  });
}

describe('LeaderElector', () => {
  it('elects exactly one of two candidates; the other takes over when the leader releases', async () => {
    const kube = new FakeKube();
    const log: string[] = [];
    const a = elector(kube, 'a', log);
    const b = elector(kube, 'b', log);
    a.start();
    await wait(20);
    b.start();
    await wait(300);
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    await a.stop();
    await wait(300);
    expect(b.isLeader).toBe(true);
    expect(log).toEqual(['a+', 'b+']);
    const lease = kube.getObj<any>('Lease', 'sys', 'lead');
    expect(lease.spec.holderIdentity).toBe('b');
    expect(lease.spec.leaseTransitions).toBe(1);
    await b.stop();
  });

  it('takes over an expired Lease held by a dead candidate', async () => {
    const kube = new FakeKube();
    kube.seed({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'lead', namespace: 'sys' },
      spec: {
        holderIdentity: 'dead',
        leaseDurationSeconds: 1,
        renewTime: new Date(Date.now() - 5000).toISOString(),
      },
    });
    const log: string[] = [];
    const b = elector(kube, 'b', log);
    b.start();
    await wait(200);
    expect(b.isLeader).toBe(true);
    await b.stop();
  });

  it('does not take a live Lease, and a leader that cannot renew steps down', async () => {
    const kube = new FakeKube();
    const log: string[] = [];
    const a = elector(kube, 'a', log);
    a.start();
    await wait(150);
    expect(a.isLeader).toBe(true);
    // The API starts failing for a: it must stop leading within the renew deadline.
    const orig = kube.update.bind(kube);
    kube.update = async () => {
      throw new Error('apiserver unreachable');
    };
    await wait(900);
    expect(a.isLeader).toBe(false);
    expect(log).toEqual(['a+', 'a-']);
    kube.update = orig;
    await a.stop();
  });
});
