/**
 * Directory documents: relay descriptors, authority votes and the signed
 * consensus (dir-spec §2.1, §3.4-3.9; digest §7).
 *
 * Overview:
 * - A relay signs a `RelayDescriptor` with its Ed25519 identity and uploads
 *   it to every authority (dir-spec §2.1: router descriptor).
 * - Each authority assigns flags (`assignFlags`, dir-spec §3.4.2), and signs
 *   a `Vote` listing the relays it knows (dir-spec §3.4.1).
 * - From all votes every authority computes the same `Consensus`
 *   (`computeConsensus`, dir-spec §3.8), signs its digest, and the documents
 *   with the collected signatures are served to clients, which accept a
 *   consensus signed by more than half of the configured authorities
 *   (`verifyConsensus`, dir-spec §4).
 *
 * Deviations (DESIGN §2), on purpose:
 * - Documents are canonical JSON (canonical-json.ts), not Tor's meta-format;
 *   the content follows Tor's: identity, ntor key, address, flags,
 *   bandwidth, exit policy, family, valid-after / fresh-until / valid-until,
 *   params, shared random values, bandwidth weights, one signature per
 *   authority.
 * - Identities are Ed25519 only. A descriptor is signed by its identity key
 *   directly (no RSA, no signing-key certificate) over
 *   `"Shallot relay descriptor v1\0" | canonical body`; votes over
 *   `"Shallot vote v1\0" | canonical body`; consensus signatures over
 *   `"Shallot consensus v1\0" | SHA-256(canonical body)`.
 * - Relays carry the full normalised exit policy instead of a microdesc
 *   `p` summary, and bandwidths are bytes/s (Tor's consensus uses KB/s).
 * - Flags: Stable and Guard use uptime in place of WMTBF/WFU history.
 *
 * Design notes:
 * - Decoders re-encode what they decoded and require the same canonical
 *   body, so every accepted document has exactly one byte form (no
 *   alternative base64 padding, unsorted flags, unnormalised policies ...)
 *   and its digest is well defined.
 * - Bandwidth weights are C tor's consensus-method-10 case analysis
 *   (dirvote.c networkstatus_compute_bw_weights_v10), in exact integer
 *   arithmetic. Like C tor, when any of G, M, E, D is zero or the checks
 *   fail, no weights are published; clients then use 10000 for every weight
 *   (dir-spec §3.8.3), which is what small testnets (all Guard+Exit) get.
 *
 * Not in this module: path selection, the authority's voting schedule and
 * HTTP transport, the disaster SRV (hsdir-ring.ts).
 */
import { compareBytes, concat, equalBytes, fromHex, toBase64, toHex, utf8 } from './bytes.js';
import {
  canonicalJson,
  canonicalJsonBytes,
  expectKeys,
  type JsonObject,
  parseJsonBounded,
  readArray,
  readB64,
  readBool,
  readHex,
  readInt,
  readObject,
  readString,
} from './canonical-json.js';
import { ed25519PublicFromSeed, ed25519Sign, ed25519Verify, sha256 } from './crypto.js';
import { CryptoError, InvalidError } from './errors.js';
import {
  allowsAnyPort,
  checkExitPolicy,
  type ExitPolicy,
  exitPolicyAllows,
  formatExitPolicy,
  parseExitPolicy,
} from './exit-policy.js';
import { decodeCommit, decodeReveal, verifyReveal } from './shared-random.js';

// ---------------------------------------------------------------------------
// Types

export interface RelayDescriptor {
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
  /** Advertised bandwidth, bytes/s. */
  bandwidth: number;
  /** Lowercase hex Ed25519 ids of declared family members. */
  family: string[];
  exitPolicy: ExitPolicy;
  platform: string;
  publishedMs: number;
  uptimeSec: number;
  /** Subprotocol versions (`pr`), e.g. { Link: '4-5', Relay: '2-4' }. */
  protocols: Record<string, string>;
  /** Whether the relay offers to be an onion-service directory. */
  hsdir: boolean;
  /** SHA-256 of the relay's TLS certificate, for pinning links. */
  tlsCertSha256?: Uint8Array;
}

export interface SharedRandValue {
  /** Number of reveals the value was computed from. */
  reveals: number;
  /** 32 bytes. */
  value: Uint8Array;
}

