/**
 * Link transport: a reliable byte pipe between two nodes, carried over
 * WebSocket (README: "Where Shallot differs from Tor"). `wss` (TLS 1.3) is
 * the default; plain `ws` exists for debugging only.
 *
 * Overview: the link protocol is parsed as a byte stream (tor-spec §3: cells
 * follow one another on the connection), so WebSocket message boundaries
 * carry no meaning. Writes made in the
 * same tick are coalesced into one WebSocket message, which keeps loopback
 * throughput high when a circuit sends many cells at once. The message is
 * one growing buffer that callers write cells into (`reserve`), so a cell
 * costs no buffer of its own and no copy at send time (issue 16).
 *
 * Design notes: the TLS session is exposed as a `TlsBinding` so the link
 * handshake can bind identities to it (CERTS type 5 = SHA-256 of the TLS
 * certificate; AUTHENTICATE's TLSSECRETS = RFC 5705 exporter). On plain
 * `ws` there is no TLS session: `tlsBinding` is null and the handshake says
 * so (see channel.ts).
 *
 * Not in this module: cells, the link handshake, circuits.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import { ShallotError } from '../core/errors.js';
import { LinkBatch } from './link-batch.js';
import {
  InboundShaper,
  type LinkShaping,
  type PeerInfo,
  peerFromHeaders,
  shapingHeaders,
} from './link-delay.js';
import { isCut, trackLink } from './link-faults.js';
import { TypedEmitter } from './typed-emitter.js';

export interface TlsBinding {
  exportKeyingMaterial(length: number, label: string, context: Uint8Array): Uint8Array;
  /** DER of the certificate the peer presented (responder side), or null. */
  peerCertificate(): Uint8Array | null;
  /** DER of our own certificate (responder side), or null. */
  localCertificate(): Uint8Array | null;
}

export interface LinkEvents {
  data: Uint8Array;
  drain: undefined;
  close: { code: number; reason: string };
  error: Error;
}

/** The largest WebSocket message we accept: far above any coalesced batch, far below memory trouble. */
export const MAX_WS_MESSAGE = 4 * 1024 * 1024;

/** Above this many buffered bytes a link is congested: senders stop and wait for 'drain'. */
export const LINK_HIGH_WATER = 2 * 1024 * 1024;
/**
 * 'drain' fires after a write once fewer bytes than this are buffered. Not
 * "zero": on a link that other circuits keep busy the buffer may never be
 * empty when a write completes, and blocked senders would wait forever.
 */
export const LINK_LOW_WATER = LINK_HIGH_WATER / 2;

/**
 * What a channel needs from its link, whatever carries it: this WebSocket
 * link or the raw TLS link of tls-transport.ts (as C tor speaks).
 */
export interface Link {
  readonly tlsBinding: TlsBinding | null;
  readonly remoteAddress: string;
  readonly initiator: boolean;
  readonly isOpen: boolean;
  /** Bytes accepted but not yet handed to the kernel: the backpressure signal. */
  readonly bufferedAmount: number;
  on<K extends keyof LinkEvents & string>(event: K, fn: (arg: LinkEvents[K]) => void): this;
  send(data: Uint8Array): void;
  /** `n` bytes at the end of this turn's batch to fill at once, or null when closed. */
  reserve(n: number): Uint8Array | null;
  pause(): void;
  resume(): void;
  /** Sends what is queued, then closes. */
  close(code?: number, reason?: string): void;
  /** Drops the connection at once. */
  destroy(): void;
}

/** A connected link, either side. */
export class LinkConnection extends TypedEmitter<LinkEvents> implements Link {
  /** This turn's writes, sent as one WebSocket message. */
  private readonly batch: LinkBatch;
  private closed = false;
  /** The network model's delay and the relay's read bucket (link-delay.ts), when configured. */
  private readonly inbound: InboundShaper | null;
  private userPaused = false;
  private shaperPaused = false;

