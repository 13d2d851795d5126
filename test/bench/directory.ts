/**
 * Authority work at scale (issue 17): an authority's vote (flags, entries,
 * encode and sign), a peer's vote checked, the consensus computed from
 * three votes (dir-spec §3.8.1), signed, encoded for serving and verified
 * as a client does, plus the deflated size the DirPort serves (dir-spec
 * §6.1), at 1,000 and 5,000 synthetic relays.
 *
 * The relays are distinct (own identity and onion key from a seeded Rng,
 * own port), so sorting, digests and deduplication do their real work; the
 * three votes differ a little (one authority misses a relay, another sees
 * one more) as real votes do. Every timed operation is checked once first
 * (the consensus lists the relays, the signature verifies).
 */
import { deflateSync } from 'node:zlib';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed } from '../../services/core/crypto.js';
import { encodeSignedConsensus, signConsensus, verifyConsensus } from '../../services/core/dir/consensus.js';
import { type RelayDescriptor, signRelayDescriptor } from '../../services/core/dir/descriptor.js';
import { assignFlags, voteRelayFromDescriptor } from '../../services/core/dir/flags.js';
import { decodeVote, encodeVote, type Vote } from '../../services/core/dir/vote.js';
import { computeConsensus } from '../../services/core/dir/voting.js';
import { DEFAULT_TESTNET_EXIT_POLICY } from '../../services/core/exit-policy.js';
import { benchRng } from './core.js';
import { type BenchResult, benchSync } from './harness.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const INTERVAL_MS = 20_000;
const FLAGS = ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid'];

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench self-check failed: ${what}`);
}

interface Synthetic {
  desc: RelayDescriptor;
  raw: Uint8Array;
}

/** `n` relays with their own keys and ports; every third an exit, as `shallot up` mixes them. */
function syntheticRelays(n: number): Synthetic[] {
  const rng = benchRng(17);
  const out: Synthetic[] = [];
  for (let i = 0; i < n; i++) {
    const seed = rng(32);
    const desc: RelayDescriptor = {
      nickname: `relay${i}`,
      identity: ed25519PublicFromSeed(seed),
      ntorOnionKey: rng(32),
      address: '127.0.0.1',
      orPort: 10_000 + i,
      linkUrl: `wss://127.0.0.1:${10_000 + i}/link`,
      bandwidth: 1_000_000 + i * 37,
      family: [],
      exitPolicy:
        i % 3 === 0
          ? DEFAULT_TESTNET_EXIT_POLICY
          : { rules: [{ action: 'reject', addr: '*', ports: [1, 65535] }] },
      platform: 'Shallot 0.1.0 on Node 20',
      publishedMs: NOW - 60_000,
      uptimeSec: 3600,
      protocols: { Link: '4-5', Relay: '2-4', HSDir: '2' },
      hsdir: true,
    };
    out.push({ desc, raw: signRelayDescriptor(desc, seed) });
  }
  return out;
}

/** What authority.ts voteStep does once the re-tests are in: flags, entries, encode and sign. */
function buildVote(relays: readonly Synthetic[], authoritySeed: Uint8Array): { vote: Vote; raw: Uint8Array } {
  const flags = assignFlags(
    relays.map((r) => r.desc),
    { nowMs: NOW, testnet: true, testnetMinUptimeSec: { stable: 0, guard: 4, hsdir: 0 } },
  );
  const entries = relays
    .map((r) => voteRelayFromDescriptor(r.desc, r.raw, flags.get(toHex(r.desc.identity)) ?? []))
    .sort((a, b) => Buffer.compare(a.identity, b.identity));
  const vote: Vote = {
    authority: toHex(ed25519PublicFromSeed(authoritySeed)),
    publishedMs: NOW,
    validAfterMs: NOW,
    freshUntilMs: NOW + INTERVAL_MS,
    validUntilMs: NOW + 3 * INTERVAL_MS,
    votingIntervalSec: INTERVAL_MS / 1000,
    knownFlags: FLAGS,
    params: {},
    srCommits: [],
    relays: entries,
  };
  return { vote, raw: encodeVote(vote, authoritySeed) };
}

const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;

function benchesAt(n: number, budgetMs: number): BenchResult[] {
  const relays = syntheticRelays(n + 1);
  const seeds = [1, 2, 3].map((k) => new Uint8Array(32).fill(k));
  const authorityIds = seeds.map((s) => toHex(ed25519PublicFromSeed(s))).sort();
  // Authority 1 sees relays 0..n-1, authority 2 misses relay 0, authority 3 sees one more.
  const views = [relays.slice(0, n), relays.slice(1, n), relays.slice(0, n + 1)];
  const votes = views.map((v, i) => buildVote(v, seeds[i]!));
  // Each operation takes milliseconds to a second: exactly one warm-up call (which also makes
  // benchSync time single calls, batch 1), then at least 2 s of calls, at most 20.
  const params = {
    unit: 'vote',
    budgetMs: Math.max(budgetMs, 2000),
    maxOps: 20,
    warmupOps: 1,
    warmupMs: 60_000,
  };

  const c = computeConsensus(
    votes.map((v) => v.vote),
    { authorityIds },
  );
  check(c.relays.length === n, `consensus of ${n} relays lists ${c.relays.length}`);
  const sigs = seeds.map((s) => signConsensus(c, s));
  const signed = encodeSignedConsensus(c, sigs);
  const verified = verifyConsensus(signed, {
    authorityIds,
    nowMs: NOW,
    maxBytes: signed.length,
  });
  check(verified.relays.length === n, 'the signed consensus verifies');
  check(decodeVote(votes[0]!.raw, { maxBytes: votes[0]!.raw.length }).relays.length === n, 'vote decodes');
  const deflated = deflateSync(signed).length;

  const label = `${n.toLocaleString('en')} relays`;
  const out = [
    benchSync(`vote build+sign, ${label}`, () => buildVote(views[0]!, seeds[0]!), params),
    benchSync(
      `vote check (peer's), ${label}`,
      () => decodeVote(votes[1]!.raw, { maxBytes: votes[1]!.raw.length, authorityIds }),
      params,
    ),
    benchSync(
      `consensus compute (3 votes), ${label}`,
      () =>
        computeConsensus(
          votes.map((v) => v.vote),
          { authorityIds },
        ),
      { ...params, unit: 'consensus' },
    ),
    benchSync(`consensus sign, ${label}`, () => signConsensus(c, seeds[0]!), {
      ...params,
      unit: 'signature',
    }),
    benchSync(`consensus encode (3 signatures), ${label}`, () => encodeSignedConsensus(c, sigs), {
      ...params,
      unit: 'document',
    }),
    benchSync(
      `consensus verify (client), ${label}`,
      () => verifyConsensus(signed, { authorityIds, nowMs: NOW, maxBytes: signed.length }),
      { ...params, unit: 'document' },
    ),
  ];
  out[0]!.extra = { 'vote size': kib(votes[0]!.raw.length) };
  out[4]!.extra = { size: kib(signed.length), deflated: kib(deflated) };
  return out;
}

/** The rows at 1,000 and 5,000 relays. */
export function directoryBenches(budgetMs: number): BenchResult[] {
  return [1000, 5000].flatMap((n) => benchesAt(n, budgetMs));
}
