/**
 * Delivering a network's link-fault table to its relays (issue 18: pause,
 * cut and slow on Kubernetes). The relays apply it inside their link layer
 * (services/net/link-faults.ts), so this needs no NET_ADMIN, no `tc` and no
 * pods/exec: an HTTP PUT of the whole table to each relay pod's ops
 * endpoint (`http://<podIP>:<metrics.port>/link-faults`,
 * services/runtime/fault-route.ts) with the token of the Secret
 * `<net>-fault-token` (desired/fault-token.ts), which `ensureFaultToken`
 * creates for every network.
 *
 * Level-triggered, as the launcher's pipe is locally: the table is built
 * whole from every NetworkFault of the network each time, and sent to every
 * relay pod on each reconcile of a fault in force (every TABLE_RESEND_MS), so
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
import { linkFaultTable, relayPodsSelector } from '../desired/network-fault.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext } from './context.js';

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
  if (!network) return { updated: 0, tried: 0, problem: `OnionNetwork ${net} not found` };
  const metrics = (network.spec as Partial<OnionNetwork['spec']> | undefined)?.metrics;
  if (metrics?.enabled === false)
    return {
      updated: 0,
      tried: 0,
      problem: 'the network has metrics.enabled false: relays serve no ops endpoint',
    };
  const port = metrics?.port ?? 9100;
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
  const pods = await ctx.kube.list('v1', 'Pod', namespace, relayPodsSelector(net));
  const ips = pods.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => (p as { status?: { podIP?: string } }).status?.podIP)
    .filter((ip): ip is string => typeof ip === 'string' && ip !== '');
  let updated = 0;
  for (let i = 0; i < ips.length; i += PARALLEL) {
    const batch = ips.slice(i, i + PARALLEL).map((ip) => {
      const host = ip.includes(':') ? `[${ip}]` : ip;
      return put(`http://${host}:${port}/link-faults`, token, body);
    });
    updated += (await Promise.all(batch)).filter(Boolean).length;
  }
  return { updated, tried: ips.length };
}
