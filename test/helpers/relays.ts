// In-process relays on 127.0.0.1 and circuits through them, for the
// integration tests and the end-to-end bench.

import { Registry } from 'prom-client';
import type { HandshakeName } from '../../services/core/create-handshake.js';
import { parseExitPolicy } from '../../services/core/exit-policy.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import type { ChannelPool } from '../../services/net/channel-pool.js';
import type { HopTarget } from '../../services/net/hop-target.js';
import type { LinkShaping } from '../../services/net/link-delay.js';
import { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { QueueMemory } from '../../services/relay/queue-memory.js';
import { Relay } from '../../services/relay/relay.js';
import type { RelayLimits } from '../../services/relay/relay-options.js';
import { silentLogger } from '../../services/runtime/log.js';

/** Exits only to this machine. */
export const LOCAL_EXIT_POLICY = parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']);

/** Starts a relay on an OS-chosen 127.0.0.1 port with fresh keys, wss links (unless `tls: false`) and LOCAL_EXIT_POLICY. */
export async function startLocalRelay(
  nickname: string,
  opts: {
    tls?: boolean;
    limits?: Partial<RelayLimits>;
    registry?: Registry;
    shaping?: LinkShaping | null;
    queueMemory?: QueueMemory;
  } = {},
): Promise<Relay> {
  const r = new Relay(
    {
      logger: silentLogger,
      registry: opts.registry ?? new Registry(),
      ...(opts.queueMemory ? { queueMemory: opts.queueMemory } : {}),
    },
    {
      nickname,
      host: '127.0.0.1',
      port: 0,
      tls: opts.tls ?? true,
      keys: generateNodeKeys(),
      exitPolicy: LOCAL_EXIT_POLICY,
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.shaping ? { shaping: opts.shaping } : {}),
    },
  );
  await r.start();
  return r;
}

/** Where a circuit reaches `r` as a hop. */
export const hopTarget = (r: Relay): HopTarget => ({
  nickname: r.nickname,
  identity: r.identity,
  ntorKey: r.ntorKey,
  address: '127.0.0.1',
  port: r.port,
});

/** Where a channel pool dials `r`. */
export const linkPeer = (r: Relay) => ({ identity: r.identity, address: '127.0.0.1', port: r.port });

/** Builds a circuit through `path` in order (CREATE2 to the first, EXTEND2 to the rest). */
export async function buildCircuit(
  pool: ChannelPool,
  path: readonly Relay[],
  handshake: HandshakeName = 'ntor',
): Promise<OriginCircuit> {
  const [first, ...rest] = path;
  if (!first) throw new Error('empty path');
  const ch = await pool.get(linkPeer(first));
  const circ = await OriginCircuit.create(ch, hopTarget(first), { handshake });
  for (const r of rest) await circ.extend(hopTarget(r));
  return circ;
}
