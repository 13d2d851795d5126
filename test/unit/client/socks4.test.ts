// SOCKS4/4a codec (socks-extensions.txt, C tor proto_socks.c
// parse_socks4_request): fixed vectors, round trips, truncation, C tor's
// length caps, and hostile input answered only with typed errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeSocks4Reply,
  decodeSocks4Request,
  encodeSocks4Reply,
  encodeSocks4Request,
  SOCKS4_MAX_MESSAGE,
} from '../../../services/client/socks4.js';
import { fromHex } from '../../../services/core/bytes.js';
import { InvalidError, TruncatedError } from '../../../services/core/errors.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

describe('SOCKS4 codec', () => {
  it('decodes a SOCKS4 CONNECT to an IPv4 address from fixed bytes', () => {
    // vn cd port ip user "bob" NUL
    const bytes = fromHex('04 01 0050 7f000001 626f62 00');
    const { msg, consumed } = decodeSocks4Request(bytes);
    expect(msg).toEqual({ command: 1, host: '127.0.0.1', port: 80, addressType: 'ipv4', userid: 'bob' });
    expect(consumed).toBe(bytes.length);
  });

  it('decodes a SOCKS4a CONNECT (0.0.0.x) to a hostname, with an empty user id', () => {
    // vn cd port ip=0.0.0.1 user "" NUL host "example.onion" NUL
    const bytes = fromHex('04 01 1f90 00000001 00 6578616d706c652e6f6e696f6e 00');
    const { msg, consumed } = decodeSocks4Request(bytes);
    expect(msg).toEqual({ command: 1, host: 'example.onion', port: 8080, addressType: 'domain', userid: '' });
    expect(consumed).toBe(bytes.length);
  });

  it('leaves bytes after the request to the stream', () => {
    const bytes = fromHex('04 01 0050 7f000001 00 474554');
    expect(decodeSocks4Request(bytes).consumed).toBe(9);
  });

  it('round-trips requests and replies', () => {
    fc.assert(
      fc.property(
        fc.domain(),
        fc.integer({ min: 1, max: 65535 }),
        fc.stringMatching(/^[a-z0-9]{0,40}$/),
        (host, port, userid) => {
          const { msg } = decodeSocks4Request(encodeSocks4Request({ command: 1, host, port, userid }));
          expect(msg).toEqual({ command: 1, host, port, addressType: 'domain', userid });
        },
      ),
    );
    // C tor's reply: version byte 0, then the code, port and address zero.
    expect(Buffer.from(encodeSocks4Reply(90)).toString('hex')).toBe('005a000000000000');
    for (const code of [90, 91]) expect(decodeSocks4Reply(encodeSocks4Reply(code)).code).toBe(code);
  });

  it('asks for more bytes on truncated input', () => {
    const full = encodeSocks4Request({ command: 1, host: 'abc.onion', port: 80, userid: 'u' });
    for (let i = 0; i < full.length; i++)
      expect(() => decodeSocks4Request(full.subarray(0, i))).toThrow(TruncatedError);
  });

  it('rejects malformed requests as C tor does (port 0, DSTIP 0, bad host, BIND, RESOLVE)', () => {
    expect(() => decodeSocks4Request(fromHex('05 01 0050 7f000001 00'))).toThrow(InvalidError);
    expect(() => decodeSocks4Request(fromHex('04 01 0000 7f000001 00'))).toThrow(/port 0/);
    expect(() => decodeSocks4Request(fromHex('04 01 0050 00000000 00'))).toThrow(/DSTIP 0/);
    expect(() => decodeSocks4Request(fromHex('04 01 0050 00000001 00 00'))).toThrow(
      /not a valid destination/,
    );
    expect(() => decodeSocks4Request(fromHex('04 01 0050 00000001 00 612062 00'))).toThrow(InvalidError);
    expect(() => decodeSocks4Request(fromHex('04 02 0050 7f000001 00'))).toThrow(/command 2/);
    expect(() => decodeSocks4Request(fromHex('04 f0 0050 00000001 00 61 00'))).toThrow(/command 240/);
    expect(() => decodeSocks4Request(fromHex('04 01 0050 7f000001 ff 00'))).toThrow(InvalidError);
  });

  it("caps lengths at C tor's: 512 bytes without a NUL, a user id over 512, a hostname over 255", () => {
    const head = fromHex('04 01 0050 00000001');
    const noNul = Buffer.concat([head, Buffer.alloc(SOCKS4_MAX_MESSAGE, 0x61)]);
    expect(() => decodeSocks4Request(noNul.subarray(0, SOCKS4_MAX_MESSAGE - 1))).toThrow(TruncatedError);
    expect(() => decodeSocks4Request(noNul.subarray(0, SOCKS4_MAX_MESSAGE))).toThrow(InvalidError);
    const longUser = Buffer.concat([head, Buffer.alloc(513, 0x61), Buffer.from([0])]);
    expect(() => decodeSocks4Request(longUser)).toThrow(/user id too long/);
    const host = (n: number) =>
      Buffer.concat([head, Buffer.from([0]), Buffer.alloc(n, 0x61), Buffer.from([0])]);
    expect(decodeSocks4Request(host(255)).msg.host).toHaveLength(255);
    expect(() => decodeSocks4Request(host(256))).toThrow(/hostname too long/);
  });

  it('answers random and oversized input only with typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (b) => {
        expectOnlyTypedErrors(() => decodeSocks4Request(b));
        expectOnlyTypedErrors(() => decodeSocks4Request(Buffer.concat([fromHex('0401 0050 00000001'), b])));
        expectOnlyTypedErrors(() => decodeSocks4Reply(b));
      }),
      { numRuns: 500 },
    );
  });
});
