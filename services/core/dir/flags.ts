/**
 * What an authority votes about each relay (dir-spec §3.4.2, assigning
 * flags in a vote): its flags, the bandwidth it believes, and the vote
 * entry built from an accepted descriptor.
 *
 * Overview: `assignFlags` gives every descriptor its flags from this
 * authority's observations (reachability, uptime, measured bandwidth);
 * `voteRelayFromDescriptor` turns a descriptor and its flags into a
 * `VoteRelay` (relay-entry.ts).
 *
 * Deviation (README: differs from Tor): Stable and Guard use the authority's observed
 * uptime in place of C tor's WMTBF/WFU history (rephist.c).
 *
 * Not in this module: reachability tests and uptime bookkeeping
 * (services/directory/reachability.ts, admission.ts), how flag votes
 * combine (voting.ts).
 */
import { toHex } from '../bytes.js';
import { allowsAnyPort, type ExitPolicy, exitPolicyAllows } from '../exit-policy.js';
import { descriptorDigest, type RelayDescriptor } from './descriptor.js';
import type { VoteRelay } from './relay-entry.js';
import { lowMedian } from './voting.js';

/**
 * C tor's DEFAULT_MAX_BELIEVABLE_BANDWIDTH (10 MB/s): an authority votes no
 * self-advertised bandwidth above this (router_get_advertised_bandwidth_capped,
 * used by dirserv_get_credible_bandwidth_kb for unmeasured relays).
 */
export const MAX_BELIEVABLE_BANDWIDTH = 10_000_000;

/** The flags an authority knows and votes on (its known-flags). */
export const FLAGS = [
  'BadExit',
  'Exit',
  'Fast',
  'Guard',
  'HSDir',
  'Running',
  'Stable',
  'V2Dir',
  'Valid',
] as const;

export interface FlagOptions {
  nowMs: number;
  /** TestingTorNetwork rules: every uptime and bandwidth threshold is 0. */
  testnet: boolean;
  /** Whether this authority reached the relay's ORPort recently; default: all reachable. */
  reachable?: (identityHex: string) => boolean;
  /** Lowercase hex ids this authority marks BadExit. */
  badExits?: readonly string[];
  /** Descriptors older than this are not Running (default 24 h). */
  maxDescriptorAgeMs?: number;
  /**
   * Seconds this authority has seen the relay continuously reachable (C tor
   * keeps its own uptime history, rephist.c, rather than believing the
   * relay). Default: the descriptor's self-reported uptime.
   */
  uptimeSec?: (identityHex: string) => number;
  /** What this authority measured, bytes/s; unmeasured relays count with their capped claim. */
  measuredBandwidth?: (identityHex: string) => number | undefined;
  /**
   * Testnet uptime thresholds, seconds (C tor's testnet lowers MTBF/WFU and
   * MinUptimeHidServDirectoryV2 rather than dropping them). Default 0 each.
   */
  testnetMinUptimeSec?: { stable: number; guard: number; hsdir: number };
}

/** The bandwidth flag thresholds see: measured if any, else the claim capped at MAX_BELIEVABLE_BANDWIDTH. */
export function credibleBandwidth(claimed: number, measured?: number): number {
  return measured ?? Math.min(claimed, MAX_BELIEVABLE_BANDWIDTH);
}

// policies.c private_nat_addresses, IPv4 part.
const PRIVATE_V4: [number, number][] = [
  [0, 8],
  [10, 8],
  [127, 8],
  [169, 16],
  [172, 12],
  [192, 16],
];

/**
 * Live rule (dir-spec §3.4.2): the policy accepts `port` for some public
 * address in a /8 or wider block. Approximated by: an accept for `*` or an
 * IPv4 prefix of /8 or shorter that is not private, not preceded by a
 * reject of `*` for the port.
 */
function allowsPublicBlock(p: ExitPolicy, port: number): boolean {
  for (const r of p.rules) {
    if (port < r.ports[0] || port > r.ports[1]) continue;
    if (r.action === 'reject') {
      if (r.addr === '*') return false;
      continue;
    }
    if (r.addr === '*') return true;
    const m = /^(\d+)\.\d+\.\d+\.\d+\/(\d+)$/.exec(r.addr);
    if (m && Number(m[2]) <= 8 && !PRIVATE_V4.some(([a]) => a === Number(m[1]))) return true;
  }
  return false;
}

/**
 * Testnet Exit rule: ports 80 or 443 for some address, or any port on a
 * loopback address (where the testnet's servers live), so the default
 * testnet policy `accept 127.0.0.0/8:*` earns the flag.
 */
function testnetExit(p: ExitPolicy): boolean {
  if (allowsAnyPort(p, 80) || allowsAnyPort(p, 443)) return true;
  return [1, 80, 443, 8080, 65535].some((port) => exitPolicyAllows(p, '127.0.0.1', port));
}

