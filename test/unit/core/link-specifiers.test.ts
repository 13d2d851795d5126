// services/core/link-specifiers.ts (tor-spec §5.1.2): the list codec, its
// limits, and linkTarget, the one reading of a list that EXTEND2, the onion
// client's intro points and the service's rendezvous points share.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, fromHex, toHex } from '../../../services/core/bytes.js';
import { InvalidError, TruncatedError } from '../../../services/core/errors.js';
import {
  decodeLinkSpecifiers,
  encodeLinkSpecifiers,
  type LinkSpecifier,
  linkTarget,
} from '../../../services/core/link-specifiers.js';

const ED = new Uint8Array(32).fill(0xee);
const LEGACY = new Uint8Array(20).fill(0x11);

const encode = (specs: LinkSpecifier[]): Uint8Array => {
  const w = new ByteWriter();
  encodeLinkSpecifiers(w, specs);
  return w.finish();
};
const decode = (b: Uint8Array): LinkSpecifier[] => {
  const r = new ByteReader(b, 'link specifiers');
  const out = decodeLinkSpecifiers(r);
  r.assertExhausted();
  return out;
};

describe('link specifier list codec', () => {
  it('encodes NSPEC then LSTYPE LSLEN LSPEC, byte for byte', () => {
    const hex = toHex(
      encode([
        { type: 'ipv4', addr: '127.0.0.1', port: 9001 },
        { type: 'ipv6', addr: '::1', port: 443 },
        { type: 'unknown', lstype: 9, data: new Uint8Array([0xab]) },
      ]),
    );
    const want = [
      '03', // NSPEC
      '00 06 7f000001 2329', // IPv4 127.0.0.1:9001
      '01 12 00000000000000000000000000000001 01bb', // IPv6 [::1]:443
      '09 01 ab', // unknown type 9, kept as given
    ];
    expect(hex).toBe(want.join('').replaceAll(' ', ''));
  });

  it('round-trips every kind, keeping unknown types verbatim', () => {
    const specs: LinkSpecifier[] = [
      { type: 'ipv4', addr: '10.1.2.3', port: 1 },
      { type: 'legacy-id', id: LEGACY },
      { type: 'ed25519', id: ED },
      { type: 'ipv6', addr: '2001:db8:0:0:0:0:0:1', port: 65535 },
      { type: 'unknown', lstype: 200, data: new Uint8Array(255).fill(7) },
    ];
    expect(decode(encode(specs))).toEqual(specs);
  });

  it('rejects a known type with the wrong length', () => {
    expect(() => decode(fromHex('010005' + '7f00000123'))).toThrow(InvalidError);
    expect(() => decode(fromHex(`01 03 1f ${'00'.repeat(31)}`.replaceAll(' ', '')))).toThrow(InvalidError);
  });

  it('rejects two identities of one kind', () => {
    const two = encode([
      { type: 'ed25519', id: ED },
      { type: 'ed25519', id: new Uint8Array(32).fill(1) },
    ]);
    expect(() => decode(two)).toThrow(/more than one ed25519/);
  });

  it('every truncation of a valid list throws TruncatedError', () => {
    const full = encode([
      { type: 'ipv4', addr: '127.0.0.1', port: 9001 },
      { type: 'ed25519', id: ED },
    ]);
    for (let n = 0; n < full.length; n++) expect(() => decode(full.slice(0, n))).toThrow(TruncatedError);
  });

  it('refuses to encode oversized input', () => {
    const many = Array.from({ length: 256 }, () => ({ type: 'ipv4', addr: '1.2.3.4', port: 1 }) as const);
    expect(() => encode(many)).toThrow(InvalidError);
    expect(() => encode([{ type: 'unknown', lstype: 9, data: new Uint8Array(256) }])).toThrow(InvalidError);
    expect(() => encode([{ type: 'ipv4', addr: '256.0.0.1', port: 1 }])).toThrow(InvalidError);
    expect(() => encode([{ type: 'ed25519', id: new Uint8Array(31) }])).toThrow(InvalidError);
  });

  it('random bytes decode or fail with a typed error, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        try {
          decode(b);
        } catch (e) {
          expect(e instanceof InvalidError || e instanceof TruncatedError).toBe(true);
        }
      }),
    );
  });
});

describe('linkTarget', () => {
  it('names the identities and the first address of each family, skipping unknown types', () => {
    const t = linkTarget([
      { type: 'unknown', lstype: 9, data: new Uint8Array([1]) },
      { type: 'ipv4', addr: '10.0.0.1', port: 5000 },
      { type: 'legacy-id', id: LEGACY },
      { type: 'ed25519', id: ED },
      { type: 'ipv4', addr: '10.0.0.2', port: 6000 },
      { type: 'ipv6', addr: '::1', port: 7000 },
    ]);
    expect(t).toEqual({
      ed25519: ED,
      legacyId: LEGACY,
      ipv4: { addr: '10.0.0.1', port: 5000 },
      ipv6: { addr: '::1', port: 7000 },
    });
  });

  it('leaves out what the list does not say', () => {
    expect(linkTarget([])).toEqual({});
    expect(linkTarget([{ type: 'ipv6', addr: '::1', port: 1 }])).toEqual({ ipv6: { addr: '::1', port: 1 } });
  });
});
