/**
 * Socket splice: joins a TCP socket to a relay stream (tor-spec §6.2: once
 * a stream is CONNECTED, its data cells carry the TCP bytes both ways). The
 * exit splices the socket it opened to the destination; the onion service
 * splices the one it opened to its backend (rend-spec-v3 §4.2: the service
 * side of a rendezvous stream behaves as an exit to its virtual port).
 *
 * Not in this module: the client's SOCKS side (client/proxy-server.ts), which
 * half-closes the application's socket when the stream ends instead of
 * destroying it, so the application reads what arrived first.
 */
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';

/** Pipes a TCP socket and a relay stream both ways, closing each when the other ends. */
export function spliceSocket(socket: net.Socket, stream: Duplex): void {
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => stream.destroy());
  stream.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (!stream.destroyed) stream.end();
  });
  stream.on('close', () => socket.destroy());
}
