/**
 * The authority's relay descriptors (dir-spec §3.2, accepting descriptor
 * uploads): which it stores, which it has verified by a reachability test,
 * what it measured, and the relay entries with flags its vote lists
 * (dir-spec §3.4.2).
 *
 * Overview:
 * - `accept(bytes)`: newest per identity wins; re-uploading the stored one
 *   is accepted (relays retry); older ones, bad signatures, oversized or
 *   malformed documents and publication times outside the window (future
 *   skew, max age: Tor's 12 h / 24 h defaults) are refused
 *   (DescriptorRefusedError).
 * - With a `ReachabilityTester` (issue 12): a descriptor at a new
 *   address:port is "unverified" until a link handshake to that address
 *   proves the relay holds the identity (reachability.ts); it is then voted
 *   on, else dropped. Unverified descriptors are capped (503 beyond) and
 *   tested with bounded concurrency, one test per identity; one naming an
 *   address:port where a verified relay of another identity is still
 *   connected is refused outright.
 * - `voteRelays()`: re-tests listed relays within a deadline, then gives
 *   each fresh verified descriptor its flags (assignFlags) with this
 *   authority's observed uptime, credible bandwidth and AuthDirMaxServersPerAddr.
 *
 * Not in this module: options and refusals (descriptor-options.ts), the
 * rules themselves (admission.ts, core/dir/flags.ts), the bandwidth
 * measurements kept (measurements.ts),
 * the probe (reachability.ts), the vote around the entries (authority.ts).
 */
import { compareBytes, toHex } from '../core/bytes.js';
import { descriptorDigest, type RelayDescriptor, verifyRelayDescriptor } from '../core/dir/descriptor.js';
import { MAX_DESCRIPTOR_BYTES, MAX_RELAYS } from '../core/dir/fields.js';
import { assignFlags, credibleBandwidth, voteRelayFromDescriptor } from '../core/dir/flags.js';
import type { VoteRelay } from '../core/dir/relay-entry.js';
import { ShallotError } from '../core/errors.js';
import {
  DEFAULT_MAX_SERVERS_PER_ADDR,
  DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
  omitAsSybil,
  RunHistory,
  testnetMinUptime,
} from './admission.js';
import {
  ADMISSION_TESTS,
  DEFAULT_MAX_UNVERIFIED_DESCRIPTORS,
  DescriptorRefusedError,
  type DescriptorStoreContext,
} from './descriptor-options.js';
import { RelayMeasurements } from './measurements.js';
import { type ProbeResult, type ProbeTarget, type ReachabilityTester, whereOf } from './reachability.js';

interface StoredDescriptor {
  desc: RelayDescriptor;
  raw: Uint8Array;
  digestHex: string;
  /** A handshake at this descriptor's address:orPort proved its identity (always true without probing). */
  verified: boolean;
}

const probeTarget = (d: RelayDescriptor): ProbeTarget => ({
  nickname: d.nickname,
  identity: d.identity,
  ntorOnionKey: d.ntorOnionKey,
  address: d.address,
  orPort: d.orPort,
  ...(d.linkUrl !== undefined ? { linkUrl: d.linkUrl } : {}),
});

export class DescriptorStore {
  private readonly descriptors = new Map<string, StoredDescriptor>();
  /** Ids whose stored descriptor awaits its reachability test. */
  private readonly unverified = new Set<string>();
  /** address:orPort -> id of the verified relay there. */
  private readonly verifiedAt = new Map<string, string>();
  private readonly history = new RunHistory();
  private readonly bandwidth: RelayMeasurements;
  /** Ids whose reachability test (admit) is running. */
  private readonly admitting = new Set<string>();
  /** Null: no reachability tests, every valid descriptor is voted on. */
  private tester: ReachabilityTester | null = null;
  private stopped = false;

  constructor(private readonly ctx: DescriptorStoreContext) {
    this.bandwidth = new RelayMeasurements({
      now: ctx.now,
      metrics: ctx.metrics,
      name: ctx.name,
      intervalMs: ctx.intervalMs,
      relayCount: () => this.descriptors.size,
    });
  }

  /** (Re)starts with `tester` (null: no reachability tests); stored descriptors are kept. */
  open(tester: ReachabilityTester | null): void {
    this.tester = tester;
    this.stopped = false;
  }

  get size(): number {
    return this.descriptors.size;
  }

  /** The oldest descriptor kept and voted on (C tor ROUTER_MAX_AGE_TO_PUBLISH, 24 h). */
  private get maxAgeMs(): number {
    return this.ctx.opts.descriptorMaxAgeMs ?? 24 * 3600_000;
  }

