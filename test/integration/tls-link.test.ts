// Raw TLS links (services/net/tls-transport.ts) on 127.0.0.1 with the
// unchanged channel handshake (tor-spec §4): a client and a relay both
// reach a Shallot responder, the TLS certificate is bound by CERTS type 5
// and AUTHENTICATE's exporter, a wrong identity is refused, 4 MiB cross in
// order, PADDING_NEGOTIATE and unknown commands are dropped as C tor drops
// them, and a peer that speaks no TLS or sends garbage cells loses only
// its own connection.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ed25519Generate, randomBytes } from '../../services/core/crypto.js';
import { Channel } from '../../services/net/channel.js';
import { ChannelError } from '../../services/net/link-handshake.js';
import { createLinkKeys, type LinkKeys } from '../../services/net/link-keys.js';
import { dialTlsLink, listenTlsLinks, type TlsLink } from '../../services/net/tls-transport.js';
import type { LinkServer } from '../../services/net/transport.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const relayKeys = (): LinkKeys => createLinkKeys(ed25519Generate());

/** A Shallot responder over raw TLS; every accepted channel (or handshake failure) is recorded. */
async function responder() {
  const keys = relayKeys();
  const channels: Channel[] = [];
  const failures: unknown[] = [];
  const links: TlsLink[] = [];
  const server: LinkServer = await listenTlsLinks({ host: '127.0.0.1', port: 0, tls: keys.tls }, (link) => {
    links.push(link);
    Channel.respond(link, { keys, address: '127.0.0.1' }).then(
      (ch) => channels.push(ch),
      (e: unknown) => failures.push(e),
    );
  });
  cleanup.push(async () => {
    for (const l of links) l.destroy();
    await server.close();
  });
  return { keys, server, channels, failures, links };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('raw TLS links', () => {
  it('a client (no keys) opens a channel to a Shallot responder and cells flow', async () => {
    const r = await responder();
    const link = await dialTlsLink('127.0.0.1', r.server.port);
    cleanup.push(() => link.destroy());
    const ch = await Channel.initiate(link, { keys: null, expectedIdentity: r.keys.identity.public });
    expect(ch.peerIdentity).toEqual(r.keys.identity.public);
    expect(ch.linkVersion).toBe(5);
    await until(() => r.channels.length === 1);
    expect(r.channels[0]!.peerIdentity).toBeNull();
    const seen: number[] = [];
    r.channels[0]!.on('cell', ({ circId }) => seen.push(circId));
    const circId = ch.allocateCircId();
    ch.send(circId, { type: 'CREATE2', htype: 2, hdata: randomBytes(84) });
    await until(() => seen.length === 1);
    expect(seen).toEqual([circId]);
  });

  it('a relay initiator authenticates through the TLS exporter (AUTHENTICATE type 3)', async () => {
    const r = await responder();
    const mine = relayKeys();
    const link = await dialTlsLink('127.0.0.1', r.server.port);
    cleanup.push(() => link.destroy());
    await Channel.initiate(link, { keys: mine, expectedIdentity: r.keys.identity.public });
    await until(() => r.channels.length === 1);
    expect(r.channels[0]!.peerIdentity).toEqual(mine.identity.public);
    expect(r.failures).toEqual([]);
  });

  it('refuses a responder whose identity is not the one dialled', async () => {
    const r = await responder();
    const link = await dialTlsLink('127.0.0.1', r.server.port);
    cleanup.push(() => link.destroy());
    const err = await Channel.initiate(link, {
      keys: null,
      expectedIdentity: relayKeys().identity.public,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).reason).toBe('identity');
  });

  it('carries 4 MiB in order and reports drain once the socket has taken it', async () => {
    // A bare listener: no handshake reads these bytes as cells.
    const got: Buffer[] = [];
    const accepted: TlsLink[] = [];
    const server = await listenTlsLinks({ host: '127.0.0.1', port: 0, tls: relayKeys().tls }, (link) => {
      accepted.push(link);
      link.on('data', (d) => got.push(Buffer.from(d)));
    });
    cleanup.push(async () => {
      for (const l of accepted) l.destroy();
      await server.close();
    });
    const client = await dialTlsLink('127.0.0.1', server.port);
    cleanup.push(() => client.destroy());
    const want = randomBytes(4 * 1024 * 1024);
    let drained = false;
    client.on('drain', () => {
      drained = true;
    });
    for (let off = 0; off < want.length; off += 509) client.send(want.subarray(off, off + 509));
    await until(() => got.reduce((n, b) => n + b.length, 0) >= want.length, 20_000);
    expect(Buffer.concat(got).equals(Buffer.from(want))).toBe(true);
    await until(() => drained);
    expect(client.bufferedAmount).toBe(0);
  });

  it('ignores PADDING_NEGOTIATE and unknown commands as C tor does, and keeps the channel', async () => {
    const r = await responder();
    const link = await dialTlsLink('127.0.0.1', r.server.port);
    cleanup.push(() => link.destroy());
    const ch = await Channel.initiate(link, { keys: null, expectedIdentity: r.keys.identity.public });
    await until(() => r.channels.length === 1);
    const seen: number[] = [];
    r.channels[0]!.on('cell', ({ circId }) => seen.push(circId));
    // Link v5: CircID(4) | command(1) | body(509); a variable cell has a 2-byte length.
    const fixed = (command: number) => Buffer.concat([Buffer.from([0, 0, 0, 0, command]), Buffer.alloc(509)]);
    link.send(fixed(12)); // PADDING_NEGOTIATE (padding-spec.txt)
    link.send(fixed(99)); // an unassigned fixed-length command
    link.send(Buffer.from('00000000c8000301 0203'.replace(' ', ''), 'hex')); // variable-length 200
    const circId = ch.allocateCircId();
    ch.send(circId, { type: 'CREATE2', htype: 2, hdata: randomBytes(84) });
    await until(() => seen.length === 1);
    expect(seen).toEqual([circId]);
    expect(r.channels[0]!.isOpen).toBe(true);
  });

  it('a dial to a closed port fails with a typed error', async () => {
    const s = net.createServer();
    await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((res) => s.close(() => res()));
    const err = await dialTlsLink('127.0.0.1', port, 2_000).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_LINK_DIAL');
  });

  it('a peer speaking no TLS, or garbage cells inside TLS, loses only its own connection', async () => {
    const r = await responder();
    const plain = net.connect(r.server.port, '127.0.0.1');
    plain.on('error', () => {});
    const plainClosed = new Promise<void>((res) => plain.once('close', () => res()));
    plain.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await plainClosed;
    const junk = await dialTlsLink('127.0.0.1', r.server.port);
    cleanup.push(() => junk.destroy());
    const junkClosed = new Promise<void>((res) => junk.on('close', () => res()));
    // VERSIONS with a length far over any limit, then noise.
    junk.send(Buffer.concat([Buffer.from('0000070000ffff', 'hex'), randomBytes(1000)]));
    await junkClosed;
    await until(() => r.failures.length === 1);
    expect(r.failures[0]).toBeInstanceOf(ChannelError);
    // The listener still serves a well-behaved client.
    const link = await dialTlsLink('127.0.0.1', r.server.port);
    cleanup.push(() => link.destroy());
    const ch = await Channel.initiate(link, { keys: null, expectedIdentity: r.keys.identity.public });
    expect(ch.isOpen).toBe(true);
  });
});
