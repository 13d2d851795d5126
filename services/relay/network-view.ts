/**
 * A relay's view of its network for the pivot checks (core/relay-pivot.ts):
 * the relays its verified consensus lists (EXTEND2 targets) and the ports
 * an exit must not reach (network re-entry).
 *
 * Overview: the consensus comes from the descriptor publisher, which holds
 * the process's shared copy (consensus-cache.ts, fetched on dir-spec §5.1's
 * schedule). A client may hold a newer consensus than ours
 * (a relay just joined or moved, or we started after the client fetched),
 * so a miss — an EXTEND2 target not listed as asked, or no consensus at
 * all — fetches it at once and checks again before refusing. The shared
 * cache coalesces those fetches and allows one on-demand fetch per 5 s
 * for the whole process (its schedule's fetches do not count; a miss
 * sooner is refused at once, without a fetch), so hostile EXTEND2s cannot
 * turn a relay into a consensus-download amplifier against the
 * authorities. This view keeps no rate limit of its own and rechecks only
 * after a real fetch: it used to count a fetch the cache had refused as
 * done, and so refused EXTEND2s to a newly listed relay for ~10 s after
 * bootstrap (clients rode it out with retries).
 *
 * Why EXTEND2 targets are checked against the consensus at all, where C tor
 * (circuit_extend, tor-spec §5.1.2) dials whatever the link specifiers say
 * and lets the link handshake prove the identity: C tor's guard against
 * relays as pivots into private networks is the private-address rule
 * (ExtendAllowPrivateAddresses 0), and on a loopback testnet every node is
 * 127.0.0.1, so that rule would forbid everything or nothing. Without the
 * listing, any client could make a relay open connections — and send a TLS
 * ClientHello or, on plain `ws` links, an HTTP upgrade request — to any
 * port of the host (ops and fault endpoints, authorities' DirPorts, the
 * operator's own services), and learn from the timing whether something
 * listens there; the identity check comes only after those bytes went
 * out. Being listed (identity, address and ORPort) is the testnet's
 * substitute, and the identity is still proved in the handshake
 * (net/channel-pool.ts), as C tor does.
 *
 * Design notes: without any consensus an exit fails closed (every target
 * counts as re-entry) — it cannot tell a relay's port from any other.
 */
import type { Consensus } from '../core/dir/consensus.js';
import type { ConsensusRelay } from '../core/dir/relay-entry.js';
import {
  checkListed,
  type ExtendRefusal,
  type ExtendTarget,
  type HostPort,
  isReentry,
  listedRelay,
  reentrySet,
} from '../core/relay-pivot.js';

/**
 * The consensus's part of the re-entry set, made once per consensus for
 * every relay of the process that shares it (consensus-cache.ts): 1,000
 * relays each holding their own set of 2,000 keys cost megabytes.
 */
const consensusSets = new WeakMap<Consensus, Set<string>>();

function consensusReentrySet(c: Consensus): Set<string> {
  let set = consensusSets.get(c);
  if (!set) {
    set = reentrySet(c, []);
    consensusSets.set(c, set);
  }
  return set;
}

export interface ConsensusSource {
  readonly consensus: Consensus | null;
  /** Fetches now (coalesced and rate-limited by the source); whether a fetch was waited for. */
  refreshConsensus(): Promise<boolean>;
}

export interface NetworkViewOptions {
  /** Always refused to exits: authorities' DirPorts, the relay's own port, the operator's list. */
  reentryReject: HostPort[];
}

export class NetworkView {
  private readonly always: HostPort[];
  private inflight: Promise<boolean> | null = null;
  private alwaysSet: Set<string> | null = null;

  constructor(
    private readonly source: ConsensusSource,
    opts: NetworkViewOptions,
  ) {
    this.always = [...opts.reentryReject];
  }

  /** Adds ports learned after start (the in-process launcher's SOCKS and ops ports). */
  rejectReentry(list: readonly HostPort[]): void {
    this.always.push(...list);
    this.alwaysSet = null;
  }

  /** The consensus entry for `identity`; on a miss, after one refresh. Null without a consensus. */
  async listedAt(identity: Uint8Array): Promise<ConsensusRelay | undefined | null> {
    let c = this.source.consensus;
    let entry = c ? listedRelay(c, identity) : undefined;
    if (!entry && (await this.refresh())) {
      c = this.source.consensus;
      entry = c ? listedRelay(c, identity) : undefined;
    }
    return c ? entry : null;
  }

  /**
   * Null when the consensus lists `t` (identity, address and ORPort), else
   * why not — after one refresh, since a relay that moved or just joined is
   * listed only in a newer consensus.
   */
  async checkExtend(t: ExtendTarget): Promise<ExtendRefusal | null> {
    const judge = () => {
      const c = this.source.consensus;
      return c ? checkListed(listedRelay(c, t.identity), t) : 'no-consensus';
    };
    const first = judge();
    if (first === null || !(await this.refresh())) return first;
    return judge();
  }

  /** Whether an exit must refuse `host:port` (an IP literal) as network re-entry. */
  async isReentry(host: string, port: number): Promise<boolean> {
    if (!this.source.consensus) await this.refresh();
    const c = this.source.consensus;
    if (!c) return true;
    this.alwaysSet ??= reentrySet(null, this.always);
    return isReentry(this.alwaysSet, host, port) || isReentry(consensusReentrySet(c), host, port);
  }

  /** Asks the source for a fresh consensus (one call in flight per relay); true if a fetch was waited for. */
  private refresh(): Promise<boolean> {
    this.inflight ??= this.source.refreshConsensus().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }
}
