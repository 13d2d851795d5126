/**
 * One OnionNetwork reconcile pass as the named steps share it: the resource
 * read at the start, its spec with defaults, the status being built, the
 * list of changes made (the Progressing message) and the next key schedule.
 *
 * Not in this module: the steps themselves (network-keys.ts,
 * network-retire.ts, network-status.ts, network-autoscale.ts) and their
 * order (network.ts).
 */
import type { OnionNetwork, OnionNetworkStatus } from '../api/onion-network.js';
import type { KubeObject } from '../kube/client.js';
import type { ReconcileContext } from './context.js';

export const KIND = 'OnionNetwork';
export const MIN = 60_000;

export interface NetworkPass {
  ctx: ReconcileContext;
  /** The resource as read (status and annotations before this pass). */
  raw: OnionNetwork & KubeObject;
  /** raw with schema defaults applied. */
  net: OnionNetwork;
  namespace: string;
  name: string;
  now: number;
  /** The status this pass writes at the end (a copy of raw.status). */
  status: OnionNetworkStatus;
  /** What this pass changed, for the Progressing condition. */
  changes: string[];
  /** Earliest time a key must rotate or a grace period ends, or null. */
  nextKeyEvent: number | null;
}

export function noteKeyEvent(pass: NetworkPass, t: number | null): void {
  if (t !== null) pass.nextKeyEvent = pass.nextKeyEvent === null ? t : Math.min(pass.nextKeyEvent, t);
}
