/**
 * Relay descriptors (dir-spec §2.1.1, server descriptor format): what a
 * relay says about itself, signed with its identity key and uploaded to
 * every authority (dir-spec §2.2).
 *
 * Overview: `signRelayDescriptor` encodes and signs; `verifyRelayDescriptor`
 * decodes, checks the self-signature and the publication time (C tor's
 * ROUTER_ALLOW_SKEW / ROUTER_MAX_AGE_TO_PUBLISH window); votes and the
 * consensus name a descriptor by `descriptorDigest`.
 *
 * Deviations (README: differs from Tor): canonical JSON instead of Tor's meta-format; the
 * identity is Ed25519 only and signs directly (no RSA, no signing-key
 * certificate) over `"Shallot relay descriptor v1\0" | canonical body`
 * (envelope.ts); the full normalised exit policy; bandwidth in bytes/s; the
 * WebSocket link URL and the TLS certificate hash for pinning links.
 *
 * Not in this module: what an authority decides from descriptors
 * (flags.ts), how relays upload them (services/relay/publisher.ts).
 */
import { expectKeys, type JsonObject, readB64, readBool, readInt, readString } from '../canonical-json.js';
import { sha256 } from '../crypto.js';
import { InvalidError } from '../errors.js';
import { type ExitPolicy, formatExitPolicy } from '../exit-policy.js';
import { checkEnvelopeSignature, openEnvelope, signEnvelope } from './envelope.js';
import {
  b64,
  encodeChecked,
  MAX_DESCRIPTOR_BYTES,
  MAX_FAMILY,
  readExitPolicy,
  readIdList,
  readProtocols,
  requireCanonical,
} from './fields.js';
import {
  type RelayCore,
  readRelayCore,
  readRelayCoreOptional,
  relayCoreBody,
  relayCoreOptionalBody,
} from './relay-entry.js';

export interface RelayDescriptor extends RelayCore {
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

const DESC_PREFIX = 'Shallot relay descriptor v1\0';

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

/**
 * How often a relay re-uploads an unchanged descriptor. C tor's relays
 * regenerate theirs every FORCE_REGENERATE_DESCRIPTOR_INTERVAL (18 h), 18
 * of its default 1 h voting intervals, before its authorities drop it at
 * ROUTER_MAX_AGE_TO_PUBLISH (24 h, kept here). Shallot counts the refresh
 * in voting intervals (capped at C tor's 18 h), as it scales time periods:
 * a testnet votes every few seconds and its authorities keep descriptors
 * in memory only, so one that restarted hears from every relay again
 * within 18 intervals, not 18 h, while an idle relay still uploads only
 * once per 18 intervals.
 */
export const DESCRIPTOR_REFRESH_INTERVALS = 18;

export function descriptorRefreshMs(intervalMs: number): number {
  return Math.min(DESCRIPTOR_REFRESH_INTERVALS * 3600_000, DESCRIPTOR_REFRESH_INTERVALS * intervalMs);
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