/**
 * An authority's flags for each descriptor, keyed by lowercase hex identity
 * (sorted lists). Live thresholds (dir-spec §3.4.2), with uptime in place
 * of MTBF/WFU history:
 * - Running: reachable and descriptor fresh. Valid: every descriptor.
 *   V2Dir: Running (every Shallot relay answers BEGIN_DIR).
 * - Fast: bandwidth >= 100 KB/s or in the top 7/8 of Running relays.
 * - Stable: uptime >= median uptime of Running relays, or >= 7 days.
 * - Guard: Fast, Stable, bandwidth >= 2 MB/s or in the top quarter, uptime >= median.
 * - Exit: accepts ports 80 and 443 on a public /8. BadExit: configured.
 * - HSDir: offers it, Stable, Fast, uptime >= 96 h.
 * Testnet (TestingTorNetwork, TestingDirAuthVote*): Fast if bandwidth > 0;
 * Stable, Guard and HSDir once uptime reaches `testnetMinUptimeSec` (the
 * testnet's small thresholds); Exit per `testnetExit`.
 * Uptime is `uptimeSec` (the authority's observation) and bandwidth the
 * credible one (measured, or the claim capped at 10 MB/s), so neither a
 * claimed uptime nor a claimed bandwidth alone earns a flag or moves a cut.
 */
export function assignFlags(descs: readonly RelayDescriptor[], opts: FlagOptions): Map<string, string[]> {
  const reachable = opts.reachable ?? (() => true);
  const maxAge = opts.maxDescriptorAgeMs ?? 24 * 3600_000;
  const running = new Set(
    descs.filter((d) => reachable(toHex(d.identity)) && d.publishedMs >= opts.nowMs - maxAge),
  );
  const runningList = descs.filter((d) => running.has(d));
  const uptimeOf = (d: RelayDescriptor) => opts.uptimeSec?.(toHex(d.identity)) ?? d.uptimeSec;
  const bwOf = (d: RelayDescriptor) =>
    credibleBandwidth(d.bandwidth, opts.measuredBandwidth?.(toHex(d.identity)));
  const bws = runningList.map(bwOf).sort((a, b) => a - b);
  // The bandwidth at or above which a relay is in the top fraction `f` of Running relays.
  const topCut = (f: number) =>
    bws.length === 0 ? Number.POSITIVE_INFINITY : bws[Math.floor(bws.length * (1 - f))]!;
  const fastCut = Math.min(100 * 1024, topCut(7 / 8));
  const guardCut = Math.min(2 * 1024 * 1024, topCut(1 / 4));
  const medianUptime = runningList.length === 0 ? 0 : lowMedian(runningList.map(uptimeOf));
  const badExits = new Set(opts.badExits ?? []);
  const min = opts.testnetMinUptimeSec ?? { stable: 0, guard: 0, hsdir: 0 };

  const out = new Map<string, string[]>();
  for (const d of descs) {
    const id = toHex(d.identity);
    const flags = new Set<string>(['Valid']);
    if (running.has(d)) {
      flags.add('Running');
      flags.add('V2Dir');
      const bw = bwOf(d);
      const up = uptimeOf(d);
      const fast = opts.testnet ? bw > 0 : bw >= fastCut;
      const stable = opts.testnet ? up >= min.stable : up >= Math.min(medianUptime, 7 * 86_400);
      if (fast) flags.add('Fast');
      if (stable) flags.add('Stable');
      const guardy = opts.testnet ? up >= min.guard : bw >= guardCut && up >= medianUptime;
      if (fast && stable && guardy) flags.add('Guard');
      const exit = opts.testnet
        ? testnetExit(d.exitPolicy)
        : allowsPublicBlock(d.exitPolicy, 80) && allowsPublicBlock(d.exitPolicy, 443);
      if (exit) flags.add('Exit');
      if (badExits.has(id)) flags.add('BadExit');
      // C tor MinUptimeHidServDirectoryV2: 96 h on the live network.
      if (d.hsdir && fast && stable && up >= (opts.testnet ? min.hsdir : 96 * 3600)) flags.add('HSDir');
    }
    out.set(id, [...flags].sort());
  }
  return out;
}

/** A vote entry for a descriptor the authority accepted, with its flags. */
export function voteRelayFromDescriptor(
  desc: RelayDescriptor,
  signedDescriptor: Uint8Array,
  flags: string[],
  measuredBandwidth?: number,
): VoteRelay {
  const r: VoteRelay = {
    nickname: desc.nickname,
    identity: desc.identity,
    ntorOnionKey: desc.ntorOnionKey,
    address: desc.address,
    orPort: desc.orPort,
    publishedMs: desc.publishedMs,
    flags: [...flags].sort(),
    // The claim as C tor votes it for unmeasured relays: capped (MAX_BELIEVABLE_BANDWIDTH).
    bandwidth: Math.min(desc.bandwidth, MAX_BELIEVABLE_BANDWIDTH),
    exitPolicy: desc.exitPolicy,
    family: desc.family,
    descriptorDigest: descriptorDigest(signedDescriptor),
  };
  if (desc.linkUrl !== undefined) r.linkUrl = desc.linkUrl;
  if (desc.dirPort !== undefined) r.dirPort = desc.dirPort;
  if (measuredBandwidth !== undefined) r.measuredBandwidth = measuredBandwidth;
  return r;
}
