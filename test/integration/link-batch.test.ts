// The link transport's send batch (services/net/transport.ts) over a real
// WebSocket on 127.0.0.1: what one turn writes, through send() or written in
// place through reserve(), reaches the peer as one message, in order; a
// burst bigger than a batch is cut into messages no bigger than 256 KiB; a
// closed link hands out no space.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from '../../services/core/crypto.js';
import { dialLink, type LinkConnection, type LinkServer, listenLinks } from '../../services/net/transport.js';

const open: { server: LinkServer; links: LinkConnection[] }[] = [];

async function linkPair(): Promise<{ client: LinkConnection; messages: Uint8Array[] }> {
  const messages: Uint8Array[] = [];
  const links: LinkConnection[] = [];
  const server = await listenLinks({ host: '127.0.0.1', port: 0, tls: null }, (link) => {
    links.push(link);
    link.on('data', (d) => messages.push(d.slice()));
  });
  const client = await dialLink(server.url);
  links.push(client);
  open.push({ server, links });
  return { client, messages };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const total = (xs: Uint8Array[]) => xs.reduce((n, x) => n + x.length, 0);

afterEach(async () => {
  for (const { server, links } of open.splice(0)) {
    for (const l of links) l.destroy();
    await server.close();
  }
});

describe('link send batch', () => {
  it("sends one turn's writes as one message, in order, including bytes written in place", async () => {
    const { client, messages } = await linkPair();
    const a = randomBytes(514);
    const b = randomBytes(100);
    const c = randomBytes(514);
    client.send(a);
    const view = client.reserve(b.length);
    expect(view).not.toBeNull();
    view?.set(b);
    client.send(c);
    await until(() => total(messages) === 1128);
    expect(messages).toHaveLength(1);
    expect(Buffer.from(messages[0]!).equals(Buffer.concat([a, b, c]))).toBe(true);
  });

  it('cuts a burst bigger than a batch into messages of at most 256 KiB, bytes in order', async () => {
    const { client, messages } = await linkPair();
    const cells = Array.from({ length: 1200 }, () => randomBytes(514));
    for (const cell of cells) client.reserve(cell.length)?.set(cell);
    const want = Buffer.concat(cells);
    await until(() => total(messages) === want.length);
    expect(messages.length).toBeGreaterThanOrEqual(3);
    for (const m of messages) expect(m.length).toBeLessThanOrEqual(256 * 1024);
    expect(Buffer.concat(messages).equals(want)).toBe(true);
    expect(client.bufferedAmount).toBe(0);
  });

  it("turns of different sizes one after another (a batch starts at the last one's size) arrive whole and in order", async () => {
    const { client, messages } = await linkPair();
    const turns = [300, 3, 1, 450, 20].map((n) => Array.from({ length: n }, () => randomBytes(514)));
    let sent = 0;
    for (const cells of turns) {
      for (const c of cells) client.reserve(c.length)?.set(c);
      sent += total(cells);
      await until(() => total(messages) === sent);
    }
    expect(messages).toHaveLength(turns.length);
    for (const [i, cells] of turns.entries()) {
      expect(Buffer.from(messages[i]!).equals(Buffer.concat(cells))).toBe(true);
    }
  });

  it('a closed link hands out no space and sends nothing', async () => {
    const { client, messages } = await linkPair();
    client.close();
    expect(client.reserve(514)).toBeNull();
    client.send(randomBytes(514));
    await new Promise((r) => setTimeout(r, 50));
    expect(messages).toHaveLength(0);
  });
});
