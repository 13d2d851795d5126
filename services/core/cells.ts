/**
 * Link cells: the 514-byte fixed cells and the variable-length cells that
 * travel on a channel, and the typed messages they carry.
 *
 * Follows tor-spec §3 (cell layout), §4 (VERSIONS, CERTS, AUTH_CHALLENGE,
 * AUTHENTICATE, NETINFO), §5.1 (CREATE2/CREATED2) and §5.4 (DESTROY reasons).
 *
 * Not in this module: relay-cell bodies (relay-cell.ts) and their crypto
 * (relay-crypto.ts); the AUTHENTICATE type 3 body (auth3.ts); channel state
 * (net/channel.ts).
 *
 * Design notes: a cell is `{circId, command, payload}`; a `LinkMessage` is the
 * decoded payload, a discriminated union on `type`. The decoder works on a
 * byte stream: it throws TruncatedError when the buffer holds only part of a
 * cell, so a reader can wait for more bytes, and InvalidError otherwise.
 */

import { ByteReader, ByteWriter } from './bytes.js';
import { InvalidError } from './errors.js';

export const CELL_BODY_LEN = 509;
/** Handshake types in CREATE2 (tor-spec §5.1). */
export const HTYPE_NTOR = 2;

export const CellCommand = {
  PADDING: 0,
  CREATE: 1,
  CREATED: 2,
  RELAY: 3,
  DESTROY: 4,
  CREATE_FAST: 5,
  CREATED_FAST: 6,
  VERSIONS: 7,
  NETINFO: 8,
  RELAY_EARLY: 9,
  CREATE2: 10,
  CREATED2: 11,
  PADDING_NEGOTIATE: 12,
  VPADDING: 128,
  CERTS: 129,
  AUTH_CHALLENGE: 130,
  AUTHENTICATE: 131,
  AUTHORIZE: 132,
} as const;

export const DestroyReason = {
  NONE: 0,
  PROTOCOL: 1,
  INTERNAL: 2,
  REQUESTED: 3,
  HIBERNATING: 4,
  RESOURCELIMIT: 5,
  CONNECTFAILED: 6,
  OR_IDENTITY: 7,
  CHANNEL_CLOSED: 8,
  FINISHED: 9,
  TIMEOUT: 10,
  DESTROYED: 11,
  NOSUCHSERVICE: 12,
} as const;

const DESTROY_NAMES = new Map<number, string>(
  Object.entries(DestroyReason).map(([k, v]) => [v, k.toLowerCase()] as const),
);

/** A stable label for metrics; unknown codes keep their number. */
export function destroyReasonName(reason: number): string {
  return DESTROY_NAMES.get(reason) ?? `unknown_${reason}`;
}

export function isVariableLength(command: number, linkVersion: number): boolean {
  // tor-spec §3: on link version 2 only VERSIONS is variable; from 3 on, 128+ too.
  return command === CellCommand.VERSIONS || (command >= 128 && linkVersion !== 2);
}

export interface Cell {
  circId: number;
  command: number;
  payload: Uint8Array;
}

export interface CellDecodeOptions {
  /** Largest variable-cell payload accepted; the 16-bit length allows 65535. */
  maxVariablePayload?: number;
}

/** `linkVersion` 0 means "not negotiated yet": 2-byte CircIDs, as the first VERSIONS cell uses. */
export function encodeCell(cell: Cell, linkVersion: number): Uint8Array {
  if (!isVariableLength(cell.command, linkVersion)) {
    return encodeFixedCell(cell, linkVersion, (n) => new Uint8Array(n)) as Uint8Array;
  }
  checkHeader(cell.circId, cell.command, linkVersion);
  if (cell.payload.length > 0xffff) {
    throw new InvalidError('cell', 'variable payload over 65535 bytes', { length: cell.payload.length });
  }
  const w = new ByteWriter((linkVersion >= 4 ? 7 : 5) + cell.payload.length);
  if (linkVersion >= 4) w.u32(cell.circId);
  else w.u16(cell.circId);
  w.u8(cell.command);
  w.u16(cell.payload.length);
  w.bytes(cell.payload);
  return w.finish();
}

function checkHeader(circId: number, command: number, linkVersion: number): void {
  const max = linkVersion >= 4 ? 0xffffffff : 0xffff;
  if (!Number.isInteger(circId) || circId < 0 || circId > max) {
    throw new InvalidError('cell', `CircID ${circId} out of range`);
  }
  if (!Number.isInteger(command) || command < 0 || command > 0xff) {
    throw new InvalidError('cell', `command ${command} out of range`);
  }
}

