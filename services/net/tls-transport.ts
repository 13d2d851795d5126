/**
 * Raw TLS links (tor-spec §2 "Connections"): cells straight over a TLS
 * stream, as C tor and arti speak them, beside the WebSocket links of
 * transport.ts. A channel cannot tell the two apart (both are a `Link`).
 *
 * Overview: `listenTlsLinks` accepts TLS connections with the node's
 * self-signed certificate (link-keys.ts); `dialTlsLink` connects without
 * checking the peer's certificate, since the link handshake binds it to
 * the relay's identity (CERTS type 5: SHA-256 of the certificate the TLS
 * session presented). `TlsLink` coalesces one turn's writes into one
 * socket write, like LinkConnection, and gives the channel the same
 * backpressure signal (bytes in the batch plus the socket's own buffer).
 *
 * Design notes: no certificate authority and no hostname check (C tor's
 * link certificates are self-signed and carry random names). TLS 1.2 is
 * the floor; C tor 0.4.9 with OpenSSL 3 negotiates 1.3.
 *
 * Not in this module: cells and the link handshake (channel.ts); the
 * network model's delay (link-delay.ts), which hooks only WebSocket links.
 *
 * Limitations: a TLS link has no close code or reason; 'close' reports
 * 1000 for an orderly end and 1006 when the socket failed.
 */
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { LinkBatch } from './link-batch.js';
import {
  LINK_LOW_WATER,
  type Link,
  LinkDialError,
  type LinkEvents,
  LinkListenError,
  type LinkServer,
  linkClientContext,
  type TlsBinding,
  type TlsMaterial,
  tlsBindingFor,
} from './transport.js';
import { TypedEmitter } from './typed-emitter.js';

/** A peer that never completes the TLS handshake is dropped after this long. */
const SERVER_HANDSHAKE_TIMEOUT_MS = 10_000;

/** A connected raw TLS link, either side. */
export class TlsLink extends TypedEmitter<LinkEvents> implements Link {
  /** This turn's writes, sent as one socket write. */
  private readonly batch: LinkBatch;
  private closed = false;
  readonly tlsBinding: TlsBinding;

  constructor(
    private readonly socket: tls.TLSSocket,
    readonly remoteAddress: string,
    readonly initiator: boolean,
  ) {
    super();
    this.tlsBinding = tlsBindingFor(socket);
    this.batch = new LinkBatch(
      () => this.isOpen,
      (batch) =>
        socket.write(batch, (err) => {
          if (!err && this.bufferedAmount < LINK_LOW_WATER) this.emit('drain', undefined);
        }),
    );
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.emit('data', new Uint8Array(d.buffer, d.byteOffset, d.byteLength)));
    socket.on('close', (hadError) => {
      this.closed = true;
      this.emit('close', { code: hadError ? 1006 : 1000, reason: hadError ? 'TLS link failed' : '' });
    });
    // A socket error ends this link only; whoever listens hears of it, and it is never left unhandled.
    socket.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.destroy();
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed && this.socket.writable;
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + this.batch.length;
  }

  send(data: Uint8Array): void {
    this.reserve(data.length)?.set(data);
  }

  reserve(n: number): Uint8Array | null {
    return this.batch.reserve(n);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(_code = 1000, _reason = ''): void {
    if (this.closed) return;
    this.batch.flush();
    this.closed = true;
    this.socket.end();
    // A peer that never closes its side must not keep the socket alive.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** `tls://host:port`: how a raw TLS link is named in logs and errors. */
export function tlsLinkUrl(host: string, port: number): string {
  return `tls://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Accepts raw TLS links on host:port, calling `onLink` once each TLS handshake is done. */
export async function listenTlsLinks(
  opts: { host: string; port: number; tls: TlsMaterial },
  onLink: (link: TlsLink) => void,
): Promise<LinkServer> {
  const server = tls.createServer({
    cert: opts.tls.certPem,
    key: opts.tls.keyPem,
    minVersion: 'TLSv1.2',
    handshakeTimeout: SERVER_HANDSHAKE_TIMEOUT_MS,
  });
  const sockets = new Set<tls.TLSSocket>();
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    onLink(new TlsLink(socket, `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`, false));
  });
  // A peer that speaks no TLS, or bad TLS, loses its socket; the server goes on.
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new LinkListenError(opts.host, opts.port, e.code ?? e.message)),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: tlsLinkUrl(opts.host, port),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Opens a raw TLS link; the certificate is checked by the link handshake, not here. */
export function dialTlsLink(host: string, port: number, timeoutMs = 10_000): Promise<TlsLink> {
  const url = tlsLinkUrl(host, port);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, secureContext: linkClientContext() });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LinkDialError(url, `no TLS session within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(new LinkDialError(url, e.message));
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(new TlsLink(socket, url, true));
    });
  });
}
