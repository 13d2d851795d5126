// An extending relay's wait for the next hop's CREATED2 is bounded
// (tor-spec §5.1.2, §5.4): OrCircuit driven through fake channels, with real
// relay-cell crypto so the TRUNCATED the client gets is checked end to end.
// Relay commands no Tor version assigns are dropped (C tor
// handle_relay_cell_command); a known command that does not decode closes.
import { describe, expect, it } from 'vitest';
import { DestroyReason, type LinkMessage } from '../../../services/core/cells.js';
import { randomBytes } from '../../../services/core/crypto.js';
import type { CircuitKeys } from '../../../services/core/ntor.js';
import { encodeRelayCellBody, type RelayMessage } from '../../../services/core/relay-cell.js';
import { ClientCircuitCrypto, tor1Hop, tor1RelayHop } from '../../../services/core/relay-crypto.js';
import type { Channel, CircuitCellHandler } from '../../../services/net/channel.js';
import { decodeRelayCell } from '../../../services/net/edge.js';
import { OrCircuit, type OrCircuitOwner } from '../../../services/net/or-circuit.js';

/** Records what is sent; never answers, like a next hop whose CREATE2 handling is stalled. */
function fakeChannel() {
  const sent: { circId: number; msg: LinkMessage }[] = [];
  const handlers = new Map<number, CircuitCellHandler>();
  let nextId = 0x80000001;
  const ch = {
    writable: true,
    on: () => ch,
    off: () => ch,
    send: (circId: number, msg: LinkMessage) => {
      sent.push({ circId, msg });
    },
    // A cell the circuit writes in place (Channel.reserveRelay): recorded as sent, filled by the caller.
    reserveRelay: (circId: number) => {
      const body = new Uint8Array(509);
      sent.push({ circId, msg: { type: 'RELAY', body } });
      return body;
    },
    allocateCircId: () => nextId++,
    register: (circId: number, h: CircuitCellHandler) => {
      handlers.set(circId, h);
      return true;
    },
    unregister: (circId: number) => {
      handlers.delete(circId);
    },
  };
  return { channel: ch as unknown as Channel, sent, handlers };
}

/** Lets connectNext() resolve and extend() reach its wait for CREATED2. */
const settled = () => new Promise((r) => setImmediate(r));

function setup(extendTimeoutMs: number) {
  const keys: CircuitKeys = {
    df: randomBytes(20),
    db: randomBytes(20),
    kf: randomBytes(16),
    kb: randomBytes(16),
    kh: randomBytes(20),
  };
  const client = new ClientCircuitCrypto();
  client.addHop(tor1Hop(keys));
  const prev = fakeChannel();
  const next = fakeChannel();
  const closed: number[] = [];
  const owner: OrCircuitOwner = {
    onRelayMessage: () => {},
    connectNext: async () => next.channel,
    onClosed: (_c, reason) => closed.push(reason),
  };
  const circ = new OrCircuit(prev.channel, 7, tor1RelayHop(keys), owner, { maxStreams: 8, extendTimeoutMs });
  /** Relay messages the client would read on the previous hop's channel. */
  const toClient = (): (RelayMessage | string | undefined)[] =>
    prev.sent.flatMap(({ msg }) => {
      if (msg.type !== 'RELAY') return [];
      const body = msg.body.slice();
      return [client.decryptBackward(body) ? (decodeRelayCell(body)?.msg ?? undefined) : 'unrecognized'];
    });
  return { circ, prev, next, closed, toClient, client };
}

describe('OrCircuit extend timeout', () => {
  it('answers TRUNCATED(TIMEOUT) and releases the next hop CircID when CREATED2 never comes', async () => {
    const s = setup(50);
    const t0 = Date.now();
    await s.circ.extend([], 2, randomBytes(84), true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    const [create, destroy] = s.next.sent;
    expect(create?.msg.type).toBe('CREATE2');
    // The stalled next hop is told we gave up, and its CircID no longer has a handler.
    expect(destroy).toEqual({
      circId: create?.circId,
      msg: { type: 'DESTROY', reason: DestroyReason.DESTROYED },
    });
    expect(s.next.handlers.size).toBe(0);
    expect(s.toClient()).toEqual([{ type: 'TRUNCATED', reason: DestroyReason.TIMEOUT }]);
    // As after any TRUNCATED, our part of the circuit stays open and may extend again.
    expect(s.circ.isOpen).toBe(true);
    expect(s.circ.hasNext).toBe(false);
    expect(s.closed).toEqual([]);
    const again = s.circ.extend([], 2, randomBytes(84), true);
    await settled();
    const second = s.next.sent[2];
    expect(second?.msg.type).toBe('CREATE2');
    await again;
    expect(s.toClient()).toHaveLength(2);
  });

  it('a CREATED2 in time still extends, and the timer does not fire later', async () => {
    const s = setup(50);
    const done = s.circ.extend([], 2, randomBytes(84), true);
    await settled();
    const create = s.next.sent[0];
    expect(create?.msg.type).toBe('CREATE2');
    s.next.handlers.get(create?.circId ?? 0)?.onCell({ type: 'CREATED2', hdata: randomBytes(64) });
    await done;
    await new Promise((r) => setTimeout(r, 80));
    expect(s.circ.hasNext).toBe(true);
    expect(s.next.sent).toHaveLength(1);
    expect(s.toClient().map((m) => (m as { type: string }).type)).toEqual(['EXTENDED2']);
  });

  it('closing the circuit while waiting cleans up once, with no TRUNCATED after the timeout', async () => {
    const s = setup(50);
    const done = s.circ.extend([], 2, randomBytes(84), true);
    await settled();
    s.circ.close(DestroyReason.REQUESTED);
    await done;
    await new Promise((r) => setTimeout(r, 80));
    expect(s.next.sent.map((c) => c.msg.type)).toEqual(['CREATE2', 'DESTROY']);
    expect(s.toClient()).toEqual([]);
    expect(s.closed).toEqual([DestroyReason.REQUESTED]);
  });
});

describe('OrCircuit and relay commands it does not know', () => {
  /** A relay cell from the client to this hop, encrypted as the client would. */
  const fromClient = (s: ReturnType<typeof setup>, command: number, data: Uint8Array) => {
    const body = encodeRelayCellBody({ command, streamId: 0, data }, randomBytes);
    s.client.encryptForward(body, 0);
    return { type: 'RELAY' as const, body };
  };

  it('drops an unassigned relay command as C tor does and keeps the circuit', () => {
    const s = setup(1000);
    s.circ.prevHandler.onCell(fromClient(s, 200, randomBytes(10)));
    expect(s.closed).toEqual([]);
    expect(s.circ.isOpen).toBe(true);
    // The circuit still works: a DROP after it is taken too (the digests stayed in step).
    s.circ.prevHandler.onCell(fromClient(s, 10, new Uint8Array(0)));
    expect(s.closed).toEqual([]);
  });

  it('still closes on a known command with a malformed body', () => {
    const s = setup(1000);
    // EXTENDED2 whose HLEN promises more than the cell holds.
    s.circ.prevHandler.onCell(fromClient(s, 15, Uint8Array.of(0, 200)));
    expect(s.closed).toEqual([DestroyReason.PROTOCOL]);
  });
});
