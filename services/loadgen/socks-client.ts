/**
 * A SOCKS5 client (RFC 1928 CONNECT, RFC 1929 username/password) for the
 * load generator, timing each phase: TCP to the proxy, and CONNECT request
 * to the proxy's reply, which for Shallot covers circuit selection or
 * building, the exit's BEGIN/CONNECTED or, for a .onion, descriptor fetch,
 * introduction and rendezvous.
 *
 * Design notes: credentials are how a load run asks for circuit isolation
 * (a fresh username per request makes the client put each stream on its
 * own circuit, as Tor's IsolateSOCKSAuth does). Hostnames go to the proxy
 * unresolved (ATYP 3), so .onion names and exit-side names work.
 * Message bytes come from the codec the client's SOCKS port uses (core/socks5.ts),
 * so both ends agree on framing and reply codes.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { TruncatedError } from '../core/errors.js';
import {
  AUTH_NONE,
  AUTH_USERPASS,
  CMD_CONNECT,
  decodeReply,
  encodeGreeting,
  encodeRequest,
  encodeUserPass,
  SocksReply,
} from '../core/socks5.js';

export type SocksErrorKind =
  | 'proxy_unreachable'
  | 'proxy_closed'
  | 'proxy_protocol'
  | 'auth_refused'
  | 'reply'
  | 'aborted';

export class SocksConnectError extends Error {
  constructor(
    readonly kind: SocksErrorKind,
    message: string,
    /** The proxy's reply code when `kind` is 'reply'. */
    readonly reply?: number,
  ) {
    super(message);
    this.name = 'SocksConnectError';
  }
}

const NAMES = new Map<number, string>(Object.entries(SocksReply).map(([k, v]) => [v, k]));

/** RFC 1928 / prop 304 name of a reply code, e.g. 0xf0 → ONION_DESC_NOT_FOUND. */
export function socksReplyName(code: number): string {
  return NAMES.get(code) ?? 'UNKNOWN';
}

/** The failure reason a load report uses for a reply code: `socks_f0_onion_desc_not_found`. */
export function socksFailureReason(code: number): string {
  return `socks_${code.toString(16).padStart(2, '0')}_${socksReplyName(code).toLowerCase()}`;
}

export interface SocksConnectOptions {
  proxyHost: string;
  proxyPort: number;
  host: string;
  port: number;
  /** Sent with RFC 1929 auth when present (isolation); otherwise no auth. */
  credentials?: { username: string; password: string };
  signal?: AbortSignal;
}

export interface SocksConnection {
  /**
   * Connected through the proxy and paused: bytes that came with the reply
   * are unshifted back; call `resume()` after attaching a 'data' listener.
   */
  socket: net.Socket;
  /** performance.now() timestamps, ms. */
  startedAt: number;
  proxyConnectedAt: number;
  requestSentAt: number;
  replyAt: number;
}

const MAX_REPLY = 262;

export async function socksConnect(o: SocksConnectOptions): Promise<SocksConnection> {
  const startedAt = performance.now();
  const s = net.connect({ host: o.proxyHost, port: o.proxyPort });
  s.setNoDelay(true);
  let buf: Buffer = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let failed: SocksConnectError | null = null;
  let connected = false;
  const fail = (e: SocksConnectError) => {
    failed ??= e;
    wake?.();
  };
  const onData = (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    wake?.();
  };
  const onError = (e: Error) =>
    fail(
      new SocksConnectError(
        connected ? 'proxy_closed' : 'proxy_unreachable',
        `SOCKS proxy ${o.proxyHost}:${o.proxyPort}: ${e.message}`,
      ),
    );
  const onClose = () => fail(new SocksConnectError('proxy_closed', 'SOCKS proxy closed the connection'));
  const onAbort = () => {
    fail(new SocksConnectError('aborted', 'aborted'));
    s.destroy();
  };
  s.on('data', onData);
  s.on('error', onError);
  s.on('close', onClose);
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  const waitFor = async (ready: () => boolean): Promise<void> => {
    while (!ready()) {
      if (failed) throw failed;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = null;
    }
    if (failed && !ready()) throw failed;
  };
  const take = async (n: number): Promise<Buffer> => {
    await waitFor(() => buf.length >= n);
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };

  try {
    s.once('connect', () => {
      connected = true;
      wake?.();
    });
    await waitFor(() => connected);
    const proxyConnectedAt = performance.now();
    const auth = o.credentials !== undefined;
    s.write(encodeGreeting({ methods: auth ? [AUTH_USERPASS] : [AUTH_NONE] }));
    const choice = await take(2);
    if (choice[0] !== 5) throw new SocksConnectError('proxy_protocol', `not a SOCKS5 proxy (${choice[0]})`);
    if (auth) {
      if (choice[1] !== AUTH_USERPASS)
        throw new SocksConnectError('auth_refused', 'proxy refused username/password authentication');
      s.write(encodeUserPass(o.credentials!));
      const status = await take(2);
      if (status[1] !== 0) throw new SocksConnectError('auth_refused', 'proxy rejected the credentials');
    } else if (choice[1] !== AUTH_NONE) {
      throw new SocksConnectError('auth_refused', 'proxy requires authentication');
    }
    s.write(encodeRequest({ command: CMD_CONNECT, host: o.host, port: o.port }));
    const requestSentAt = performance.now();
    let code = -1;
    await waitFor(() => {
      try {
        const r = decodeReply(buf);
        code = r.code;
        buf = buf.subarray(r.consumed);
        return true;
      } catch (e) {
        if (e instanceof TruncatedError && buf.length < MAX_REPLY) return false;
        throw new SocksConnectError('proxy_protocol', `bad SOCKS reply: ${(e as Error).message}`);
      }
    });
    const replyAt = performance.now();
    if (code !== SocksReply.SUCCEEDED)
      throw new SocksConnectError('reply', `SOCKS reply ${socksReplyName(code)}`, code);
    // Paused explicitly so nothing is emitted (and lost) before the caller
    // listens; the caller resumes.
    s.pause();
    s.off('data', onData);
    s.off('error', onError);
    s.off('close', onClose);
    o.signal?.removeEventListener('abort', onAbort);
    if (buf.length > 0) s.unshift(buf);
    return { socket: s, startedAt, proxyConnectedAt, requestSentAt, replyAt };
  } catch (e) {
    s.off('data', onData);
    o.signal?.removeEventListener('abort', onAbort);
    s.on('error', () => {});
    s.destroy();
    throw e instanceof SocksConnectError
      ? e
      : new SocksConnectError('proxy_protocol', e instanceof Error ? e.message : String(e));
  }
}
