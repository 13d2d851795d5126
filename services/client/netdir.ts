/**
 * The client's view of the network: the verified consensus turned into
 * relays that path selection and circuit building can use.
 *
 * Follows dir-spec §3.4.1 (consensus entries) and path-spec §2.2 (what a
 * position needs); the consensus itself is verified in dir-client.ts.
 */
import { toHex } from '../core/bytes.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { ConsensusRelay } from '../core/dir/relay-entry.js';
import { allowsAnyPort, exitPolicyAllows } from '../core/exit-policy.js';
import type { PathRelay } from '../core/path.js';
import type { HopTarget } from '../net/origin-circuit.js';

/** A consensus relay with what both path selection and circuit building need. */
export interface NetRelay extends PathRelay, HopTarget {
  id: string;
  entry: ConsensusRelay;
}

export class NetDir {
  readonly relays: NetRelay[];
  private readonly byId: Map<string, NetRelay>;

  constructor(readonly consensus: Consensus) {
    this.relays = consensus.relays.map((r) => ({
      id: toHex(r.identity),
      entry: r,
      nickname: r.nickname,
      identity: r.identity,
      ntorKey: r.ntorOnionKey,
      address: r.address,
      port: r.orPort,
      flags: r.flags,
      bandwidth: r.bandwidth,
      family: r.family,
      allowsExitPort: (port: number) => allowsAnyPort(r.exitPolicy, port),
    }));
    this.byId = new Map(this.relays.map((r) => [r.id, r]));
  }

  get(id: string): NetRelay | undefined {
    return this.byId.get(id);
  }

  /** Whether `relay` may exit to host:port (an IP literal is checked exactly, names by port). */
  static exitAllows(relay: NetRelay, host: string, port: number): boolean {
    return exitPolicyAllows(relay.entry.exitPolicy, host, port);
  }

  /** Seconds since valid-after (for metrics and `shallot status`). */
  ageSeconds(nowMs: number): number {
    return Math.max(0, (nowMs - this.consensus.validAfterMs) / 1000);
  }

  isFresh(nowMs: number): boolean {
    return nowMs < this.consensus.freshUntilMs;
  }
}