  constructor(
    private readonly ws: WebSocket,
    readonly tlsBinding: TlsBinding | null,
    readonly remoteAddress: string,
    readonly initiator: boolean,
    shaping?: { shaping: LinkShaping; peer: PeerInfo },
  ) {
    super();
    ws.binaryType = 'nodebuffer';
    this.batch = new LinkBatch(
      () => this.isOpen,
      (batch) =>
        ws.send(batch, { binary: true }, (err) => {
          if (!err && this.bufferedAmount < LINK_LOW_WATER) this.emit('drain', undefined);
        }),
    );
    const deliver = (data: Uint8Array) => this.emit('data', data);
    this.inbound = shaping
      ? new InboundShaper(shaping.shaping, shaping.peer, deliver, (p) => {
          this.shaperPaused = p;
          this.applyPause();
        })
      : null;
    if (shaping) {
      // Link faults (link-faults.ts): a cut drops this link, a pause's end wakes its queue.
      const untrack = trackLink({
        self: shaping.shaping.node,
        peer: shaping.peer.node,
        drop: () => this.destroy(),
        release: () => this.inbound?.wake(),
      });
      ws.once('close', untrack);
    }
    ws.on('message', (data: Buffer) => {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (this.inbound) this.inbound.push(bytes);
      else deliver(bytes);
    });
    ws.on('close', (code, reason) => {
      this.closed = true;
      // Bytes still in the delay queue arrived before the close: deliver them first.
      const done = () => this.emit('close', { code, reason: reason.toString() });
      if (this.inbound) this.inbound.whenEmpty(done);
      else done();
    });
    // ws reports a peer's protocol violation (a bad frame, an oversized
    // message, invalid UTF-8, ...) as 'error' and then closes the socket. That
    // ends this link only: the error is passed on to whoever listens (the
    // channel, once its handshake is over) and never left unhandled, which
    // would end the whole process (issue 12: four bytes killed a network).
    ws.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.destroy();
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes accepted but not yet handed to the kernel: the backpressure signal. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount + this.batch.length;
  }

  send(data: Uint8Array): void {
    this.reserve(data.length)?.set(data);
  }

  reserve(n: number): Uint8Array | null {
    return this.batch.reserve(n);
  }

  pause(): void {
    this.userPaused = true;
    this.applyPause();
  }

  resume(): void {
    this.userPaused = false;
    this.applyPause();
  }

  private applyPause(): void {
    if (!this.isOpen) return;
    if (this.userPaused || this.shaperPaused) this.ws.pause();
    else this.ws.resume();
  }

  /** Sends what is queued, then closes. */
  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.batch.flush();
    this.closed = true;
    this.ws.close(code, reason);
    // A peer that never answers the close frame must not keep the socket alive.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** Drops the connection at once (no close handshake). */
  destroy(): void {
    this.closed = true;
    this.inbound?.close();
    this.ws.terminate();
  }
}

/** The TLS session as the link handshake sees it (CERTS type 5, AUTHENTICATE's TLSSECRETS). */
export function tlsBindingFor(socket: TLSSocket): TlsBinding {
  return {
    exportKeyingMaterial: (length, label, context) =>
      new Uint8Array(socket.exportKeyingMaterial(length, label, Buffer.from(context))),
    peerCertificate: () => {
      const raw = socket.getPeerCertificate()?.raw;
      return raw && raw.length > 0 ? new Uint8Array(raw) : null;
    },
    localCertificate: () => {
      const raw = (socket.getCertificate() as { raw?: Buffer } | null)?.raw;
      return raw && raw.length > 0 ? new Uint8Array(raw) : null;
    },
  };
}

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** TLS material, or null for plain `ws` (debugging only). */
  tls: TlsMaterial | null;
  /** Latency model and bandwidth limit for this node's links (link-delay.ts). */
  shaping?: LinkShaping | null;
}

export class LinkListenError extends ShallotError {
  constructor(host: string, port: number, cause: string) {
    super('ERR_LINK_LISTEN', `cannot listen on ${host}:${port}: ${cause}`, { host, port });
  }
}

export class LinkDialError extends ShallotError {
  constructor(url: string, cause: string) {
    super('ERR_LINK_DIAL', `cannot connect to ${url}: ${cause}`);
  }
}

export interface LinkServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const LINK_PATH = '/link';

