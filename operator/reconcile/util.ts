/**
 * Converging one object: read it, and write (server-side apply) only when
 * some field we want differs from what is there. Fields the apiserver or
 * other controllers add (defaults, status, annotations) are not ours and
 * do not count as differences.
 */
import type { Kube, KubeObject } from '../kube/client.js';

/** True when every field of `want` is present and equal in `have` (arrays: same length, element-wise). */
export function isSubset(want: unknown, have: unknown): boolean {
  if (want === null || typeof want !== 'object') return want === have;
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return false;
    return want.every((w, i) => isSubset(w, have[i]));
  }
  if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>).every(
    ([k, v]) => v === undefined || isSubset(v, h[k]),
  );
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return isSubset(a, b) && isSubset(b, a);
}

export type EnsureResult = { action: 'created' | 'updated' | 'unchanged'; object: KubeObject };

export async function ensure(kube: Kube, want: KubeObject): Promise<EnsureResult> {
  const have = await kube.get({
    apiVersion: want.apiVersion,
    kind: want.kind,
    namespace: want.metadata.namespace,
    name: want.metadata.name,
  });
  if (have && isSubset(stripForCompare(want), have)) return { action: 'unchanged', object: have };
  const object = await kube.apply(want);
  return { action: have ? 'updated' : 'created', object };
}

/** apiVersion/kind are not echoed reliably on GET of some lists; compare the rest. */
function stripForCompare(o: KubeObject): Record<string, unknown> {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return rest;
}
