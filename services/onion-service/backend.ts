/**
 * What the onion service does with a BEGIN on a rendezvous circuit
 * (rend-spec-v3 §4.2 "Using the connection"; tor-spec §6.2 for BEGIN and
 * the END reasons).
 *
 * Overview: a BEGIN to ":<virtualPort>" is served by the backend: a TCP
 * connection to host:port spliced to the stream once it connects (refused
 * with END CONNECTREFUSED if it fails or takes over 10 s), or the built-in
 * HTTP server (builtin-http.ts). Any other port gets END DONE, as C tor
 * answers a port with no HiddenServicePort (DONE, not EXITPOLICY, so port
 * scans learn nothing); a target that does not parse gets END TORPROTOCOL.
 *
 * Not in this module: the rendezvous circuit (introduce-handler.ts).
 */
import * as net from 'node:net';
import { EndReason, parseBeginTarget, type RelayMessage } from '../core/relay-cell.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { spliceSocket } from '../runtime/splice.js';
import { serveBuiltinHttp } from './builtin-http.js';

export type Backend = { type: 'tcp'; host: string; port: number } | { type: 'builtin' };

/** How long the backend's TCP connect may take before the client gets END CONNECTREFUSED. */
const BACKEND_CONNECT_TIMEOUT_MS = 10_000;

/** Answers one BEGIN arriving from the client's virtual hop. */
export function serveBegin(
  circ: OriginCircuit,
  streamId: number,
  msg: Extract<RelayMessage, { type: 'BEGIN' }>,
  backend: Backend,
  virtualPort: number,
): void {
  let port: number;
  try {
    port = parseBeginTarget(msg.target).port;
  } catch {
    circ.refuseStream(streamId, EndReason.TORPROTOCOL);
    return;
  }
  if (port !== virtualPort) {
    circ.refuseStream(streamId, EndReason.DONE);
    return;
  }
  if (backend.type === 'builtin') {
    const stream = circ.acceptStream(streamId);
    if (!stream) circ.refuseStream(streamId, EndReason.RESOURCELIMIT);
    else serveBuiltinHttp(stream);
    return;
  }
  const socket = net.connect({ host: backend.host, port: backend.port });
  const fail = () => {
    socket.destroy();
    circ.refuseStream(streamId, EndReason.CONNECTREFUSED);
  };
  const timer = setTimeout(fail, BACKEND_CONNECT_TIMEOUT_MS);
  socket.once('error', () => {
    clearTimeout(timer);
    fail();
  });
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.removeAllListeners('error');
    const stream = circ.acceptStream(streamId);
    if (!stream) {
      socket.destroy();
      circ.refuseStream(streamId, EndReason.RESOURCELIMIT);
      return;
    }
    socket.setNoDelay(true);
    spliceSocket(socket, stream);
  });
}
