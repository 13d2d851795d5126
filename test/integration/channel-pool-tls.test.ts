// The client's channel pool over raw TLS links (services/net/channel-pool.ts
// `rawTls`, as a client on a C tor network dials): one dial per peer,
// shared by concurrent requests; a peer dialled with an RSA legacy id must
// prove it (CERTS types 2 and 7, tor-spec §4.2), so a Shallot responder,
// which has no RSA identity, is refused; a port that speaks no TLS fails
// the dial with a typed error. C tor relays themselves are in
// test/slow/ctor-client.test.ts.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ed25519Generate, randomBytes } from '../../services/core/crypto.js';
import { Channel } from '../../services/net/channel.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { ChannelError } from '../../services/net/link-handshake.js';
import { createLinkKeys } from '../../services/net/link-keys.js';
import { listenTlsLinks, type TlsLink } from '../../services/net/tls-transport.js';
import { LinkDialError } from '../../services/net/transport.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function responder() {
  const keys = createLinkKeys(ed25519Generate());
  const links: TlsLink[] = [];
  const server = await listenTlsLinks({ host: '127.0.0.1', port: 0, tls: keys.tls }, (link) => {
    links.push(link);
    Channel.respond(link, { keys, address: '127.0.0.1' }).catch(() => {});
  });
  cleanup.push(async () => {
    for (const l of links) l.destroy();
    await server.close();
  });
  return { keys, port: server.port, links };
}

function pool(): ChannelPool {
  const p = new ChannelPool({ keys: null, tls: true, rawTls: true, dialTimeoutMs: 5_000 });
  cleanup.push(() => p.closeAll('test over'));
  return p;
}

describe('channel pool over raw TLS', () => {
  it('dials a raw TLS link once for concurrent requests to one peer', async () => {
    const r = await responder();
    const p = pool();
    const peer = { identity: r.keys.identity.public, address: '127.0.0.1', port: r.port };
    const [a, b] = await Promise.all([p.get(peer), p.get(peer)]);
    expect(a).toBe(b);
    expect(a.peerIdentity).toEqual(r.keys.identity.public);
    expect(r.links).toHaveLength(1);
    expect(p.size).toBe(1);
  });

  it('refuses a peer that cannot prove the RSA legacy id it was dialled with', async () => {
    const r = await responder();
    const err = await pool()
      .get({
        identity: r.keys.identity.public,
        address: '127.0.0.1',
        port: r.port,
        legacyId: randomBytes(20),
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).reason).toBe('identity');
  });

  it('fails the dial, typed, when the port speaks no TLS', async () => {
    const sockets: net.Socket[] = [];
    const plain = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.end('HTTP/1.0 400 nope\r\n\r\n');
    });
    await new Promise<void>((ok) => plain.listen(0, '127.0.0.1', ok));
    cleanup.push(
      () =>
        new Promise<void>((ok) => {
          for (const s of sockets) s.destroy();
          plain.close(() => ok());
        }),
    );
    const port = (plain.address() as net.AddressInfo).port;
    const err = await pool()
      .get({ identity: randomBytes(32), address: '127.0.0.1', port })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkDialError);
  });
});