/**
 * A fixed-length cell (every RELAY cell) written into the buffer `alloc`
 * hands out for its exact size: a link's send batch (transport.ts), so the
 * cell needs no buffer of its own. Checked before `alloc` is called, so an
 * invalid cell takes no space; `alloc` may return null (link closed).
 * Grown step by step through ByteWriter and copied again at send time,
 * encoding was a tenth of a relay's CPU time in a download (issue 16).
 */
export function encodeFixedCell(
  cell: Cell,
  linkVersion: number,
  alloc: (n: number) => Uint8Array | null,
): Uint8Array | null {
  if (cell.payload.length > CELL_BODY_LEN) {
    throw new InvalidError('cell', 'fixed payload over 509 bytes', { length: cell.payload.length });
  }
  const out = allocFixedCell(cell.circId, cell.command, linkVersion, alloc);
  if (!out) return null;
  const header = out.length - CELL_BODY_LEN;
  out.set(cell.payload, header);
  // `alloc` may hand out unzeroed memory: a short payload is padded with zeros here.
  if (cell.payload.length < CELL_BODY_LEN) out.fill(0, header + cell.payload.length);
  return out;
}

/**
 * A fixed-length cell's header written into the buffer `alloc` hands out
 * (a link's send batch), and its 509-byte body there for the caller to fill
 * at once, with any contents until then: a relay forwards, or an exit
 * encodes, seals and encrypts, a RELAY cell where it is sent, with no body
 * of its own and no copy (issue 16). Checked before `alloc` is called; null
 * when `alloc` returns null (link closed).
 */
export function reserveFixedCell(
  circId: number,
  command: number,
  linkVersion: number,
  alloc: (n: number) => Uint8Array | null,
): Uint8Array | null {
  const out = allocFixedCell(circId, command, linkVersion, alloc);
  return out ? out.subarray(out.length - CELL_BODY_LEN) : null;
}

/** The whole cell from `alloc`, header written, body left as it comes. */
function allocFixedCell(
  circId: number,
  command: number,
  linkVersion: number,
  alloc: (n: number) => Uint8Array | null,
): Uint8Array | null {
  checkHeader(circId, command, linkVersion);
  if (isVariableLength(command, linkVersion)) {
    throw new InvalidError('cell', `command ${command} is variable-length`);
  }
  const header = linkVersion >= 4 ? 5 : 3;
  const out = alloc(header + CELL_BODY_LEN);
  if (!out) return null;
  if (header === 5) {
    out[0] = circId >>> 24;
    out[1] = (circId >>> 16) & 0xff;
  }
  out[header - 3] = (circId >>> 8) & 0xff;
  out[header - 2] = circId & 0xff;
  out[header - 1] = command;
  return out;
}

/**
 * Decodes one cell from `buf` at `offset` (the front by default);
 * TruncatedError means "wait for more bytes". `consumed` counts from
 * `offset`: a link reader walks its buffer without a view per cell.
 */
export function decodeCell(
  buf: Uint8Array,
  linkVersion: number,
  opts: CellDecodeOptions = {},
  offset = 0,
): { cell: Cell; consumed: number } {
  // A whole fixed-length cell (nearly all traffic) is read without a
  // ByteReader and its DataView per cell (issue 16); the same fields as below.
  const header = linkVersion >= 4 ? 5 : 3;
  const o = offset;
  if (buf.length - o >= header + CELL_BODY_LEN && !isVariableLength(buf[o + header - 1]!, linkVersion)) {
    const circId =
      header === 5
        ? ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0
        : (buf[o]! << 8) | buf[o + 1]!;
    return {
      cell: {
        circId,
        command: buf[o + header - 1]!,
        payload: buf.subarray(o + header, o + header + CELL_BODY_LEN),
      },
      consumed: header + CELL_BODY_LEN,
    };
  }
  if (o > 0) return decodeCell(buf.subarray(o), linkVersion, opts);
  const r = new ByteReader(buf, 'cell');
  const circId = linkVersion >= 4 ? r.u32() : r.u16();
  const command = r.u8();
  let payload: Uint8Array;
  if (isVariableLength(command, linkVersion)) {
    const len = r.u16();
    const max = opts.maxVariablePayload ?? 0xffff;
    if (len > max) throw new InvalidError('cell', 'variable payload over limit', { command, len, max });
    payload = r.take(len);
  } else {
    payload = r.take(CELL_BODY_LEN);
  }
  return { cell: { circId, command, payload }, consumed: r.offset };
}

