/**
 * Relay entries: how a vote and the consensus describe one relay (dir-spec
 * §3.4.1 router status entries: "r", "a", "s", "w", "p", "pr" lines), and
 * the fields a descriptor names a relay by.
 *
 * Overview: `RelayCore` is what descriptors, votes and the consensus all
 * carry (nickname, identity, ntor key, address, ports); `VoteRelay` adds an
 * authority's flags, claimed and measured bandwidth; `ConsensusRelay` the
 * agreed flags and bandwidth. `readRelayList` checks a document's relay
 * list: sorted by identity, unique, flags within the document's known-flags.
 *
 * Deviations (README: differs from Tor): entries carry the full normalised exit policy
 * instead of a microdescriptor `p` summary, the family list, and the
 * SHA-256 of the signed descriptor; bandwidths are bytes/s (Tor's are KB/s).
 *
 * Not in this module: descriptors (descriptor.ts), the documents around the
 * entries (vote.ts, consensus.ts), how an authority fills them (flags.ts).
 */
import { compareBytes } from '../bytes.js';
import { expectKeys, type JsonObject, readArray, readB64, readInt, readObject } from '../canonical-json.js';
import { InvalidError } from '../errors.js';
import { type ExitPolicy, formatExitPolicy } from '../exit-policy.js';
import {
  b64,
  MAX_FAMILY,
  MAX_RELAYS,
  readAddress,
  readExitPolicy,
  readFlags,
  readIdList,
  readLinkUrl,
  readNickname,
} from './fields.js';

/** The fields descriptors, votes and the consensus all name a relay by. */
export interface RelayCore {
  /** 1-19 of [A-Za-z0-9], as in Tor. */
  nickname: string;
  /** Ed25519 identity, 32 bytes. */
  identity: Uint8Array;
  /** Curve25519 ntor onion key, 32 bytes. */
  ntorOnionKey: Uint8Array;
  /** IPv4/IPv6 literal or DNS name the ORPort listens on. */
  address: string;
  orPort: number;
  /** The link endpoint, e.g. wss://127.0.0.1:port/link. */
  linkUrl?: string;
  dirPort?: number;
}

/** What votes and the consensus say about a relay (dir-spec §3.4.1 router entries). */
interface RelayEntry extends RelayCore {
  publishedMs: number;
  /** Sorted (in a vote, a subset of the vote's knownFlags). */
  flags: string[];
  exitPolicy: ExitPolicy;
  family: string[];
  /** SHA-256 of the signed descriptor bytes. */
  descriptorDigest: Uint8Array;
}

export interface ConsensusRelay extends RelayEntry {
  /** Bytes/s: low-median of measured values, or of claimed ones when `unmeasured`. */
  bandwidth: number;
  /** Tor's `w ... Unmeasured=1`: fewer than 3 authorities measured the relay. */
  unmeasured?: boolean;
}

export interface VoteRelay extends RelayEntry {
  /** Claimed (descriptor) bandwidth, bytes/s, capped at MAX_BELIEVABLE_BANDWIDTH by honest authorities. */
  bandwidth: number;
  /** What this authority measured, bytes/s, if it measures. */
  measuredBandwidth?: number;
}

export function relayCoreBody(r: RelayCore): JsonObject {
  return {
    nickname: r.nickname,
    identity: b64(r.identity),
    ntorOnionKey: b64(r.ntorOnionKey),
    address: r.address,
    orPort: r.orPort,
  };
}

/** The optional link URL and DirPort, which follow the required fields. */
export function relayCoreOptionalBody(r: RelayCore, body: JsonObject): void {
  if (r.linkUrl !== undefined) body.linkUrl = r.linkUrl;
  if (r.dirPort !== undefined) body.dirPort = r.dirPort;
}

export function readRelayCore(o: JsonObject, what: string): RelayCore {
  return {
    nickname: readNickname(o.nickname, `${what} nickname`),
    identity: readB64(o.identity, `${what} identity`, 32),
    ntorOnionKey: readB64(o.ntorOnionKey, `${what} ntorOnionKey`, 32),
    address: readAddress(o.address, `${what} address`),
    orPort: readInt(o.orPort, `${what} orPort`, 1, 65535),
  };
}

