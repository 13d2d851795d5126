/**
 * A relay pool: several relays in one process (the relay image's pool mode,
 * `--pool` / SHALLOT_POOL), each with its own keys, nickname, ORPort and
 * exit role, so each is a separate router in the consensus (tor-spec §1.1:
 * a relay is its identity key; dir-spec §3.4.1 lists each at its own
 * address and ORPort). The Kubernetes operator places `relaysPerPod` relays
 * in one pod this way (operator/desired/relay-pool.ts).
 *
 * The pool is JSON: `[{"nickname":"n","port":9001,"keyFile":"/d/0.json",
 * "keyWatch":"/s/0/keys.json","exit":false}, ...]`; keyWatch and exit are
 * optional. This file parses and checks it; main.ts starts the relays.
 *
 * Limitations: the relays share one process, so they share its event loop,
 * its memory limit (MaxMemInQueues counts the whole process, as C tor's
 * does per tor process) and one metrics registry (relay series are labelled
 * by nickname; process CPU and memory are the pool's).
 */

/** One relay of a pool. */
export interface PoolEntry {
  nickname: string;
  port: number;
  keyFile: string;
  keyWatch?: string;
  exit: boolean;
}

/** A larger pool is a configuration mistake, not a scale target: 64 relays share one event loop. */
export const MAX_POOL_RELAYS = 64;
/** The JSON of a full pool stays far below this; a longer value is refused before parsing. */
const MAX_POOL_TEXT = 64 * 1024;
/** core/dir/fields.ts: a nickname is 1-19 letters and digits (dir-spec §2.1.1 "router"). */
const NICKNAME = /^[A-Za-z0-9]{1,19}$/;

export class PoolSpecError extends Error {
  readonly code = 'ERR_RELAY_POOL_SPEC';
  constructor(message: string) {
    super(`relay pool: ${message}`);
    this.name = 'PoolSpecError';
  }
}

export function parsePoolSpec(text: string): PoolEntry[] {
  if (text.length > MAX_POOL_TEXT) throw new PoolSpecError(`longer than ${MAX_POOL_TEXT} characters`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PoolSpecError('not JSON');
  }
  if (!Array.isArray(v)) throw new PoolSpecError('not a JSON array');
  if (v.length < 1 || v.length > MAX_POOL_RELAYS) {
    throw new PoolSpecError(`needs 1 to ${MAX_POOL_RELAYS} relays, has ${v.length}`);
  }
  const entries = v.map((e, i) => entry(e, i));
  for (const field of ['nickname', 'port', 'keyFile'] as const) {
    const seen = new Set<unknown>();
    for (const e of entries) {
      if (seen.has(e[field])) throw new PoolSpecError(`two relays share ${field} ${String(e[field])}`);
      seen.add(e[field]);
    }
  }
  return entries;
}

function entry(e: unknown, i: number): PoolEntry {
  if (e === null || typeof e !== 'object' || Array.isArray(e))
    throw new PoolSpecError(`[${i}] not an object`);
  const o = e as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['nickname', 'port', 'keyFile', 'keyWatch', 'exit'].includes(k)) {
      throw new PoolSpecError(`[${i}] unknown field ${k}`);
    }
  }
  if (typeof o.nickname !== 'string' || !NICKNAME.test(o.nickname)) {
    throw new PoolSpecError(`[${i}].nickname must be 1-19 letters and digits`);
  }
  // Port 0 (any) would put an unknown port in the descriptor's place in the pod spec.
  if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
    throw new PoolSpecError(`[${i}].port must be an integer 1-65535`);
  }
  if (typeof o.keyFile !== 'string' || o.keyFile === '')
    throw new PoolSpecError(`[${i}].keyFile is required`);
  if (o.keyWatch !== undefined && (typeof o.keyWatch !== 'string' || o.keyWatch === '')) {
    throw new PoolSpecError(`[${i}].keyWatch must be a file name`);
  }
  if (o.exit !== undefined && typeof o.exit !== 'boolean')
    throw new PoolSpecError(`[${i}].exit must be a boolean`);
  return {
    nickname: o.nickname,
    port: o.port,
    keyFile: o.keyFile,
    ...(o.keyWatch === undefined ? {} : { keyWatch: o.keyWatch as string }),
    exit: o.exit === true,
  };
}