/** The fields descriptors, votes and the consensus all name a relay by. */
interface RelayCore {
  nickname: string;
  identity: Uint8Array;
  ntorOnionKey: Uint8Array;
  address: string;
  orPort: number;
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

export interface Consensus {
  validAfterMs: number;
  freshUntilMs: number;
  validUntilMs: number;
  votingIntervalSec: number;
  /** Sorted. */
  knownFlags: string[];
  params: Record<string, number>;
  sharedRandCurrent?: SharedRandValue;
  sharedRandPrevious?: SharedRandValue;
  /** Sorted by identity. */
  relays: ConsensusRelay[];
  bandwidthWeights: Record<string, number>;
  /** Lowercase hex Ed25519 ids of the configured authorities, sorted. */
  authorities: string[];
}

export interface VoteRelay extends RelayEntry {
  /** Claimed (descriptor) bandwidth, bytes/s, capped at MAX_BELIEVABLE_BANDWIDTH by honest authorities. */
  bandwidth: number;
  /** What this authority measured, bytes/s, if it measures. */
  measuredBandwidth?: number;
}

/** A shared-random commit (and, in the reveal phase, reveal) an authority publishes in its vote. */
export interface SrVoteCommit {
  /** Lowercase hex Ed25519 id of the committing authority. */
  authorityId: string;
  commit: string;
  reveal?: string;
}

/** One authority's view (dir-spec §3.4.1). */
export interface Vote {
  /** Lowercase hex Ed25519 id of the author. */
  authority: string;
  publishedMs: number;
  validAfterMs: number;
  freshUntilMs: number;
  validUntilMs: number;
  votingIntervalSec: number;
  knownFlags: string[];
  params: Record<string, number>;
  srCommits: SrVoteCommit[];
  sharedRandCurrent?: SharedRandValue;
  sharedRandPrevious?: SharedRandValue;
  relays: VoteRelay[];
}

export interface ConsensusSignature {
  identity: Uint8Array;
  signature: Uint8Array;
}

export interface SignedConsensus {
  consensus: Consensus;
  signatures: ConsensusSignature[];
  /** consensusDigest(consensus). */
  digest: Uint8Array;
}

// ---------------------------------------------------------------------------
// Limits and constants

/** Tor's MAX_DESCRIPTOR_UPLOAD_SIZE. */
export const MAX_DESCRIPTOR_BYTES = 20_000;
export const MAX_RELAYS = 10_000;
export const MAX_FAMILY = 64;
export const MAX_FLAGS = 32;
export const MAX_PARAMS = 256;
export const MAX_AUTHORITIES = 64;
/** dir-spec §3.8.3 `bwweightscale` default. */
export const BW_WEIGHT_SCALE = 10_000;
/** Tor's MIN_VOTES_FOR_PARAM. */
const MIN_VOTES_FOR_PARAM = 3;
/** Measured bandwidth is used once this many authorities measured (C tor: > 2). */
const MIN_MEASUREMENTS = 3;
/**
 * C tor's DEFAULT_MAX_BELIEVABLE_BANDWIDTH (10 MB/s): an authority votes no
 * self-advertised bandwidth above this (router_get_advertised_bandwidth_capped,
 * used by dirserv_get_credible_bandwidth_kb for unmeasured relays).
 */
export const MAX_BELIEVABLE_BANDWIDTH = 10_000_000;
/**
 * C tor's DEFAULT_MAX_UNMEASURED_BW_KB (20), consensus param
 * `maxunmeasuredbw` (KB/s, as Tor's): once more than two authorities measure
 * bandwidth, relays none measured are clipped to this (dir-spec §3.8.1,
 * consensus method 17 on).
 */
export const DEFAULT_MAX_UNMEASURED_BW_KB = 20;

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

const DESC_PREFIX = 'Shallot relay descriptor v1\0';
const VOTE_PREFIX = 'Shallot vote v1\0';
const CONSENSUS_PREFIX = 'Shallot consensus v1\0';

const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);

// ---------------------------------------------------------------------------
// Field codecs. Each `read*` takes parsed JSON and throws InvalidError.

const b64 = (b: Uint8Array) => toBase64(b, false);

function readNickname(v: unknown, what: string): string {
  const s = readString(v, what, 19);
  if (!/^[A-Za-z0-9]{1,19}$/.test(s)) throw new InvalidError(what, 'bad nickname');
  return s;
}

function readAddress(v: unknown, what: string): string {
  const s = readString(v, what, 253);
  // IPv4, bare IPv6, or a DNS name: all fit this alphabet; exit-policy and
  // path code parse them further.
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(s)) throw new InvalidError(what, 'bad address');
  return s;
}

function readLinkUrl(v: unknown, what: string): string {
  const s = readString(v, what, 512);
  if (!/^wss?:\/\/[\x21-\x7e]+$/.test(s)) throw new InvalidError(what, 'not a ws:// or wss:// URL');
  return s;
}

function readIdHex(v: unknown, what: string): string {
  const s = readString(v, what, 64);
  if (!/^[0-9a-f]{64}$/.test(s)) throw new InvalidError(what, 'not a lowercase hex Ed25519 id');
  return s;
}

function readIdList(v: unknown, what: string, max: number): string[] {
  const out = readArray(v, what, max).map((x) => readIdHex(x, what));
  if (new Set(out).size !== out.length) throw new InvalidError(what, 'duplicate id');
  return out;
}

function readFlag(v: unknown, what: string): string {
  const s = readString(v, what, 32);
  if (!/^[A-Za-z0-9]{1,32}$/.test(s)) throw new InvalidError(what, 'bad flag name');
  return s;
}

function isSortedUnique(xs: readonly string[]): boolean {
  for (let i = 1; i < xs.length; i++) if (!(xs[i - 1]! < xs[i]!)) return false;
  return true;
}

function readFlags(v: unknown, what: string): string[] {
  const out = readArray(v, what, MAX_FLAGS).map((x) => readFlag(x, what));
  if (!isSortedUnique(out)) throw new InvalidError(what, 'flags not sorted and unique');
  return out;
}

function readExitPolicy(v: unknown, what: string): ExitPolicy {
  const lines = readArray(v, what, 1024).map((x) => readString(x, what, 128));
  return checkExitPolicy(parseExitPolicy(lines));
}

function readProtocols(v: unknown, what: string): Record<string, string> {
  const o = readObject(v, what);
  const keys = Object.keys(o);
  if (keys.length > 32) throw new InvalidError(what, 'too many entries');
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(k)) throw new InvalidError(what, 'bad protocol name');
    const s = readString(o[k], what, 64);
    if (!/^[0-9,-]*$/.test(s)) throw new InvalidError(what, 'bad version list');
    out[k] = s;
  }
  return out;
}

function readIntMap(
  v: unknown,
  what: string,
  keyRe: RegExp,
  min: number,
  max: number,
): Record<string, number> {
  const o = readObject(v, what);
  const keys = Object.keys(o);
  if (keys.length > MAX_PARAMS) throw new InvalidError(what, 'too many entries');
  const out: Record<string, number> = {};
  for (const k of keys) {
    if (!keyRe.test(k)) throw new InvalidError(what, 'bad key', { key: k.slice(0, 64) });
    // Assigning it would set the prototype, not a key: the document would not round-trip.
    if (k === '__proto__') throw new InvalidError(what, 'reserved key', { key: k });
    out[k] = readInt(o[k], what, min, max);
  }
  return out;
}

// dir-spec §3.4.1: a param name is KeywordChar+ (letters, digits, "-"), and Tor names use "_" too (allow-network-reentry, sendme_accept_min_version).
const PARAM_KEY = /^[A-Za-z0-9_-]{1,64}$/;
const WEIGHT_KEY = /^W[a-z]{2}$/;
const readParams = (v: unknown, what: string) => readIntMap(v, what, PARAM_KEY, INT32_MIN, INT32_MAX);
const readWeights = (v: unknown, what: string) => readIntMap(v, what, WEIGHT_KEY, INT32_MIN, INT32_MAX);