/** Accepts links on host:port, calling `onLink` for each new connection. */
export async function listenLinks(
  opts: ListenOptions,
  onLink: (link: LinkConnection) => void,
): Promise<LinkServer> {
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem, minVersion: 'TLSv1.3' })
    : http.createServer();
  server.on('request', (_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('shallot link: WebSocket upgrade required\n');
  });
  const wss = new WebSocketServer({
    server,
    path: LINK_PATH,
    maxPayload: MAX_WS_MESSAGE,
    perMessageDeflate: false,
  });
  // Errors of the listening server itself are reported by the http server's
  // own 'error' (listen below); a WebSocketServer re-emitting them must not crash.
  wss.on('error', () => {});
  const shaping = opts.shaping;
  if (shaping) {
    // The dialer learns our node and location from the upgrade response.
    const own = Object.entries(shapingHeaders(shaping)).map(([k, v]) => `${k}: ${v}`);
    wss.on('headers', (headers) => headers.push(...own));
  }
  wss.on('connection', (ws, req) => {
    const socket = req.socket as TLSSocket;
    const binding = opts.tls ? tlsBindingFor(socket) : null;
    const shape = shaping ? { shaping, peer: peerFromHeaders(req.headers) } : undefined;
    // A cut link (link-faults.ts) is refused as a firewall's reset would: no handshake, no reason.
    if (shape && isCut(shape.shaping.node, shape.peer.node)) {
      ws.terminate();
      return;
    }
    onLink(new LinkConnection(ws, binding, req.socket.remoteAddress ?? 'unknown', false, shape));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new LinkListenError(opts.host, opts.port, e.code ?? e.message)),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = opts.tls ? 'wss' : 'ws';
  return {
    port,
    url: `${scheme}://${opts.host}:${port}${LINK_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

export function linkUrl(host: string, port: number, tls: boolean): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `${tls ? 'wss' : 'ws'}://${h}:${port}${LINK_PATH}`;
}

/**
 * One TLS client context for every link this thread dials. Without one,
 * each dial (`tls.connect` through ws) builds its own OpenSSL SSL_CTX:
 * about 13 KiB held for the life of the link and a millisecond or so of
 * CPU per dial, paid by an authority for every relay it keeps a channel to
 * and every reachability probe. A link client presents no certificate and
 * checks none (the link handshake does), so nothing in the context is per
 * peer. Created on first use; one per thread (a SecureContext cannot cross
 * worker threads).
 */
let clientContext: SecureContext | undefined;
export function linkClientContext(): SecureContext {
  clientContext ??= createSecureContext({ minVersion: 'TLSv1.2' });
  return clientContext;
}

/**
 * Opens a link. The TLS certificate is not checked here: it is self-signed
 * by design, and the link handshake checks it against the relay's identity
 * (CERTS type 5), which is stronger than any CA.
 */
export function dialLink(
  url: string,
  timeoutMs = 10_000,
  shaping?: LinkShaping | null,
): Promise<LinkConnection> {
  return new Promise((resolve, reject) => {
    // ws hands its options to tls.connect, secureContext included (its types omit it).
    const options: WebSocket.ClientOptions & { secureContext: SecureContext } = {
      rejectUnauthorized: false,
      secureContext: linkClientContext(),
      perMessageDeflate: false,
      maxPayload: MAX_WS_MESSAGE,
      handshakeTimeout: timeoutMs,
      headers: shapingHeaders(shaping),
    };
    const ws = new WebSocket(url, options);
    let socket: TLSSocket | null = null;
    let peer: PeerInfo = { node: null, location: null };
    ws.once('upgrade', (res) => {
      socket = res.socket as TLSSocket;
      peer = peerFromHeaders(res.headers);
    });
    // 'on', not 'once': a hostile listener can make ws report more than one error before 'open'.
    const onError = (e: Error) => reject(new LinkDialError(url, e.message));
    ws.on('error', onError);
    ws.once('open', () => {
      ws.off('error', onError);
      if (shaping && isCut(shaping.node, peer.node)) {
        ws.terminate();
        reject(new LinkDialError(url, 'the link is cut by a fault'));
        return;
      }
      const binding = url.startsWith('wss:') && socket ? tlsBindingFor(socket) : null;
      resolve(new LinkConnection(ws, binding, url, true, shaping ? { shaping, peer } : undefined));
    });
  });
}
