// tor-spec §5.1.4 ntor: arti's ntor.rs test vector, both sides, and failures.
import { describe, expect, it } from 'vitest';
import { concat, fromHex, toHex } from '../../../services/core/bytes.js';
import { randomBytes, x25519Generate, x25519PublicFromSecret } from '../../../services/core/crypto.js';
import { CryptoError, InvalidError } from '../../../services/core/errors.js';
import {
  ntorClientFinish,
  ntorClientStart,
  ntorClientStartWithKey,
  ntorServerHandshake,
  ntorServerHandshakeWithKey,
} from '../../../services/core/ntor.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const pair = (hex: string) => {
  const secret = fromHex(hex);
  return { secret, public: x25519PublicFromSecret(secret) };
};

const V = {
  b: pair('4820544f4c4420594f5520444f474954204b454550532048415050454e494e47'),
  x: pair('706f6461792069207075742e2e2e2e2e2e2e2e4a454c4c59206f6e2074686973'),
  y: pair('70686520737175697272656c2e2e2e2e2e2e2e2e686173206869732067616d65'),
  id: fromHex('69546f6c64596f7541626f75745374616972732e'),
  B: 'ccbc8541904d18af08753eae967874749e6149f873de937f57f8fd903a21c471',
  X: 'e65dfdbef8b2635837fe2cebc086a8096eae3213e6830dc407516083d412b078',
  Y: '390480a14362761d6aec1fea840f6e9e928fb2adb7b25c670be1045e35133a37',
  auth: '1cbdf68b89923e1f85e8e18ee6e805ea333fe4849c790ffd2670bd80fec95cc8',
  keys72:
    '0c62dee7f48893370d0ef896758d35729867beef1a5121df80e00f79ed349af3' +
    '9b51cae125719182f19d932a667dae1afbf2e336e6910e7822223e763afad0a13342157969dc6b79',
  kh: 'fb61d4d486879f7f146524223adcc270922fff67',
};

describe('ntor', () => {
  it('reproduces the arti/C tor vector on both sides', () => {
    expect(toHex(V.b.public)).toBe(V.B);
    expect(toHex(V.x.public)).toBe(V.X);
    expect(toHex(V.y.public)).toBe(V.Y);
    const { state, hdata } = ntorClientStartWithKey(V.x, { id: V.id, ntorKey: V.b.public });
    expect(toHex(hdata)).toBe(toHex(V.id) + V.B + V.X);
    const server = ntorServerHandshakeWithKey(V.y, { id: V.id, onionKeys: [V.b] }, hdata);
    expect(toHex(server.reply)).toBe(V.Y + V.auth);
    const keys = ntorClientFinish(state, server.reply);
    const all = concat(keys.df, keys.db, keys.kf, keys.kb);
    expect(toHex(all)).toBe(V.keys72);
    expect(toHex(keys.kh)).toBe(V.kh);
    expect(server.keys).toEqual(keys);
  });

  it('agrees on keys with random inputs and a rotated (older) onion key', () => {
    const old = x25519Generate();
    const current = x25519Generate();
    const id = randomBytes(20);
    const { state, hdata } = ntorClientStart(randomBytes, { id, ntorKey: old.public });
    const s = ntorServerHandshake(randomBytes, { id, onionKeys: [current, old] }, hdata);
    expect(ntorClientFinish(state, s.reply)).toEqual(s.keys);
  });

  it('refuses a handshake for another relay or an unknown onion key', () => {
    const b = x25519Generate();
    const { hdata } = ntorClientStart(randomBytes, { id: randomBytes(20), ntorKey: b.public });
    expect(() => ntorServerHandshake(randomBytes, { id: randomBytes(20), onionKeys: [b] }, hdata)).toThrow(
      CryptoError,
    );
    const id = hdata.subarray(0, 20);
    expect(() => ntorServerHandshake(randomBytes, { id, onionKeys: [x25519Generate()] }, hdata)).toThrow(
      CryptoError,
    );
  });

  it('rejects a tampered server AUTH in constant time and bad lengths as typed errors', () => {
    const b = x25519Generate();
    const id = randomBytes(20);
    const { state, hdata } = ntorClientStart(randomBytes, { id, ntorKey: b.public });
    const { reply } = ntorServerHandshake(randomBytes, { id, onionKeys: [b] }, hdata);
    const bad = reply.slice();
    bad[40] = (bad[40] ?? 0) ^ 1;
    expect(() => ntorClientFinish(state, bad)).toThrow(CryptoError);
    expect(() => ntorClientFinish(state, reply.subarray(0, 63))).toThrow(InvalidError);
    expect(() => ntorServerHandshake(randomBytes, { id, onionKeys: [b] }, hdata.subarray(1))).toThrow(
      InvalidError,
    );
  });

  it('rejects an all-zero (small-order) server key', () => {
    const b = x25519Generate();
    const id = randomBytes(20);
    const { state } = ntorClientStart(randomBytes, { id, ntorKey: b.public });
    expect(() => ntorClientFinish(state, new Uint8Array(64))).toThrow(CryptoError);
  });

  it('answers random bytes with typed errors only', () => {
    const b = x25519Generate();
    const id = randomBytes(20);
    for (let i = 0; i < 200; i++) {
      const junk = randomBytes(i % 3 === 0 ? 84 : i);
      expectOnlyTypedErrors(() => ntorServerHandshake(randomBytes, { id, onionKeys: [b] }, junk));
      const { state } = ntorClientStart(randomBytes, { id, ntorKey: b.public });
      expectOnlyTypedErrors(() => ntorClientFinish(state, randomBytes(i % 2 === 0 ? 64 : i)));
    }
  });
});
