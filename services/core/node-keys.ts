/**
 * A node's long-lived keys and their file format: the Ed25519 identity and
 * the ntor onion keys (current first, then previous ones kept for a grace
 * period so circuits built against them still complete: tor-spec §5.1.4
 * servers accept any onion key they still hold).
 *
 * The same JSON goes in a key file (mode 0600) for local networks and in a
 * Kubernetes Secret for the operator, which rotates onion keys by writing a
 * new file; the relay picks it up without restarting.
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from './bytes.js';
import { ed25519PublicFromSeed, type Rng, randomBytes, x25519PublicFromSecret } from './crypto.js';
import { InvalidError } from './errors.js';

export interface OnionKey {
  secret: Uint8Array;
  public: Uint8Array;
  createdAt: number;
}

export interface NodeKeys {
  identitySeed: Uint8Array;
  identity: Uint8Array;
  identityCreatedAt: number;
  /** Newest first; `onionKeys[0]` is the one advertised. */
  onionKeys: OnionKey[];
}

export const MAX_KEY_FILE_BYTES = 64 * 1024;

export function generateOnionKey(rng: Rng = randomBytes, now = Date.now()): OnionKey {
  const secret = rng(32);
  return { secret, public: x25519PublicFromSecret(secret), createdAt: now };
}

export function generateNodeKeys(rng: Rng = randomBytes, now = Date.now()): NodeKeys {
  const identitySeed = rng(32);
  return {
    identitySeed,
    identity: ed25519PublicFromSeed(identitySeed),
    identityCreatedAt: now,
    onionKeys: [generateOnionKey(rng, now)],
  };
}

/** A new current onion key; previous keys stay until their grace period runs out. */
export function rotateOnionKey(
  keys: NodeKeys,
  graceMs: number,
  rng: Rng = randomBytes,
  now = Date.now(),
): NodeKeys {
  return {
    ...keys,
    onionKeys: pruneOnionKeys([generateOnionKey(rng, now), ...keys.onionKeys], graceMs, now),
  };
}

/** Key i >= 1 was replaced when key i-1 was created, and is kept for `graceMs` after that. */
export function pruneOnionKeys(keys: OnionKey[], graceMs: number, now: number): OnionKey[] {
  return keys.filter((_, i) => i === 0 || now - keys[i - 1]!.createdAt < graceMs);
}

export function encodeNodeKeys(keys: NodeKeys): Uint8Array {
  return utf8(
    `${JSON.stringify(
      {
        version: 1,
        identitySeed: toBase64(keys.identitySeed),
        identityCreatedAt: keys.identityCreatedAt,
        onionKeys: keys.onionKeys.map((k) => ({ secret: toBase64(k.secret), createdAt: k.createdAt })),
      },
      null,
      2,
    )}\n`,
  );
}

function key32(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw new InvalidError('key file', `${what} must be a base64 string`);
  const b = fromBase64(v, what);
  if (b.length !== 32) throw new InvalidError('key file', `${what} must be 32 bytes`);
  return b;
}

function time(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new InvalidError('key file', `${what} must be a time`);
  return v;
}

export function decodeNodeKeys(bytes: Uint8Array): NodeKeys {
  if (bytes.length > MAX_KEY_FILE_BYTES) throw new InvalidError('key file', 'too large');
  let doc: unknown;
  try {
    doc = JSON.parse(fromUtf8(bytes, 'key file'));
  } catch (e) {
    if (e instanceof InvalidError) throw e;
    throw new InvalidError('key file', 'not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new InvalidError('key file', 'not an object');
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) throw new InvalidError('key file', 'unsupported version');
  const identitySeed = key32(d.identitySeed, 'identitySeed');
  if (!Array.isArray(d.onionKeys) || d.onionKeys.length === 0 || d.onionKeys.length > 16) {
    throw new InvalidError('key file', 'onionKeys must list 1 to 16 keys');
  }
  const onionKeys = d.onionKeys.map((k: unknown, i: number) => {
    if (typeof k !== 'object' || k === null)
      throw new InvalidError('key file', `onionKeys[${i}] not an object`);
    const o = k as Record<string, unknown>;
    const secret = key32(o.secret, `onionKeys[${i}].secret`);
    return {
      secret,
      public: x25519PublicFromSecret(secret),
      createdAt: time(o.createdAt, `onionKeys[${i}].createdAt`),
    };
  });
  return {
    identitySeed,
    identity: ed25519PublicFromSeed(identitySeed),
    identityCreatedAt: time(d.identityCreatedAt, 'identityCreatedAt'),
    onionKeys,
  };
}
