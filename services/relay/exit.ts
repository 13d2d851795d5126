/**
 * Exit streams (tor-spec §6.2): BEGIN opens a TCP connection to host:port
 * if the exit policy allows it, answers CONNECTED, and pipes bytes both
 * ways; refusals answer END with the reason (EXITPOLICY, RESOLVEFAILED,
 * CONNECTREFUSED, TIMEOUT).
 */
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { isIP } from 'node:net';
import { type ExitPolicy, exitPolicyAllows } from '../core/exit-policy.js';
import { EndReason } from '../core/relay-cell.js';
import type { OrCircuit } from '../net/or-circuit.js';

export interface ExitOutcome {
  outcome: 'connected' | 'exitpolicy' | 'resolvefailed' | 'refused' | 'timeout' | 'limit' | 'abandoned';
}

const CONNECT_TIMEOUT_MS = 10_000;

export async function openExitStream(
  circ: OrCircuit,
  streamId: number,
  target: { host: string; port: number },
  policy: ExitPolicy,
): Promise<ExitOutcome> {
  let addr = target.host;
  if (!isIP(addr)) {
    try {
      addr = (await lookup(addr, { family: 4 })).address;
    } catch {
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOLVEFAILED });
      return { outcome: 'resolvefailed' };
    }
  }
  if (!exitPolicyAllows(policy, addr, target.port)) {
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.EXITPOLICY, address: addr, ttl: 300 });
    return { outcome: 'exitpolicy' };
  }
  const stream = circ.edge.acceptStream(streamId);
  if (!stream) {
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOURCELIMIT });
    return { outcome: 'limit' };
  }
  const socket = net.connect({ host: addr, port: target.port });
  // END from the client or the circuit's death may come while we connect: the
  // stream then errors, and an 'error' nobody listens to would kill the relay.
  stream.on('error', () => socket.destroy());
  const result = await new Promise<ExitOutcome['outcome']>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), CONNECT_TIMEOUT_MS);
    stream.once('close', () => {
      clearTimeout(timer);
      resolve('abandoned');
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve('connected');
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve('refused');
    });
  });
  if (result === 'abandoned' || stream.destroyed) {
    socket.destroy();
    return { outcome: 'abandoned' };
  }
  if (result !== 'connected') {
    socket.destroy();
    stream.sendEnd(result === 'timeout' ? EndReason.TIMEOUT : EndReason.CONNECTREFUSED);
    circ.edge.streamClosed(streamId);
    return { outcome: result };
  }
  socket.setNoDelay(true);
  circ.sendBackward(streamId, { type: 'CONNECTED', address: addr, ttl: 300 });
  spliceSocket(socket, stream);
  return { outcome: 'connected' };
}

/** Pipes a TCP socket and a relay stream both ways, closing each when the other ends. */
export function spliceSocket(socket: net.Socket, stream: import('node:stream').Duplex): void {
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => stream.destroy());
  stream.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (!stream.destroyed) stream.end();
  });
  stream.on('close', () => socket.destroy());
}