function encodeSrValue(v: SharedRandValue): JsonObject {
  return { reveals: v.reveals, value: b64(v.value) };
}

function readSrValue(v: unknown, what: string): SharedRandValue {
  const o = readObject(v, what);
  expectKeys(o, what, ['reveals', 'value']);
  return { reveals: readInt(o.reveals, what, 0, MAX_AUTHORITIES), value: readB64(o.value, what, 32) };
}

/** The shared random values a vote or consensus may carry (both optional). */
interface SharedRandFields {
  sharedRandCurrent?: SharedRandValue;
  sharedRandPrevious?: SharedRandValue;
}

function encodeSharedRand(v: SharedRandFields, body: JsonObject): void {
  if (v.sharedRandCurrent) body.sharedRandCurrent = encodeSrValue(v.sharedRandCurrent);
  if (v.sharedRandPrevious) body.sharedRandPrevious = encodeSrValue(v.sharedRandPrevious);
}

function readSharedRand(body: JsonObject, what: string, into: SharedRandFields): void {
  if (body.sharedRandCurrent !== undefined)
    into.sharedRandCurrent = readSrValue(body.sharedRandCurrent, `${what} srv`);
  if (body.sharedRandPrevious !== undefined)
    into.sharedRandPrevious = readSrValue(body.sharedRandPrevious, `${what} srv`);
}

function readTimes(
  o: JsonObject,
  what: string,
): { validAfterMs: number; freshUntilMs: number; validUntilMs: number } {
  const validAfterMs = readInt(o.validAfterMs, what);
  const freshUntilMs = readInt(o.freshUntilMs, what);
  const validUntilMs = readInt(o.validUntilMs, what);
  if (!(validAfterMs < freshUntilMs && freshUntilMs <= validUntilMs)) {
    throw new InvalidError(what, 'need valid-after < fresh-until <= valid-until');
  }
  return { validAfterMs, freshUntilMs, validUntilMs };
}

/** Throws unless re-encoding `decoded` gives back `body` exactly. */
function requireCanonical(body: JsonObject, reencoded: JsonObject, what: string): void {
  if (canonicalJson(body) !== canonicalJson(reencoded)) throw new InvalidError(what, 'not in canonical form');
}

/**
 * Encodes `value` and runs the body through its own decoder, so nothing is
 * signed or published that a peer's decoder would refuse.
 */
function encodeChecked<T>(
  value: T,
  toBody: (v: T) => JsonObject,
  fromBody: (body: JsonObject) => unknown,
): JsonObject {
  const body = toBody(value);
  fromBody(JSON.parse(canonicalJson(body)) as JsonObject);
  return body;
}

// ---------------------------------------------------------------------------
// Signed envelopes: {"body": {...}, "signature": "<b64>"}

/** Signs `body` with `seed`, which must be the key the body names as its signer (`signer.key`). */
function signEnvelope(
  prefix: string,
  body: JsonObject,
  seed: Uint8Array,
  signer: { key: Uint8Array; name: string; what: string },
): Uint8Array {
  if (!equalBytes(ed25519PublicFromSeed(seed), signer.key)) {
    throw new InvalidError(signer.what, `seed does not match ${signer.name}`);
  }
  const signature = ed25519Sign(seed, concat(utf8(prefix), canonicalJsonBytes(body)));
  return canonicalJsonBytes({ body, signature: b64(signature) });
}

function openEnvelope(
  bytes: Uint8Array,
  maxBytes: number,
  what: string,
): { body: JsonObject; signature: Uint8Array } {
  const o = readObject(parseJsonBounded(bytes, maxBytes, what), what);
  expectKeys(o, what, ['body', 'signature']);
  return {
    body: readObject(o.body, `${what} body`),
    signature: readB64(o.signature, `${what} signature`, 64),
  };
}

function checkEnvelopeSignature(
  prefix: string,
  body: JsonObject,
  signature: Uint8Array,
  signer: Uint8Array,
  what: string,
): void {
  if (!ed25519Verify(signer, concat(utf8(prefix), canonicalJsonBytes(body)), signature)) {
    throw new CryptoError(what, 'bad signature', { reason: 'bad-signature' });
  }
}

// ---------------------------------------------------------------------------
// Relay descriptors

function relayCoreBody(r: RelayCore): JsonObject {
  return {
    nickname: r.nickname,
    identity: b64(r.identity),
    ntorOnionKey: b64(r.ntorOnionKey),
    address: r.address,
    orPort: r.orPort,
  };
}

/** The optional link URL and DirPort, which follow the required fields. */
function relayCoreOptionalBody(r: RelayCore, body: JsonObject): void {
  if (r.linkUrl !== undefined) body.linkUrl = r.linkUrl;
  if (r.dirPort !== undefined) body.dirPort = r.dirPort;
}

function readRelayCore(o: JsonObject, what: string): RelayCore {
  return {
    nickname: readNickname(o.nickname, `${what} nickname`),
    identity: readB64(o.identity, `${what} identity`, 32),
    ntorOnionKey: readB64(o.ntorOnionKey, `${what} ntorOnionKey`, 32),
    address: readAddress(o.address, `${what} address`),
    orPort: readInt(o.orPort, `${what} orPort`, 1, 65535),
  };
}

function readRelayCoreOptional(o: JsonObject, what: string, r: RelayCore): void {
  if (o.linkUrl !== undefined) r.linkUrl = readLinkUrl(o.linkUrl, `${what} linkUrl`);
  if (o.dirPort !== undefined) r.dirPort = readInt(o.dirPort, `${what} dirPort`, 1, 65535);
}

function descriptorBody(d: RelayDescriptor): JsonObject {
  const body: JsonObject = {
    ...relayCoreBody(d),
    bandwidth: d.bandwidth,
    family: d.family,
    exitPolicy: formatExitPolicy(d.exitPolicy),
    platform: d.platform,
    publishedMs: d.publishedMs,
    uptimeSec: d.uptimeSec,
    protocols: d.protocols,
    hsdir: d.hsdir,
  };
  relayCoreOptionalBody(d, body);
  if (d.tlsCertSha256 !== undefined) body.tlsCertSha256 = b64(d.tlsCertSha256);
  return body;
}

