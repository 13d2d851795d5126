// tor-spec §6: relay-cell header and messages, against arti's captured C tor cells.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { fillRandom, randomBytes } from '../../../services/core/crypto.js';
import { InvalidError } from '../../../services/core/errors.js';
import {
  decodeRelayCellBody,
  decodeRelayMessage,
  encodeRelayCellBody,
  encodeRelayMessage,
  RELAY_DATA_MAX,
  RelayCommand,
  type RelayMessage,
} from '../../../services/core/relay-cell.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

interface Case {
  comment: string;
  command: number;
  hex: string;
  msg?: Record<string, unknown>;
}
const vec = JSON.parse(
  readFileSync(new URL('../../vectors/relay-messages.json', import.meta.url), 'utf8'),
) as {
  cases: Case[];
};

describe('relay messages: captured vectors', () => {
  vec.cases.forEach((v, i) => {
    it(`(${i}) ${v.comment}`, () => {
      const bytes = fromHex(v.hex.replace(/\s+/g, '').toLowerCase());
      const msg = decodeRelayMessage(v.command, bytes);
      if (v.msg) expect(msg).toEqual(v.msg);
      const enc = encodeRelayMessage(msg);
      expect(enc.command).toBe(v.command);
      expect(toHex(enc.data)).toBe(toHex(bytes));
    });
  });

  it('EXTEND2 decodes to its link specifiers and handshake', () => {
    const c = vec.cases.find((x) => x.command === RelayCommand.EXTEND2) as Case;
    const m = decodeRelayMessage(c.command, fromHex(c.hex.replace(/\s+/g, '').toLowerCase()));
    expect(m.type).toBe('EXTEND2');
    if (m.type !== 'EXTEND2') return;
    expect(m.specs).toEqual([
      { type: 'ipv4', addr: '127.0.0.1', port: 5000 },
      { type: 'legacy-id', id: fromHex('03479e93ebf3ff2c58c1c9dbf2de9de9c2801b3e') },
    ]);
    expect(m.htype).toBe(2);
    expect(m.hdata).toHaveLength(84);
  });
});

const arbMessage = fc.oneof(
  fc.record({
    type: fc.constant('BEGIN' as const),
    target: fc.stringMatching(/^[a-z0-9.-]{1,60}:[0-9]{1,5}$/),
    flags: fc.integer({ min: 0, max: 0xffffffff }),
  }),
  fc.record({ type: fc.constant('DATA' as const), data: fc.uint8Array({ maxLength: RELAY_DATA_MAX }) }),
  fc.record({
    type: fc.constant('END' as const),
    reason: fc.integer({ min: 1, max: 14 }).filter((r) => r !== 4),
  }),
  fc.record({
    type: fc.constant('SENDME' as const),
    version: fc.constant(1),
    digest: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  }),
  fc.record({ type: fc.constant('TRUNCATED' as const), reason: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ type: fc.constant('EXTENDED2' as const), hdata: fc.uint8Array({ maxLength: 200 }) }),
  fc.record({
    type: fc.constant('EXTEND2' as const),
    specs: fc.constant([{ type: 'ipv4' as const, addr: '127.0.0.1', port: 9001 }]),
    htype: fc.constant(2),
    hdata: fc.uint8Array({ minLength: 84, maxLength: 84 }),
  }),
  fc.record({ type: fc.constant('INTRODUCE1' as const), body: fc.uint8Array({ maxLength: RELAY_DATA_MAX }) }),
);

