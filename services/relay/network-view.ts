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
 * all — refreshes it once before refusing, at most once per `minRefreshMs`
 * (default 10 s, a testnet choice: C tor has no such refresh) and with one
 * fetch in flight (and the shared cache again coalesces and rate-limits
 * them for the whole process), so hostile EXTEND2s cannot turn a relay into a
 * consensus-download amplifier against the authorities.
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
  refreshConsensus(): Promise<void>;
}

export interface NetworkViewOptions {
  /** Always refused to exits: authorities' DirPorts, the relay's own port, the operator's list. */
  reentryReject: HostPort[];
  minRefreshMs?: number;
  now?: () => number;
}

export class NetworkView {
  private readonly always: HostPort[];
  private lastRefreshMs = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  private alwaysSet: Set<string> | null = null;
  private readonly now: () => number;
  private readonly minRefreshMs: number;

  constructor(
    private readonly source: ConsensusSource,
    opts: NetworkViewOptions,
  ) {
    this.always = [...opts.reentryReject];
    this.now = opts.now ?? Date.now;
    this.minRefreshMs = opts.minRefreshMs ?? 10_000;
  }

  /** Adds ports learned after start (the in-process launcher's SOCKS and ops ports). */
  rejectReentry(list: readonly HostPort[]): void {
    this.always.push(...list);
    this.alwaysSet = null;
  }

  /** The consensus entry for `identity`; on a miss, after at most one refresh. Null without a consensus. */
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
   * why not — after at most one refresh, since a relay that moved or just
   * joined is listed only in a newer consensus.
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

  /** Refreshes the consensus unless one ran within `minRefreshMs`; true if this call waited for one. */
  private async refresh(): Promise<boolean> {
    if (this.inflight) {
      await this.inflight;
      return true;
    }
    if (this.now() - this.lastRefreshMs < this.minRefreshMs) return false;
    this.lastRefreshMs = this.now();
    this.inflight = this.source.refreshConsensus().finally(() => {
      this.inflight = null;
    });
    await this.inflight;
    return true;
  }
}
