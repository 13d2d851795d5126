/**
 * The client's view of the network: the verified consensus turned into
 * relays that path selection and circuit building can use.
 *
 * Follows dir-spec §3.4.1 (consensus entries) and path-spec §2.2 (what a
 * position needs); the consensus itself is verified in net/dir-client.ts (a
 * Shallot network) or ctor-dir.ts (a C tor network). On a C tor network each
 * relay also carries its RSA legacy id (`legacyIds`, from
 * core/ctor/to-consensus.ts): the ntor node id, the EXTEND2 legacy link
 * specifier and the RSA identity its link must prove (tor-spec §4.2, §5.1.2).
 */
import { toHex } from '../core/bytes.js';
import { legacyIdFromEd25519 } from '../core/crypto.js';
import type { Consensus } from '../core/dir/consensus.js';
import type { ConsensusRelay } from '../core/dir/relay-entry.js';
import { acceptsSomePort, allowsAnyPort, exitPolicyAllows } from '../core/exit-policy.js';
import { type LinkSpecifier, linkTarget } from '../core/link-specifiers.js';
import type { PathRelay } from '../core/path.js';
import type { HopTarget } from '../net/hop-target.js';

/**
 * A relay a circuit can end at: what path selection checks the other hops
 * against (family, subnet) and how to reach it. A consensus relay is one;
 * so is a rendezvous point known only from the link specifiers a client
 * sent (`targetFromLinkSpecifiers`), with no consensus entry behind it.
 */
export interface CircuitTarget extends PathRelay, HopTarget {
  /** Hex Ed25519 identity. */
  id: string;
}

/**
 * The RSA legacy id link specifiers name a relay by (rend-spec-v3 §2.5.2.2
 * intro points, §3.3 the rendezvous point): a C tor relay's own, which C tor
 * extends to and checks (CERTS types 2 and 7); else derived from the Ed25519
 * id, as Shallot relays, which have no RSA key, answer to.
 */
export function relayLegacyId(r: { identity: Uint8Array; legacyId?: Uint8Array }): Uint8Array {
  return r.legacyId ?? legacyIdFromEd25519(r.identity);
}

/** A consensus relay with what both path selection and circuit building need. */
export interface NetRelay extends CircuitTarget {
  entry: ConsensusRelay;
}

export class NetDir {
  readonly relays: NetRelay[];
  private readonly byId: Map<string, NetRelay>;

  /** `legacyIds`: hex Ed25519 id → RSA identity digest, for C tor relays (none on a Shallot network). */
  constructor(
    readonly consensus: Consensus,
    legacyIds?: ReadonlyMap<string, Uint8Array>,
  ) {
    this.relays = consensus.relays.map((r) => this.relay(r, legacyIds?.get(toHex(r.identity))));
    this.byId = new Map(this.relays.map((r) => [r.id, r]));
  }

  private relay(r: ConsensusRelay, legacyId: Uint8Array | undefined): NetRelay {
    return {
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
      ...(acceptsSomePort(r.exitPolicy) ? {} : { exitsNowhere: true }),
      ...(legacyId ? { legacyId } : {}),
    };
  }

  get(id: string): NetRelay | undefined {
    return this.byId.get(id);
  }

  /**
   * The relay link specifiers name, as a last hop (rend-spec-v3 §3.3: the
   * rendezvous point in INTRODUCE2): its consensus entry when its Ed25519
   * id is listed, else a target made from the specifiers alone (no flags,
   * no bandwidth, no family: path selection only keeps the other hops apart
   * from it). Either way with `onionKey`, as C tor extends with the key it
   * was given (hs_get_extend_info_from_lspecs), whatever the consensus says.
   * Undefined without an Ed25519 id or an IPv4 address: our EXTEND2 names
   * both (tor-spec §5.1.2), and the legacy id the specifiers give (a C tor
   * relay's RSA identity), else one derived from the Ed25519 id.
   */
  targetFromLinkSpecifiers(
    specs: readonly LinkSpecifier[],
    onionKey: Uint8Array,
    nickname = 'unlisted',
  ): CircuitTarget | undefined {
    const { ed25519, ipv4, legacyId } = linkTarget(specs);
    if (!ed25519) return undefined;
    const listed = this.byId.get(toHex(ed25519));
    if (listed) return { ...listed, ntorKey: onionKey };
    if (!ipv4) return undefined;
    return {
      id: toHex(ed25519),
      nickname,
      identity: ed25519,
      ntorKey: onionKey,
      address: ipv4.addr,
      port: ipv4.port,
      flags: [],
      bandwidth: 0,
      family: [],
      ...(legacyId ? { legacyId } : {}),
    };
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
