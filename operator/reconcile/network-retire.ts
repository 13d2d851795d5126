/**
 * OnionNetwork reconcile, step 5: relays beyond the wanted count. Their
 * StatefulSet goes first; their key Secret only once no pod of theirs is
 * left, so a relay still shutting down keeps the keys it runs with.
 */
import { LABEL_NETWORK, LABEL_RELAY_INDEX } from '../desired/common.js';
import type { KubeObject } from '../kube/client.js';
import type { NetworkPass } from './network-pass.js';

export function relayIndex(o: KubeObject): number | null {
  const v = o.metadata.labels?.[LABEL_RELAY_INDEX];
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

function ownedBy(o: KubeObject, owner: KubeObject): boolean {
  return (o.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid);
}

/** Returns the indexes of surplus relays whose pods still exist (status: retiring). */
export async function retireSurplusRelays(pass: NetworkPass, relays: number): Promise<Set<number>> {
  const { ctx, raw, namespace, name } = pass;
  const { kube } = ctx;
  const sel = `${LABEL_NETWORK}=${name},app.kubernetes.io/component=relay`;
  const surplusSts = (await kube.list('apps/v1', 'StatefulSet', namespace, sel)).items.filter((sts) => {
    const i = relayIndex(sts);
    return i !== null && i >= relays && ownedBy(sts, raw);
  });
  for (const sts of surplusSts) {
    if (sts.metadata.deletionTimestamp) continue;
    await kube.delete({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace, name: sts.metadata.name });
    pass.changes.push(`relay ${relayIndex(sts)} retiring`);
    await ctx.recorder.event(
      raw,
      'Normal',
      'ScalingDown',
      `retiring relay ${relayIndex(sts)} (${sts.metadata.name})`,
    );
  }
  const keySel = `${LABEL_NETWORK}=${name},app.kubernetes.io/component=relay-keys`;
  const surplusSecrets = (await kube.list('v1', 'Secret', namespace, keySel)).items.filter((s) => {
    const i = relayIndex(s);
    return i !== null && i >= relays && ownedBy(s, raw);
  });
  const retiring = new Set<number>();
  if (surplusSts.length > 0 || surplusSecrets.length > 0) {
    const alive = new Set(
      (await kube.list('v1', 'Pod', namespace, sel)).items
        .map(relayIndex)
        .filter((i) => i !== null && i >= relays),
    );
    for (const i of alive) retiring.add(i as number);
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
