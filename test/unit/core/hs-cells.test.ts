// Onion-service cell bodies: the C tor ESTABLISH_INTRO (arti testvec_relaymsg.rs::establish_intro_canned),
// the 310-byte INTRODUCE1 of rend-spec-v3 App. G.1 (arti hs_ntor.rs::testvec), arti's hand-made
// layouts, round trips and hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { ed25519Expand } from '../../../services/core/crypto/ed25519-math.js';
import { ed25519Generate, randomBytes, x25519Generate } from '../../../services/core/crypto.js';
import { CryptoError, InvalidError } from '../../../services/core/errors.js';
import * as hc from '../../../services/core/hs-cells.js';
import { hsNtorClientRendezvous, hsNtorServiceRendezvous } from '../../../services/core/hs-ntor.js';
import * as hr from '../../../services/core/hs-rend-cells.js';
import type { LinkSpecifier } from '../../../services/core/link-specifiers.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const hex = (s: string) => fromHex(s.replace(/\s+/g, ''));
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const b32 = bytes(32, 32);

const CANNED_EST_INTRO = hex(`02 0020 75BC879BF697A9B12E1E10596FEF041127FECD11FDD80706AEAE35812EA74328
  00
  A3DF998D6749A9323035AD23DAA7F8607E4F87473A975E50A42DEC9C0E565C48
  0040
  5A7F5E53D55B307B5F7866AE14508DDA3412E2B3E4805176C25413CEDF204F7F
  53EAECADC0844472AA7BEC3BDCBA0A65F1FCDEF397B399F534F46E535B0E6301`);
const CANNED_KH = hex('250CCAF964B17B621A58CD82DF5DAFD060BA5F28');

const G1 = {
  authKey: hex('34E171E4358E501BFF21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F'),
  B: hex('8E5127A40E83AABF6493E41F142B6EE3604B85A3961CD7E38D247239AFF71979'),
  b: hex('A0ED5DBF94EEB2EDB3B514E4CF6ABFF6022051CC5F103391F1970A3FCD15296A'),
  subcredential: hex('0085D26A9DEBA252263BF0231AEAC59B17CA11BAD8A218238AD6487CBAD68B57'),
  x: hex('60B4D6BF5234DCF87A4E9D7487BDF3F4A69B6729835E825CA29089CFDDA1E341'),
  y: hex('68CB5188CA0CD7924250404FAB54EE1392D3D2B9C049A2E446513875952F8F55'),
  plaintext: hex(`6BD364C12638DD5C3BE23D76ACA05B04E6CE932C0101000100200DE6130E4FCA
    C4EDDA24E21220CC3EADAE403EF6B7D11C8273AC71908DE565450300067F0000
    0113890214F823C4F8CC085C792E0AEE0283FE00AD7520B37D0320728D5DF39B
    7B7077A0118A900FF4456C382F0041300ACF9C58E51C392795EF870000000000
    0000000000000000000000000000000000000000000000000000000000000000
    000000000000000000000000000000000000000000000000000000000000`),
  cell: hex(`000000000000000000000000000000000000000002002034E171E4358E501BFF
    21ED907E96AC6BFEF697C779D040BBAF49ACC30FC5D21F00BF04348B46D09AED
    726F1D66C618FDEA1DE58E8CB8B89738D7356A0C59111D5DADBECCCB38E37830
    4DCC179D3D9E437B452AF5702CED2CCFEC085BC02C4C175FA446525C1B9D5530
    563C362FDFFB802DAB8CD9EBC7A5EE17DA62E37DEEB0EB187FBB48C63298B0E8
    3F391B7566F42ADC97C46BA7588278273A44CE96BC68FFDAE31EF5F0913B9A9C
    7E0F173DBC0BDDCD4ACB4C4600980A7DDD9EAEC6E7F3FA3FC37CD95E5B8BFB3E
    35717012B78B4930569F895CB349A07538E42309C993223AEA77EF8AEA64F25D
    DEE97DA623F1AEC0A47F150002150455845C385E5606E41A9A199E7111D54EF2
    D1A51B7554D8B3692D85AC587FB9E69DF990EFB776D8`),
};