/* ---------------------------- link messages ---------------------------- */

export type NetAddress =
  | { type: 'ipv4'; addr: string }
  | { type: 'ipv6'; addr: string }
  | { type: 'other'; atype: number; value: Uint8Array };

export interface CertEntry {
  certType: number;
  body: Uint8Array;
}

export type LinkMessage =
  | { type: 'PADDING' }
  | { type: 'VPADDING'; length: number }
  | { type: 'VERSIONS'; versions: number[] }
  | { type: 'CERTS'; certs: CertEntry[] }
  | { type: 'AUTH_CHALLENGE'; challenge: Uint8Array; methods: number[] }
  | { type: 'AUTHENTICATE'; authType: number; authBody: Uint8Array }
  | { type: 'NETINFO'; time: number; otherAddr: NetAddress; myAddrs: NetAddress[] }
  | { type: 'CREATE2'; htype: number; hdata: Uint8Array }
  | { type: 'CREATED2'; hdata: Uint8Array }
  | { type: 'RELAY'; body: Uint8Array }
  | { type: 'RELAY_EARLY'; body: Uint8Array }
  | { type: 'DESTROY'; reason: number };

export function encodeLinkMessage(m: LinkMessage): { command: number; payload: Uint8Array } {
  // RELAY first and without a ByteWriter: it is nearly every cell sent.
  if (m.type === 'RELAY' || m.type === 'RELAY_EARLY') {
    if (m.body.length !== CELL_BODY_LEN) throw new InvalidError(m.type, 'relay body must be 509 bytes');
    return { command: m.type === 'RELAY' ? CellCommand.RELAY : CellCommand.RELAY_EARLY, payload: m.body };
  }
  const w = new ByteWriter();
  switch (m.type) {
    case 'PADDING':
      return { command: CellCommand.PADDING, payload: new Uint8Array(0) };
    case 'VPADDING':
      return { command: CellCommand.VPADDING, payload: new Uint8Array(m.length) };
    case 'VERSIONS':
      for (const v of m.versions) w.u16(v);
      return { command: CellCommand.VERSIONS, payload: w.finish() };
    case 'CERTS':
      w.u8(m.certs.length);
      for (const c of m.certs) {
        w.u8(c.certType);
        w.u16(c.body.length);
        w.bytes(c.body);
      }
      return { command: CellCommand.CERTS, payload: w.finish() };
    case 'AUTH_CHALLENGE':
      if (m.challenge.length !== 32) throw new InvalidError('AUTH_CHALLENGE', 'challenge must be 32 bytes');
      w.bytes(m.challenge);
      w.u16(m.methods.length);
      for (const x of m.methods) w.u16(x);
      return { command: CellCommand.AUTH_CHALLENGE, payload: w.finish() };
    case 'AUTHENTICATE':
      w.u16(m.authType);
      w.u16(m.authBody.length);
      w.bytes(m.authBody);
      return { command: CellCommand.AUTHENTICATE, payload: w.finish() };
    case 'NETINFO':
      w.u32(m.time);
      writeNetAddress(w, m.otherAddr);
      w.u8(m.myAddrs.length);
      for (const a of m.myAddrs) writeNetAddress(w, a);
      return { command: CellCommand.NETINFO, payload: w.finish() };
    case 'CREATE2':
      w.u16(m.htype);
      w.u16(m.hdata.length);
      w.bytes(m.hdata);
      return { command: CellCommand.CREATE2, payload: w.finish() };
    case 'CREATED2':
      w.u16(m.hdata.length);
      w.bytes(m.hdata);
      return { command: CellCommand.CREATED2, payload: w.finish() };
    case 'DESTROY':
      return { command: CellCommand.DESTROY, payload: Uint8Array.of(m.reason) };
    default: {
      const never: never = m;
      throw new InvalidError('link message', `unknown type ${(never as { type: string }).type}`);
    }
  }
}

