/**
 * The header a vote and the consensus share (dir-spec §3.4.1, the preamble
 * of a network-status document): valid-after / fresh-until / valid-until,
 * voting-delay's interval, known-flags, params and the shared random values
 * (srv-spec §4: shared-rand-current-value, shared-rand-previous-value).
 * One codec, so both documents read and check these fields the same way.
 *
 * Overview: `headerBody(h)` gives the header's JSON fields, which the
 * document adds its own to; `readHeader(body, what)` checks and returns
 * them. `HEADER_KEYS` / `HEADER_OPTIONAL_KEYS` list them for the
 * document's `expectKeys`.
 *
 * Not in this module: the fields only a vote has (author, published time,
 * shared-random commits: vote.ts) or only the consensus has (relays with
 * consensus bandwidths, bandwidth weights, authority list: consensus.ts).
 */
import { expectKeys, type JsonObject, readB64, readInt, readObject } from '../canonical-json.js';
import { InvalidError } from '../errors.js';
import { b64, MAX_AUTHORITIES, readFlags, readParams } from './fields.js';

export interface SharedRandValue {
  /** Number of reveals the value was computed from. */
  reveals: number;
  /** 32 bytes. */
  value: Uint8Array;
}

/** The fields every network-status document starts with. */
export interface DocumentHeader {
  validAfterMs: number;
  freshUntilMs: number;
  validUntilMs: number;
  votingIntervalSec: number;
  /** Sorted. */
  knownFlags: string[];
  params: Record<string, number>;
  sharedRandCurrent?: SharedRandValue;
  sharedRandPrevious?: SharedRandValue;
}

export const HEADER_KEYS = [
  'validAfterMs',
  'freshUntilMs',
  'validUntilMs',
  'votingIntervalSec',
  'knownFlags',
  'params',
];
export const HEADER_OPTIONAL_KEYS = ['sharedRandCurrent', 'sharedRandPrevious'];

function encodeSrValue(v: SharedRandValue): JsonObject {
  return { reveals: v.reveals, value: b64(v.value) };
}

function readSrValue(v: unknown, what: string): SharedRandValue {
  const o = readObject(v, what);
  expectKeys(o, what, ['reveals', 'value']);
  return { reveals: readInt(o.reveals, what, 0, MAX_AUTHORITIES), value: readB64(o.value, what, 32) };
}

export function headerBody(h: DocumentHeader): JsonObject {
  const body: JsonObject = {
    validAfterMs: h.validAfterMs,
    freshUntilMs: h.freshUntilMs,
    validUntilMs: h.validUntilMs,
    votingIntervalSec: h.votingIntervalSec,
    knownFlags: h.knownFlags,
    params: h.params,
  };
  if (h.sharedRandCurrent) body.sharedRandCurrent = encodeSrValue(h.sharedRandCurrent);
  if (h.sharedRandPrevious) body.sharedRandPrevious = encodeSrValue(h.sharedRandPrevious);
  return body;
}

/** Reads the header fields of `body` (its keys already checked by the caller). */
export function readHeader(body: JsonObject, what: string): DocumentHeader {
  const validAfterMs = readInt(body.validAfterMs, what);
  const freshUntilMs = readInt(body.freshUntilMs, what);
  const validUntilMs = readInt(body.validUntilMs, what);
  if (!(validAfterMs < freshUntilMs && freshUntilMs <= validUntilMs)) {
    throw new InvalidError(what, 'need valid-after < fresh-until <= valid-until');
  }
  const h: DocumentHeader = {
    validAfterMs,
    freshUntilMs,
    validUntilMs,
    votingIntervalSec: readInt(body.votingIntervalSec, `${what} votingIntervalSec`, 1, 86_400),
    knownFlags: readFlags(body.knownFlags, `${what} knownFlags`),
    params: readParams(body.params, `${what} params`),
  };
  if (body.sharedRandCurrent !== undefined)
    h.sharedRandCurrent = readSrValue(body.sharedRandCurrent, `${what} srv`);
  if (body.sharedRandPrevious !== undefined)
    h.sharedRandPrevious = readSrValue(body.sharedRandPrevious, `${what} srv`);
  return h;
}