const linkSpec: fc.Arbitrary<LinkSpecifier> = fc.oneof(
  fc
    .tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 }))
    .map(([addr, port]) => ({ type: 'ipv4' as const, addr, port })),
  bytes(20, 20).map((id) => ({ type: 'legacy-id' as const, id })),
  b32.map((id) => ({ type: 'ed25519' as const, id })),
  fc
    .tuple(fc.integer({ min: 4, max: 255 }), bytes(0, 40))
    .map(([lstype, data]) => ({ type: 'unknown' as const, lstype, data })),
);
const linkSpecs = fc
  .array(linkSpec, { maxLength: 4 })
  .filter((l) => ['legacy-id', 'ed25519'].every((t) => l.filter((s) => s.type === t).length <= 1));
const extension = fc.record({ type: fc.integer({ min: 0, max: 255 }), data: bytes(0, 20) });
const extensions = fc.array(extension, { maxLength: 3 });
const plaintextArb = fc.record({
  cookie: bytes(20, 20),
  extensions,
  onionKey: b32,
  linkSpecifiers: linkSpecs,
});

describe('ESTABLISH_INTRO', () => {
  it('C tor canned cell: MAC and signature verify', () => {
    const m = hc.verifyEstablishIntro(CANNED_EST_INTRO, CANNED_KH);
    expect(toHex(m.authKey)).toBe('75bc879bf697a9b12e1e10596fef041127fecd11fdd80706aeae35812ea74328');
    expect(m.extensions).toEqual([]);
    expect(hc.encodeEstablishIntro(m)).toEqual(CANNED_EST_INTRO);
  });

  it('canned cell fails with the wrong KH or any flipped byte', () => {
    expect(() => hc.verifyEstablishIntro(CANNED_EST_INTRO, CANNED_KH.subarray(1))).toThrow(CryptoError);
    for (let i = 0; i < CANNED_EST_INTRO.length; i++) {
      const t = CANNED_EST_INTRO.slice();
      t[i]! ^= 0x40;
      expect(() => hc.verifyEstablishIntro(t, CANNED_KH), `byte ${i}`).toThrow();
    }
  });

  it("arti's layout with the DoS extension", () => {
    const wire = hex(`02 0020 ${'33'.repeat(32)}
      01 01 13 02 01 0000000000000001 02 0000000000000002
      ${'01'.repeat(32)} 0040 ${'15'.repeat(64)}`);
    const m = hc.decodeEstablishIntro(wire);
    expect(m.extensions.length).toBe(1);
    expect(hc.decodeDosExtension(m.extensions[0]!)).toEqual({ rate: 1, burst: 2 });
    expect(hc.encodeDosExtension({ rate: 1, burst: 2 })).toEqual(m.extensions[0]);
    expect(hc.encodeEstablishIntro(m)).toEqual(wire);
  });

  it('DoS extension skips unknown params and rejects oversized values', () => {
    const ext = { type: 1, data: hex('02 09 0000000000000005 02 0000000000000007') };
    expect(hc.decodeDosExtension(ext)).toEqual({ burst: 7 });
    expect(() => hc.decodeDosExtension({ type: 1, data: hex('01 01 0000000080000000') })).toThrow(
      InvalidError,
    );
    expect(() => hc.encodeDosExtension({ rate: -1 })).toThrow(InvalidError);
  });

  it('build then verify, with seed and with expanded key', () => {
    const kp = ed25519Generate();
    const kh = new Uint8Array(20).fill(7);
    const a = hc.buildEstablishIntro(
      { authKeyPub: kp.public, authKeySeed: kp.seed, dos: { rate: 25, burst: 200 } },
      kh,
    );
    const m = hc.verifyEstablishIntro(a, kh);
    expect(hc.decodeDosExtension(m.extensions[0]!)).toEqual({ rate: 25, burst: 200 });
    const b = hc.buildEstablishIntro({ authKeyPub: kp.public, authKeyExpanded: ed25519Expand(kp.seed) }, kh);
    expect(hc.verifyEstablishIntro(b, kh).authKey).toEqual(kp.public);
    expect(() => hc.verifyEstablishIntro(b, new Uint8Array(20))).toThrow(CryptoError);
    const other = ed25519Generate();
    const c = hc.buildEstablishIntro({ authKeyPub: other.public, authKeySeed: kp.seed }, kh);
    expect(() => hc.verifyEstablishIntro(c, kh)).toThrow(CryptoError);
  });

  it('round trip', () => {
    fc.assert(
      fc.property(b32, extensions, b32, bytes(64, 64), (authKey, exts, handshakeAuth, sig) => {
        const m = { authKey, extensions: exts, handshakeAuth, sig };
        expect(hc.decodeEstablishIntro(hc.encodeEstablishIntro(m))).toEqual(m);
      }),
    );
  });
});

