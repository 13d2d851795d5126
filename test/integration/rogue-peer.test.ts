// A rogue client on a real wss link: relay cells whose digest does not
// verify, cells for CircIDs nobody opened, CREATE2 handshakes that do not
// verify, and a burst of each. The relay answers per tor-spec (DESTROY with
// PROTOCOL; unknown CircIDs dropped), stays up, and an honest circuit on the
// same channel keeps carrying data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestroyReason, type LinkMessage } from '../../services/core/cells.js';
import { randomBytes } from '../../services/core/crypto.js';
import type { Channel } from '../../services/net/channel.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { Relay } from '../../services/relay/relay.js';
import { buildCircuit, linkPeer, startLocalRelay } from '../helpers/relays.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';

let relays: Relay[] = [];
let echo: TestServer;
const pool = new ChannelPool({ keys: null, tls: true });

/** Sends `msg` on a fresh CircID and resolves with the relay's answer (or null after `ms`). */
function probe(ch: Channel, msg: LinkMessage, ms = 2_000): Promise<LinkMessage | null> {
  const circId = ch.allocateCircId();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ch.unregister(circId);
      resolve(null);
    }, ms);
    ch.register(circId, {
      onCell: (m) => {
        clearTimeout(timer);
        ch.unregister(circId);
        resolve(m);
      },
      onChannelClosed: () => {
        clearTimeout(timer);
        resolve(null);
      },
    });
    ch.send(circId, msg);
  });
}

async function echoes(circ: OriginCircuit): Promise<boolean> {
  const s = await circ.openStream({ host: '127.0.0.1', port: echo.port });
  s.on('error', () => {});
  const payload = randomBytes(5000);
  const got = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      n += d.length;
      if (n >= payload.length) resolve(Buffer.concat(chunks));
    });
    s.write(payload);
  });
  s.end();
  circ.destroy();
  return Buffer.compare(got, Buffer.from(payload)) === 0;
}

beforeAll(async () => {
  echo = await startEchoServer();
  relays = [
    await startLocalRelay('rogue0'),
    await startLocalRelay('rogue1'),
    await startLocalRelay('rogue2'),
  ];
});

afterAll(async () => {
  pool.closeAll();
  await Promise.all(relays.map((r) => r.stop()));
  await echo.close();
});

describe('a rogue peer', () => {
  it('relay cells with a wrong digest end the circuit with DESTROY PROTOCOL; the channel and other circuits live on', async () => {
    const honest = await buildCircuit(pool, relays);
    const ch = await pool.get(linkPeer(relays[0] as Relay));
    const rogue = await buildCircuit(pool, relays.slice(0, 1));
    const destroyed = new Promise<number>((resolve) =>
      rogue.once('destroyed', ({ reason }) => resolve(reason)),
    );
    // A body no hop's running digest recognizes: the last hop must close the circuit (tor-spec §6.1).
    ch.send(rogue.circId, { type: 'RELAY', body: randomBytes(509) });
    expect(await destroyed).toBe(DestroyReason.PROTOCOL);
    expect(ch.isOpen).toBe(true);
    expect(await echoes(honest)).toBe(true);
  });

  it('cells for CircIDs nobody opened are dropped without an answer', async () => {
    const ch = await pool.get(linkPeer(relays[0] as Relay));
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => probe(ch, { type: 'RELAY', body: randomBytes(509) }, 500)),
    );
    expect(answers.every((a) => a === null)).toBe(true);
    expect(ch.isOpen).toBe(true);
    expect(await echoes(await buildCircuit(pool, relays))).toBe(true);
  });

  it('CREATE2 handshakes that do not verify get DESTROY PROTOCOL, every time, and honest circuits still build', async () => {
    const ch = await pool.get(linkPeer(relays[0] as Relay));
    const replies = await Promise.all(
      Array.from({ length: 40 }, () => probe(ch, { type: 'CREATE2', htype: 2, hdata: randomBytes(84) })),
    );
    for (const r of replies) expect(r).toEqual({ type: 'DESTROY', reason: DestroyReason.PROTOCOL });
    const v3 = await Promise.all(
      [128, 129, 200, 500].map((n) => probe(ch, { type: 'CREATE2', htype: 3, hdata: randomBytes(n) })),
    );
    for (const r of v3) expect(r).toEqual({ type: 'DESTROY', reason: DestroyReason.PROTOCOL });
    const unknownType = await probe(ch, { type: 'CREATE2', htype: 9, hdata: randomBytes(84) });
    expect(unknownType).toEqual({ type: 'DESTROY', reason: DestroyReason.PROTOCOL });
    expect(ch.isOpen).toBe(true);
    expect(await echoes(await buildCircuit(pool, relays))).toBe(true);
  });
});
