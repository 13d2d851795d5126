// hs-ntor against rend-spec-v3 App. G.1 (= arti hs_ntor.rs::testvec, made by C tor),
// plus a random round trip and the failure cases.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { x25519Generate } from '../../../services/core/crypto.js';
import { CryptoError, InvalidError } from '../../../services/core/errors.js';
import {
  hsNtorClientIntroKeys,
  hsNtorClientRendezvous,
  hsNtorServiceIntroKeys,
  hsNtorServiceRendezvous,
  hsRendHopKeys,
} from '../../../services/core/hs-ntor.js';

const G1 = {
  authKey: fromHex('34E171E4358E501BFF21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F'),
  B: fromHex('8E5127A40E83AABF6493E41F142B6EE3604B85A3961CD7E38D247239AFF71979'),
  b: fromHex('A0ED5DBF94EEB2EDB3B514E4CF6ABFF6022051CC5F103391F1970A3FCD15296A'),
  subcredential: fromHex('0085D26A9DEBA252263BF0231AEAC59B17CA11BAD8A218238AD6487CBAD68B57'),
  x: fromHex('60B4D6BF5234DCF87A4E9D7487BDF3F4A69B6729835E825CA29089CFDDA1E341'),
  y: fromHex('68CB5188CA0CD7924250404FAB54EE1392D3D2B9C049A2E446513875952F8F55'),
  // X is bytes 56..88 of the published INTRODUCE1 cell; Y the first half of RENDEZVOUS1's HANDSHAKE_INFO.
  X: 'bf04348b46d09aed726f1d66c618fdea1de58e8cb8b89738d7356a0c59111d5d',
  Y: '8fbe0db4d4a9c7ff46701e3e0ee7fd05cd28be4f302460addeec9e93354ee700',
  encKey: '9b8917ba3d05f3130dacce5300c3dc27f6d012912f1c733036f822d0ed238706',
  macKey: 'fc4058da59d4df61e7b40985d122f502fd59336bc21c30caf5e7f0d4a2c38fd5',
  auth: '4a92e8437b8424d5e5ec279245d5c72b25a0327acf6daf902079fcb643d8b208',
  keySeed: '4d0c72fe8aff35559d95ecc18eb5a36883402b28cdfd48c8a530a5a3d7d578db',
  dfPrefix: 'd02a24dfe70151ba',
  kfPrefix: 'f191044c02bb743c',
};

describe('hs-ntor App. G.1 vector', () => {
  it('client intro keys', () => {
    const k = hsNtorClientIntroKeys(G1.x, G1);
    expect(toHex(k.X)).toBe(G1.X);
    expect(toHex(k.encKey)).toBe(G1.encKey);
    expect(toHex(k.macKey)).toBe(G1.macKey);
  });

  it('service intro keys', () => {
    const k = hsNtorServiceIntroKeys({ ...G1, X: fromHex(G1.X) });
    expect(toHex(k.encKey)).toBe(G1.encKey);
    expect(toHex(k.macKey)).toBe(G1.macKey);
  });

  it('rendezvous: Y, AUTH, KEY_SEED on both sides', () => {
    const X = fromHex(G1.X);
    const s = hsNtorServiceRendezvous({ ...G1, X }, G1.y);
    expect(toHex(s.Y)).toBe(G1.Y);
    expect(toHex(s.auth)).toBe(G1.auth);
    expect(toHex(s.keySeed)).toBe(G1.keySeed);
    const seed = hsNtorClientRendezvous({ x: G1.x, X, B: G1.B, authKey: G1.authKey, Y: s.Y, auth: s.auth });
    expect(toHex(seed)).toBe(G1.keySeed);
  });

  it('hop keys from KEY_SEED', () => {
    const k = hsRendHopKeys(fromHex(G1.keySeed));
    expect(toHex(k.df).slice(0, 16)).toBe(G1.dfPrefix);
    expect(toHex(k.kf).slice(0, 16)).toBe(G1.kfPrefix);
    for (const v of [k.df, k.db, k.kf, k.kb]) expect(v.length).toBe(32);
    expect(new Set([k.df, k.db, k.kf, k.kb].map(toHex)).size).toBe(4);
  });
});

describe('hs-ntor round trip and failures', () => {
  it('random keys agree end to end', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (authKey, subcredential) => {
          const svc = x25519Generate();
          const c = hsNtorClientIntroKeys(x25519Generate().secret, { B: svc.public, authKey, subcredential });
          const s = hsNtorServiceIntroKeys({ b: svc.secret, B: svc.public, authKey, subcredential, X: c.X });
          expect(s).toEqual({ encKey: c.encKey, macKey: c.macKey });
          const r = hsNtorServiceRendezvous(
            { b: svc.secret, B: svc.public, authKey, X: c.X },
            x25519Generate().secret,
          );
          const seed = hsNtorClientRendezvous({
            x: c.x,
            X: c.X,
            B: svc.public,
            authKey,
            Y: r.Y,
            auth: r.auth,
          });
          expect(seed).toEqual(r.keySeed);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('a different subcredential gives different intro keys', () => {
    const k = hsNtorServiceIntroKeys({ ...G1, subcredential: new Uint8Array(32), X: fromHex(G1.X) });
    expect(toHex(k.encKey)).not.toBe(G1.encKey);
    expect(toHex(k.macKey)).not.toBe(G1.macKey);
  });

  it('rejects a flipped AUTH bit and a wrong Y', () => {
    const base = { x: G1.x, X: fromHex(G1.X), B: G1.B, authKey: G1.authKey, Y: fromHex(G1.Y) };
    for (let i = 0; i < 32; i += 7) {
      const auth = fromHex(G1.auth);
      auth[i]! ^= 1;
      expect(() => hsNtorClientRendezvous({ ...base, auth })).toThrow(CryptoError);
    }
    const Y = x25519Generate().public;
    expect(() => hsNtorClientRendezvous({ ...base, Y, auth: fromHex(G1.auth) })).toThrow(CryptoError);
  });

  it('rejects a low-order X and wrong key lengths', () => {
    const X = new Uint8Array(32); // the identity point: EXP(X,b) is all zero
    expect(() => hsNtorServiceIntroKeys({ ...G1, X })).toThrow(CryptoError);
    expect(() => hsNtorServiceRendezvous({ ...G1, X }, G1.y)).toThrow(CryptoError);
    expect(() => hsNtorClientIntroKeys(G1.x, { ...G1, authKey: new Uint8Array(31) })).toThrow(InvalidError);
    expect(() => hsNtorClientIntroKeys(new Uint8Array(16), G1)).toThrow(InvalidError);
    expect(() => hsRendHopKeys(new Uint8Array(20))).toThrow(InvalidError);
  });

  it('uses the rng when given one', () => {
    let calls = 0;
    const rng = (n: number) => {
      calls++;
      return G1.x.slice(0, n);
    };
    expect(toHex(hsNtorClientIntroKeys(rng, G1).encKey)).toBe(G1.encKey);
    expect(calls).toBe(1);
  });
});
