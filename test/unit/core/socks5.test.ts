import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../../services/core/bytes.js';
import { InvalidError, TruncatedError } from '../../../services/core/errors.js';
import {
  decodeGreeting,
  decodeReply,
  decodeRequest,
  decodeUserPass,
  encodeGreeting,
  encodeReply,
  encodeRequest,
  encodeUserPass,
} from '../../../services/core/socks5.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

describe('SOCKS5 codec (RFC 1928/1929)', () => {
  it('decodes a CONNECT to a hostname from fixed bytes', () => {
    // ver cmd rsv atyp len "example.onion" port
    const bytes = fromHex('05 01 00 03 0d 6578616d706c652e6f6e696f6e 0050');
    const { msg, consumed } = decodeRequest(bytes);
    expect(msg).toEqual({ command: 1, host: 'example.onion', port: 80, addressType: 'domain' });
    expect(consumed).toBe(bytes.length);
  });

  it('decodes IPv4 and IPv6 requests', () => {
    expect(decodeRequest(fromHex('05 01 00 01 7f000001 1f90')).msg).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
    });
    expect(decodeRequest(fromHex('05 01 00 04 00000000000000000000000000000001 0016')).msg).toMatchObject({
      host: '0:0:0:0:0:0:0:1',
      addressType: 'ipv6',
    });
  });

  it('round-trips greetings, credentials and requests', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 10 }),
        (methods) => {
          expect(decodeGreeting(encodeGreeting({ methods })).msg.methods).toEqual(methods);
        },
      ),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }), (username, password) => {
        expect(decodeUserPass(encodeUserPass({ username, password })).msg).toEqual({ username, password });
      }),
    );
    fc.assert(
      fc.property(fc.domain(), fc.integer({ min: 1, max: 65535 }), (host, port) => {
        const { msg } = decodeRequest(encodeRequest({ command: 1, host, port }));
        expect(msg).toEqual({ command: 1, host, port, addressType: 'domain' });
      }),
    );
    for (const code of [0, 1, 5, 0xf0, 0xf6]) expect(decodeReply(encodeReply(code)).code).toBe(code);
  });

  it('asks for more bytes on truncated input', () => {
    const full = encodeRequest({ command: 1, host: 'abc.onion', port: 80 });
    for (let i = 0; i < full.length; i++)
      expect(() => decodeRequest(full.subarray(0, i))).toThrow(TruncatedError);
  });

  it('rejects malformed input with InvalidError', () => {
    expect(() => decodeGreeting(fromHex('04 01 00'))).toThrow(InvalidError);
    expect(() => decodeGreeting(fromHex('05 00'))).toThrow(InvalidError);
    expect(() => decodeRequest(fromHex('05 01 01 01 7f000001 0050'))).toThrow(InvalidError);
    expect(() => decodeRequest(fromHex('05 01 00 09 7f000001 0050'))).toThrow(InvalidError);
    expect(() => decodeRequest(fromHex('05 01 00 03 00 0050'))).toThrow(InvalidError);
    expect(() => decodeRequest(fromHex('05 01 00 03 03 612062 0050'))).toThrow(InvalidError);
    expect(() => decodeUserPass(fromHex('02 01 61 01 62'))).toThrow(InvalidError);
  });

  it('answers random and oversized input only with typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        expectOnlyTypedErrors(() => decodeGreeting(b));
        expectOnlyTypedErrors(() => decodeUserPass(b));
        expectOnlyTypedErrors(() => decodeRequest(b));
        expectOnlyTypedErrors(() => decodeReply(b));
      }),
      { numRuns: 500 },
    );
  });
});
