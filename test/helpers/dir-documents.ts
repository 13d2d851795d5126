// Shared fixtures for the directory-document tests: keys, a descriptor, a
// vote relay and a vote for authority n, and a tamperer for signed envelopes.
import { toHex } from '../../services/core/bytes.js';
import { canonicalJsonBytes } from '../../services/core/canonical-json.js';
import { ed25519PublicFromSeed } from '../../services/core/crypto.js';
import { type RelayDescriptor, signRelayDescriptor } from '../../services/core/dir/descriptor.js';
import { voteRelayFromDescriptor } from '../../services/core/dir/flags.js';
import type { VoteRelay } from '../../services/core/dir/relay-entry.js';
import type { Vote } from '../../services/core/dir/vote.js';
import { DEFAULT_TESTNET_EXIT_POLICY } from '../../services/core/exit-policy.js';

export const NOW = Date.UTC(2025, 0, 1, 12);
export const seedOf = (n: number) => new Uint8Array(32).fill(n);
export const idOf = (n: number) => ed25519PublicFromSeed(seedOf(n));
export const hexOf = (n: number) => toHex(idOf(n));

export function descriptor(n: number, over: Partial<RelayDescriptor> = {}): RelayDescriptor {
  return {
    nickname: `relay${n}`,
    identity: idOf(n),
    ntorOnionKey: new Uint8Array(32).fill(n + 100),
    address: '127.0.0.1',
    orPort: 5000 + n,
    linkUrl: `wss://127.0.0.1:${5000 + n}/link`,
    bandwidth: 1_000_000,
    family: [],
    exitPolicy: DEFAULT_TESTNET_EXIT_POLICY,
    platform: 'Shallot 0.1.0 on Node 20',
    publishedMs: NOW - 60_000,
    uptimeSec: 3600,
    protocols: { Link: '4-5', Relay: '2-4', HSDir: '2' },
    hsdir: true,
    ...over,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests mutate parsed JSON documents freely.
export type Doc = Record<string, any>;

/** Re-serialises a signed envelope after `mutate` edits its parsed JSON, keeping the old signature. */
export function tamper(bytes: Uint8Array, mutate: (doc: Doc) => void): Uint8Array {
  const doc = JSON.parse(new TextDecoder().decode(bytes));
  mutate(doc);
  return canonicalJsonBytes(doc);
}

export const AUTH = [1, 2, 3].map(hexOf);
export const AUTH_SEEDS = [1, 2, 3].map(seedOf);

export function voteRelay(n: number, over: Partial<VoteRelay> = {}): VoteRelay {
  const signed = signRelayDescriptor(descriptor(n), seedOf(n));
  return {
    ...voteRelayFromDescriptor(descriptor(n), signed, ['Fast', 'Guard', 'Running', 'Stable', 'Valid']),
    ...over,
  };
}

export function vote(author: number, relays: VoteRelay[], over: Partial<Vote> = {}): Vote {
  return {
    authority: hexOf(author),
    publishedMs: NOW,
    validAfterMs: NOW,
    freshUntilMs: NOW + 300_000,
    validUntilMs: NOW + 900_000,
    votingIntervalSec: 300,
    knownFlags: ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid'],
    params: {},
    srCommits: [],
    relays: [...relays].sort((a, b) => Buffer.compare(a.identity, b.identity)),
    ...over,
  };
}