  get unverifiedCount(): number {
    return this.unverified.size;
  }

  /** Ends pending tests and measurements (their results are ignored). */
  close(): void {
    this.stopped = true;
    this.tester?.close();
  }

  /** Stores an uploaded descriptor or throws DescriptorRefusedError; returns the reply text. */
  accept(body: Uint8Array): string {
    const { opts } = this.ctx;
    let desc: RelayDescriptor;
    try {
      desc = verifyRelayDescriptor(body, {
        nowMs: this.ctx.now(),
        maxBytes: MAX_DESCRIPTOR_BYTES,
        maxSkewMs: opts.descriptorSkewMs ?? 12 * 3600_000,
        maxAgeMs: this.maxAgeMs,
      });
    } catch (e) {
      if (e instanceof ShallotError) throw new DescriptorRefusedError('invalid', e.message);
      throw e;
    }
    const id = toHex(desc.identity);
    const digestHex = toHex(descriptorDigest(body));
    const have = this.descriptors.get(id);
    if (have) {
      if (have.digestHex === digestHex) return 'already have this descriptor';
      if (have.desc.publishedMs >= desc.publishedMs) {
        throw new DescriptorRefusedError('not-newer', 'not newer than the one we have');
      }
    } else if (this.descriptors.size >= MAX_RELAYS) {
      throw new DescriptorRefusedError('too-many-relays', 'too many relays', 503);
    }
    // Same identity proven at the same address: no new test needed.
    const verified =
      this.tester === null || (have?.verified === true && whereOf(have.desc) === whereOf(desc));
    if (!verified) {
      // Only while the holder is still there (its channel open): a relay may reuse a dead one's port.
      const holder = this.verifiedAt.get(whereOf(desc));
      const held = holder !== undefined ? this.descriptors.get(holder) : undefined;
      if (holder !== id && held && this.tester?.isHeld(probeTarget(held.desc))) {
        throw new DescriptorRefusedError(
          'address-taken',
          'another relay is verified at that address and port',
        );
      }
      if (
        !this.unverified.has(id) &&
        this.unverified.size >= (opts.maxUnverifiedDescriptors ?? DEFAULT_MAX_UNVERIFIED_DESCRIPTORS)
      ) {
        throw new DescriptorRefusedError(
          'unverified-full',
          'too many descriptors awaiting a reachability test',
          503,
        );
      }
    }
    const stored: StoredDescriptor = { desc, raw: body, digestHex, verified };
    this.store(id, stored);
    this.ctx.log.debug('descriptor accepted', {
      nickname: desc.nickname,
      identity: id.slice(0, 8),
      verified,
    });
    if (verified) return 'descriptor accepted';
    void this.admit(id);
    return 'descriptor accepted; reachability test pending';
  }

  /** Drops expired descriptors; returns the verified ones (the only ones voted on). */
  private fresh(nowMs: number): StoredDescriptor[] {
    const maxAge = this.maxAgeMs;
    const out: StoredDescriptor[] = [];
    for (const [id, d] of this.descriptors) {
      if (d.desc.publishedMs < nowMs - maxAge) this.drop(id);
      else if (d.verified) out.push(d);
    }
    return out;
  }

  private store(id: string, s: StoredDescriptor): void {
    const old = this.descriptors.get(id);
    if (old?.verified && this.verifiedAt.get(whereOf(old.desc)) === id)
      this.verifiedAt.delete(whereOf(old.desc));
    this.descriptors.set(id, s);
    if (s.verified) {
      this.unverified.delete(id);
      if (this.tester) this.verifiedAt.set(whereOf(s.desc), id);
    } else {
      this.unverified.add(id);
    }
    this.ctx.metrics.unverifiedDescriptors.set({ authority: this.ctx.name }, this.unverified.size);
  }

  private drop(id: string): void {
    const old = this.descriptors.get(id);
    if (old && this.verifiedAt.get(whereOf(old.desc)) === id) this.verifiedAt.delete(whereOf(old.desc));
    this.descriptors.delete(id);
    this.unverified.delete(id);
    this.bandwidth.forget(id);
    this.history.forget(id);
    this.tester?.forget(id);
    this.ctx.metrics.unverifiedDescriptors.set({ authority: this.ctx.name }, this.unverified.size);
  }

  private countProbe(result: ProbeResult): void {
    this.ctx.metrics.reachabilityProbes.inc({ authority: this.ctx.name, result });
  }