describe('INTRODUCE1 / INTRODUCE2', () => {
  it('App. G.1: decodes, verifies and decrypts the 310-byte cell', () => {
    expect(G1.cell.length).toBe(310);
    const { plaintext, X, subcredential } = hc.openIntroduce2(G1.cell, {
      b: G1.b,
      B: G1.B,
      authKey: G1.authKey,
      subcredentials: [new Uint8Array(32), G1.subcredential],
    });
    expect(subcredential).toEqual(G1.subcredential);
    expect(toHex(X)).toBe('bf04348b46d09aed726f1d66c618fdea1de58e8cb8b89738d7356a0c59111d5d');
    expect(plaintext.cookie).toEqual(G1.plaintext.subarray(0, 20));
    expect(plaintext.extensions).toEqual([{ type: 1, data: new Uint8Array(0) }]);
    expect(toHex(plaintext.onionKey)).toBe(
      '0de6130e4fcac4edda24e21220cc3eadae403ef6b7d11c8273ac71908de56545',
    );
    expect(plaintext.linkSpecifiers.map((s) => s.type)).toEqual(['ipv4', 'legacy-id', 'ed25519']);
    expect(plaintext.linkSpecifiers[0]).toEqual({ type: 'ipv4', addr: '127.0.0.1', port: 5001 });
    // Re-encoding with C tor's padding rule gives the published 190-byte plaintext...
    expect(hc.encodeIntroducePlaintext(plaintext, hc.INTRODUCE1_MIN_SIZE - 56)).toEqual(G1.plaintext);
    // ...and building with the vector's x reproduces the cell byte for byte.
    const built = hc.buildIntroduce1(
      { authKey: G1.authKey, B: G1.B, subcredential: G1.subcredential, plaintext },
      G1.x,
    );
    expect(toHex(built.cell)).toBe(toHex(G1.cell));
  });

  it('App. G.1: wrong subcredential, flipped byte or foreign auth key are rejected', () => {
    const keys = { b: G1.b, B: G1.B, subcredentials: [G1.subcredential] };
    expect(() => hc.openIntroduce2(G1.cell, { ...keys, subcredentials: [new Uint8Array(32)] })).toThrow(
      CryptoError,
    );
    expect(() => hc.openIntroduce2(G1.cell, { ...keys, subcredentials: [] })).toThrow(CryptoError);
    for (let i = 20; i < G1.cell.length; i += 3) {
      const t = G1.cell.slice();
      t[i]! ^= 1;
      expect(() => hc.openIntroduce2(t, keys), `byte ${i}`).toThrow();
    }
    // The legacy key id is inside the MAC too (and must be zero).
    const t = G1.cell.slice();
    t[0] = 1;
    expect(() => hc.openIntroduce2(t, keys)).toThrow(InvalidError);
    expect(() => hc.openIntroduce2(G1.cell, { ...keys, authKey: new Uint8Array(32) })).toThrow(InvalidError);
  });

  it("arti's INTRODUCE1 layout with unknown extensions", () => {
    const wire = hex(`${'00'.repeat(20)} 02 0020 ${'aa'.repeat(32)} 02 01 01 00 02 01 00
      ${'bb'.repeat(32)} 01090804 ${'cc'.repeat(32)}`);
    const m = hc.decodeIntroduce1(wire);
    expect(m.extensions).toEqual([
      { type: 1, data: hex('00') },
      { type: 2, data: hex('00') },
    ]);
    expect(m.encrypted).toEqual(hex('01090804'));
    expect(hc.encodeIntroduce1(m)).toEqual(wire);
  });

  it("arti's intro payload (testvec_intro_payload)", () => {
    const wire = hex(`1EFFEACE9BE629B357ADA359071A7912DB828A5B 00
      01 0020 7D73D007977A08CD1ABAD50F6B836C718700D687E000728C357ABC7CE3C8334D
      03 00 06 7F000001138A 02 14 E48664DBCCEF9650B5D0E7B60E6DE9BCED2FB91E
         03 20 3FF84AA4B21453D20106BD4EDDA919386BF67D541CAA78F38BE6A08C2B3D0C4F
      000000000000000000000000`);
    const p = hc.decodeIntroducePlaintext(wire);
    expect(p.linkSpecifiers[0]).toEqual({ type: 'ipv4', addr: '127.0.0.1', port: 5002 });
    expect(hc.encodeIntroducePlaintext(p, wire.length)).toEqual(wire);
  });

  it('full client/service exchange with random keys, through RENDEZVOUS2', () => {
    fc.assert(
      fc.property(plaintextArb, b32, (plaintext, subcredential) => {
        const svc = x25519Generate();
        const authKey = ed25519Generate().public;
        const { cell, x, X } = hc.buildIntroduce1(
          { authKey, B: svc.public, subcredential, plaintext },
          x25519Generate().secret,
        );
        expect(cell.length).toBeGreaterThanOrEqual(hc.INTRODUCE1_MIN_SIZE + 64);
        const opened = hc.openIntroduce2(cell, {
          b: svc.secret,
          B: svc.public,
          subcredentials: [subcredential],
        });
        expect(opened.plaintext).toEqual(plaintext);
        const r = hsNtorServiceRendezvous(
          { b: svc.secret, B: svc.public, authKey, X: opened.X },
          x25519Generate().secret,
        );
        const rend1 = hr.decodeRendezvous1(
          hr.encodeRendezvous1({
            cookie: plaintext.cookie,
            handshakeInfo: hr.joinHandshakeInfo(r.Y, r.auth),
          }),
        );
        const rend2 = hr.decodeRendezvous2(hr.encodeRendezvous2({ handshakeInfo: rend1.handshakeInfo }));
        const { Y, auth } = hr.splitHandshakeInfo(rend2.handshakeInfo);
        expect(hsNtorClientRendezvous({ x, X, B: svc.public, authKey, Y, auth })).toEqual(r.keySeed);
      }),
      { numRuns: 15 },
    );
  });

  it('round trips', () => {
    fc.assert(
      fc.property(b32, extensions, b32, bytes(0, 300), b32, (authKey, exts, X, encrypted, mac) => {
        const m = { authKey, extensions: exts, X, encrypted, mac };
        expect(hc.decodeIntroduce1(hc.encodeIntroduce1(m))).toEqual(m);
      }),
    );
    fc.assert(
      fc.property(plaintextArb, fc.integer({ min: 0, max: 300 }), (p, pad) => {
        const enc = hc.encodeIntroducePlaintext(p, pad);
        expect(enc.length).toBeGreaterThanOrEqual(pad);
        expect(hc.decodeIntroducePlaintext(enc)).toEqual(p);
      }),
    );
  });
});