/** Decodes the payload of a cell with `command`; unknown or unused commands are InvalidError. */
export function decodeLinkMessage(command: number, payload: Uint8Array): LinkMessage {
  switch (command) {
    case CellCommand.PADDING:
      return { type: 'PADDING' };
    case CellCommand.VPADDING:
      return { type: 'VPADDING', length: payload.length };
    case CellCommand.VERSIONS: {
      if (payload.length % 2 !== 0) throw new InvalidError('VERSIONS', 'odd payload length');
      const r = new ByteReader(payload, 'VERSIONS');
      const versions: number[] = [];
      while (r.remaining > 0) versions.push(r.u16());
      return { type: 'VERSIONS', versions };
    }
    case CellCommand.CERTS: {
      const r = new ByteReader(payload, 'CERTS');
      const n = r.u8();
      const certs: CertEntry[] = [];
      for (let i = 0; i < n; i++) {
        const certType = r.u8();
        const len = r.u16();
        certs.push({ certType, body: r.take(len) });
      }
      r.assertExhausted();
      return { type: 'CERTS', certs };
    }
    case CellCommand.AUTH_CHALLENGE: {
      const r = new ByteReader(payload, 'AUTH_CHALLENGE');
      const challenge = r.take(32);
      const n = r.u16();
      const methods: number[] = [];
      for (let i = 0; i < n; i++) methods.push(r.u16());
      r.assertExhausted();
      return { type: 'AUTH_CHALLENGE', challenge, methods };
    }
    case CellCommand.AUTHENTICATE: {
      const r = new ByteReader(payload, 'AUTHENTICATE');
      const authType = r.u16();
      const len = r.u16();
      const authBody = r.take(len);
      r.assertExhausted();
      return { type: 'AUTHENTICATE', authType, authBody };
    }
    case CellCommand.NETINFO: {
      // Fixed cell: trailing zero padding is expected, so no exhaustion check.
      const r = new ByteReader(payload, 'NETINFO');
      const time = r.u32();
      const otherAddr = readNetAddress(r);
      const n = r.u8();
      const myAddrs: NetAddress[] = [];
      for (let i = 0; i < n; i++) myAddrs.push(readNetAddress(r));
      return { type: 'NETINFO', time, otherAddr, myAddrs };
    }
    case CellCommand.CREATE2: {
      const r = new ByteReader(payload, 'CREATE2');
      const htype = r.u16();
      const len = r.u16();
      return { type: 'CREATE2', htype, hdata: r.take(len) };
    }
    case CellCommand.CREATED2: {
      const r = new ByteReader(payload, 'CREATED2');
      const len = r.u16();
      return { type: 'CREATED2', hdata: r.take(len) };
    }
    case CellCommand.RELAY:
    case CellCommand.RELAY_EARLY:
      if (payload.length !== CELL_BODY_LEN) throw new InvalidError('RELAY', 'body must be 509 bytes');
      return { type: command === CellCommand.RELAY ? 'RELAY' : 'RELAY_EARLY', body: payload };
    case CellCommand.DESTROY: {
      const r = new ByteReader(payload, 'DESTROY');
      return { type: 'DESTROY', reason: r.u8() };
    }
    default:
      throw new InvalidError('cell', `unsupported command ${command}`, { command });
  }
}

function writeNetAddress(w: ByteWriter, a: NetAddress): void {
  if (a.type === 'ipv4') {
    const parts = a.addr.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
      throw new InvalidError('NETINFO', 'bad IPv4 address');
    }
    w.u8(4);
    w.u8(4);
    for (const p of parts) w.u8(p);
  } else if (a.type === 'ipv6') {
    w.u8(6);
    w.u8(16);
    w.bytes(ipv6ToBytes(a.addr));
  } else {
    w.u8(a.atype);
    w.u8(a.value.length);
    w.bytes(a.value);
  }
}

function readNetAddress(r: ByteReader): NetAddress {
  const atype = r.u8();
  const len = r.u8();
  const value = r.take(len);
  if (atype === 4 && len === 4) return { type: 'ipv4', addr: Array.from(value).join('.') };
  if (atype === 6 && len === 16) return { type: 'ipv6', addr: bytesToIpv6(value) };
  return { type: 'other', atype, value };
}

export function ipv6ToBytes(addr: string): Uint8Array {
  const bad = () => new InvalidError('address', 'bad IPv6 address');
  const halves = addr.split('::');
  if (halves.length > 2) throw bad();
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0] ?? '');
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0 || (halves.length === 1 && head.length !== 8)) throw bad();
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function bytesToIpv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  // RFC 5952: compress the longest run (two or more) of zero groups.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}
