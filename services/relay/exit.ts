/**
 * Exit streams (tor-spec §6.2): BEGIN opens a TCP connection to host:port
 * if the exit policy allows it, answers CONNECTED, and pipes bytes both
 * ways; refusals answer END with the reason (EXITPOLICY, RESOLVEFAILED,
 * CONNECTREFUSED, TIMEOUT).
 *
 * Order of checks, so that no client can make a relay a pivot:
 * 1. A hostname is judged by the policy on its port alone before any DNS:
 *    a non-exit (reject *:*) refuses at once, as C tor's dns_resolve_impl()
 *    ("If we're a non-exit, don't even do DNS lookups"), and so does an
 *    exit whose policy rejects the port for every address (the "accept
 *    might" semantics of C tor's compare_tor_addr_to_addr_policy() with an
 *    unknown address). Only then is it resolved (the resolver is
 *    injectable, so tests see every query).
 * 2. The policy on the address (an IP literal, or what the name resolved to).
 * 3. Network re-entry (C tor connection_exit_connect() with
 *    nodelist_reentry_contains(), see core/relay-pivot.ts): END
 *    CONNECTREFUSED, not EXITPOLICY, as C tor does, so clients do not retry
 *    the same target through every other exit.
 */
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { allowsAnyPort, canonicalAddress, type ExitPolicy, exitPolicyAllows } from '../core/exit-policy.js';
import { EndReason } from '../core/relay-cell.js';
import type { OrCircuit } from '../net/or-circuit.js';
import { spliceSocket } from '../runtime/splice.js';

export interface ExitOutcome {
  outcome:
    | 'connected'
    | 'exitpolicy'
    | 'reentry'
    | 'resolvefailed'
    | 'refused'
    | 'timeout'
    | 'limit'
    | 'abandoned';
}

/** Resolves a hostname to one IP address; rejects when it cannot. */
export type Resolver = (host: string) => Promise<string>;

/** The system resolver, IPv4 only (exits connect over IPv4). */
export const systemResolver: Resolver = async (host) => (await lookup(host, { family: 4 })).address;

/** What the relay hands each exit stream besides its policy. */
export interface ExitGuards {
  /** Default: systemResolver. */
  resolve?: Resolver;
  /** True refuses `addr:port` (an IP literal) as network re-entry. */
  isReentry?: (addr: string, port: number) => Promise<boolean> | boolean;
  /** Sees each exit socket as it opens (the relay's exit socket cap, exit-sockets.ts, lasts as long as it). */
  onExitSocket?: (socket: net.Socket) => void;
}

const CONNECT_TIMEOUT_MS = 10_000;

export async function openExitStream(
  circ: OrCircuit,
  streamId: number,
  target: { host: string; port: number },
  policy: ExitPolicy,
  guards: ExitGuards = {},
): Promise<ExitOutcome> {
  let addr = canonicalAddress(target.host);
  if (addr === null) {
    if (!allowsAnyPort(policy, target.port)) {
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.EXITPOLICY });
      return { outcome: 'exitpolicy' };
    }
    const resolve = guards.resolve ?? systemResolver;
    const resolved = target.host === '' ? null : await resolve(target.host).catch(() => null);
    addr = resolved === null ? null : canonicalAddress(resolved);
    if (addr === null) {
      circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOLVEFAILED });
      return { outcome: 'resolvefailed' };
    }
  }
  if (!exitPolicyAllows(policy, addr, target.port)) {
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.EXITPOLICY, address: addr, ttl: 300 });
    return { outcome: 'exitpolicy' };
  }
  if (await guards.isReentry?.(addr, target.port)) {
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.CONNECTREFUSED });
    return { outcome: 'reentry' };
  }
  const stream = circ.edge.acceptStream(streamId);
  if (!stream) {
    circ.sendBackward(streamId, { type: 'END', reason: EndReason.RESOURCELIMIT });
    return { outcome: 'limit' };
  }
  const socket = net.connect({ host: addr, port: target.port });
  guards.onExitSocket?.(socket);
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
