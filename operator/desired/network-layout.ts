/**
 * The layout of an OnionNetwork, as pure functions of its name and an
 * index: what its Kubernetes objects and key files are called, where each
 * authority answers (a stable DNS name) and the authority list that names
 * them, each relay's nickname, and which relays exit.
 *
 * Design notes:
 * - Names derive from the network's name alone, so the reconciler finds
 *   its children again after a restart with nothing stored.
 * - Exits are spread by index (relay i exits when round((i+1)f) >
 *   round(i f)), so a relay keeps its role when the network scales.
 * - Nicknames follow dir-spec §2.1.1's rule (1-19 letters and digits).
 *
 * Not in this module: the objects themselves (network.ts, relay-pool.ts),
 * the Secrets' contents (reconcile/network-keys.ts).
 */
import { DIR_PORT } from './common.js';

export const authorityName = (net: string) => `${net}-auth`;
export const authorityPodName = (net: string, i: number) => `${net}-auth-${i}`;
export const authoritySecretName = (net: string) => `${net}-auth-keys`;
export const relayName = (net: string, i: number) => `${net}-relay-${i}`;
export const relaySecretName = (net: string, i: number) => `${net}-relay-${i}-keys`;
export const relayServiceName = (net: string) => `${net}-relay`;
export const metricsServiceName = (net: string) => `${net}-metrics`;

/** File names inside the authority Secret. */
export const authorityKeyFile = (net: string, i: number) => `${authorityPodName(net, i)}.json`;
export const authorityPreviousKeyFile = (net: string, i: number) =>
  `${authorityPodName(net, i)}.previous.json`;

/** The DNS host:port of authority i. */
export function authorityAddress(net: string, ns: string, i: number): string {
  return `${authorityPodName(net, i)}.${authorityName(net)}.${ns}.svc:${DIR_PORT}`;
}

/** "hexid@host:port,..." as services/net/dir-client.ts parseAuthorityList reads it. */
export function formatAuthorityList(net: string, ns: string, identities: string[]): string {
  return identities.map((id, i) => `${id}@${authorityAddress(net, ns, i)}`).join(',');
}

export function isExitIndex(i: number, fraction: number): boolean {
  return Math.round((i + 1) * fraction) > Math.round(i * fraction);
}

export function exitCount(n: number, fraction: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (isExitIndex(i, fraction)) c++;
  return c;
}

/** Relay nickname (1-19 letters and digits, core/dir/fields.ts): the network's letters and digits plus "r<i>". */
export function relayNickname(net: string, i: number): string {
  const suffix = `r${i}`;
  const base = net.replace(/[^A-Za-z0-9]/g, '');
  return (base.slice(0, 19 - suffix.length) || 'shallot'.slice(0, 19 - suffix.length)) + suffix;
}