const DESC_REQUIRED = [
  'nickname',
  'identity',
  'ntorOnionKey',
  'address',
  'orPort',
  'bandwidth',
  'family',
  'exitPolicy',
  'platform',
  'publishedMs',
  'uptimeSec',
  'protocols',
  'hsdir',
];
const DESC_OPTIONAL = ['linkUrl', 'dirPort', 'tlsCertSha256'];

function descriptorFromBody(body: JsonObject): RelayDescriptor {
  const what = 'relay descriptor';
  expectKeys(body, what, DESC_REQUIRED, DESC_OPTIONAL);
  const d: RelayDescriptor = {
    ...readRelayCore(body, what),
    bandwidth: readInt(body.bandwidth, `${what} bandwidth`),
    family: readIdList(body.family, `${what} family`, MAX_FAMILY),
    exitPolicy: readExitPolicy(body.exitPolicy, `${what} exitPolicy`),
    platform: readString(body.platform, `${what} platform`, 256),
    publishedMs: readInt(body.publishedMs, `${what} publishedMs`),
    uptimeSec: readInt(body.uptimeSec, `${what} uptimeSec`),
    protocols: readProtocols(body.protocols, `${what} protocols`),
    hsdir: readBool(body.hsdir, `${what} hsdir`),
  };
  readRelayCoreOptional(body, what, d);
  if (body.tlsCertSha256 !== undefined)
    d.tlsCertSha256 = readB64(body.tlsCertSha256, `${what} tlsCertSha256`, 32);
  requireCanonical(body, descriptorBody(d), what);
  return d;
}

/**
 * Signs a descriptor with the relay's identity seed. The seed must belong to
 * `desc.identity`; the descriptor must pass the decoder's checks.
 */
export function signRelayDescriptor(desc: RelayDescriptor, identitySeed: Uint8Array): Uint8Array {
  const body = encodeChecked(desc, descriptorBody, descriptorFromBody);
  return signEnvelope(DESC_PREFIX, body, identitySeed, {
    key: desc.identity,
    name: 'identity',
    what: 'relay descriptor',
  });
}

export interface DescriptorCheckOptions {
  maxBytes?: number;
  nowMs: number;
  /** How far in the future `publishedMs` may be (Tor: ROUTER_ALLOW_SKEW, 12 h). */
  maxSkewMs: number;
  /** How old a descriptor may be (Tor: ROUTER_MAX_AGE_TO_PUBLISH, 24 h, the default). */
  maxAgeMs?: number;
}

/** Decodes a signed descriptor and checks its self-signature and publication time. */
export function verifyRelayDescriptor(bytes: Uint8Array, opts: DescriptorCheckOptions): RelayDescriptor {
  const what = 'relay descriptor';
  const { body, signature } = openEnvelope(bytes, opts.maxBytes ?? MAX_DESCRIPTOR_BYTES, what);
  const desc = descriptorFromBody(body);
  checkEnvelopeSignature(DESC_PREFIX, body, signature, desc.identity, what);
  if (desc.publishedMs > opts.nowMs + opts.maxSkewMs) {
    throw new InvalidError(what, 'published in the future', { reason: 'published-in-future' });
  }
  if (desc.publishedMs < opts.nowMs - (opts.maxAgeMs ?? 24 * 3600_000)) {
    throw new InvalidError(what, 'too old', { reason: 'expired' });
  }
  return desc;
}

/** The digest a vote and the consensus name a descriptor by. */
export function descriptorDigest(signedDescriptor: Uint8Array): Uint8Array {
  return sha256(signedDescriptor);
}

// ---------------------------------------------------------------------------
// Relay entries in votes and the consensus