  /**
   * The reachability test of `id`'s stored descriptor: verified if the
   * handshake proves its identity at its address, else dropped (and counted
   * as a refusal) — after ADMISSION_TESTS tests half an interval apart when
   * they time out. One test per identity at a time: a descriptor that
   * replaced the tested one while it ran is tested next, so re-uploads
   * cannot queue up probes.
   */
  private async admit(id: string): Promise<void> {
    const tester = this.tester;
    if (!tester || this.admitting.has(id)) return;
    this.admitting.add(id);
    let timeouts = 0;
    try {
      for (;;) {
        const s = this.descriptors.get(id);
        if (!s || s.verified || this.stopped) return;
        const result = await tester.probe(probeTarget(s.desc));
        if (this.stopped) return;
        this.countProbe(result);
        this.history.observe(id, result, this.ctx.now());
        if (this.descriptors.get(id) !== s) continue;
        if (result === 'up') {
          s.verified = true;
          this.store(id, s);
          this.ctx.log.debug('relay verified', { nickname: s.desc.nickname, identity: id.slice(0, 8) });
          if (this.measures) void this.measure(id, s);
          return;
        }
        // A timeout may be this authority's own overload (issue 17): test again
        // before dropping, as C tor's authorities keep a descriptor and re-test.
        if (result === 'timeout' && ++timeouts < ADMISSION_TESTS) {
          await new Promise((r) => setTimeout(r, this.ctx.intervalMs / 2).unref());
          continue;
        }
        this.drop(id);
        const reason = result === 'wrong-identity' ? 'wrong-identity' : 'unreachable';
        this.ctx.metrics.descriptorsRefused.inc({ authority: this.ctx.name, reason });
        this.ctx.log.debug('unverified descriptor dropped', { identity: id.slice(0, 8), result });
        return;
      }
    } finally {
      this.admitting.delete(id);
    }
  }

