/**
 * Votes (dir-spec §3.4.1, vote format): one authority's signed view of the
 * network for a coming round: the shared header (header.ts), its author and
 * publication time, its shared-random commits and reveals (srv-spec §4),
 * and an entry per relay it lists (relay-entry.ts).
 *
 * Overview: `encodeVote` encodes and signs with the author's identity;
 * `decodeVote` decodes, optionally refuses authors outside the configured
 * set, and checks the signature.
 *
 * Deviation (README: differs from Tor): canonical JSON in an envelope signed by the
 * author's Ed25519 identity over `"Shallot vote v1\0" | canonical body`
 * (envelope.ts), instead of Tor's text and RSA authority certificates.
 *
 * Not in this module: how an authority builds its vote (flags.ts,
 * services/directory), how votes combine (voting.ts).
 */
import { fromHex } from '../bytes.js';
import {
  expectKeys,
  type JsonObject,
  readArray,
  readHex,
  readInt,
  readObject,
  readString,
} from '../canonical-json.js';
import { CryptoError } from '../errors.js';
import { checkEnvelopeSignature, openEnvelope, signEnvelope } from './envelope.js';
import { encodeChecked, MAX_AUTHORITIES, readIdHex, requireCanonical } from './fields.js';
import { type DocumentHeader, HEADER_KEYS, HEADER_OPTIONAL_KEYS, headerBody, readHeader } from './header.js';
import { entryBody, readRelayList, readVoteRelay, type VoteRelay } from './relay-entry.js';
import { decodeCommit, decodeReveal } from './shared-random.js';

/** A shared-random commit (and, in the reveal phase, reveal) an authority publishes in its vote. */
export interface SrVoteCommit {
  /** Lowercase hex Ed25519 id of the committing authority. */
  authorityId: string;
  commit: string;
  reveal?: string;
}

/** One authority's view (dir-spec §3.4.1). */
export interface Vote extends DocumentHeader {
  /** Lowercase hex Ed25519 id of the author. */
  authority: string;
  publishedMs: number;
  srCommits: SrVoteCommit[];
  relays: VoteRelay[];
}

const VOTE_PREFIX = 'Shallot vote v1\0';

function voteBody(v: Vote): JsonObject {
  return {
    ...headerBody(v),
    authority: v.authority,
    publishedMs: v.publishedMs,
    srCommits: v.srCommits.map((c) => {
      const o: JsonObject = { authorityId: c.authorityId, commit: c.commit };
      if (c.reveal !== undefined) o.reveal = c.reveal;
      return o;
    }),
    relays: v.relays.map(entryBody),
  };
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
    [...HEADER_KEYS, 'authority', 'publishedMs', 'srCommits', 'relays'],
    HEADER_OPTIONAL_KEYS,
  );
  const header = readHeader(body, what);
  const v: Vote = {
    ...header,
    authority: readIdHex(body.authority, `${what} authority`),
    publishedMs: readInt(body.publishedMs, `${what} publishedMs`),
    srCommits: readArray(body.srCommits, `${what} srCommits`, MAX_AUTHORITIES).map(readSrCommit),
    relays: readRelayList(body.relays, `${what} relays`, header.knownFlags, readVoteRelay),
  };
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
