// Client-authorization key files in Tor's formats (.auth for services,
// .auth_private for clients): arti's test keys, round trips, hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase32, fromHex, toBase32, toHex } from '../../../services/core/bytes.js';
import {
  formatAuthorizedClient,
  formatClientAuthPrivate,
  generateClientAuthKey,
  parseAuthorizedClient,
  parseClientAuthPrivate,
} from '../../../services/core/client-auth.js';
import { randomBytes, x25519PublicFromSecret } from '../../../services/core/crypto.js';
import { InvalidError } from '../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

// arti crates/tor-netdoc/src/doc/hsdesc.rs::test_data: the client key of hsdesc2.txt, hex and base32.
const PUB = fromHex('900467008E194C2C635A6E335E7724915E558CCB606C50094476F9731C129019');
const SEC = fromHex('90F2D60F917F2423F0989CE9979639435A5B01CF7AB3E0A1B900BEB892BAE443');
const SERVICE = 'paozpdhgz2okvc6kgbxvh2bnfsmt4xergrtcl4obkhopyvwxkpjzvoad';
const SERVICE_ID = '781d978ce6ce9caa8bca306f53e82d2c993e5c91346625f1c151dcfc56d753d3';

describe('client-auth key files', () => {
  it("arti's test keys: base32 forms, and the public key is the secret's", () => {
    expect(toBase32(PUB).toUpperCase()).toBe('SACGOAEODFGCYY22NYZV45ZESFPFLDGLMBWFACKEO34XGHASSAMQ');
    expect(toBase32(SEC).toUpperCase()).toBe('SDZNMD4RP4SCH4EYTTUZPFRZINNFWAOPPKZ6BINZAC7LREV24RBQ');
    expect(x25519PublicFromSecret(SEC)).toEqual(PUB);
  });

  it('a service .auth line', () => {
    const line = formatAuthorizedClient(PUB);
    expect(line).toBe('descriptor:x25519:SACGOAEODFGCYY22NYZV45ZESFPFLDGLMBWFACKEO34XGHASSAMQ');
    expect(parseAuthorizedClient(`${line}\n`)).toEqual(PUB);
    expect(parseAuthorizedClient(line.toLowerCase())).toEqual(PUB);
  });

  it('a client .auth_private line names the service by its address', () => {
    const line = formatClientAuthPrivate(fromHex(SERVICE_ID), SEC);
    expect(line).toBe(`${SERVICE}:descriptor:x25519:SDZNMD4RP4SCH4EYTTUZPFRZINNFWAOPPKZ6BINZAC7LREV24RBQ`);
    const parsed = parseClientAuthPrivate(`  ${line}\n`);
    expect(toHex(parsed.identity)).toBe(SERVICE_ID);
    expect(parsed.secret).toEqual(SEC);
    expect(parseClientAuthPrivate(line.replace(SERVICE, `${SERVICE}.onion`)).secret).toEqual(SEC);
  });

  it('refuses low-order public keys, which would stop a service building descriptors', () => {
    const lowOrder = [
      new Uint8Array(32),
      Uint8Array.from([1, ...new Uint8Array(31)]),
      fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'),
    ];
    for (const k of lowOrder) {
      expect(() => parseAuthorizedClient(`descriptor:x25519:${toBase32(k)}`)).toThrow(/low-order/);
    }
  });

  it('round trips generated keys', () => {
    for (let i = 0; i < 20; i++) {
      const k = generateClientAuthKey(randomBytes);
      expect(parseAuthorizedClient(formatAuthorizedClient(k.public))).toEqual(k.public);
      const id = fromHex(SERVICE_ID);
      expect(parseClientAuthPrivate(formatClientAuthPrivate(id, k.secret))).toEqual({
        identity: id,
        secret: k.secret,
      });
    }
  });

  it('malformed lines are refused with InvalidError', () => {
    const good = 'SACGOAEODFGCYY22NYZV45ZESFPFLDGLMBWFACKEO34XGHASSAMQ';
    for (const bad of [
      '',
      good,
      `descriptor:x448:${good}`,
      `descriptor:x25519:${good.slice(0, -1)}`,
      `descriptor:x25519:${good}A`,
      `descriptor:x25519:${good.replace('S', '1')}`,
      `descriptor:x25519:${good}\ndescriptor:x25519:${good}`,
      `descriptor:x25519:${good.padEnd(400, 'A')}`,
    ]) {
      expect(() => parseAuthorizedClient(bad), bad).toThrow(InvalidError);
    }
    for (const bad of [
      `descriptor:x25519:${good}`,
      `${SERVICE}:descriptor:x25519:`,
      `${SERVICE.replace('p', 'q')}:descriptor:x25519:${good}`,
      `${SERVICE}:x25519:${good}`,
      `${SERVICE}`,
    ]) {
      expect(() => parseClientAuthPrivate(bad), bad).toThrow(InvalidError);
    }
  });

  it('base32 decoding: every length and trailing-bit rule, either case', () => {
    for (let n = 0; n < 40; n++) {
      const b = randomBytes(n);
      expect(fromBase32(toBase32(b))).toEqual(b);
      expect(fromBase32(toBase32(b).toUpperCase())).toEqual(b);
    }
    expect(() => fromBase32('a')).toThrow(InvalidError);
    // "ab" has 2 trailing bits; only "aa" (zero bits) encodes the byte 0x00.
    expect(() => fromBase32('ab')).toThrow(InvalidError);
    expect(fromBase32('aa')).toEqual(new Uint8Array([0]));
  });

  it('random and oversized input gives typed errors only', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        expectOnlyTypedErrors(() => parseAuthorizedClient(s));
        expectOnlyTypedErrors(() => parseClientAuthPrivate(s));
        expectOnlyTypedErrors(() => fromBase32(s));
      }),
      { numRuns: 500 },
    );
    expectOnlyTypedErrors(() => parseClientAuthPrivate(`${SERVICE}:${'descriptor:x25519:'.repeat(100_000)}`));
  });
});
