/**
 * The consensus (dir-spec §3.4.1, consensus format) and its signatures:
 * encoding, the digest authorities sign, one authority's detached
 * signature, the signed document clients fetch, and the client's check
 * that more than half of the configured authorities signed it (dir-spec
 * §4: a client accepts a consensus signed by a majority of the authorities
 * it knows).
 *
 * Overview:
 * - `consensusDigest` is what every authority signs (`signConsensus`).
 * - `encodeSignedConsensus` / `decodeSignedConsensus`: the consensus with
 *   the signatures collected so far, served to clients.
 * - `verifyConsensus`: majority of trusted signers and validity window.
 * - `encodeSignatureDocument` / `decodeSignatureDocument`: the detached
 *   signature authorities exchange (dir-spec §3.10, detached-signatures
 *   document), one per authority.
 *
 * Deviations (README: differs from Tor): canonical JSON; signatures are Ed25519 over
 * `"Shallot consensus v1\0" | SHA-256(canonical body)`, one per authority
 * (Tor signs the SHA-1/SHA-256 of the text with the RSA signing key).
 *
 * Not in this module: computing the consensus from votes (voting.ts), the
 * bandwidth weights (bw-weights.ts), fetching it (services/directory).
 */
import { concat, fromHex, toHex, utf8 } from '../bytes.js';
import {
  canonicalJsonBytes,
  expectKeys,
  type JsonObject,
  parseJsonBounded,
  readArray,
  readB64,
  readHex,
  readInt,
  readObject,
  readString,
} from '../canonical-json.js';
import { ed25519PublicFromSeed, ed25519Sign, ed25519Verify, sha256 } from '../crypto.js';
import { CryptoError, InvalidError } from '../errors.js';
import {
  b64,
  encodeChecked,
  isSortedUnique,
  MAX_AUTHORITIES,
  readIdHex,
  readIdList,
  readWeights,
  requireCanonical,
} from './fields.js';
import { type DocumentHeader, HEADER_KEYS, HEADER_OPTIONAL_KEYS, headerBody, readHeader } from './header.js';
import { type ConsensusRelay, entryBody, readConsensusRelay, readRelayList } from './relay-entry.js';

export interface Consensus extends DocumentHeader {
  /** Sorted by identity. */
  relays: ConsensusRelay[];
  bandwidthWeights: Record<string, number>;
  /** Lowercase hex Ed25519 ids of the configured authorities, sorted. */
  authorities: string[];
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

const CONSENSUS_PREFIX = 'Shallot consensus v1\0';
/** A signature document is about 250 bytes; this bounds a peer's upload. */
export const MAX_SIGNATURE_BYTES = 4096;

function consensusBody(c: Consensus): JsonObject {
  return {
    ...headerBody(c),
    relays: c.relays.map(entryBody),
    bandwidthWeights: c.bandwidthWeights,
    authorities: c.authorities,
  };
}

function consensusFromBody(body: JsonObject): Consensus {
  const what = 'consensus';
  expectKeys(body, what, [...HEADER_KEYS, 'relays', 'bandwidthWeights', 'authorities'], HEADER_OPTIONAL_KEYS);
  const header = readHeader(body, what);
  const authorities = readIdList(body.authorities, `${what} authorities`, MAX_AUTHORITIES);
  if (!isSortedUnique(authorities)) throw new InvalidError(what, 'authorities not sorted');
  const c: Consensus = {
    ...header,
    relays: readRelayList(body.relays, `${what} relays`, header.knownFlags, readConsensusRelay),
    bandwidthWeights: readWeights(body.bandwidthWeights, `${what} bandwidthWeights`),
    authorities,
  };
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

/**
 * The signature document authorities exchange: canonical JSON
 * {validAfterMs, digest(hex), identity(hex), signature(b64)}, Tor's detached
 * signature for one authority. The digest names the consensus it signs, so a
 * receiver can check it before holding that consensus.
 */
export function encodeSignatureDocument(
  validAfterMs: number,
  digest: Uint8Array,
  sig: ConsensusSignature,
): Uint8Array {
  return canonicalJsonBytes({
    validAfterMs,
    digest: toHex(digest),
    identity: toHex(sig.identity),
    signature: b64(sig.signature),
  });
}

export function decodeSignatureDocument(bytes: Uint8Array): {
  validAfterMs: number;
  digestHex: string;
  signature: ConsensusSignature;
} {
  const what = 'consensus signature';
  const o = readObject(parseJsonBounded(bytes, MAX_SIGNATURE_BYTES, what), what);
  expectKeys(o, what, ['validAfterMs', 'digest', 'identity', 'signature']);
  const digestHex = readString(o.digest, what, 64);
  const idHex = readString(o.identity, what, 64);
  if (!/^[0-9a-f]{64}$/.test(digestHex) || !/^[0-9a-f]{64}$/.test(idHex)) {
    throw new InvalidError(what, 'digest and identity must be 64 lowercase hex digits');
  }
  return {
    validAfterMs: readInt(o.validAfterMs, what),
    digestHex,
    signature: { identity: fromHex(idHex), signature: readB64(o.signature, what, 64) },
  };
}
