// HTTP CONNECT tunnel codec (C tor connection_edge.c
// connection_ap_process_http_connect, reasons.c
// end_reason_to_http_connect_response_line): request heads, C tor's answer
// for each refusal, its status line for each connect failure, and hostile
// input answered only with typed errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnectError } from '../../../services/client/connect.js';
import { CONNECT_SUCCEEDED, connectReply } from '../../../services/client/connect-reply.js';
import {
  decodeConnectRequest,
  HTTP_MAX_HEAD,
  HttpAnswer,
  HttpTunnelError,
  httpConnectAnswer,
} from '../../../services/client/http-tunnel.js';
import { TruncatedError } from '../../../services/core/errors.js';
import { EndReason } from '../../../services/core/relay-cell.js';
import { StreamRefusedError } from '../../../services/net/circuit-error.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

/** The answer a refused head gets. */
function refusal(head: string): string {
  try {
    decodeConnectRequest(enc(head));
  } catch (e) {
    if (e instanceof HttpTunnelError) return e.answer;
    throw e;
  }
  throw new Error('accepted');
}

describe('HTTP CONNECT request heads', () => {
  it('decodes what curl -p sends, with the bytes after the head left to the stream', () => {
    const head =
      'CONNECT example.onion:80 HTTP/1.1\r\nHost: example.onion:80\r\nUser-Agent: curl/7.88.1\r\n' +
      'Proxy-Connection: Keep-Alive\r\n\r\n';
    const { msg, consumed } = decodeConnectRequest(enc(`${head}GET / HTTP/1.1`));
    expect(msg).toEqual({ method: 'CONNECT', host: 'example.onion', port: 80, addressType: 'domain' });
    expect(consumed).toBe(head.length);
  });

  it('takes Proxy-Authorization and X-Tor-Stream-Isolation (any case), IPv4 and [IPv6] targets', () => {
    const { msg } = decodeConnectRequest(
      enc(
        'connect 10.0.0.1:443 HTTP/1.0\r\nproxy-authorization: Basic YTpi\r\nX-Tor-Stream-Isolation:  s1 \r\n\r\n',
      ),
    );
    expect(msg).toEqual({
      method: 'connect',
      host: '10.0.0.1',
      port: 443,
      addressType: 'ipv4',
      proxyAuthorization: 'Basic YTpi',
      streamIsolation: 's1',
    });
    expect(decodeConnectRequest(enc('CONNECT [::1]:22 HTTP/1.1\r\n\r\n')).msg).toMatchObject({
      host: '::1',
      port: 22,
      addressType: 'ipv6',
    });
  });

  it('waits for the blank line', () => {
    const full = 'CONNECT a.onion:80 HTTP/1.1\r\nHost: a.onion:80\r\n\r\n';
    for (let i = 0; i < full.length; i++)
      expect(() => decodeConnectRequest(enc(full.slice(0, i)))).toThrow(TruncatedError);
  });

  it('answers other methods 405, as C tor (absolute-URI GETs from HTTP proxy clients too)', () => {
    expect(refusal('GET http://example.onion/ HTTP/1.1\r\nHost: example.onion\r\n\r\n')).toBe(
      HttpAnswer.METHOD_NOT_ALLOWED,
    );
    expect(refusal('POST / HTTP/1.1\r\n\r\n')).toBe(HttpAnswer.METHOD_NOT_ALLOWED);
  });

  it('answers malformed heads 400 and a host of 256 bytes or more 414', () => {
    for (const head of [
      'CONNECT\r\n\r\n',
      'CONNECT a.onion:80\r\n\r\n',
      'CONNECT a.onion:80 HTTP/2.0\r\n\r\n',
      'CONNECT a.onion HTTP/1.1\r\n\r\n',
      'CONNECT a.onion:0 HTTP/1.1\r\n\r\n',
      'CONNECT a.onion:65536 HTTP/1.1\r\n\r\n',
      'CONNECT a.onion:http HTTP/1.1\r\n\r\n',
      'CONNECT a b.onion:80 HTTP/1.1\r\n\r\n',
      'CONNECT a/b.onion:80 HTTP/1.1\r\n\r\n',
      'CONNECT [zz]:80 HTTP/1.1\r\n\r\n',
      'CONNECT a.onion:80 HTTP/1.1\r\nno colon here\r\n\r\n',
      'CONNECT a.onion:80 HTTP/1.1\r\nX: a\0b\r\n\r\n',
      'CONNECT a.onion:80 HTTP/1.1\nHost: x\r\n\r\n',
    ])
      expect(refusal(head), JSON.stringify(head)).toBe(HttpAnswer.BAD_REQUEST);
    expect(refusal(`CONNECT ${'a'.repeat(256)}:80 HTTP/1.1\r\n\r\n`)).toBe(HttpAnswer.URI_TOO_LONG);
    const longest = decodeConnectRequest(enc(`CONNECT ${'a'.repeat(255)}:80 HTTP/1.1\r\n\r\n`));
    expect(longest.msg.host).toHaveLength(255);
  });

  it(`refuses a head over ${HTTP_MAX_HEAD} bytes (C tor's header limit) with 400, complete or not`, () => {
    const big = `CONNECT a.onion:80 HTTP/1.1\r\nX-Pad: ${'p'.repeat(HTTP_MAX_HEAD)}`;
    expect(() => decodeConnectRequest(enc(big.slice(0, HTTP_MAX_HEAD)))).toThrow(TruncatedError);
    expect(refusal(big)).toBe(HttpAnswer.BAD_REQUEST);
    expect(refusal(`${big}\r\n\r\n`)).toBe(HttpAnswer.BAD_REQUEST);
  });

  it('answers random and oversized input only with typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.string({ maxLength: 300 }), (b, s) => {
        expectOnlyTypedErrors(() => decodeConnectRequest(b));
        expectOnlyTypedErrors(() => decodeConnectRequest(enc(`CONNECT ${s}\r\n\r\n`)));
        expectOnlyTypedErrors(() => decodeConnectRequest(enc(`CONNECT a:1 HTTP/1.1\r\n${s}\r\n\r\n`)));
      }),
      { numRuns: 500 },
    );
  });
});

