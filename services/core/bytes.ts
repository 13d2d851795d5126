/**
 * ByteReader / ByteWriter: the only code that reads or writes multi-byte
 * integers. Big-endian throughout, as in every Tor spec (`INT_N` = N bytes).
 *
 * Readers check bounds before every read and throw `TruncatedError` when the
 * input ends early; `assertExhausted()` turns trailing garbage into an
 * `InvalidError`. Writers grow as needed.
 */
import { InvalidError, TruncatedError } from './errors.js';

export class ByteReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what = 'input',
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n > this.remaining) throw new TruncatedError(this.what, n, this.remaining);
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  /** A view (not a copy) of the next n bytes. */
  take(n: number): Uint8Array {
    if (!Number.isInteger(n) || n < 0) throw new InvalidError(this.what, `bad length ${n}`);
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Everything not yet read. */
  rest(): Uint8Array {
    return this.take(this.remaining);
  }

  skip(n: number): void {
    this.take(n);
  }

  assertExhausted(): void {
    if (this.remaining !== 0) {
      throw new InvalidError(this.what, `${this.remaining} trailing bytes`, { trailing: this.remaining });
    }
  }
}

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initial = 64) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private checkInt(v: number, max: number, what: string): void {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new InvalidError(what, `value ${v} out of range`);
  }

  u8(v: number): this {
    this.checkInt(v, 0xff, 'u8');
    this.reserve(1);
    this.view.setUint8(this.len++, v);
    return this;
  }

  u16(v: number): this {
    this.checkInt(v, 0xffff, 'u16');
    this.reserve(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    this.checkInt(v, 0xffffffff, 'u32');
    this.reserve(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  u64(v: bigint | number): this {
    const b = BigInt(v);
    if (b < 0n || b > 0xffffffffffffffffn) throw new InvalidError('u64', `value ${b} out of range`);
    this.reserve(8);
    this.view.setBigUint64(this.len, b);
    this.len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** Writes `n` zero bytes. */
  zeros(n: number): this {
    this.reserve(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
    return this;
  }

  /** The bytes written so far (a copy-free view of exactly `length` bytes). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Encodes an unsigned integer as INT_8 (8 bytes, big-endian). */
export function int8(v: bigint | number): Uint8Array {
  return new ByteWriter(8).u64(v).finish();
}

/** Encodes an unsigned integer as INT_4. */
export function int4(v: number): Uint8Array {
  return new ByteWriter(4).u32(v).finish();
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decodes UTF-8, throwing InvalidError (not a TypeError) on bad sequences. */
export function fromUtf8(b: Uint8Array, what = 'text'): string {
  try {
    return decoder.decode(b);
  } catch {
    throw new InvalidError(what, 'not valid UTF-8');
  }
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string, what = 'hex'): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new InvalidError(what, 'not hex');
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

export function toBase64(b: Uint8Array, pad = true): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
  return pad ? s : s.replace(/=+$/, '');
}

/** Decodes standard base64 with or without `=` padding; rejects other characters. */
export function fromBase64(s: string, what = 'base64'): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new InvalidError(what, 'not base64');
  }
  return new Uint8Array(Buffer.from(s, 'base64'));
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding (Tor's onion addresses and client-auth keys). */
export function toBase32(b: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of b) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes unpadded base32 in either case. Rejects other characters, lengths
 * no byte count encodes to, and non-zero trailing bits (so each value has
 * exactly one encoding).
 */
export function fromBase32(s: string, what = 'base32'): Uint8Array {
  const rem = s.length % 8;
  if (rem === 1 || rem === 3 || rem === 6) throw new InvalidError(what, 'not base32 (length)');
  const out = new Uint8Array(Math.floor((s.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const ch of s.toLowerCase()) {
    const v = BASE32.indexOf(ch);
    if (v < 0) throw new InvalidError(what, 'not base32');
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new InvalidError(what, 'not base32 (trailing bits)');
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Byte-wise lexicographic compare, for ring ordering. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