  /**
   * Re-tests verified relays (free while their channel is open) and records
   * the round (admission.ts observeRound: failures count only when at most
   * half failed). Bounded by `deadline`, so the vote is never late: a test
   * still running then counts as a timeout, one still waiting for a slot
   * as no test at all.
   */
  private async reprobe(descs: readonly StoredDescriptor[], deadline: number): Promise<void> {
    const tester = this.tester;
    if (!tester || descs.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), Math.max(0, deadline - this.ctx.now()));
    });
    const results = new Map<string, ProbeResult>();
    const lateIds = new Set<string>();
    let untested = 0;
    await Promise.all(
      descs.map(async (d) => {
        const target = probeTarget(d.desc);
        const raced = await Promise.race([tester.probe(target, true), late]);
        const id = toHex(d.desc.identity);
        const current = this.descriptors.get(id);
        // Never started (still waiting for a slot): untested this round, not
        // failed. C tor records only tests that ran (dirserv_orconn_tls_done
        // moves last_reachable forward; nothing moves it back); the backlog
        // is this authority's, and REACHABLE_TIMEOUT_MS still bounds a relay
        // that stays untested. Nor does a test of an address the relay left
        // during the round count (C tor credits only the descriptor's address,
        // router_has_orport); its new address has its own test (admit).
        if (
          (raced === 'late' && tester.isQueued(target)) ||
          !current ||
          whereOf(current.desc) !== whereOf(d.desc)
        ) {
          untested++;
          return;
        }
        if (raced === 'late') lateIds.add(id);
        const result = raced === 'late' ? 'timeout' : raced;
        this.countProbe(result);
        results.set(id, result);
      }),
    );
    clearTimeout(timer);
    const verdict = this.history.observeRound(results, this.ctx.now());
    if (!verdict.trusted) {
      this.ctx.log.warn('most reachability tests failed this round; trusting none of the failures', {
        tested: verdict.tested,
        failed: verdict.failed,
      });
    } else if (verdict.failed > 0 || untested > 0) {
      // Which relays failed and how (issue 17: a few relays lost Running at 2,000 relays, cause unseen).
      const failures = [...results].filter(([, r]) => r !== 'up');
      this.ctx.log.info('reachability re-tests failed', {
        tested: verdict.tested,
        failed: verdict.failed,
        untested,
        dropped: verdict.dropped.map((id) => id.slice(0, 8)).join(' '),
        relays: failures
          .slice(0, 20)
          .map(([id, r]) => `${id.slice(0, 8)}:${lateIds.has(id) ? 'late' : r}`)
          .join(' '),
      });
    }
  }

  /**
   * Measures `id` (reachability.ts) unless a measurement is in flight or
   * fresh (measurements.ts); a failed one is retried at the next vote.
   */
  private async measure(id: string, s: StoredDescriptor): Promise<void> {
    const tester = this.tester;
    if (!tester) return;
    await this.bandwidth.measure(
      id,
      () => tester.measure(probeTarget(s.desc)),
      () => this.descriptors.get(id) === s,
    );
  }

  private get measures(): boolean {
    return this.tester !== null && (this.ctx.opts.measureBandwidth ?? true);
  }

  /**
   * The relay entries of this authority's next vote, sorted by identity
   * (dir-spec §3.4.1), after re-testing them for at most `probeTimeoutMs`;
   * null once closed. `nowMs` is when the flags were decided.
   */
  async voteRelays(probeTimeoutMs: number): Promise<{ relays: VoteRelay[]; nowMs: number } | null> {
    const { opts, now } = this.ctx;
    const descs = this.fresh(now()).sort((a, b) => compareBytes(a.desc.identity, b.desc.identity));
    await this.reprobe(descs, now() + probeTimeoutMs);
    if (this.stopped) return null;
    const nowMs = now();
    const probing = this.tester !== null;
    const reachable = (id: string) => !probing || this.history.reachable(id, nowMs);
    // The scanner's MEASURE_BYTES fit in any relay's BandwidthBurst, so a
    // capped relay would measure as fast as the others. sbws scales the
    // relay's descriptor bandwidth (min of BandwidthRate and observed) by
    // its measured speed; Shallot keeps the simpler half of that: a
    // measurement never exceeds the (believable) bandwidth the relay itself
    // advertises, so a lower BandwidthRate lowers the weight (issue 18).
    const claimed = new Map(descs.map((d) => [toHex(d.desc.identity), credibleBandwidth(d.desc.bandwidth)]));
    const measuredOf = (id: string) => {
      const m = this.measures ? this.bandwidth.median(id) : undefined;
      return m !== undefined ? Math.min(m, claimed.get(id) ?? Number.POSITIVE_INFINITY) : undefined;
    };
    if (this.measures) for (const d of descs) void this.measure(toHex(d.desc.identity), d);
    const uptimeOf = (d: StoredDescriptor) =>
      probing ? this.history.uptimeSec(toHex(d.desc.identity), nowMs) : d.desc.uptimeSec;
    // C tor: relays beyond AuthDirMaxServersPerAddr on one address are not Running.
    const sybils = omitAsSybil(
      descs
        .filter((d) => reachable(toHex(d.desc.identity)))
        .map((d) => {
          const id = toHex(d.desc.identity);
          return {
            id,
            address: d.desc.address,
            bandwidth: credibleBandwidth(d.desc.bandwidth, measuredOf(id)),
            uptimeSec: uptimeOf(d),
          };
        }),
      opts.maxServersPerAddr ?? DEFAULT_MAX_SERVERS_PER_ADDR,
      {
        maxOnAuthority: opts.maxServersPerAuthAddr ?? DEFAULT_MAX_SERVERS_PER_AUTH_ADDR,
        addresses: this.ctx.authorityAddresses,
      },
    );
    const flags = assignFlags(
      descs.map((d) => d.desc),
      {
        nowMs,
        reachable: (id) => reachable(id) && !sybils.has(id),
        testnet: opts.testnet,
        badExits: opts.badExits,
        maxDescriptorAgeMs: this.maxAgeMs,
        ...(probing ? { uptimeSec: (id: string) => this.history.uptimeSec(id, nowMs) } : {}),
        measuredBandwidth: measuredOf,
        testnetMinUptimeSec: opts.minUptimeSec ?? testnetMinUptime(opts.votingIntervalSec),
      },
    );
    this.updateVoteMetrics(descs, sybils, reachable);
    const relays = descs.map((d) => {
      const id = toHex(d.desc.identity);
      return voteRelayFromDescriptor(d.desc, d.raw, flags.get(id) ?? [], measuredOf(id));
    });
    return { relays, nowMs };
  }

  private updateVoteMetrics(
    descs: readonly StoredDescriptor[],
    sybils: ReadonlySet<string>,
    reachable: (id: string) => boolean,
  ): void {
    const m = this.ctx.metrics;
    const a = this.ctx.name;
    const ids = descs.map((d) => toHex(d.desc.identity));
    m.voteRelaysOmitted.set({ authority: a, reason: 'sybil' }, sybils.size);
    m.voteRelaysOmitted.set(
      { authority: a, reason: 'unreachable' },
      ids.filter((id) => !reachable(id)).length,
    );
    m.bandwidthCapped.set(
      { authority: a },
      descs.filter((d) => d.desc.bandwidth > credibleBandwidth(d.desc.bandwidth)).length,
    );
  }
}
