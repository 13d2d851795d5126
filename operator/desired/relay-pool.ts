/**
 * Relay pools in desired state: with spec.relays.relaysPerPod = K > 1 the
 * relays are cut into pools of K consecutive indexes, one pod each, run by
 * the relay image's pool mode (services/relay/pool.ts, SHALLOT_POOL).
 *
 * Design notes:
 * - Pool p holds relays pK .. min(pK+K, n)-1 and is named after its first
 *   relay (`<net>-relay-<pK>`, label relay-index = pK, relay-last = the
 *   last index), so a name always means the same first relay and the
 *   StatefulSet's immutable selector never changes. Scaling adds or removes
 *   relays at the end: only the last pool changes (and restarts), and
 *   relays leave from the last pool first.
 * - Keys stay one Secret per relay (`<net>-relay-<i>-keys`), so identities
 *   survive a change of K and the per-relay rotation is unchanged. The pod
 *   mounts its relays' Secrets as one projected volume (each at r<i>/keys.json,
 *   without subPath, so kubelet updates rotated keys in place and each relay
 *   watches its own file: SHALLOT_KEY_WATCH as for one relay per pod).
 * - Relay j of a pool listens on ORPort 9001+j: the descriptor, the
 *   authorities' reachability tests and the consensus see each relay at the
 *   pod IP and its own port (dir-spec §2.1.1 "router" address and ORPort).
 *
 * Limitations: a pool's relays share the pod's resources (no per-relay
 * limit), one process and one /metrics endpoint; a failed pod takes all K
 * relays down at once.
 */
import { COPY_SRC_TO_DST_0600, copyKeysContainer, DATA_DIR, OR_PORT, SECRET_MOUNT } from './common.js';

/** The file in each relay's key Secret. */
export const RELAY_KEY_FILE = 'keys.json';

/** Pod label naming a pool's last relay (relay-index names its first). */
export const LABEL_RELAY_LAST = 'shallot.dev/relay-last';

export interface PoolRange {
  first: number;
  last: number;
}

/** The pools holding relays 0..relays-1, K to a pool (the last may hold fewer). */
export function poolRanges(relays: number, perPod: number): PoolRange[] {
  const out: PoolRange[] = [];
  for (let first = 0; first < relays; first += perPod) {
    out.push({ first, last: Math.min(first + perPod, relays) - 1 });
  }
  return out;
}

/** What one relay of a pool needs besides the pod (services/relay/pool.ts PoolEntry). */
export interface PoolRelay {
  index: number;
  nickname: string;
  exit: boolean;
  secretName: string;
}

export const poolKeyFile = (i: number) => `${DATA_DIR}/r${i}.json`;
export const poolKeyWatch = (i: number) => `${SECRET_MOUNT}/r${i}/${RELAY_KEY_FILE}`;

/** SHALLOT_POOL: relay j of the pool on ORPort 9001+j. */
export function poolSpecJson(relays: PoolRelay[]): string {
  return JSON.stringify(
    relays.map((r, j) => ({
      nickname: r.nickname,
      port: OR_PORT + j,
      keyFile: poolKeyFile(r.index),
      keyWatch: poolKeyWatch(r.index),
      exit: r.exit,
    })),
  );
}

/** Container ports `or` (as a single relay), `or-1`, ... (names are at most 15 characters). */
export function poolPorts(n: number) {
  return Array.from({ length: n }, (_, j) => ({
    name: j === 0 ? 'or' : `or-${j}`,
    containerPort: OR_PORT + j,
  }));
}

/** The pool's key Secrets as one volume, and the data volume its init container fills. */
export function poolVolumes(relays: PoolRelay[]) {
  return [
    {
      name: 'secret',
      projected: {
        defaultMode: 0o440,
        sources: relays.map((r) => ({
          secret: {
            name: r.secretName,
            items: [{ key: RELAY_KEY_FILE, path: `r${r.index}/${RELAY_KEY_FILE}` }],
          },
        })),
      },
    },
    { name: 'data', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
}

/**
 * Copies each relay's key file from its projected Secret to the data
 * volume with mode 0600, as common.ts keyCopyInitContainer does for one
 * relay (node -e: the images have no shell).
 */
export function poolKeyCopyInitContainer(image: string, pullPolicy: string, relays: PoolRelay[]) {
  const pairs = relays.map((r) => [poolKeyWatch(r.index), poolKeyFile(r.index)]);
  const script = `const fs=require('fs');for(const [src,dst] of ${JSON.stringify(pairs)}){${COPY_SRC_TO_DST_0600}}`;
  return copyKeysContainer(image, pullPolicy, script);
}
