/**
 * The one map from a failed connect to the answer the application gets, for
 * every proxy protocol (issue 15 part 3: SOCKS only at the edge).
 *
 * Overview: as in C tor, every failure becomes the END reason the stream is
 * closed with (tor-spec §6.3; local reasons above 255 from C tor's or.h),
 * plus, for onion services, an extended SOCKS5 code (prop 304,
 * socks-extensions.txt "Extended error codes"). Each protocol phrases that:
 * SOCKS5 writes `socks5` (C tor `connection_ap_handshake_socks_reply` uses
 * the extended code when set, else `stream_end_reason_to_socks5_response`),
 * SOCKS4 writes 91 for any failure, HTTP CONNECT the status line of
 * `endReason` (C tor `end_reason_to_http_connect_response_line`).
 *
 * The END reasons of the onion kinds are the ones C tor's hs_client closes
 * streams with: RESOLVEFAILED for a missing or unusable descriptor and for
 * failed introductions, TIMEOUT for a rendezvous or introduction that timed
 * out, TORPROTOCOL for a malformed onion address.
 *
 * Not in this module: the bytes of each answer (socks-server.ts,
 * http-tunnel.ts) and which errors a connector throws (connect.ts).
 */

import { EndReason } from '../core/relay-cell.js';
import { endReasonSocksReply, LocalEndReason, SocksReply } from '../core/socks5.js';
import { CircuitError, StreamRefusedError } from '../net/circuit-error.js';
import { ConnectError, type ConnectErrorKind } from './connect.js';

/** How a connect ended, in the terms every protocol's answer is phrased from. */
export interface ConnectReply {
  /** The END reason the stream closed with (0: it opened). */
  endReason: number;
  /** The SOCKS5 reply code: an onion kind's extended code, else the END reason's. */
  socks5: number;
}

export const CONNECT_SUCCEEDED: ConnectReply = { endReason: 0, socks5: SocksReply.SUCCEEDED };

const byEndReason = (endReason: number): ConnectReply => ({
  endReason,
  socks5: endReasonSocksReply(endReason),
});

const KINDS: Readonly<Record<ConnectErrorKind, ConnectReply>> = {
  bad_address: { endReason: EndReason.TORPROTOCOL, socks5: SocksReply.ONION_BAD_ADDRESS },
  desc_not_found: { endReason: EndReason.RESOLVEFAILED, socks5: SocksReply.ONION_DESC_NOT_FOUND },
  desc_invalid: { endReason: EndReason.RESOLVEFAILED, socks5: SocksReply.ONION_DESC_INVALID },
  missing_client_auth: { endReason: EndReason.RESOLVEFAILED, socks5: SocksReply.ONION_MISSING_CLIENT_AUTH },
  wrong_client_auth: { endReason: EndReason.RESOLVEFAILED, socks5: SocksReply.ONION_WRONG_CLIENT_AUTH },
  intro_failed: { endReason: EndReason.RESOLVEFAILED, socks5: SocksReply.ONION_INTRO_FAILED },
  intro_timeout: { endReason: EndReason.TIMEOUT, socks5: SocksReply.ONION_INTRO_TIMEOUT },
  rend_failed: { endReason: EndReason.TIMEOUT, socks5: SocksReply.ONION_REND_FAILED },
  not_bootstrapped: byEndReason(LocalEndReason.NET_UNREACHABLE),
  // Answered as an exit's END EXITPOLICY would be (0x02, 403 exit policy).
  exit_policy: byEndReason(EndReason.EXITPOLICY),
  // C tor closes a stream that outlived its timeout with END reason TIMEOUT (0x06, 504).
  timeout: byEndReason(EndReason.TIMEOUT),
};

/**
 * The answer for any connector failure: a ConnectError by its kind, a
 * stream the far end refused by its END reason, a circuit that timed out
 * as TIMEOUT, anything else as MISC (general failure).
 */
export function connectReply(e: unknown): ConnectReply {
  if (e instanceof ConnectError) return KINDS[e.kind];
  if (e instanceof StreamRefusedError) return byEndReason(e.reason);
  if (e instanceof CircuitError && e.kind === 'timeout') return byEndReason(EndReason.TIMEOUT);
  return byEndReason(EndReason.MISC);
}
