/**
 * OnionNetwork reconcile, step 3a with spec.relays.autoscale set: scrape the
 * relays' circuits, let operator/autoscale.ts decide, and record the
 * decision and its recent recommendations in status.autoscale.
 */
import type { OnionNetwork, OnionNetworkStatus } from '../api/onion-network.js';
import { circuitsActiveFromMetrics, decideRelays } from '../autoscale.js';
import { rfc3339 } from '../conditions.js';
import { LABEL_NETWORK } from '../desired/common.js';
import type { ReconcileContext } from './context.js';
import { relaysIn } from './network-retire.js';

/** Returns the relay count to run now. */
export async function autoscaleRelays(
  ctx: ReconcileContext,
  net: OnionNetwork,
  status: OnionNetworkStatus,
  now: number,
): Promise<number> {
  const spec = net.spec.relays.autoscale!;
  const ns = net.metadata.namespace;
  const current = status.autoscale?.desired ?? status.relays?.desired ?? net.spec.relays.replicas;
  let signal: number | null = null;
  if (net.spec.metrics.enabled) {
    const sel = `${LABEL_NETWORK}=${net.metadata.name},app.kubernetes.io/component=relay`;
    const pods = (await ctx.kube.list('v1', 'Pod', ns, sel)).items.filter(
      (p) => p.status?.podIP && p.status?.phase === 'Running',
    );
    // A pool's pod reports the sum over its relays: the mean is per relay, not per pod.
    const samples = await Promise.all(
      pods.map((p) =>
        ctx
          .scrape(`http://${p.status.podIP}:${net.spec.metrics.port}/metrics`)
          .then(circuitsActiveFromMetrics, () => null)
          .then((sum) => (sum === null ? null : { sum, relays: relaysIn(p) })),
      ),
    );
    const ok = samples.filter((s) => s !== null);
    const scraped = ok.reduce((a, s) => a + s.relays, 0);
    if (scraped > 0) signal = ok.reduce((a, s) => a + s.sum, 0) / scraped;
  }
  const history = (status.autoscale?.recommendations ?? []).map((r) => ({
    time: Date.parse(r.time),
    replicas: r.replicas,
  }));
  const last = status.autoscale?.lastScaleTime ? Date.parse(status.autoscale.lastScaleTime) : null;
  const d = decideRelays(spec, { current, signal, history, lastScaleTime: last }, now);
  // Record a recommendation only when it differs or 30 s passed, so status is not rewritten every pass.
  const prev = history.at(-1);
  const record = !prev || prev.replicas !== d.recommendation || now - prev.time >= 30_000;
  const hist = record ? d.history : history.filter((h) => now - h.time < 300_000);
  status.autoscale = {
    ...(signal === null ? {} : { signal: Math.round(signal * 100) / 100 }),
    desired: d.desired,
    ...(d.desired !== current
      ? { lastScaleTime: rfc3339(new Date(now)) }
      : status.autoscale?.lastScaleTime
        ? { lastScaleTime: status.autoscale.lastScaleTime }
        : {}),
    recommendations: hist.slice(-64).map((h) => ({ time: rfc3339(new Date(h.time)), replicas: h.replicas })),
  };
  return d.desired;
}
