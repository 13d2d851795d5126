/**
 * What a circuit needs to know about a relay to build through it: the
 * identity and ntor onion key for CREATE2/EXTEND2 (tor-spec §5.1.4) and the
 * address for the link (and the EXTEND2 link specifiers, §5.1.2).
 */
import type { ConsensusRelay } from '../core/dir/relay-entry.js';

/** What a circuit needs to know about a relay to build through it. */
export interface HopTarget {
  nickname: string;
  identity: Uint8Array;
  ntorKey: Uint8Array;
  address: string;
  port: number;
  /** A C tor relay's RSA legacy id (core/ctor/to-consensus.ts); Shallot relays derive theirs from `identity`. */
  legacyId?: Uint8Array;
}

/** Where a circuit reaches a relay the consensus lists. */
export function hopTargetOf(
  r: Pick<ConsensusRelay, 'nickname' | 'identity' | 'ntorOnionKey' | 'address' | 'orPort'>,
): HopTarget {
  return {
    nickname: r.nickname,
    identity: r.identity,
    ntorKey: r.ntorOnionKey,
    address: r.address,
    port: r.orPort,
  };
}
