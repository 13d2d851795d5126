// Issue 12 item 1: a WebSocket protocol error on a link, before, during or
// after the link handshake, inbound or on a link we dialled, closes that link
// and nothing else. Each malformed frame goes to a real relay's wss port (and
// comes from a real hostile listener the other way); the relay keeps serving
// an honest circuit afterwards, and the process (this test process hosts the
// relays) never sees an unhandled 'error'.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519Generate } from '../../services/core/crypto.js';
import { Channel } from '../../services/net/channel.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { dialLink } from '../../services/net/transport.js';
import type { Relay } from '../../services/relay/relay.js';
import { buildCircuit, linkPeer, startLocalRelay } from '../helpers/relays.js';
import { hostileListener, malformedFrames, sendRawFrames } from '../helpers/ws-frames.js';

let relays: Relay[] = [];
const pool = new ChannelPool({ keys: null, tls: true });

beforeAll(async () => {
  relays = await Promise.all(['le1', 'le2', 'le3'].map((n) => startLocalRelay(n)));
});

afterAll(async () => {
  pool.closeAll();
  await Promise.all(relays.map((r) => r.stop()));
});

async function honestCircuitWorks(): Promise<void> {
  const circ = await buildCircuit(pool, relays);
  circ.destroy();
}

describe('malformed WebSocket frames close one link, never the process', () => {
  for (const f of malformedFrames(true)) {
    it(`inbound before the link handshake: ${f.name}`, async () => {
      expect(await sendRawFrames(relays[0]!.port, f.bytes)).toBe('closed');
      await honestCircuitWorks();
    });
  }

  it('inbound after a finished link handshake: the channel closes, the relay serves on', async () => {
    const ch = await pool.get(linkPeer(relays[1]!));
    const closed = new Promise<string>((r) => ch.on('closed', ({ reason }) => r(reason)));
    // Reach under the channel to the WebSocket and break its framing from our side.
    const ws = (ch.link as unknown as { ws: { _socket: import('node:net').Socket } }).ws;
    ws._socket.write(malformedFrames(true)[2]!.bytes);
    expect(await closed).toBeTruthy();
    await honestCircuitWorks();
  });

  it('EXTEND2 aims a relay at a hostile listener: each malformed answer fails that extend only', async () => {
    // A bare relay (no consensus) extends where the specifiers say; with a
    // consensus it would refuse unlisted targets before dialling (pivot checks).
    for (const f of malformedFrames(false)) {
      const hostile = await hostileListener(f.bytes);
      try {
        const circ = await buildCircuit(pool, [relays[0]!]);
        const err = await circ
          .extend({
            nickname: 'hostile',
            identity: ed25519Generate().public,
            ntorKey: new Uint8Array(32).fill(9),
            address: '127.0.0.1',
            port: hostile.port,
          })
          .catch((e: unknown) => e);
        expect(err, f.name).toBeInstanceOf(Error);
        circ.destroy();
      } finally {
        await hostile.close();
      }
    }
    await honestCircuitWorks();
  }, 60_000);

  for (const f of malformedFrames(false)) {
    it(`dialling a hostile listener that answers with: ${f.name}`, async () => {
      const hostile = await hostileListener(f.bytes);
      try {
        const err = await (async () => {
          const link = await dialLink(`wss://127.0.0.1:${hostile.port}/link`, 3_000);
          return Channel.initiate(link, {
            keys: null,
            expectedIdentity: ed25519Generate().public,
            limits: { handshakeTimeoutMs: 3_000 },
          });
        })().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Error);
      } finally {
        await hostile.close();
      }
      await honestCircuitWorks();
    });
  }
});
