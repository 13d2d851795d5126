/**
 * OnionNetwork reconcile, step 5: relays beyond the wanted count. Their
 * StatefulSet goes first; their key Secret only once no pod of theirs is
 * left, so a relay still shutting down keeps the keys it runs with. A pod
 * runs relays relay-index..relay-last (a pool, desired/relay-pool.ts), so a
 * pool that shrank keeps its dropped relays' keys until its pod restarts.
 * A relay StatefulSet the desired state no longer names (a pool that is
 * gone, or a pod per relay folded into a pool when relaysPerPod grew) goes
 * too; its relays' Secrets stay while they are wanted.
 */
import { LABEL_NETWORK, LABEL_RELAY_INDEX } from '../desired/common.js';
import { LABEL_RELAY_LAST } from '../desired/relay-pool.js';
import type { KubeObject } from '../kube/client.js';
import type { NetworkPass } from './network-pass.js';

export function relayIndex(o: KubeObject): number | null {
  const v = o.metadata.labels?.[LABEL_RELAY_INDEX];
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

/** How many relays the object's pod runs: a pool's relay-index..relay-last, else one. */
export function relaysIn(o: KubeObject): number {
  const first = relayIndex(o);
  const v = o.metadata.labels?.[LABEL_RELAY_LAST];
  if (first === null || v === undefined || !/^\d+$/.test(v) || Number(v) < first) return 1;
  return Number(v) - first + 1;
}

function ownedBy(o: KubeObject, owner: KubeObject): boolean {
  return (o.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid);
}

/** Returns the indexes of surplus relays whose pods still exist (status: retiring). */
export async function retireSurplusRelays(
  pass: NetworkPass,
  relays: number,
  wantedSts: Set<string>,
): Promise<Set<number>> {
  const { ctx, raw, namespace, name } = pass;
  const { kube } = ctx;
  const sel = `${LABEL_NETWORK}=${name},app.kubernetes.io/component=relay`;
  const surplusSts = (await kube.list('apps/v1', 'StatefulSet', namespace, sel)).items.filter((sts) => {
    const i = relayIndex(sts);
    return i !== null && !wantedSts.has(sts.metadata.name) && ownedBy(sts, raw);
  });
  for (const sts of surplusSts) {
    if (sts.metadata.deletionTimestamp) continue;
    await kube.delete({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace, name: sts.metadata.name });
    const first = relayIndex(sts)!;
    const n = relaysIn(sts);
    const what = n === 1 ? `relay ${first}` : `relays ${first}-${first + n - 1}`;
    pass.changes.push(`${what} retiring`);
    await ctx.recorder.event(raw, 'Normal', 'ScalingDown', `retiring ${what} (${sts.metadata.name})`);
  }
  const keySel = `${LABEL_NETWORK}=${name},app.kubernetes.io/component=relay-keys`;
  const surplusSecrets = (await kube.list('v1', 'Secret', namespace, keySel)).items.filter((s) => {
    const i = relayIndex(s);
    return i !== null && i >= relays && ownedBy(s, raw);
  });
  const retiring = new Set<number>();
  if (surplusSts.length > 0 || surplusSecrets.length > 0) {
    const alive = new Set<number>();
    for (const pod of (await kube.list('v1', 'Pod', namespace, sel)).items) {
      const first = relayIndex(pod);
      if (first === null) continue;
      for (let i = first; i < first + relaysIn(pod); i++) if (i >= relays) alive.add(i);
    }
    for (const i of alive) retiring.add(i);
    for (const s of surplusSecrets) {
      const i = relayIndex(s)!;
      if (alive.has(i)) continue;
      // The relay's pod is gone: its identity will never be used again.
      await kube.delete({ apiVersion: 'v1', kind: 'Secret', namespace, name: s.metadata.name });
      pass.changes.push(`relay ${i} keys deleted`);
      await ctx.recorder.event(raw, 'Normal', 'RelayRetired', `relay ${i} retired; its keys are deleted`);
    }
  }
  return retiring;
}