function entryBody(r: VoteRelay | ConsensusRelay): JsonObject {
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

function readRelayList<T extends { identity: Uint8Array; flags: string[] }>(
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

function readVoteRelay(v: unknown): VoteRelay {
  const what = 'vote relay';
  const o = readObject(v, what);
  expectKeys(o, what, ENTRY_REQUIRED, ['linkUrl', 'dirPort', 'measuredBandwidth']);
  const r: VoteRelay = entryCommon(o, what);
  if (o.measuredBandwidth !== undefined)
    r.measuredBandwidth = readInt(o.measuredBandwidth, `${what} measured`);
  return r;
}

function readConsensusRelay(v: unknown): ConsensusRelay {
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

// ---------------------------------------------------------------------------
// Votes

function voteBody(v: Vote): JsonObject {
  const body: JsonObject = {
    authority: v.authority,
    publishedMs: v.publishedMs,
    validAfterMs: v.validAfterMs,
    freshUntilMs: v.freshUntilMs,
    validUntilMs: v.validUntilMs,
    votingIntervalSec: v.votingIntervalSec,
    knownFlags: v.knownFlags,
    params: v.params,
    srCommits: v.srCommits.map((c) => {
      const o: JsonObject = { authorityId: c.authorityId, commit: c.commit };
      if (c.reveal !== undefined) o.reveal = c.reveal;
      return o;
    }),
    relays: v.relays.map(entryBody),
  };
  encodeSharedRand(v, body);
  return body;
}

function readSrCommit(v: unknown): SrVoteCommit {
  const what = 'vote sr commit';
  const o = readObject(v, what);
  expectKeys(o, what, ['authorityId', 'commit'], ['reveal']);
  const c: SrVoteCommit = {
    authorityId: readIdHex(o.authorityId, `${what} authority`),
    commit: readString(o.commit, what, 56),
  };
  decodeCommit(c.commit);
  if (o.reveal !== undefined) {
    c.reveal = readString(o.reveal, what, 56);
    decodeReveal(c.reveal);
  }
  return c;
}

function voteFromBody(body: JsonObject): Vote {
  const what = 'vote';
  expectKeys(
    body,
    what,
    [
      'authority',
      'publishedMs',
      'validAfterMs',
      'freshUntilMs',
      'validUntilMs',
      'votingIntervalSec',
      'knownFlags',
      'params',
      'srCommits',
      'relays',
    ],
    ['sharedRandCurrent', 'sharedRandPrevious'],
  );
  const knownFlags = readFlags(body.knownFlags, `${what} knownFlags`);
  const v: Vote = {
    authority: readIdHex(body.authority, `${what} authority`),
    publishedMs: readInt(body.publishedMs, `${what} publishedMs`),
    ...readTimes(body, what),
    votingIntervalSec: readInt(body.votingIntervalSec, `${what} votingIntervalSec`, 1, 86_400),
    knownFlags,
    params: readParams(body.params, `${what} params`),
    srCommits: readArray(body.srCommits, `${what} srCommits`, MAX_AUTHORITIES).map(readSrCommit),
    relays: readRelayList(body.relays, `${what} relays`, knownFlags, readVoteRelay),
  };
  readSharedRand(body, what, v);
  requireCanonical(body, voteBody(v), what);
  return v;
}

/** Signs a vote with its author's identity seed (which must match `vote.authority`). */
export function encodeVote(vote: Vote, authoritySeed: Uint8Array): Uint8Array {
  const body = encodeChecked(vote, voteBody, voteFromBody);
  return signEnvelope(VOTE_PREFIX, body, authoritySeed, {
    key: fromHex(vote.authority),
    name: 'authority',
    what: 'vote',
  });
}

/**
 * Decodes a vote and checks its author's signature. With `authorityIds`,
 * votes from anyone else are refused (CryptoError, reason 'unknown-authority').
 */
export function decodeVote(
  bytes: Uint8Array,
  opts: { maxBytes: number; authorityIds?: readonly string[] },
): Vote {
  const what = 'vote';
  const { body, signature } = openEnvelope(bytes, opts.maxBytes, what);
  const vote = voteFromBody(body);
  if (opts.authorityIds && !opts.authorityIds.includes(vote.authority)) {
    throw new CryptoError(what, 'not from a configured authority', { reason: 'unknown-authority' });
  }
  checkEnvelopeSignature(VOTE_PREFIX, body, signature, readHex(vote.authority, what, 32), what);
  return vote;
}

/**
 * The verified reveals in a set of votes: for each configured authority,
 * the commit and reveal it published itself, if the reveal opens the commit
 * (srv-spec §3.1.2). Input to `computeSrv`.
 */
export function revealsFromVotes(
  votes: readonly Vote[],
  authorityIds: readonly string[],
): { authorityId: Uint8Array; reveal: string }[] {
  const out = new Map<string, string>();
  for (const v of votes) {
    if (!authorityIds.includes(v.authority) || out.has(v.authority)) continue;
    const own = v.srCommits.find((c) => c.authorityId === v.authority);
    if (own?.reveal !== undefined && verifyReveal(own.commit, own.reveal)) out.set(v.authority, own.reveal);
  }
  return [...out].map(([id, reveal]) => ({ authorityId: readHex(id, 'authority id', 32), reveal }));
}

// ---------------------------------------------------------------------------
// Consensus computation (dir-spec §3.8)

/** The low median (C tor median_*: element (n-1)/2 of the sorted list). */
function lowMedian(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export interface ConsensusOptions {
  /** Lowercase hex Ed25519 ids of all configured authorities. */
  authorityIds: readonly string[];
  /**
   * Defaults for consensus params no vote-majority sets. Every authority
   * in a testnet shares this configuration, so consensus stays identical.
   */
  params?: Record<string, number>;
}

function majoritySrv(
  values: (SharedRandValue | undefined)[],
  nAuthorities: number,
): SharedRandValue | undefined {
  const counts = new Map<string, { v: SharedRandValue; n: number }>();
  for (const v of values) {
    if (!v) continue;
    const k = `${v.reveals}:${toHex(v.value)}`;
    const e = counts.get(k) ?? { v, n: 0 };
    e.n++;
    counts.set(k, e);
  }
  for (const { v, n } of counts.values()) if (n > nAuthorities / 2) return v;
  return undefined;
}

/**
 * Computes the consensus from the votes of configured authorities
 * (dir-spec §3.8.1), deterministically:
 * - a relay is listed if more than half of ALL configured authorities list it
 *   and the flag vote makes it Running (consensus method 4 on);
 * - its descriptor fields come from the most recently published entry
 *   (ties: the digest most voters list, then the largest digest);
 * - a flag is set if more than half of the voters that list the relay and
 *   know the flag set it; known-flags is the union;
 * - bandwidth: low-median of measured values if >= 3 authorities measured
 *   (all of them, when fewer are configured), else low-median of claimed
 *   values, marked unmeasured, and clipped to `maxunmeasuredbw` KB/s when
 *   as many votes carry measurements (C tor);
 * - times and voting interval: low-medians;
 * - params: low-median of a key's values if more than half of all
 *   authorities, or at least 3, voted on it;
 * - shared random values: the value more than half of all authorities hold.
 * Votes from unknown authorities are ignored; two votes by one author are refused.
 */
export function computeConsensus(votes: readonly Vote[], opts: ConsensusOptions): Consensus {
  const what = 'consensus';
  const authorities = [...new Set(opts.authorityIds)].sort();
  const n = authorities.length;
  if (n === 0) throw new InvalidError(what, 'no authorities configured');
  const used: Vote[] = [];
  for (const v of votes) {
    if (!authorities.includes(v.authority)) continue;
    if (used.some((u) => u.authority === v.authority))
      throw new InvalidError(what, 'two votes from one authority');
    used.push(v);
  }
  if (used.length === 0)
    throw new InvalidError(what, 'no votes from configured authorities', { reason: 'no-votes' });

  const knownFlags = [...new Set(used.flatMap((v) => v.knownFlags))].sort();

  // Params: dir-spec §3.8.1 / dirvote.c dirvote_compute_params.
  const params: Record<string, number> = { ...(opts.params ?? {}) };
  const keys = [...new Set(used.flatMap((v) => Object.keys(v.params)))].sort();
  for (const k of keys) {
    const vals = used.filter((v) => Object.hasOwn(v.params, k)).map((v) => v.params[k]!);
    if (vals.length > n / 2 || vals.length >= MIN_VOTES_FOR_PARAM) params[k] = lowMedian(vals);
  }

  // Relays, grouped by identity.
  const byId = new Map<string, { vote: Vote; relay: VoteRelay }[]>();
  for (const vote of used) {
    for (const relay of vote.relays) {
      const k = toHex(relay.identity);
      const list = byId.get(k) ?? [];
      // A vote listing one relay twice counts once.
      if (!list.some((e) => e.vote === vote)) list.push({ vote, relay });
      byId.set(k, list);
    }
  }
  // Deviation: a network of fewer than three authorities (a small testnet)
  // needs measurements from all of them, not three it cannot have.
  const minMeasured = Math.min(MIN_MEASUREMENTS, n);
  // C tor n_authorities_measuring_bandwidth: votes carrying any measurement.
  const measuring = used.filter((v) => v.relays.some((r) => r.measuredBandwidth !== undefined)).length;
  const maxUnmeasured = (params.maxunmeasuredbw ?? DEFAULT_MAX_UNMEASURED_BW_KB) * 1000;
  const relays: ConsensusRelay[] = [];
  for (const entries of byId.values()) {
    if (entries.length <= n / 2) continue;
    const digestVotes = (d: Uint8Array) =>
      entries.filter((e) => compareBytes(e.relay.descriptorDigest, d) === 0).length;
    const best = [...entries].sort(
      (a, b) =>
        b.relay.publishedMs - a.relay.publishedMs ||
        digestVotes(b.relay.descriptorDigest) - digestVotes(a.relay.descriptorDigest) ||
        compareBytes(b.relay.descriptorDigest, a.relay.descriptorDigest),
    )[0]!.relay;
    const flags = knownFlags.filter((f) => {
      const knowing = entries.filter((e) => e.vote.knownFlags.includes(f));
      return knowing.filter((e) => e.relay.flags.includes(f)).length > knowing.length / 2;
    });
    // dir-spec §3.8.1 (consensus method 4 on): relays a majority does not
    // call Running are left out of the consensus.
    if (!flags.includes('Running')) continue;
    const measured = entries.flatMap((e) =>
      e.relay.measuredBandwidth === undefined ? [] : [e.relay.measuredBandwidth],
    );
    const unmeasured = measured.length < minMeasured;
    const claimed = lowMedian(entries.map((e) => e.relay.bandwidth));
    const clipped = measuring >= minMeasured ? Math.min(claimed, Math.max(0, maxUnmeasured)) : claimed;
    const out: ConsensusRelay = {
      nickname: best.nickname,
      identity: best.identity,
      ntorOnionKey: best.ntorOnionKey,
      address: best.address,
      orPort: best.orPort,
      publishedMs: best.publishedMs,
      flags,
      bandwidth: unmeasured ? clipped : lowMedian(measured),
      exitPolicy: best.exitPolicy,
      family: best.family,
      descriptorDigest: best.descriptorDigest,
    };
    if (best.linkUrl !== undefined) out.linkUrl = best.linkUrl;
    if (best.dirPort !== undefined) out.dirPort = best.dirPort;
    if (unmeasured) out.unmeasured = true;
    relays.push(out);
  }
  relays.sort((a, b) => compareBytes(a.identity, b.identity));

  const c: Consensus = {
    validAfterMs: lowMedian(used.map((v) => v.validAfterMs)),
    freshUntilMs: lowMedian(used.map((v) => v.freshUntilMs)),
    validUntilMs: lowMedian(used.map((v) => v.validUntilMs)),
    votingIntervalSec: lowMedian(used.map((v) => v.votingIntervalSec)),
    knownFlags,
    params,
    relays,
    bandwidthWeights: computeBandwidthWeights(relays, params.bwweightscale ?? BW_WEIGHT_SCALE),
    authorities,
  };
  const cur = majoritySrv(
    used.map((v) => v.sharedRandCurrent),
    n,
  );
  const prev = majoritySrv(
    used.map((v) => v.sharedRandPrevious),
    n,
  );
  if (cur) c.sharedRandCurrent = cur;
  if (prev) c.sharedRandPrevious = prev;
  // Medians of independent fields could in theory cross; refuse rather than publish nonsense.
  if (!(c.validAfterMs < c.freshUntilMs && c.freshUntilMs <= c.validUntilMs)) {
    throw new InvalidError(what, 'voted times are inconsistent', { reason: 'bad-times' });
  }
  return c;
}

// ---------------------------------------------------------------------------
// Bandwidth weights (dir-spec §3.8.3)

/**
 * C tor's networkstatus_compute_bw_weights_v10 over the listed Running
 * relays: G = Guard-only, E = Exit-only (Exit without BadExit), D = both,
 * M = neither. Returns {} when it cannot compute balanced weights.
 */
export function computeBandwidthWeights(
  relays: readonly { flags: string[]; bandwidth: number }[],
  weightScale = BW_WEIGHT_SCALE,
): Record<string, number> {
  let G = 0n;
  let M = 0n;
  let E = 0n;
  let D = 0n;
  for (const r of relays) {
    if (!r.flags.includes('Running')) continue;
    const bw = BigInt(r.bandwidth);
    const exit = r.flags.includes('Exit') && !r.flags.includes('BadExit');
    const guard = r.flags.includes('Guard');
    if (exit && guard) D += bw;
    else if (exit) E += bw;
    else if (guard) G += bw;
    else M += bw;
  }
  const w = bwWeightsV10(G, M, E, D, BigInt(weightScale));
  if (!w) return {};
  const s = weightScale;
  const { Wgg, Wgd, Wmg, Wme, Wmd, Wee, Wed } = w;
  // Same list C tor writes: Wgm=Wgg, Wmm=1, Wem=Wee, Weg=Wed, bridges/dir = 1 or the middle weights.
  return {
    Wbd: Wmd,
    Wbe: Wme,
    Wbg: Wmg,
    Wbm: s,
    Wdb: s,
    Web: s,
    Wed,
    Wee,
    Weg: Wed,
    Wem: Wee,
    Wgb: s,
    Wgd,
    Wgg,
    Wgm: Wgg,
    Wmb: s,
    Wmd,
    Wme,
    Wmg,
    Wmm: s,
  };
}

type Weights = { Wgg: number; Wgd: number; Wmg: number; Wme: number; Wmd: number; Wee: number; Wed: number };

function checkWeights(
  w: Record<keyof Weights, bigint>,
  s: bigint,
  G: bigint,
  M: bigint,
  E: bigint,
  D: bigint,
) {
  const T = G + M + E + D;
  const margin = 10n;
  const near = (a: bigint, b: bigint, m: bigint) => (a >= b ? a - b <= m : b - a <= m);
  const { Wgg, Wgd, Wmg, Wme, Wmd, Wee, Wed } = w;
  if (!near(Wed + Wmd + Wgd, s, margin)) return 'sumd';
  if (!near(Wmg + Wgg, s, margin)) return 'sumg';
  if (!near(Wme + Wee, s, margin)) return 'sume';
  if ([Wgg, Wgd, Wmg, Wme, Wmd, Wed, Wee].some((x) => x < 0n || x > s)) return 'range';
  if (!near(Wgg * G + Wgd * D, Wee * E + Wed * D, (margin * T) / 3n)) return 'balance-eg';
  if (!near(Wgg * G + Wgd * D, M * s + Wmd * D + Wme * E + Wmg * G, (margin * T) / 3n)) return 'balance-mid';
  return null;
}

function bwWeightsV10(G: bigint, M: bigint, E: bigint, D: bigint, s: bigint): Weights | null {
  if (G <= 0n || M <= 0n || E <= 0n || D <= 0n || s <= 0n) return null;
  const T = G + M + E + D;
  let w: Record<keyof Weights, bigint>;
  if (3n * E >= T && 3n * G >= T) {
    // Case 1: neither Guard nor Exit is scarce.
    const Wee = (s * (E + G + M)) / (3n * E);
    const Wmg = (s * (2n * G - E - M)) / (3n * G);
    w = { Wgd: s / 3n, Wed: s / 3n, Wmd: s / 3n, Wee, Wme: s - Wee, Wmg, Wgg: s - Wmg };
    if (checkWeights(w, s, G, M, E, D)) return null;
  } else if (3n * E < T && 3n * G < T) {
    // Case 2: both scarce.
    const R = E < G ? E : G;
    const S = E < G ? G : E;
    if (R + D < S) {
      // 2a: give D entirely to the scarcer position.
      w =
        E < G
          ? { Wgg: s, Wee: s, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: s, Wgd: 0n }
          : { Wgg: s, Wee: s, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: 0n, Wgd: s };
    } else {
      // 2b1: Wgg=1, Wmd=Wgd.
      const Wed = (s * (D - 2n * E + 4n * G - 2n * M)) / (3n * D);
      w = {
        Wee: (s * (E - G + M)) / E,
        Wed,
        Wme: (s * (G - M)) / E,
        Wmg: 0n,
        Wgg: s,
        Wmd: (s - Wed) / 2n,
        Wgd: (s - Wed) / 2n,
      };
      let err = checkWeights(w, s, G, M, E, D);
      if (err) {
        // 2b2: Wgg=Wee=1; 2b3 if M > T/3 makes Wmd negative.
        const Wed2 = (s * (D - 2n * E + G + M)) / (3n * D);
        let Wmd2 = (s * (D - 2n * M + G + E)) / (3n * D);
        if (Wmd2 < 0n) Wmd2 = 0n;
        w = { Wgg: s, Wee: s, Wed: Wed2, Wmd: Wmd2, Wme: 0n, Wmg: 0n, Wgd: s - Wed2 - Wmd2 };
        err = checkWeights(w, s, G, M, E, D);
      }
      // C tor accepts a middle-balance miss here.
      if (err && err !== 'balance-mid') return null;
    }
  } else {
    // Case 3: exactly one of Guard or Exit is scarce.
    const S = E < G ? E : G;
    if (3n * (S + D) < T) {
      if (G < E) {
        // 3a, G scarce.
        const Wme = E < M ? 0n : (s * (E - M)) / (2n * E);
        w = { Wgg: s, Wgd: s, Wmd: 0n, Wed: 0n, Wmg: 0n, Wme, Wee: s - Wme };
      } else {
        // 3a, E scarce.
        const Wmg = G < M ? 0n : (s * (G - M)) / (2n * G);
        w = { Wee: s, Wed: s, Wmd: 0n, Wgd: 0n, Wme: 0n, Wmg, Wgg: s - Wmg };
      }
    } else if (G < E) {
      // 3bg: G scarce, Wgg=1, Wmd=Wed.
      const Wgd = (s * (D - 2n * G + E + M)) / (3n * D);
      const Wee = (s * (E + M)) / (2n * E);
      w = { Wgg: s, Wgd, Wmg: 0n, Wee, Wme: s - Wee, Wmd: (s - Wgd) / 2n, Wed: (s - Wgd) / 2n };
      if (checkWeights(w, s, G, M, E, D)) return null;
    } else {
      // 3be: E scarce, Wee=1, Wmd=Wgd.
      const Wed = (s * (D - 2n * E + G + M)) / (3n * D);
      const Wgg = (s * (G + M)) / (2n * G);
      w = { Wee: s, Wed, Wme: 0n, Wgg, Wmg: s - Wgg, Wmd: (s - Wed) / 2n, Wgd: (s - Wed) / 2n };
      if (checkWeights(w, s, G, M, E, D)) return null;
    }
  }
  const out = {} as Weights;
  for (const [k, v] of Object.entries(w)) out[k as keyof Weights] = Number(v);
  return out;
}

// ---------------------------------------------------------------------------
// Consensus encoding, signing and verification

function consensusBody(c: Consensus): JsonObject {
  const body: JsonObject = {
    validAfterMs: c.validAfterMs,
    freshUntilMs: c.freshUntilMs,
    validUntilMs: c.validUntilMs,
    votingIntervalSec: c.votingIntervalSec,
    knownFlags: c.knownFlags,
    params: c.params,
    relays: c.relays.map(entryBody),
    bandwidthWeights: c.bandwidthWeights,
    authorities: c.authorities,
  };
  encodeSharedRand(c, body);
  return body;
}

function consensusFromBody(body: JsonObject): Consensus {
  const what = 'consensus';
  expectKeys(
    body,
    what,
    [
      'validAfterMs',
      'freshUntilMs',
      'validUntilMs',
      'votingIntervalSec',
      'knownFlags',
      'params',
      'relays',
      'bandwidthWeights',
      'authorities',
    ],
    ['sharedRandCurrent', 'sharedRandPrevious'],
  );
  const knownFlags = readFlags(body.knownFlags, `${what} knownFlags`);
  const authorities = readIdList(body.authorities, `${what} authorities`, MAX_AUTHORITIES);
  if (!isSortedUnique(authorities)) throw new InvalidError(what, 'authorities not sorted');
  const c: Consensus = {
    ...readTimes(body, what),
    votingIntervalSec: readInt(body.votingIntervalSec, `${what} votingIntervalSec`, 1, 86_400),
    knownFlags,
    params: readParams(body.params, `${what} params`),
    relays: readRelayList(body.relays, `${what} relays`, knownFlags, readConsensusRelay),
    bandwidthWeights: readWeights(body.bandwidthWeights, `${what} bandwidthWeights`),
    authorities,
  };
  readSharedRand(body, what, c);
  requireCanonical(body, consensusBody(c), what);
  return c;
}

/** SHA-256 of the consensus's canonical body: what authorities sign. */
export function consensusDigest(c: Consensus): Uint8Array {
  return sha256(canonicalJsonBytes(consensusBody(c)));
}

const consensusSignedMessage = (digest: Uint8Array) => concat(utf8(CONSENSUS_PREFIX), digest);

/** One authority's signature on the consensus (dir-spec §3.4.1 directory-signature). */
export function signConsensus(c: Consensus, authoritySeed: Uint8Array): ConsensusSignature {
  return {
    identity: ed25519PublicFromSeed(authoritySeed),
    signature: ed25519Sign(authoritySeed, consensusSignedMessage(consensusDigest(c))),
  };
}

/** Whether `sig` is its identity's signature on the consensus digest `digest`. */
export function consensusSignatureValid(digest: Uint8Array, sig: ConsensusSignature): boolean {
  return ed25519Verify(sig.identity, consensusSignedMessage(digest), sig.signature);
}

/** The document clients fetch: the consensus and the signatures collected so far. */
export function encodeSignedConsensus(c: Consensus, sigs: readonly ConsensusSignature[]): Uint8Array {
  const body = encodeChecked(c, consensusBody, consensusFromBody);
  if (sigs.length > MAX_AUTHORITIES) throw new InvalidError('consensus', 'too many signatures');
  for (const s of sigs) {
    if (s.identity.length !== 32 || s.signature.length !== 64) {
      throw new InvalidError('consensus signature', 'bad length');
    }
  }
  return canonicalJsonBytes({
    consensus: body,
    signatures: sigs.map((s) => ({ identity: toHex(s.identity), signature: b64(s.signature) })),
  });
}

/** Decodes a signed consensus; signatures are not checked here (see verifyConsensus). */
export function decodeSignedConsensus(bytes: Uint8Array, maxBytes: number): SignedConsensus {
  const what = 'signed consensus';
  const o = readObject(parseJsonBounded(bytes, maxBytes, what), what);
  expectKeys(o, what, ['consensus', 'signatures']);
  const consensus = consensusFromBody(readObject(o.consensus, what));
  const signatures = readArray(o.signatures, `${what} signatures`, MAX_AUTHORITIES).map((s) => {
    const so = readObject(s, `${what} signature`);
    expectKeys(so, `${what} signature`, ['identity', 'signature']);
    return {
      identity: readHex(readIdHex(so.identity, `${what} signature identity`), 'id', 32),
      signature: readB64(so.signature, `${what} signature`, 64),
    };
  });
  return { consensus, signatures, digest: consensusDigest(consensus) };
}

export interface ConsensusCheckOptions {
  /** Lowercase hex Ed25519 ids the client trusts. */
  authorityIds: readonly string[];
  nowMs: number;
  /** Clock tolerance on both ends of the validity window (default 0). */
  skewMs?: number;
  /** Used when `signed` is bytes (default 8 MiB). */
  maxBytes?: number;
}

/**
 * Accepts a consensus signed by more than half of `authorityIds` (dir-spec
 * §4: unknown signers are ignored, each authority counts once, bad
 * signatures do not count) and valid at `nowMs`.
 * Throws CryptoError {reason:'not-enough-signatures'} or InvalidError
 * {reason:'not-yet-valid'|'expired'}.
 */
export function verifyConsensus(
  signed: SignedConsensus | Uint8Array,
  opts: ConsensusCheckOptions,
): Consensus {
  const what = 'consensus';
  const s = signed instanceof Uint8Array ? decodeSignedConsensus(signed, opts.maxBytes ?? 8 << 20) : signed;
  const trusted = new Set(opts.authorityIds);
  const digest = consensusDigest(s.consensus);
  const message = consensusSignedMessage(digest);
  const good = new Set<string>();
  for (const sig of s.signatures) {
    const id = toHex(sig.identity);
    if (!trusted.has(id) || good.has(id)) continue;
    if (ed25519Verify(sig.identity, message, sig.signature)) good.add(id);
  }
  if (good.size <= trusted.size / 2) {
    throw new CryptoError(what, 'not enough valid authority signatures', {
      reason: 'not-enough-signatures',
      valid: good.size,
      needed: Math.floor(trusted.size / 2) + 1,
    });
  }
  const skew = opts.skewMs ?? 0;
  if (opts.nowMs < s.consensus.validAfterMs - skew) {
    throw new InvalidError(what, 'not yet valid', { reason: 'not-yet-valid' });
  }
  if (opts.nowMs > s.consensus.validUntilMs + skew)
    throw new InvalidError(what, 'expired', { reason: 'expired' });
  return s.consensus;
}

// ---------------------------------------------------------------------------
// Flag assignment (dir-spec §3.4.2)

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
