/**
 * Canonical JSON: the byte form Shallot signs and hashes directory documents in.
 *
 * Overview: Tor's directory documents are a line-oriented meta-format
 * (dir-spec §1.2) hashed and signed as text. Shallot deliberately uses JSON
 * instead (README: differs from Tor) but keeps Tor's content; a signature then needs one
 * byte form per value. `canonicalJson` gives it: object keys sorted by
 * UTF-16 code unit (as RFC 8785 does), no whitespace, numbers in
 * ECMAScript shortest round-trip form, strings as `JSON.stringify` writes
 * them. Only JSON's own value types are accepted; anything else (undefined,
 * NaN, Infinity, bigint, functions, Uint8Array, class instances, cycles)
 * throws `InvalidError`, so a signer can never sign something a verifier
 * would re-encode differently.
 *
 * `parseJsonBounded` is the matching decoder for untrusted bytes: a size
 * limit checked before parsing, fatal UTF-8, and only `InvalidError` out.
 * The `read*` helpers below check the shape of parsed values field by field,
 * so document decoders never touch an unchecked `unknown`.
 *
 * Not in this module: what documents contain (see dir/).
 */
import { fromBase64, fromHex, fromUtf8, utf8 } from './bytes.js';
import { InvalidError } from './errors.js';

/** Nesting deeper than this is refused: directory documents are shallow. */
export const MAX_JSON_DEPTH = 64;

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function encodeValue(v: unknown, depth: number, out: string[]): void {
  if (depth > MAX_JSON_DEPTH) throw new InvalidError('canonical json', 'nested too deeply', { depth });
  if (v === null) {
    out.push('null');
    return;
  }
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new InvalidError('canonical json', 'non-finite number');
      // -0 and 0 must encode alike; JSON.stringify(-0) is already "0".
      out.push(JSON.stringify(v));
      return;
    case 'object': {
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(',');
          // Sparse arrays have holes JSON cannot express.
          if (!(i in v)) throw new InvalidError('canonical json', 'sparse array');
          encodeValue(v[i], depth + 1, out);
        }
        out.push(']');
        return;
      }
      if (!isPlainObject(v)) throw new InvalidError('canonical json', 'not a plain object');
      const keys = Object.keys(v).sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (i > 0) out.push(',');
        out.push(JSON.stringify(k), ':');
        encodeValue(v[k], depth + 1, out);
      });
      out.push('}');
      return;
    }
    default:
      throw new InvalidError('canonical json', `unsupported type ${typeof v}`);
  }
}

/** The one canonical text of a JSON value (sorted keys, no whitespace). */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  encodeValue(value, 0, out);
  return out.join('');
}

/** `canonicalJson` as UTF-8 bytes, the form that is hashed and signed. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}

function depthOf(v: unknown, depth: number, what: string): void {
  if (depth > MAX_JSON_DEPTH) throw new InvalidError(what, 'nested too deeply', { depth });
  if (v === null || typeof v !== 'object') return;
  for (const child of Array.isArray(v) ? v : Object.values(v)) depthOf(child, depth + 1, what);
}

/**
 * Parses untrusted JSON, refusing input over `maxBytes` (UTF-8 bytes) before
 * doing any work. Throws only `InvalidError`.
 */
export function parseJsonBounded(input: Uint8Array | string, maxBytes: number, what: string): unknown {
  let text: string;
  if (typeof input === 'string') {
    // A UTF-16 unit is at most 3 UTF-8 bytes, so long strings are refused without encoding them.
    if (input.length > maxBytes) throw new InvalidError(what, 'too large', { size: input.length, maxBytes });
    const size = Buffer.byteLength(input, 'utf8');
    if (size > maxBytes) throw new InvalidError(what, 'too large', { size, maxBytes });
    text = input;
  } else {
    if (input.length > maxBytes) throw new InvalidError(what, 'too large', { size: input.length, maxBytes });
    text = fromUtf8(input, what);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // SyntaxError, or a RangeError from very deep nesting: both are bad input.
    throw new InvalidError(what, 'not valid JSON');
  }
  depthOf(value, 0, what);
  return value;
}

// ---------------------------------------------------------------------------
// Shape readers for parsed JSON. Each names the field in its error.

export type JsonObject = Record<string, unknown>;

export function readObject(v: unknown, what: string): JsonObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidError(what, 'not an object');
  return v as JsonObject;
}

/** Rejects fields other than `allowed`, so two encodings cannot carry the same signed body. */
export function expectKeys(o: JsonObject, what: string, required: string[], optional: string[] = []): void {
  for (const k of required) {
    if (!Object.hasOwn(o, k)) throw new InvalidError(what, `missing field ${k}`, { field: k });
  }
  for (const k of Object.keys(o)) {
    if (!required.includes(k) && !optional.includes(k)) {
      throw new InvalidError(what, 'unknown field', { field: k.slice(0, 64) });
    }
  }
}

export function readArray(v: unknown, what: string, maxLength = Number.POSITIVE_INFINITY): unknown[] {
  if (!Array.isArray(v)) throw new InvalidError(what, 'not an array');
  if (v.length > maxLength) throw new InvalidError(what, 'too many entries', { length: v.length, maxLength });
  return v;
}

export function readString(v: unknown, what: string, maxLength = 1024): string {
  if (typeof v !== 'string') throw new InvalidError(what, 'not a string');
  if (v.length > maxLength) throw new InvalidError(what, 'string too long', { length: v.length, maxLength });
  return v;
}

export function readBool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new InvalidError(what, 'not a boolean');
  return v;
}

/** An integer in [min, max] (defaults: 0 .. 2^53-1). */
export function readInt(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidError(what, 'not an integer in range', { min, max });
  }
  return v;
}

/** Base64 bytes (padding optional), of exactly `length` bytes when given. */
export function readB64(v: unknown, what: string, length?: number): Uint8Array {
  const b = fromBase64(readString(v, what, 1 << 20), what);
  if (length !== undefined && b.length !== length) {
    throw new InvalidError(what, 'wrong length', { expected: length, length: b.length });
  }
  return b;
}

/** Lowercase-or-uppercase hex bytes of exactly `length` bytes when given. */
export function readHex(v: unknown, what: string, length?: number): Uint8Array {
  const s = readString(v, what, 1 << 20);
  if (/\s/.test(s)) throw new InvalidError(what, 'not hex');
  const b = fromHex(s, what);
  if (length !== undefined && b.length !== length) {
    throw new InvalidError(what, 'wrong length', { expected: length, length: b.length });
  }
  return b;
}
