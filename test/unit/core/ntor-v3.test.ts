// Proposal 332 / tor-spec §5.1.4.3 ntor-v3: arti's ntor_v3.rs test vector on
// both sides, random round trips, tampering, hostile input, extension codec.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, fromHex, toHex, utf8 } from '../../../services/core/bytes.js';
import { randomBytes, x25519Generate, x25519PublicFromSecret } from '../../../services/core/crypto.js';
import { CryptoError, InvalidError, TruncatedError } from '../../../services/core/errors.js';
import {
  decodeNtorV3Extensions,
  encodeNtorV3Extensions,
  NtorV3ExtType,
  ntorV3ClientFinish,
  ntorV3ClientStart,
  ntorV3ClientStartWithKey,
  ntorV3ServerHandshake,
  ntorV3ServerHandshakeWithKey,
} from '../../../services/core/ntor-v3.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const pair = (hex: string) => {
  const secret = fromHex(hex);
  return { secret, public: x25519PublicFromSecret(secret) };
};

// arti crates/tor-proto/src/crypto/handshake/ntor_v3.rs::test_ntor3_testvec
const V = {
  b: pair('4051daa5921cfa2a1c27b08451324919538e79e788a81b38cbed097a5dff454a'),
  id: fromHex('9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2'),
  x: pair('b825a3719147bcbe5fb1d0b0fcb9c09e51948048e2e3283d2ab7b45b5ef38b49'),
  y: pair('4865a5b7689dafd978f529291c7171bc159be076b92186405d13220b80e2a053'),
  clientMessage: fromHex('68656c6c6f20776f726c64'),
  verification: fromHex('78797a7a79'),
  serverMessage: fromHex('486f6c61204d756e646f'),
  clientHandshake:
    '9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2f8307a2bc1870b00b828bb74dbb8fd88' +
    'e632a6375ab3bcd1ae706aaa8b6cdd1d252fe9ae91264c91d4ecb8501f79d0387e34ad8ca0f7c995184f7d11d5da4f46' +
    '3bebd9151fd3b47c180abc9e044d53565f04d82bbb3bebed3d06cea65db8be9c72b68cd461942088502f67',
  serverHandshake:
    '4bf4814326fdab45ad5184f5518bd7fae25dc59374062698201a50a22954246d2fc5f8773ca824542bc6cf6f57c7c29b' +
    'bf4e5476461ab130c5b18ab0a91276651202c3e1e87c0d32054c',
  // arti's 256-byte key stream after ENC_KEY; circuit keys are its first 92 bytes (Df Db Kf Kb KH).
  keyStream:
    '9c19b631fd94ed86a817e01f6c80b0743a43f5faebd39cfaa8b00fa8bcc65c3bfeaa403d91acbd68a821bf6ee8504602' +
    'b094a254392a07737d5662768c7a9fb1b2814bb34780eaee6e867c773e28c212ead563e98a1cd5d5b4576f5ee61c59bd' +
    'e025ff2851bb19b721421694f263818e3531e43a9e4e3e2c661e2ad547d8984caa28ebecd3e4525452299be26b9185a2' +
    '0a90ce1eac20a91f2832d731b54502b09749b5a2a2949292f8cfcbeffb790c7790ed935a9d251e7e336148ea83b063a5' +
    '618fcff674a44581585fd22077ca0e52c59a24347a38d1a1ceebddbf238541f226b8f88d0fb9c07a1bcd2ea764bbbb5d' +
    'acdaf5312a14c0b9e4f06309b0333b4a',
};

const allKeys = (k: { df: Uint8Array; db: Uint8Array; kf: Uint8Array; kb: Uint8Array; kh: Uint8Array }) =>
  concat(k.df, k.db, k.kf, k.kb, k.kh);

function freshSetup(clientMessage = utf8('hi'), serverMessage = utf8('hello back')) {
  const b = x25519Generate();
  const id = randomBytes(32);
  const start = ntorV3ClientStart(randomBytes, { id, ntorKey: b.public }, clientMessage);
  const server = ntorV3ServerHandshake(randomBytes, { id, onionKeys: [b] }, start.hdata, () => serverMessage);
  return { b, id, ...start, server };
}

