// tor-spec §3-§5: fixed and variable cells, link messages, AUTHENTICATE bodies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Auth3Body,
  auth3SignedPart,
  decodeAuth3Body,
  encodeAuth3Body,
} from '../../../services/core/auth3.js';
import { concat, fromHex, toHex } from '../../../services/core/bytes.js';
import {
  CellCommand,
  DestroyReason,
  decodeCell,
  decodeLinkMessage,
  destroyReasonName,
  encodeCell,
  encodeFixedCell,
  encodeLinkMessage,
  type LinkMessage,
  reserveFixedCell,
} from '../../../services/core/cells.js';
import { randomBytes } from '../../../services/core/crypto.js';
import { InvalidError, TruncatedError } from '../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const roundTrip = (m: LinkMessage, version = 5) => {
  const bytes = encodeCell({ circId: 0x80000001, ...encodeLinkMessage(m) }, version);
  const { cell, consumed } = decodeCell(bytes, version);
  expect(consumed).toBe(bytes.length);
  expect(cell.circId).toBe(0x80000001);
  return { bytes, msg: decodeLinkMessage(cell.command, cell.payload) };
};

describe('cells', () => {
  it('the first VERSIONS cell has a 2-byte CircID (tor-spec §4.1)', () => {
    const bytes = encodeCell({ circId: 0, ...encodeLinkMessage({ type: 'VERSIONS', versions: [4, 5] }) }, 0);
    expect(toHex(bytes)).toBe('0000' + '07' + '0004' + '00040005');
  });

  it('fixed cells are 514 bytes on link v4+, with CircID then command', () => {
    const { bytes, msg } = roundTrip({ type: 'DESTROY', reason: DestroyReason.FINISHED });
    expect(bytes).toHaveLength(514);
    expect(toHex(bytes.subarray(0, 6))).toBe('800000010409');
    expect(msg).toEqual({ type: 'DESTROY', reason: 9 });
  });

  it('fixed cells on link v3 have a 2-byte CircID; a short payload is zero-padded to 509 bytes', () => {
    const bytes = encodeCell({ circId: 0x8001, command: CellCommand.DESTROY, payload: Uint8Array.of(7) }, 3);
    expect(bytes).toHaveLength(512);
    expect(toHex(bytes.subarray(0, 5))).toBe('8001' + '04' + '07' + '00');
    expect(bytes.subarray(4).every((b) => b === 0)).toBe(true);
  });

  it('a RELAY cell is its 509-byte body behind the header, byte for byte', () => {
    const body = randomBytes(509);
    const bytes = encodeCell({ circId: 0xfedcba98, ...encodeLinkMessage({ type: 'RELAY', body }) }, 5);
    expect(toHex(bytes.subarray(0, 5))).toBe('fedcba98' + '03');
    expect(toHex(bytes.subarray(5))).toBe(toHex(body));
    expect(() => encodeLinkMessage({ type: 'RELAY_EARLY', body: body.subarray(1) })).toThrow(InvalidError);
  });

  it('decodes fixed cells on v3 and v4+ links, a high-bit CircID unsigned, the body as a view', () => {
    const body = randomBytes(509);
    const wire = encodeCell({ circId: 0xfedcba98, command: CellCommand.RELAY, payload: body }, 5);
    const v5 = decodeCell(concat(wire, Uint8Array.of(1, 2)), 5);
    expect(v5.consumed).toBe(514);
    expect(v5.cell.circId).toBe(0xfedcba98);
    expect(v5.cell.command).toBe(CellCommand.RELAY);
    expect(toHex(v5.cell.payload)).toBe(toHex(body));
    const v3 = decodeCell(encodeCell({ circId: 0x8001, command: CellCommand.RELAY, payload: body }, 3), 3);
    expect(v3.consumed).toBe(512);
    expect(v3.cell.circId).toBe(0x8001);
    expect(() => decodeCell(wire.subarray(0, 513), 5)).toThrow(TruncatedError);
  });

  it('refuses a CircID or command that does not fit, and a fixed payload over 509 bytes', () => {
    const payload = new Uint8Array(0);
    expect(() => encodeCell({ circId: 0x10000, command: CellCommand.DESTROY, payload }, 3)).toThrow(
      InvalidError,
    );
    expect(() => encodeCell({ circId: 2 ** 32, command: CellCommand.DESTROY, payload }, 5)).toThrow(
      InvalidError,
    );
    expect(() => encodeCell({ circId: -1, command: CellCommand.DESTROY, payload }, 5)).toThrow(InvalidError);
    expect(() => encodeCell({ circId: 1, command: 256, payload }, 5)).toThrow(InvalidError);
    expect(() =>
      encodeCell({ circId: 1, command: CellCommand.RELAY, payload: new Uint8Array(510) }, 5),
    ).toThrow(InvalidError);
  });

  it('CREATE2 / CREATED2 carry HTYPE, HLEN and HDATA', () => {
    const hdata = randomBytes(84);
    const { bytes, msg } = roundTrip({ type: 'CREATE2', htype: 2, hdata });
    expect(toHex(bytes.subarray(5, 9))).toBe('00020054');
    expect(msg).toEqual({ type: 'CREATE2', htype: 2, hdata });
    expect(roundTrip({ type: 'CREATED2', hdata: hdata.subarray(0, 64) }).msg).toEqual({
      type: 'CREATED2',
      hdata: hdata.subarray(0, 64),
    });
  });

  it('NETINFO carries time and addresses, IPv6 too', () => {
    const m: LinkMessage = {
      type: 'NETINFO',
      time: 1700000000,
      otherAddr: { type: 'ipv4', addr: '127.0.0.1' },
      myAddrs: [
        { type: 'ipv4', addr: '127.0.0.2' },
        { type: 'ipv6', addr: '2001:db8::1' },
      ],
    };
    expect(roundTrip(m).msg).toEqual(m);
  });

  it('CERTS, AUTH_CHALLENGE and AUTHENTICATE round-trip as variable cells', () => {
    const certs: LinkMessage = {
      type: 'CERTS',
      certs: [
        { certType: 4, body: randomBytes(140) },
        { certType: 5, body: randomBytes(104) },
      ],
    };
    const { bytes } = roundTrip(certs);
    expect(bytes[4]).toBe(CellCommand.CERTS);
    expect(roundTrip(certs).msg).toEqual(certs);
    const ch: LinkMessage = { type: 'AUTH_CHALLENGE', challenge: randomBytes(32), methods: [3] };
    expect(roundTrip(ch).msg).toEqual(ch);
    const au: LinkMessage = { type: 'AUTHENTICATE', authType: 3, authBody: randomBytes(352) };
    expect(roundTrip(au).msg).toEqual(au);
  });

  it('AUTH0003 bodies round-trip and the signed part excludes the signature', () => {
    const f: Auth3Body = {
      cid: randomBytes(32),
      sid: randomBytes(32),
      cidEd: randomBytes(32),
      sidEd: randomBytes(32),
      slog: randomBytes(32),
      clog: randomBytes(32),
      scert: randomBytes(32),
      tlsSecrets: randomBytes(32),
      rand: randomBytes(24),
      sig: randomBytes(64),
    };
    const body = encodeAuth3Body(f);
    expect(body).toHaveLength(8 + 32 * 8 + 24 + 64);
    expect(toHex(body.subarray(0, 8))).toBe(toHex(new TextEncoder().encode('AUTH0003')));
    expect(decodeAuth3Body(body)).toEqual(f);
    expect(auth3SignedPart(body)).toHaveLength(body.length - 64);
    expect(() => decodeAuth3Body(body.subarray(0, 100))).toThrow(TruncatedError);
    const wrong = body.slice();
    wrong[7] = 0x34;
    expect(() => decodeAuth3Body(wrong)).toThrow(InvalidError);
  });

  it('a partial cell is TruncatedError (wait), an oversized variable cell is InvalidError', () => {
    const bytes = encodeCell({ circId: 5, ...encodeLinkMessage({ type: 'PADDING' }) }, 4);
    expect(() => decodeCell(bytes.subarray(0, 300), 4)).toThrow(TruncatedError);
    const big = encodeCell({ circId: 0, command: CellCommand.VPADDING, payload: new Uint8Array(5000) }, 4);
    expect(() => decodeCell(big, 4, { maxVariablePayload: 4096 })).toThrow(InvalidError);
    expect(() => decodeLinkMessage(200, new Uint8Array(0))).toThrow(InvalidError);
    expect(destroyReasonName(5)).toBe('resourcelimit');
    expect(destroyReasonName(99)).toBe('unknown_99');
  });

  it('two cells back to back decode one at a time', () => {
    const a = encodeCell({ circId: 1, ...encodeLinkMessage({ type: 'DESTROY', reason: 3 }) }, 4);
    const b = encodeCell({ circId: 2, ...encodeLinkMessage({ type: 'VERSIONS', versions: [5] }) }, 4);
    const both = new Uint8Array([...a, ...b]);
    const first = decodeCell(both, 4);
    const second = decodeCell(both.subarray(first.consumed), 4);
    expect(first.cell.circId).toBe(1);
    expect(second.cell.circId).toBe(2);
    expect(toHex(second.cell.payload)).toBe(toHex(fromHex('0005')));
  });

  it('decodes at an offset as it would the same bytes cut there (fixed, variable, truncated)', () => {
    const a = encodeCell({ circId: 1, ...encodeLinkMessage({ type: 'DESTROY', reason: 3 }) }, 4);
    const b = encodeCell({ circId: 2, ...encodeLinkMessage({ type: 'VERSIONS', versions: [5] }) }, 4);
    const c = encodeCell({ circId: 3, ...encodeLinkMessage({ type: 'RELAY', body: randomBytes(509) }) }, 4);
    const all = concat(a, b, c);
    let off = 0;
    for (const want of [a, b, c]) {
      const at = decodeCell(all, 4, {}, off);
      const cut = decodeCell(all.subarray(off), 4);
      expect(at).toEqual(cut);
      expect(at.consumed).toBe(want.length);
      off += at.consumed;
    }
    // A fixed cell's payload is a view of the buffer, not a copy.
    const relay = decodeCell(all, 4, {}, a.length + b.length).cell.payload;
    expect(relay.buffer).toBe(all.buffer);
    expect(relay.byteOffset).toBe(all.byteOffset + a.length + b.length + 5);
    expect(() => decodeCell(all.subarray(0, all.length - 1), 4, {}, a.length + b.length)).toThrow(
      TruncatedError,
    );
    expect(() => decodeCell(all, 4, {}, all.length)).toThrow(TruncatedError);
    const big = encodeCell({ circId: 0, command: CellCommand.VPADDING, payload: new Uint8Array(5000) }, 4);
    expect(() => decodeCell(concat(a, big), 4, { maxVariablePayload: 4096 }, a.length)).toThrow(InvalidError);
  });

  it('reserveFixedCell writes the header and hands out the body in place; checks come before any space is taken', () => {
    for (const v of [3, 4]) {
      let given: Uint8Array | null = null;
      const alloc = (n: number) => {
        given = new Uint8Array(n + 8).fill(0xee).subarray(4, 4 + n);
        return given;
      };
      const body = reserveFixedCell(0x1234, CellCommand.RELAY, v, alloc);
      expect(body?.length).toBe(509);
      body?.set(randomBytes(509));
      const whole = given as unknown as Uint8Array;
      expect(body?.buffer).toBe(whole.buffer);
      // The same bytes as encoding the finished cell.
      const encoded = encodeFixedCell(
        { circId: 0x1234, command: CellCommand.RELAY, payload: body! },
        v,
        (n) => new Uint8Array(n),
      );
      expect(toHex(whole)).toBe(toHex(encoded!));
      expect(decodeCell(whole, v).cell).toEqual({
        circId: 0x1234,
        command: CellCommand.RELAY,
        payload: body,
      });
    }
    let calls = 0;
    const counting = (n: number) => {
      calls += 1;
      return new Uint8Array(n);
    };
    expect(() => reserveFixedCell(0x10000, CellCommand.RELAY, 3, counting)).toThrow(InvalidError);
    expect(() => reserveFixedCell(-1, CellCommand.RELAY, 4, counting)).toThrow(InvalidError);
    expect(() => reserveFixedCell(1, 256, 4, counting)).toThrow(InvalidError);
    expect(() => reserveFixedCell(1, CellCommand.VERSIONS, 4, counting)).toThrow(InvalidError);
    expect(calls).toBe(0);
    expect(reserveFixedCell(1, CellCommand.RELAY, 4, () => null)).toBeNull();
  });

  it('random, truncated and oversized input only ever raises typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.constantFrom(0, 3, 4, 5), (bytes, v) => {
        expectOnlyTypedErrors(() => {
          const { cell } = decodeCell(bytes, v, { maxVariablePayload: 1000 });
          decodeLinkMessage(cell.command, cell.payload);
        });
        // At an offset too, anywhere in the buffer or past it.
        expectOnlyTypedErrors(() => decodeCell(bytes, v, { maxVariablePayload: 1000 }, bytes.length >> 1));
        expectOnlyTypedErrors(() => decodeCell(bytes, v, {}, bytes.length + 3));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 600 }), (cmd, payload) => {
        expectOnlyTypedErrors(() => decodeLinkMessage(cmd, payload));
        expectOnlyTypedErrors(() => decodeAuth3Body(payload));
      }),
      { numRuns: 3000 },
    );
  });
});
