// Channels over an in-memory link pair (no sockets): the handshake on a
// TLS-less link, CircID allocation, the circuit limit, a broken byte stream
// after the handshake, and the send-buffer limit.
import { describe, expect, it } from 'vitest';
import type { LinkMessage } from '../../../services/core/cells.js';
import { generateNodeKeys } from '../../../services/core/node-keys.js';
import { Channel } from '../../../services/net/channel.js';
import { ChannelError, type ChannelLimits } from '../../../services/net/link-handshake.js';
import { createLinkKeys, type LinkKeys } from '../../../services/net/link-keys.js';
import type { LinkConnection, LinkEvents } from '../../../services/net/transport.js';
import { TypedEmitter } from '../../../services/net/typed-emitter.js';

/** One end of an in-memory link; bytes reach the peer on a later tick, like a socket. */
class MemoryLink extends TypedEmitter<LinkEvents> {
  peer: MemoryLink | null = null;
  open = true;
  /** What a test wants bufferedAmount to report. */
  fakeBuffered = 0;
  readonly tlsBinding = null;
  constructor(
    readonly initiator: boolean,
    readonly remoteAddress = '127.0.0.1',
  ) {
    super();
  }
  get isOpen(): boolean {
    return this.open;
  }
  get bufferedAmount(): number {
    return this.fakeBuffered;
  }
  send(data: Uint8Array): void {
    if (!this.open) return;
    const peer = this.peer;
    const copy = data.slice();
    setImmediate(() => peer?.open && peer.emit('data', copy));
  }
  /** Like LinkConnection.reserve: the caller fills the bytes before the tick ends, then they go out. */
  reserve(n: number): Uint8Array | null {
    if (!this.open) return null;
    const peer = this.peer;
    const out = new Uint8Array(n);
    setImmediate(() => peer?.open && peer.emit('data', out));
    return out;
  }
  pause(): void {}
  resume(): void {}
  close(code = 1000, reason = ''): void {
    if (!this.open) return;
    this.open = false;
    setImmediate(() => {
      this.emit('close', { code, reason });
      this.peer?.close(code, reason);
    });
  }
  destroy(): void {
    this.close(1006, 'destroyed');
  }
}

function linkPair(): [LinkConnection, LinkConnection, MemoryLink, MemoryLink] {
  const a = new MemoryLink(true);
  const b = new MemoryLink(false);
  a.peer = b;
  b.peer = a;
  return [a as unknown as LinkConnection, b as unknown as LinkConnection, a, b];
}

function relayKeys(): LinkKeys {
  const k = generateNodeKeys();
  return createLinkKeys({ seed: k.identitySeed, public: k.identity });
}

async function connect(
  opts: { clientKeys?: LinkKeys | null; expected?: Uint8Array; limits?: Partial<ChannelLimits> } = {},
) {
  const server = relayKeys();
  const [ia, ra, memA, memB] = linkPair();
  const [init, resp] = await Promise.all([
    Channel.initiate(ia, {
      keys: opts.clientKeys ?? null,
      expectedIdentity: opts.expected ?? server.identity.public,
      limits: { handshakeTimeoutMs: 2_000, ...opts.limits },
    }),
    Channel.respond(ra, {
      keys: server,
      address: '127.0.0.1',
      limits: { handshakeTimeoutMs: 2_000, ...opts.limits },
    }),
  ]);
  return { init, resp, server, memA, memB };
}

describe('link handshake without TLS', () => {
  it('a client stays anonymous; a relay initiator is authenticated', async () => {
    const c = await connect();
    expect(c.init.peerIdentity).toEqual(c.server.identity.public);
    expect(c.resp.peerIdentity).toBeNull();
    const mine = relayKeys();
    const r = await connect({ clientKeys: mine });
    expect(r.resp.peerIdentity).toEqual(mine.identity.public);
    expect(r.init.linkVersion).toBe(5);
  });

  it('fails with ChannelError("identity") when the responder is not who we expected', async () => {
    const server = relayKeys();
    const other = relayKeys();
    const [ia, ra] = linkPair();
    const [err] = await Promise.all([
      Channel.initiate(ia, { keys: null, expectedIdentity: other.identity.public }).catch((e: unknown) => e),
      Channel.respond(ra, { keys: server, address: '127.0.0.1' }).catch(() => null),
    ]);
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).reason).toBe('identity');
  });
});