describe('small cells', () => {
  it("arti's layouts", () => {
    expect(hc.decodeIntroduceAck(hex('0000 00'))).toEqual({ status: 0, extensions: [] });
    expect(hc.encodeIntroduceAck({ status: hc.IntroduceAckStatus.SUCCESS, extensions: [] })).toEqual(
      hex('000000'),
    );
    expect(hc.decodeIntroEstablished(hex('00'))).toEqual({ extensions: [] });
    expect(hc.encodeIntroEstablished({ extensions: [] })).toEqual(hex('00'));
    const cookie = new Uint8Array(20).fill(1);
    expect(hr.encodeEstablishRendezvous({ cookie })).toEqual(hex('01'.repeat(20)));
    expect(hr.decodeEstablishRendezvous(hex('01'.repeat(20)))).toEqual({ cookie });
    const r1 = hr.decodeRendezvous1(hex(`${'00'.repeat(20)} 123456`));
    expect(r1).toEqual({ cookie: new Uint8Array(20), handshakeInfo: hex('123456') });
    expect(hr.encodeRendezvous2({ handshakeInfo: r1.handshakeInfo })).toEqual(hex('123456'));
  });

  it('length checks', () => {
    expect(() => hr.decodeEstablishRendezvous(hex('01'.repeat(19)))).toThrow();
    expect(() => hr.decodeEstablishRendezvous(hex('01'.repeat(21)))).toThrow(InvalidError);
    expect(() => hr.splitHandshakeInfo(new Uint8Array(63))).toThrow(InvalidError);
    // C tor pads RENDEZVOUS1 to 168 bytes (hs_circuit.c): RENDEZVOUS2 then carries 148; the rest is ignored.
    const info = randomBytes(64);
    const padded = hr.padRendezvous1(
      hr.encodeRendezvous1({ cookie: new Uint8Array(20), handshakeInfo: info }),
      randomBytes,
    );
    expect(padded.length).toBe(hr.HS_LEGACY_RENDEZVOUS_CELL_SIZE);
    const rend2 = hr.decodeRendezvous2(hr.decodeRendezvous1(padded).handshakeInfo);
    expect(rend2.handshakeInfo.length).toBe(148);
    expect(hr.splitHandshakeInfo(rend2.handshakeInfo)).toEqual({
      Y: info.slice(0, 32),
      auth: info.slice(32),
    });
    expect(hr.padRendezvous1(new Uint8Array(200), randomBytes).length).toBe(200);
    expect(() => hr.encodeEstablishRendezvous({ cookie: new Uint8Array(19) })).toThrow(InvalidError);
  });

  it('round trips', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 65535 }),
        extensions,
        bytes(20, 20),
        bytes(0, 100),
        (status, exts, cookie, info) => {
          expect(hc.decodeIntroduceAck(hc.encodeIntroduceAck({ status, extensions: exts }))).toEqual({
            status,
            extensions: exts,
          });
          expect(hc.decodeIntroEstablished(hc.encodeIntroEstablished({ extensions: exts }))).toEqual({
            extensions: exts,
          });
          expect(hr.decodeEstablishRendezvous(hr.encodeEstablishRendezvous({ cookie }))).toEqual({ cookie });
          expect(hr.decodeRendezvous1(hr.encodeRendezvous1({ cookie, handshakeInfo: info }))).toEqual({
            cookie,
            handshakeInfo: info,
          });
          expect(hr.decodeRendezvous2(hr.encodeRendezvous2({ handshakeInfo: info }))).toEqual({
            handshakeInfo: info,
          });
        },
      ),
    );
  });
});