export function readRelayCoreOptional(o: JsonObject, what: string, r: RelayCore): void {
  if (o.linkUrl !== undefined) r.linkUrl = readLinkUrl(o.linkUrl, `${what} linkUrl`);
  if (o.dirPort !== undefined) r.dirPort = readInt(o.dirPort, `${what} dirPort`, 1, 65535);
}

export function entryBody(r: VoteRelay | ConsensusRelay): JsonObject {
  const body: JsonObject = {
    ...relayCoreBody(r),
    publishedMs: r.publishedMs,
    flags: r.flags,
    bandwidth: r.bandwidth,
    exitPolicy: formatExitPolicy(r.exitPolicy),
    family: r.family,
    descriptorDigest: b64(r.descriptorDigest),
  };
  relayCoreOptionalBody(r, body);
  if ('measuredBandwidth' in r && r.measuredBandwidth !== undefined)
    body.measuredBandwidth = r.measuredBandwidth;
  if ('unmeasured' in r && r.unmeasured) body.unmeasured = true;
  return body;
}

const ENTRY_REQUIRED = [
  'nickname',
  'identity',
  'ntorOnionKey',
  'address',
  'orPort',
  'publishedMs',
  'flags',
  'bandwidth',
  'exitPolicy',
  'family',
  'descriptorDigest',
];

function entryCommon(o: JsonObject, what: string): ConsensusRelay {
  const r: ConsensusRelay = {
    ...readRelayCore(o, what),
    publishedMs: readInt(o.publishedMs, `${what} publishedMs`),
    flags: readFlags(o.flags, `${what} flags`),
    bandwidth: readInt(o.bandwidth, `${what} bandwidth`),
    exitPolicy: readExitPolicy(o.exitPolicy, `${what} exitPolicy`),
    family: readIdList(o.family, `${what} family`, MAX_FAMILY),
    descriptorDigest: readB64(o.descriptorDigest, `${what} descriptorDigest`, 32),
  };
  readRelayCoreOptional(o, what, r);
  return r;
}

/** A document's relay list: sorted by identity, unique, every flag in `knownFlags`. */
export function readRelayList<T extends { identity: Uint8Array; flags: string[] }>(
  v: unknown,
  what: string,
  knownFlags: string[],
  one: (x: unknown) => T,
): T[] {
  const out = readArray(v, what, MAX_RELAYS).map(one);
  for (let i = 1; i < out.length; i++) {
    if (compareBytes(out[i - 1]!.identity, out[i]!.identity) >= 0) {
      throw new InvalidError(what, 'relays not sorted by identity and unique');
    }
  }
  for (const r of out) {
    if (r.flags.some((f) => !knownFlags.includes(f))) throw new InvalidError(what, 'flag not in known-flags');
  }
  return out;
}

export function readVoteRelay(v: unknown): VoteRelay {
  const what = 'vote relay';
  const o = readObject(v, what);
  expectKeys(o, what, ENTRY_REQUIRED, ['linkUrl', 'dirPort', 'measuredBandwidth']);
  const r: VoteRelay = entryCommon(o, what);
  if (o.measuredBandwidth !== undefined)
    r.measuredBandwidth = readInt(o.measuredBandwidth, `${what} measured`);
  return r;
}

export function readConsensusRelay(v: unknown): ConsensusRelay {
  const what = 'consensus relay';
  const o = readObject(v, what);
  expectKeys(o, what, ENTRY_REQUIRED, ['linkUrl', 'dirPort', 'unmeasured']);
  const r = entryCommon(o, what);
  if (o.unmeasured !== undefined) {
    // Only `true` is ever written, so `false` would be a second encoding.
    if (o.unmeasured !== true) throw new InvalidError(what, 'unmeasured must be true or absent');
    r.unmeasured = true;
  }
  return r;
}