describe('ntor-v3', () => {
  it('reproduces the arti vector byte for byte on both sides', () => {
    const { state, hdata } = ntorV3ClientStartWithKey(
      V.x,
      { id: V.id, ntorKey: V.b.public },
      V.clientMessage,
      V.verification,
    );
    expect(toHex(hdata)).toBe(V.clientHandshake);
    let seen: Uint8Array | undefined;
    const server = ntorV3ServerHandshakeWithKey(
      V.y,
      { id: V.id, onionKeys: [V.b] },
      hdata,
      (m) => {
        seen = m;
        return V.serverMessage;
      },
      V.verification,
    );
    expect(seen && toHex(seen)).toBe(toHex(V.clientMessage));
    expect(toHex(server.clientMessage)).toBe(toHex(V.clientMessage));
    expect(toHex(server.reply)).toBe(V.serverHandshake);
    expect(toHex(allKeys(server.keys))).toBe(V.keyStream.slice(0, 184));
    const client = ntorV3ClientFinish(state, server.reply);
    expect(toHex(client.serverMessage)).toBe(toHex(V.serverMessage));
    expect(toHex(allKeys(client.keys))).toBe(V.keyStream.slice(0, 184));
    expect(client.keys.kh.length).toBe(20);
    expect(client.keys.kf.length).toBe(16);
  });

  it('agrees on keys and messages with random keys, default VER and a rotated onion key', () => {
    const old = x25519Generate();
    const id = randomBytes(32);
    const cm = randomBytes(300);
    const sm = randomBytes(77);
    const { state, hdata } = ntorV3ClientStart(randomBytes, { id, ntorKey: old.public }, cm);
    const s = ntorV3ServerHandshake(randomBytes, { id, onionKeys: [x25519Generate(), old] }, hdata, () => sm);
    expect(s.clientMessage).toEqual(cm);
    const c = ntorV3ClientFinish(state, s.reply);
    expect(c.keys).toEqual(s.keys);
    expect(c.serverMessage).toEqual(sm);
  });

  it('round trips empty messages and explicit string verification', () => {
    const b = x25519Generate();
    const id = randomBytes(32);
    const { state, hdata } = ntorV3ClientStart(
      randomBytes,
      { id, ntorKey: b.public },
      new Uint8Array(0),
      'xyzzy',
    );
    expect(hdata.length).toBe(128);
    const s = ntorV3ServerHandshake(
      randomBytes,
      { id, onionKeys: [b] },
      hdata,
      () => new Uint8Array(0),
      'xyzzy',
    );
    expect(s.reply.length).toBe(64);
    expect(ntorV3ClientFinish(state, s.reply).keys).toEqual(s.keys);
  });

  it('fails when the verification strings differ', () => {
    const b = x25519Generate();
    const id = randomBytes(32);
    const { hdata } = ntorV3ClientStart(randomBytes, { id, ntorKey: b.public }, utf8('x'), 'one');
    expect(() => ntorV3ServerHandshake(randomBytes, { id, onionKeys: [b] }, hdata, (m) => m, 'two')).toThrow(
      CryptoError,
    );
  });

  it('refuses another relay id or an unknown onion key', () => {
    const { b, hdata } = freshSetup();
    expect(() =>
      ntorV3ServerHandshake(randomBytes, { id: randomBytes(32), onionKeys: [b] }, hdata, (m) => m),
    ).toThrow(CryptoError);
    const id = hdata.subarray(0, 32);
    expect(() =>
      ntorV3ServerHandshake(randomBytes, { id, onionKeys: [x25519Generate()] }, hdata, (m) => m),
    ).toThrow(CryptoError);
  });

  it('rejects a tampered client message or MAC before calling reply', () => {
    const { b, id, hdata } = freshSetup(utf8('client secret'));
    for (const at of [100, hdata.length - 1]) {
      const bad = hdata.slice();
      bad[at] = (bad[at] ?? 0) ^ 1;
      let called = false;
      expect(() =>
        ntorV3ServerHandshake(randomBytes, { id, onionKeys: [b] }, bad, (m) => {
          called = true;
          return m;
        }),
      ).toThrow(CryptoError);
      expect(called).toBe(false);
    }
  });

  it('rejects a tampered server Y, AUTH or encrypted message', () => {
    const { state, server } = freshSetup();
    for (const at of [3, 40, server.reply.length - 1]) {
      const bad = server.reply.slice();
      bad[at] = (bad[at] ?? 0) ^ 0x80;
      expect(() => ntorV3ClientFinish(state, bad)).toThrow(CryptoError);
    }
    expect(() => ntorV3ClientFinish(state, server.reply.subarray(0, server.reply.length - 1))).toThrow(
      CryptoError,
    );
    expect(() => ntorV3ClientFinish(state, server.reply.subarray(0, 63))).toThrow(InvalidError);
  });

  it('rejects short client handshakes and bad relay keys with InvalidError', () => {
    const { b, id, hdata } = freshSetup();
    expect(() =>
      ntorV3ServerHandshake(randomBytes, { id, onionKeys: [b] }, hdata.subarray(0, 127), (m) => m),
    ).toThrow(InvalidError);
    expect(() =>
      ntorV3ClientStart(randomBytes, { id: randomBytes(20), ntorKey: b.public }, utf8('')),
    ).toThrow(InvalidError);
  });

  it('throws only typed errors on truncated and random input', () => {
    const { b, id, hdata, state, server } = freshSetup();
    const keys = { id, onionKeys: [b] };
    for (let n = 0; n <= hdata.length; n++) {
      expectOnlyTypedErrors(() => ntorV3ServerHandshake(randomBytes, keys, hdata.subarray(0, n), (m) => m));
    }
    for (let n = 0; n <= server.reply.length; n++) {
      expectOnlyTypedErrors(() => ntorV3ClientFinish(state, server.reply.subarray(0, n)));
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
        expectOnlyTypedErrors(() => ntorV3ServerHandshake(randomBytes, keys, junk, (m) => m));
        // Random input with the right id and B prefix reaches the MAC check.
        expectOnlyTypedErrors(() =>
          ntorV3ServerHandshake(randomBytes, keys, concat(hdata.subarray(0, 64), junk), (m) => m),
        );
        expectOnlyTypedErrors(() => ntorV3ClientFinish(state, junk));
      }),
      { numRuns: 100 },
    );
  });
});