describe("HTTP CONNECT answers: C tor's status line for each END reason", () => {
  it('maps each connector failure to the line of the END reason C tor closes with', () => {
    const line = (e: unknown) => httpConnectAnswer(connectReply(e).endReason).split('\r\n')[0];
    expect(httpConnectAnswer(CONNECT_SUCCEEDED.endReason)).toBe('HTTP/1.0 200 OK\r\n\r\n');
    expect(line(new Error('boom'))).toBe('HTTP/1.0 500 Internal Server Error');
    expect(line(new ConnectError('exit_policy', 'x'))).toBe('HTTP/1.0 403 Forbidden (exit policy)');
    expect(line(new StreamRefusedError(EndReason.EXITPOLICY))).toBe('HTTP/1.0 403 Forbidden (exit policy)');
    expect(line(new StreamRefusedError(EndReason.CONNECTREFUSED))).toBe(
      'HTTP/1.0 403 Forbidden (connection refused)',
    );
    expect(line(new StreamRefusedError(EndReason.NOROUTE))).toBe('HTTP/1.0 404 Not Found (no route)');
    expect(line(new ConnectError('timeout', 'x'))).toBe('HTTP/1.0 504 Gateway Timeout');
    expect(line(new ConnectError('desc_not_found', 'x'))).toBe('HTTP/1.0 404 Not Found (resolve failed)');
    expect(line(new ConnectError('intro_failed', 'x'))).toBe('HTTP/1.0 404 Not Found (resolve failed)');
    expect(line(new ConnectError('rend_failed', 'x'))).toBe('HTTP/1.0 504 Gateway Timeout');
    expect(line(new ConnectError('bad_address', 'x'))).toBe(
      'HTTP/1.0 502 Bad Gateway (tor protocol violation)',
    );
    expect(line(new ConnectError('not_bootstrapped', 'x'))).toBe(
      'HTTP/1.0 500 Internal Server Error (weird end reason)',
    );
    for (const reason of [...Object.values(EndReason), 0, 255, 258, 999])
      expect(httpConnectAnswer(reason)).toMatch(/^HTTP\/1\.0 \d{3} .*\r\n\r\n$/);
  });
});
