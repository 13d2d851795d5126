/**
 * Key planning: what the key Secrets should hold now, given what they hold,
 * the rotation schedule and the clock. Pure (keys, now and rng in; keys,
 * what happened and when to look again out), so rotation is unit-tested
 * without a cluster.
 *
 * Overview:
 * - Relay: one NodeKeys file per relay (core/node-keys.ts format). The
 *   schedule reads the newest onion key's createdAt, so no other state is
 *   needed: rotate when it is older than the interval (or on the manual
 *   trigger), via rotateOnionKey, which keeps the replaced key in the same
 *   file; pruneOnionKeys drops it once the grace period has passed.
 * - Authority: the directory authority signs consensuses with its identity
 *   key (Shallot has no separate medium-term signing key), so rotating the
 *   "signing key" means a new NodeKeys identity. The replaced file stays
 *   in the Secret as `<pod>.previous.json` for the grace period (so an
 *   operator can roll back), and the authority list changes with it.
 * - Onion service: the identity (the address) never rotates; intro-point
 *   keys live only in memory in each instance, so rotating them means a
 *   rolling restart, recorded as a time in the Secret's annotations.
 */
import { type Rng, randomBytes } from '../services/core/crypto.js';
import {
  decodeNodeKeys,
  encodeNodeKeys,
  generateNodeKeys,
  type NodeKeys,
  pruneOnionKeys,
  rotateOnionKey,
} from '../services/core/node-keys.js';

export interface RotationPolicy {
  /** 0 = never. */
  intervalMs: number;
  graceMs: number;
}

export interface KeyPlan {
  keys: NodeKeys;
  generated: boolean;
  rotated: boolean;
  /** True when `keys` differ from what was stored. */
  changed: boolean;
  /** Absolute ms of the next rotation or prune, or null if none is scheduled. */
  nextAt: number | null;
}

function minNullable(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** Decodes stored key bytes; null when absent or unreadable (then new keys are made). */
export function readNodeKeys(bytes: Uint8Array | null): NodeKeys | null {
  if (!bytes) return null;
  try {
    return decodeNodeKeys(bytes);
  } catch {
    return null;
  }
}

/** A relay's keys: generate, rotate the onion key when due (or forced), prune expired old keys. */
export function planRelayKeys(
  stored: NodeKeys | null,
  policy: RotationPolicy,
  now: number,
  force = false,
  rng: Rng = randomBytes,
): KeyPlan {
  if (!stored) {
    const keys = generateNodeKeys(rng, now);
    return { keys, generated: true, rotated: false, changed: true, nextAt: nextRelayEvent(keys, policy) };
  }
  const current = stored.onionKeys[0]!;
  const due = policy.intervalMs > 0 && now - current.createdAt >= policy.intervalMs;
  let keys: NodeKeys;
  let rotated = false;
  if (due || force) {
    keys = rotateOnionKey(stored, policy.graceMs, rng, now);
    rotated = true;
  } else {
    keys = { ...stored, onionKeys: pruneOnionKeys(stored.onionKeys, policy.graceMs, now) };
  }
  const changed = rotated || keys.onionKeys.length !== stored.onionKeys.length;
  return { keys, generated: false, rotated, changed, nextAt: nextRelayEvent(keys, policy) };
}

function nextRelayEvent(keys: NodeKeys, policy: RotationPolicy): number | null {
  let next: number | null = null;
  if (policy.intervalMs > 0) next = keys.onionKeys[0]!.createdAt + policy.intervalMs;
  // Key i >= 1 expires graceMs after key i-1 replaced it.
  for (let i = 1; i < keys.onionKeys.length; i++) {
    next = minNullable(next, keys.onionKeys[i - 1]!.createdAt + policy.graceMs);
  }
  return next;
}

export interface AuthorityKeyPlan {
  current: NodeKeys;
  /** The replaced identity, kept until current.identityCreatedAt + grace. */
  previous: NodeKeys | null;
  generated: boolean;
  rotated: boolean;
  changed: boolean;
  nextAt: number | null;
}

/** One authority's keys: generate, rotate the identity (signing) key when due or forced, drop the old one after the grace period. */
export function planAuthorityKeys(
  current: NodeKeys | null,
  previous: NodeKeys | null,
  policy: RotationPolicy,
  now: number,
  force = false,
  rng: Rng = randomBytes,
): AuthorityKeyPlan {
  if (!current) {
    const keys = generateNodeKeys(rng, now);
    return {
      current: keys,
      previous: null,
      generated: true,
      rotated: false,
      changed: true,
      nextAt: policy.intervalMs > 0 ? now + policy.intervalMs : null,
    };
  }
  const due = policy.intervalMs > 0 && now - current.identityCreatedAt >= policy.intervalMs;
  if (due || force) {
    const keys = generateNodeKeys(rng, now);
    return {
      current: keys,
      previous: current,
      generated: false,
      rotated: true,
      changed: true,
      nextAt: minNullable(policy.intervalMs > 0 ? now + policy.intervalMs : null, now + policy.graceMs),
    };
  }
  const keepPrev = previous !== null && now < current.identityCreatedAt + policy.graceMs;
  return {
    current,
    previous: keepPrev ? previous : null,
    generated: false,
    rotated: false,
    changed: previous !== null && !keepPrev,
    nextAt: minNullable(
      policy.intervalMs > 0 ? current.identityCreatedAt + policy.intervalMs : null,
      keepPrev ? current.identityCreatedAt + policy.graceMs : null,
    ),
  };
}

export function encodeKeys(keys: NodeKeys): Uint8Array {
  return encodeNodeKeys(keys);
}

/** Whether an intro-key rotation is due: `lastMs` is the last rotation (or the service's creation). */
export function introRotationDue(lastMs: number, intervalMs: number, now: number): boolean {
  return intervalMs > 0 && now - lastMs >= intervalMs;
}
