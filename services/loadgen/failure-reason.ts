/**
 * Why a load request failed, as one short reason string: the SOCKS reply
 * code the proxy sent (RFC 1928 §6 / prop 304's extended codes, e.g.
 * `socks_f3_onion_rend_failed`), a timeout in the connect or read phase, a
 * proxy or stream that closed, or a body that did not check out. Shared by
 * `shallot load` (loadgen.ts) and the soak bench so both name failures the
 * same way (the reason list is in `shallot load --help`).
 */
import { HttpGetError } from './http-get.js';
import { SocksConnectError, socksFailureReason } from './socks-client.js';

/** A failure the caller judged itself (HTTP status, length, checksum), carrying its reason. */
export class RequestFailure extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'RequestFailure';
  }
}

/**
 * The failure reason for what a request threw. `phase` is where it was
 * (SOCKS handshake or HTTP exchange); `timedOut` whether the request's own
 * deadline fired, which wins over whatever the abort made the socket throw.
 */
export function failureReason(e: unknown, phase: 'socks' | 'http', timedOut: boolean): string {
  if (timedOut) return phase === 'socks' ? 'connect_timeout' : 'read_timeout';
  if (e instanceof RequestFailure) return e.reason;
  if (e instanceof SocksConnectError) {
    switch (e.kind) {
      case 'reply':
        return socksFailureReason(e.reply ?? 0xff);
      case 'auth_refused':
        return 'proxy_auth_refused';
      default:
        return e.kind;
    }
  }
  if (e instanceof HttpGetError) {
    if (e.kind === 'connection_error') return 'connection_reset';
    return e.kind;
  }
  return 'error';
}
