/**
 * Delivering a network's link-fault table to its nodes (issue 18: pause,
 * cut and slow on Kubernetes). The relays, authorities and onion-service instances apply
 * it inside their link layer (services/net/link-faults.ts), so this needs no
 * NET_ADMIN, no `tc` and no pods/exec: an HTTP PUT of the whole table to each
 * such pod's ops endpoint (`http://<podIP>:<its "metrics" port>/link-faults`,
 * services/runtime/fault-route.ts) with the token of the Secret
 * `<net>-fault-token` (desired/fault-token.ts), which `ensureFaultToken`
 * creates for every network.
 *
 * Level-triggered, as the launcher's pipe is locally: the table is built
 * whole from every NetworkFault of the network each time, and sent to every
 * relay, authority and onion-service pod on each reconcile of a fault in force (every TABLE_RESEND_MS), so
 * a relay pod that restarted (an empty table) gets it back within seconds,
 * and once more when a fault heals or is deleted. A pod that does not answer
 * is counted out, not retried here: the next send reaches it.
 */
import { randomBytes } from '../../services/core/crypto.js';
import { API_VERSION } from '../api/crds.js';
import { type NetworkFault, networkFaultSpecSchema } from '../api/network-fault.js';
import type { OnionNetwork } from '../api/onion-network.js';
import { applyDefaults } from '../api/schema.js';
import { unb64 } from '../desired/common.js';
import { desiredFaultTokenSecret, FAULT_TOKEN_KEY, faultTokenSecretName } from '../desired/fault-token.js';
import { linkFaultTable, opsPortOf, tablePodSelectors } from '../desired/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext } from './context.js';

/** services/runtime/fault-route.ts FAULT_TABLE_PATH (the operator does not import it: it serves no route). */
const FAULT_TABLE_PATH = '/link-faults';

/** How long one relay pod may take to answer a PUT: a hung pod must not hold the reconcile. */
export const TABLE_PUT_TIMEOUT_MS = 3000;

/** Relay pods sent to at once (a network may have thousands of pods). */
const PARALLEL = 32;

/** Creates `<net>-fault-token` if absent (never rewrites it: running relays hold it). */
export async function ensureFaultToken(ctx: ReconcileContext, net: OnionNetwork): Promise<boolean> {
  const ref = {
    apiVersion: 'v1',
    kind: 'Secret',
    namespace: net.metadata.namespace ?? '',
    name: faultTokenSecretName(net.metadata.name),
  };
  if (await ctx.kube.get(ref)) return false;
  const token = Buffer.from((ctx.rng ?? randomBytes)(32)).toString('hex');
  await ctx.kube.create(desiredFaultTokenSecret(net, token));
  return true;
}

export interface TableSend {
  /** Relay pods that answered 200. */
  updated: number;
  /** Relay pods with an IP (those the send tried). */
  tried: number;
  /** Why nothing could be sent (metrics off, no token yet), if so. */
  problem?: string;
  /** The OnionNetwork no longer exists (nothing left to send to). */
  networkGone?: true;
}

async function put(url: string, token: string, body: string): Promise<boolean> {
  try {
    const r = await fetch(url, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(TABLE_PUT_TIMEOUT_MS),
    });
    await r.arrayBuffer().catch(() => {});
    return r.ok;
  } catch {
    return false;
  }
}

/**
 * Sends network `net`'s table to its relay pods. `override` stands for the
 * stored copy of a fault this reconcile just changed (its new status);
 * `without` names a fault to leave out (one being deleted).
 */
export async function sendFaultTable(
  ctx: ReconcileContext,
  namespace: string,
  net: string,
  change: { override?: NetworkFault; without?: string } = {},
): Promise<TableSend> {
  const network = await ctx.kube.get<OnionNetwork & KubeObject>({
    apiVersion: API_VERSION,
    kind: 'OnionNetwork',
    namespace,
    name: net,
  });
  if (!network) return { updated: 0, tried: 0, problem: `OnionNetwork ${net} not found`, networkGone: true };
  const metricsOff = (network.spec as Partial<OnionNetwork['spec']> | undefined)?.metrics?.enabled === false;
  const secret = await ctx.kube.get({
    apiVersion: 'v1',
    kind: 'Secret',
    namespace,
    name: faultTokenSecretName(net),
  });
  const tokenBytes = unb64(secret?.data?.[FAULT_TOKEN_KEY]);
  const token = tokenBytes ? Buffer.from(tokenBytes).toString('utf8').trim() : '';
  if (!/^[0-9a-f]{64}$/.test(token))
    return { updated: 0, tried: 0, problem: `Secret ${faultTokenSecretName(net)} has no token yet` };
  const stored = await ctx.kube.list<NetworkFault & KubeObject>(API_VERSION, 'NetworkFault', namespace);
  const faults: NetworkFault[] = [];
  for (const f of stored.items) {
    if (f.metadata.name === change.without) continue;
    const one = f.metadata.name === change.override?.metadata.name ? change.override : f;
    faults.push({
      ...one,
      spec: applyDefaults(networkFaultSpecSchema, one.spec ?? {}) as NetworkFault['spec'],
    });
  }
  if (change.override && !stored.items.some((f) => f.metadata.name === change.override?.metadata.name))
    faults.push(change.override);
  const body = JSON.stringify(linkFaultTable(net, faults, ctx.now()));
  const targets: string[] = [];
  for (const selector of tablePodSelectors(net))
    for (const p of (await ctx.kube.list('v1', 'Pod', namespace, selector)).items) {
      const ip = (p as { status?: { podIP?: string } }).status?.podIP;
      const port = opsPortOf(p);
      if (p.metadata.deletionTimestamp || !ip || port === null) continue;
      targets.push(`http://${ip.includes(':') ? `[${ip}]` : ip}:${port}${FAULT_TABLE_PATH}`);
    }
  let updated = 0;
  for (let i = 0; i < targets.length; i += PARALLEL) {
    const batch = targets.slice(i, i + PARALLEL).map((url) => put(url, token, body));
    updated += (await Promise.all(batch)).filter(Boolean).length;
  }
  if (targets.length === 0 && metricsOff)
    return {
      updated,
      tried: 0,
      problem: 'the network has metrics.enabled false: relays serve no ops endpoint',
    };
  return { updated, tried: targets.length };
}