describe('hostile input', () => {
  const decoders: ((b: Uint8Array) => unknown)[] = [
    hc.decodeEstablishIntro,
    (b) => hc.verifyEstablishIntro(b, CANNED_KH),
    hc.decodeIntroEstablished,
    hc.decodeIntroduce1,
    hc.decodeIntroducePlaintext,
    (b) => hc.openIntroduce2(b, { b: G1.b, B: G1.B, subcredentials: [G1.subcredential] }),
    hc.decodeIntroduceAck,
    hr.decodeEstablishRendezvous,
    hr.decodeRendezvous1,
    hr.decodeRendezvous2,
    (b) => hc.decodeDosExtension({ type: 1, data: b }),
  ];

  it('random bytes', () => {
    fc.assert(
      fc.property(bytes(0, 400), (b) => {
        for (const d of decoders) expectOnlyTypedErrors(() => d(b));
      }),
      { numRuns: 300 },
    );
  });

  it('every truncation of the vectors', () => {
    for (const v of [CANNED_EST_INTRO, G1.cell, G1.plaintext]) {
      for (let n = 0; n < v.length; n++) {
        for (const d of decoders) expectOnlyTypedErrors(() => d(v.subarray(0, n)));
      }
    }
    expect(() => hc.decodeEstablishIntro(CANNED_EST_INTRO.subarray(0, 100))).toThrow();
    expect(() => hc.decodeIntroduce1(G1.cell.subarray(0, 56 + 32 + 31))).toThrow(InvalidError);
  });

  it('trailing bytes where the layout is fixed', () => {
    const t = new Uint8Array(CANNED_EST_INTRO.length + 1);
    t.set(CANNED_EST_INTRO);
    expect(() => hc.decodeEstablishIntro(t)).toThrow(InvalidError);
    expect(() => hc.decodeIntroduceAck(hex('0000 00 00'))).toThrow(InvalidError);
  });
});