describe('circuit ids and limits', () => {
  it('allocates random nonzero CircIDs with the MSB set only by the initiator', async () => {
    const { init, resp } = await connect();
    for (let i = 0; i < 200; i++) {
      const a = init.allocateCircId();
      const b = resp.allocateCircId();
      expect(a >>> 31).toBe(1);
      expect(b >>> 31).toBe(0);
      expect(b).not.toBe(0);
      expect(resp.peerCircIdValid(a)).toBe(true);
      expect(init.peerCircIdValid(b)).toBe(true);
      expect(resp.peerCircIdValid(b)).toBe(false);
    }
    expect(resp.peerCircIdValid(0)).toBe(false);
  });

  it('refuses circuits beyond maxCircuits, but a claimed CircID can change hands', async () => {
    const { init } = await connect({ limits: { maxCircuits: 2 } });
    const h = { onCell: () => {}, onChannelClosed: () => {} };
    expect(init.register(0x80000001, h)).toBe(true);
    expect(init.register(0x80000002, h)).toBe(true);
    expect(init.register(0x80000003, h)).toBe(false);
    expect(init.register(0x80000002, { ...h })).toBe(true);
    init.unregister(0x80000001);
    expect(init.register(0x80000003, h)).toBe(true);
  });
});

describe('a broken link after the handshake', () => {
  it('closes the channel on garbage and ignores what follows', async () => {
    const { init, resp, memA } = await connect();
    const closed = new Promise<string>((resolve) => resp.on('closed', ({ reason }) => resolve(reason)));
    memA.send(new Uint8Array(600).fill(0xff));
    expect(await closed).toMatch(/unparseable/);
    expect(resp.isOpen).toBe(false);
    void init;
  });

  it('closes the channel on a variable cell over the size limit', async () => {
    const { resp, memA } = await connect({ limits: { maxVariablePayload: 1024 } });
    const closed = new Promise<string>((resolve) => resp.on('closed', ({ reason }) => resolve(reason)));
    memA.send(Uint8Array.of(0, 0, 0, 0, 128, 0x04, 0x01));
    expect(await closed).toMatch(/over limit/);
  });

  it('closes the channel when the peer lets the send buffer pass maxBufferedBytes', async () => {
    const { resp, memB } = await connect({ limits: { maxBufferedBytes: 10_000 } });
    const closed = new Promise<string>((resolve) => resp.on('closed', ({ reason }) => resolve(reason)));
    memB.fakeBuffered = 20_000;
    resp.send(0, { type: 'PADDING' });
    expect(await closed).toMatch(/buffer/);
  });

  it('reserveRelay: a body filled in place reaches the peer as a RELAY cell; over the buffer limit it closes instead', async () => {
    const { init, resp, memB } = await connect({ limits: { maxBufferedBytes: 10_000 } });
    const got = new Promise<{ circId: number; msg: LinkMessage }>((resolve) =>
      init.on('cell', (c) => resolve(c)),
    );
    const body = resp.reserveRelay(0x1234);
    expect(body?.length).toBe(509);
    body?.fill(0xab);
    const cell = await got;
    expect(cell.circId).toBe(0x1234);
    expect(cell.msg).toEqual({ type: 'RELAY', body: new Uint8Array(509).fill(0xab) });
    expect(() => resp.reserveRelay(2 ** 32)).toThrow(/CircID/);
    const closed = new Promise<string>((resolve) => resp.on('closed', ({ reason }) => resolve(reason)));
    memB.fakeBuffered = 9_800;
    expect(resp.reserveRelay(0x1234)).toBeNull();
    expect(await closed).toMatch(/buffer/);
    expect(resp.reserveRelay(0x1234)).toBeNull();
  });

  it("emits 'drain' once for senders that found the link congested", async () => {
    const { resp, memB } = await connect();
    let drains = 0;
    resp.on('drain', () => {
      drains += 1;
    });
    memB.emit('drain', undefined);
    expect(drains).toBe(0);
    memB.fakeBuffered = 3 * 1024 * 1024;
    expect(resp.writable).toBe(false);
    memB.emit('drain', undefined);
    expect(drains).toBe(0);
    memB.fakeBuffered = 0;
    memB.emit('drain', undefined);
    memB.emit('drain', undefined);
    expect(drains).toBe(1);
  });
});
