// The one map from a connector failure to every protocol's answer
// (services/client/connect-reply.ts): each ConnectError kind gives its
// prop 304 extended SOCKS5 code (socks-extensions.txt) or C tor's code for
// its END reason, SOCKS4's 91 and C tor's HTTP CONNECT status line; the
// circuit layer's errors answer by their END reason (C tor reasons.c).
import { describe, expect, it } from 'vitest';
import { ConnectError, type ConnectErrorKind } from '../../../services/client/connect.js';
import { CONNECT_SUCCEEDED, connectReply } from '../../../services/client/connect-reply.js';
import { httpConnectAnswer } from '../../../services/client/http-tunnel.js';
import { readSocksHandshake } from '../../../services/client/socks-server.js';
import { DestroyReason } from '../../../services/core/cells.js';
import { EndReason } from '../../../services/core/relay-cell.js';
import { SocksReply } from '../../../services/core/socks5.js';
import { CircuitError, StreamRefusedError } from '../../../services/net/circuit-error.js';

/** The SOCKS handshake the real reader makes of the request bytes `first`. */
function handshake(first: number[]) {
  let buf = Uint8Array.from(first);
  return readSocksHandshake({
    async read(decode) {
      const r = decode(buf);
      buf = buf.subarray(r.consumed);
      return r;
    },
    write() {},
  });
}

/** The answer bytes that handshake phrases for the failure `e`. */
async function socksAnswer(first: number[], e: unknown): Promise<number[]> {
  return Array.from((await handshake(first)).answer(connectReply(e)));
}

const SOCKS5_CONNECT = [5, 1, 0, 5, 1, 0, 3, 1, 0x61, 0, 80];
const SOCKS4A_CONNECT = [4, 1, 0, 80, 0, 0, 0, 1, 0, 0x61, 0];

describe('connectReply', () => {
  // kind -> SOCKS5 code, HTTP status line (C tor closes onion streams with
  // RESOLVEFAILED, TIMEOUT or TORPROTOCOL).
  const KINDS: [ConnectErrorKind, number, string][] = [
    ['bad_address', 0xf6, '502 Bad Gateway (tor protocol violation)'],
    ['desc_not_found', 0xf0, '404 Not Found (resolve failed)'],
    ['desc_invalid', 0xf1, '404 Not Found (resolve failed)'],
    ['intro_failed', 0xf2, '404 Not Found (resolve failed)'],
    ['rend_failed', 0xf3, '504 Gateway Timeout'],
    ['missing_client_auth', 0xf4, '404 Not Found (resolve failed)'],
    ['wrong_client_auth', 0xf5, '404 Not Found (resolve failed)'],
    ['intro_timeout', 0xf7, '504 Gateway Timeout'],
    ['not_bootstrapped', SocksReply.NETWORK_UNREACHABLE, '500 Internal Server Error (weird end reason)'],
    ['exit_policy', SocksReply.NOT_ALLOWED, '403 Forbidden (exit policy)'],
    ['timeout', SocksReply.TTL_EXPIRED, '504 Gateway Timeout'],
  ];

  it.each(KINDS)('%s: SOCKS5 %i, SOCKS4 91, HTTP %s', async (kind, socks5, http) => {
    const e = new ConnectError(kind, 'x');
    const r = connectReply(e);
    expect(r.socks5).toBe(socks5);
    expect(httpConnectAnswer(r.endReason)).toBe(`HTTP/1.0 ${http}\r\n\r\n`);
    expect(await socksAnswer(SOCKS5_CONNECT, e)).toEqual([5, socks5, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(await socksAnswer(SOCKS4A_CONNECT, e)).toEqual([0, 91, 0, 0, 0, 0, 0, 0]);
  });

  it('the onion kinds are the extended codes F0-F7 of prop 304, each once', () => {
    const onion = KINDS.map(([, code]) => code).filter((c) => c >= 0xf0);
    expect(onion.sort()).toEqual([0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7]);
  });

  it("answers a refused stream by its END reason, as C tor's reasons.c", () => {
    const cases: [number, number][] = [
      [EndReason.CONNECTREFUSED, SocksReply.CONNECTION_REFUSED],
      [EndReason.EXITPOLICY, SocksReply.NOT_ALLOWED],
      [EndReason.RESOLVEFAILED, SocksReply.HOST_UNREACHABLE],
      [EndReason.NOROUTE, SocksReply.HOST_UNREACHABLE],
      [EndReason.TIMEOUT, SocksReply.TTL_EXPIRED],
      [EndReason.CONNRESET, SocksReply.CONNECTION_REFUSED],
      [EndReason.DONE, SocksReply.GENERAL_FAILURE],
      [EndReason.RESOURCELIMIT, SocksReply.GENERAL_FAILURE],
      [200, SocksReply.GENERAL_FAILURE],
    ];
    for (const [reason, socks5] of cases)
      expect(connectReply(new StreamRefusedError(reason))).toEqual({ endReason: reason, socks5 });
  });

  it('a circuit timeout is END TIMEOUT (0x06); any other error is MISC (0x01)', () => {
    expect(connectReply(new CircuitError(DestroyReason.TIMEOUT, 't', 'timeout'))).toEqual({
      endReason: EndReason.TIMEOUT,
      socks5: SocksReply.TTL_EXPIRED,
    });
    const misc = { endReason: EndReason.MISC, socks5: SocksReply.GENERAL_FAILURE };
    expect(connectReply(new CircuitError(DestroyReason.DESTROYED, 'd'))).toEqual(misc);
    expect(connectReply(new Error('boom'))).toEqual(misc);
    expect(connectReply('not even an Error')).toEqual(misc);
  });

  it('success is 0x00, 90 and 200 OK', async () => {
    expect(CONNECT_SUCCEEDED.socks5).toBe(SocksReply.SUCCEEDED);
    expect(httpConnectAnswer(CONNECT_SUCCEEDED.endReason)).toBe('HTTP/1.0 200 OK\r\n\r\n');
    const socks4 = await handshake(SOCKS4A_CONNECT);
    expect(Array.from(socks4.answer(CONNECT_SUCCEEDED))).toEqual([0, 90, 0, 0, 0, 0, 0, 0]);
    const socks5 = await handshake(SOCKS5_CONNECT);
    expect(Array.from(socks5.answer(CONNECT_SUCCEEDED))).toEqual([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
});