describe('relay messages: properties and hostile input', () => {
  it('every message round-trips through a relay cell body', () => {
    fc.assert(
      fc.property(
        arbMessage as fc.Arbitrary<RelayMessage>,
        fc.integer({ min: 0, max: 0xffff }),
        (m, streamId) => {
          const { command, data } = encodeRelayMessage(m);
          const body = encodeRelayCellBody({ command, streamId, data }, randomBytes);
          expect(body).toHaveLength(509);
          const back = decodeRelayCellBody(body);
          expect(back.streamId).toBe(streamId);
          expect(decodeRelayMessage(back.command, back.data)).toEqual(m);
        },
      ),
    );
  });

  it('pads with four zero bytes after the data', () => {
    const body = encodeRelayCellBody({ command: 2, streamId: 1, data: new Uint8Array([9]) }, () =>
      new Uint8Array(600).fill(0xff).subarray(0, 493),
    );
    expect(Array.from(body.subarray(12, 16))).toEqual([0, 0, 0, 0]);
    expect(body[16]).toBe(0xff);
  });

  it('pads from the pooled randomness with the default Rng: fresh bytes per cell, across pool refills, four zeros first', () => {
    // 300 bodies of 1 data byte use 300 x 489 padding bytes: more than two 64 KiB pool refills.
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const body = encodeRelayCellBody({ command: 2, streamId: 1, data: new Uint8Array([9]) }, randomBytes);
      expect(Array.from(body.subarray(12, 16))).toEqual([0, 0, 0, 0]);
      const pad = body.subarray(16);
      // 489 random bytes: all zero (an unfilled pool) or a repeat (a reused slice) would be a bug.
      expect(pad.some((b) => b !== 0)).toBe(true);
      const hex = toHex(pad);
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    // A full DATA cell has no padding; a 494-byte one has exactly 0 random bytes after its four zeros.
    const full = encodeRelayCellBody(
      { command: 2, streamId: 1, data: new Uint8Array(498).fill(7) },
      randomBytes,
    );
    expect(full.subarray(11).every((b) => b === 7)).toBe(true);
    const near = encodeRelayCellBody(
      { command: 2, streamId: 1, data: new Uint8Array(494).fill(7) },
      randomBytes,
    );
    expect(Array.from(near.subarray(505))).toEqual([0, 0, 0, 0]);
  });

  it('fillRandom writes only its range, also for a request larger than the pool', () => {
    const out = new Uint8Array(70_000);
    fillRandom(out, 10, 69_980);
    expect(out.subarray(0, 10).every((b) => b === 0)).toBe(true);
    expect(out.subarray(69_990).every((b) => b === 0)).toBe(true);
    expect(out.subarray(10, 69_990).filter((b) => b === 0).length).toBeLessThan(1000);
  });

  it('encoded into a reused buffer full of old bytes, a body equals a fresh one (same padding)', () => {
    fc.assert(
      fc.property(
        arbMessage as fc.Arbitrary<RelayMessage>,
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 255 }),
        (m, streamId, junk) => {
          const { command, data } = encodeRelayMessage(m);
          const pad = (n: number) => new Uint8Array(n).fill(0x5a);
          const reused = new Uint8Array(509).fill(junk);
          const body = encodeRelayCellBody({ command, streamId, data }, pad, reused);
          expect(body).toBe(reused);
          expect(body).toEqual(encodeRelayCellBody({ command, streamId, data }, pad));
        },
      ),
    );
    expect(() =>
      encodeRelayCellBody(
        { command: 2, streamId: 1, data: new Uint8Array(1) },
        randomBytes,
        new Uint8Array(508),
      ),
    ).toThrow(InvalidError);
  });

  it('refuses data over 498 bytes and length fields over 498', () => {
    expect(() =>
      encodeRelayCellBody({ command: 2, streamId: 1, data: new Uint8Array(499) }, randomBytes),
    ).toThrow(InvalidError);
    const body = new Uint8Array(509);
    body[9] = 0x01;
    body[10] = 0xf3;
    expect(() => decodeRelayCellBody(body)).toThrow(InvalidError);
    expect(() => decodeRelayCellBody(new Uint8Array(508))).toThrow(InvalidError);
  });

  it('answers random, truncated and oversized bodies with typed errors', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 600 }), (cmd, data) => {
        expectOnlyTypedErrors(() => decodeRelayMessage(cmd, data));
        expectOnlyTypedErrors(() => decodeRelayCellBody(data));
      }),
      { numRuns: 2000 },
    );
    for (const c of vec.cases) {
      const bytes = fromHex(c.hex.replace(/\s+/g, '').toLowerCase());
      for (let n = 0; n < bytes.length; n++)
        expectOnlyTypedErrors(() => decodeRelayMessage(c.command, bytes.subarray(0, n)));
    }
  });
});