describe('ntor-v3 extensions', () => {
  it('encodes a CC_REQUEST and a SUBPROTOCOL_REQUEST as N | {type len data}', () => {
    const bytes = encodeNtorV3Extensions([
      { type: NtorV3ExtType.CC_REQUEST, data: new Uint8Array(0) },
      { type: NtorV3ExtType.SUBPROTOCOL_REQUEST, data: fromHex('0204') },
    ]);
    expect(toHex(bytes)).toBe('02' + '0100' + '03020204');
    expect(decodeNtorV3Extensions(fromHex('00'))).toEqual([]);
  });

  it('round trips any extension list (property)', () => {
    const ext = fc.record({
      type: fc.integer({ min: 0, max: 255 }),
      data: fc.uint8Array({ maxLength: 255 }),
    });
    fc.assert(
      fc.property(fc.array(ext, { maxLength: 20 }), (exts) => {
        expect(decodeNtorV3Extensions(encodeNtorV3Extensions(exts))).toEqual(exts);
      }),
    );
  });

  it('rejects oversized fields, truncation and trailing bytes with typed errors', () => {
    expect(() => encodeNtorV3Extensions([{ type: 1, data: new Uint8Array(256) }])).toThrow(InvalidError);
    expect(() => decodeNtorV3Extensions(new Uint8Array(0))).toThrow(TruncatedError);
    expect(() => decodeNtorV3Extensions(fromHex('010305'))).toThrow(TruncatedError);
    expect(() => decodeNtorV3Extensions(fromHex('0001'))).toThrow(InvalidError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
        expectOnlyTypedErrors(() => decodeNtorV3Extensions(junk));
      }),
    );
  });
});
