/**
 * Field codecs shared by every directory document (dir-spec §2.1.1 router
 * descriptors, §3.4.1 votes and consensus): limits, the checked readers for
 * nicknames, addresses, ids, flags, exit policies, protocol lists and
 * integer maps, and the canonical-form rules each document decoder applies.
 *
 * Overview: each `read*` takes parsed JSON (canonical-json.ts) and either
 * returns a typed value or throws `InvalidError`; none of them signs,
 * hashes or decides anything.
 *
 * Design notes:
 * - Decoders re-encode what they decoded and require the same canonical
 *   body (`requireCanonical`), so every accepted document has exactly one
 *   byte form (no alternative base64 padding, unsorted flags, unnormalised
 *   policies ...) and its digest is well defined; encoders run their own
 *   decoder first (`encodeChecked`), so nothing is signed that a peer would
 *   refuse.
 *
 * Not in this module: signed envelopes (envelope.ts), the vote/consensus
 * header (header.ts), relay entries (relay-entry.ts), the documents.
 */
import { toBase64 } from '../bytes.js';
import {
  canonicalJson,
  type JsonObject,
  readArray,
  readInt,
  readObject,
  readString,
} from '../canonical-json.js';
import { InvalidError } from '../errors.js';
import { checkExitPolicy, type ExitPolicy, parseExitPolicy } from '../exit-policy.js';

/** Tor's MAX_DESCRIPTOR_UPLOAD_SIZE. */
export const MAX_DESCRIPTOR_BYTES = 20_000;
export const MAX_RELAYS = 10_000;
export const MAX_FAMILY = 64;
export const MAX_FLAGS = 32;
export const MAX_PARAMS = 256;
export const MAX_AUTHORITIES = 64;

const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);

export const b64 = (b: Uint8Array) => toBase64(b, false);

export function readNickname(v: unknown, what: string): string {
  const s = readString(v, what, 19);
  if (!/^[A-Za-z0-9]{1,19}$/.test(s)) throw new InvalidError(what, 'bad nickname');
  return s;
}

export function readAddress(v: unknown, what: string): string {
  const s = readString(v, what, 253);
  // IPv4, bare IPv6, or a DNS name: all fit this alphabet; exit-policy and
  // path code parse them further.
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(s)) throw new InvalidError(what, 'bad address');
  return s;
}

export function readLinkUrl(v: unknown, what: string): string {
  const s = readString(v, what, 512);
  if (!/^wss?:\/\/[\x21-\x7e]+$/.test(s)) throw new InvalidError(what, 'not a ws:// or wss:// URL');
  return s;
}

export function readIdHex(v: unknown, what: string): string {
  const s = readString(v, what, 64);
  if (!/^[0-9a-f]{64}$/.test(s)) throw new InvalidError(what, 'not a lowercase hex Ed25519 id');
  return s;
}

export function readIdList(v: unknown, what: string, max: number): string[] {
  const out = readArray(v, what, max).map((x) => readIdHex(x, what));
  if (new Set(out).size !== out.length) throw new InvalidError(what, 'duplicate id');
  return out;
}

function readFlag(v: unknown, what: string): string {
  const s = readString(v, what, 32);
  if (!/^[A-Za-z0-9]{1,32}$/.test(s)) throw new InvalidError(what, 'bad flag name');
  return s;
}

export function isSortedUnique(xs: readonly string[]): boolean {
  for (let i = 1; i < xs.length; i++) if (!(xs[i - 1]! < xs[i]!)) return false;
  return true;
}

export function readFlags(v: unknown, what: string): string[] {
  const out = readArray(v, what, MAX_FLAGS).map((x) => readFlag(x, what));
  if (!isSortedUnique(out)) throw new InvalidError(what, 'flags not sorted and unique');
  return out;
}

export function readExitPolicy(v: unknown, what: string): ExitPolicy {
  const lines = readArray(v, what, 1024).map((x) => readString(x, what, 128));
  return checkExitPolicy(parseExitPolicy(lines));
}

export function readProtocols(v: unknown, what: string): Record<string, string> {
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
export const readParams = (v: unknown, what: string) => readIntMap(v, what, PARAM_KEY, INT32_MIN, INT32_MAX);
export const readWeights = (v: unknown, what: string) =>
  readIntMap(v, what, WEIGHT_KEY, INT32_MIN, INT32_MAX);

/** Throws unless re-encoding `decoded` gives back `body` exactly. */
export function requireCanonical(body: JsonObject, reencoded: JsonObject, what: string): void {
  if (canonicalJson(body) !== canonicalJson(reencoded)) throw new InvalidError(what, 'not in canonical form');
}

/**
 * Encodes `value` and runs the body through its own decoder, so nothing is
 * signed or published that a peer's decoder would refuse.
 */
export function encodeChecked<T>(
  value: T,
  toBody: (v: T) => JsonObject,
  fromBody: (body: JsonObject) => unknown,
): JsonObject {
  const body = toBody(value);
  fromBody(JSON.parse(canonicalJson(body)) as JsonObject);
  return body;
}
