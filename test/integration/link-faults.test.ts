// Link faults on real loopback WebSocket links (net/link-faults.ts through
// transport.ts and link-delay.ts): a cut drops the live link between the two
// named nodes at once (both ends see the close) and refuses new ones both
// ways until the table heals it, while links of other pairs carry on; a
// pause holds everything either way and delivers it in order once it ends;
// dropLinksOf drops every link of one node (a kill of a relay that shares
// the process); a slow link delays by its extra ms. Every byte arrives intact.
import { afterEach, describe, expect, it } from 'vitest';
import type { LinkShaping } from '../../services/net/link-delay.js';
import {
  applyLinkFaults,
  currentLinkFaults,
  dropLinksOf,
  EMPTY_LINK_FAULTS,
} from '../../services/net/link-faults.js';
import {
  dialLink,
  type LinkConnection,
  LinkDialError,
  type LinkServer,
  listenLinks,
} from '../../services/net/transport.js';
import { namedShaping } from '../../services/runtime/shaping-options.js';

const servers: LinkServer[] = [];
const links: LinkConnection[] = [];
afterEach(async () => {
  applyLinkFaults(EMPTY_LINK_FAULTS);
  for (const l of links.splice(0)) l.destroy();
  for (const s of servers.splice(0)) await s.close();
});

/** A node listening for links under `name`; `accepted` collects its inbound links. */
async function node(name: string): Promise<{ server: LinkServer; accepted: LinkConnection[] }> {
  const accepted: LinkConnection[] = [];
  const server = await listenLinks(
    { host: '127.0.0.1', port: 0, tls: null, shaping: namedShaping(name) },
    (l) => {
      accepted.push(l);
      links.push(l);
    },
  );
  servers.push(server);
  return { server, accepted };
}

async function dial(url: string, from: LinkShaping): Promise<LinkConnection> {
  const l = await dialLink(url, 3_000, from);
  links.push(l);
  return l;
}

const closed = (l: LinkConnection) => new Promise<void>((r) => l.once('close', () => r()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for `cond`; the deadline is for a hung test, generous so a loaded machine never meets it. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('link faults', () => {
  it('cut drops the live link between two nodes, refuses new ones both ways, and heals', async () => {
    const a = await node('relay1');
    const b = await node('relay2');
    const ab = await dial(b.server.url, namedShaping('relay1'));
    // Another pair through the same listener is not touched.
    const cb = await dial(b.server.url, namedShaping('client'));
    await until(() => b.accepted.length === 2);
    const both = Promise.all([closed(ab), closed(b.accepted[0] as LinkConnection)]);
    applyLinkFaults({ cuts: [['relay2', 'relay1']], slows: [], paused: [] });
    await both;
    expect(ab.isOpen).toBe(false);
    expect(cb.isOpen).toBe(true);
    await expect(dial(b.server.url, namedShaping('relay1'))).rejects.toBeInstanceOf(LinkDialError);
    // The listener side refuses too: relay2 dialing relay1 gets no link.
    const before = a.accepted.length;
    await expect(dial(a.server.url, namedShaping('relay2'))).rejects.toBeInstanceOf(LinkDialError);
    expect(a.accepted.length).toBe(before);
    applyLinkFaults(EMPTY_LINK_FAULTS);
    const again = await dial(b.server.url, namedShaping('relay1'));
    await until(() => b.accepted.length === 3);
    const got2 = new Promise<Uint8Array>((r) => (b.accepted[2] as LinkConnection).once('data', r));
    again.send(new Uint8Array([7, 8, 9]));
    expect([...(await got2)]).toEqual([7, 8, 9]);
  });

  it('pause holds both directions of a paused node and delivers in order once it ends', async () => {
    const b = await node('relay2');
    const client = await dial(b.server.url, namedShaping('client'));
    await until(() => b.accepted.length === 1);
    const srv = b.accepted[0] as LinkConnection;
    const atServer: number[] = [];
    const atClient: number[] = [];
    srv.on('data', (d) => atServer.push(...d));
    client.on('data', (d) => atClient.push(...d));
    applyLinkFaults({ cuts: [], slows: [], paused: ['relay2'] });
    for (let i = 0; i < 50; i++) {
      client.send(new Uint8Array([i]));
      srv.send(new Uint8Array([100 + i]));
      await new Promise((r) => setImmediate(r));
    }
    await sleep(200);
    expect(atServer).toEqual([]);
    expect(atClient).toEqual([]);
    expect(srv.isOpen && client.isOpen).toBe(true);
    applyLinkFaults(EMPTY_LINK_FAULTS);
    await until(() => atServer.length === 50 && atClient.length === 50);
    expect(atServer).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(atClient).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
  });

  it('dropLinksOf drops every link of one node, inbound and outbound', async () => {
    const a = await node('relay1');
    const b = await node('relay2');
    const out = await dial(b.server.url, namedShaping('relay1'));
    const inb = await dial(a.server.url, namedShaping('client'));
    const other = await dial(b.server.url, namedShaping('client'));
    await until(() => a.accepted.length === 1 && b.accepted.length === 2);
    const gone = Promise.all([closed(out), closed(inb)]);
    // Both ends of both links live in this process: relay1's two and its peers' two.
    expect(dropLinksOf('relay1')).toBe(4);
    await gone;
    expect(other.isOpen).toBe(true);
  });

  it('slow adds its delay each way and the table reads back as applied', async () => {
    const b = await node('relay2');
    const client = await dial(b.server.url, namedShaping('client'));
    await until(() => b.accepted.length === 1);
    const srv = b.accepted[0] as LinkConnection;
    srv.on('data', (d) => srv.send(d));
    const rtt = async () => {
      const t = performance.now();
      const p = new Promise((r) => client.once('data', r));
      client.send(new Uint8Array([1]));
      await p;
      return performance.now() - t;
    };
    // Load only adds time: "no delay" is judged on the fastest of five round trips (one
    // alone can wait tens of ms for the CPU on a busy machine), the delay on every one.
    const fastest = async () => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await rtt());
      return Math.min(...times);
    };
    expect(await fastest()).toBeLessThan(60);
    applyLinkFaults({ cuts: [], slows: [{ a: 'relay2', b: 'client', delayMs: 100 }], paused: [] });
    expect(currentLinkFaults().slows).toEqual([{ a: 'client', b: 'relay2', delayMs: 100 }]);
    for (let i = 0; i < 3; i++) expect(await rtt()).toBeGreaterThanOrEqual(199);
    applyLinkFaults(EMPTY_LINK_FAULTS);
    expect(await fastest()).toBeLessThan(60);
  });
});
