// Faults on demand for nodes that share a thread (issue 18): a pause holds
// what is no link of ours too (net/link-faults.ts whileHeld), an
// authority's DirPort answers nothing while it lasts and answers once it
// heals (directory/http.ts createDirServer), and a slot (testnet/node-slot.ts)
// stops, kills (every link named after the node drops first) and starts its
// node again as a new object.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDirServer, type DirRoutes } from '../../../services/directory/http.js';
import {
  applyLinkFaults,
  dropLinksOf,
  EMPTY_LINK_FAULTS,
  trackLink,
  whileHeld,
} from '../../../services/net/link-faults.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { NodeSlot } from '../../../services/testnet/node-slot.js';
import { slotTarget } from '../../../services/testnet/thread-targets.js';

const pause = (...nodes: string[]) => applyLinkFaults({ cuts: [], slows: [], paused: nodes });
const tick = () => new Promise((r) => setTimeout(r, 20));

afterEach(() => applyLinkFaults(EMPTY_LINK_FAULTS));

describe('whileHeld', () => {
  it('resolves at once when no pause holds the node', async () => {
    pause('relay1');
    await expect(whileHeld('auth0', null)).resolves.toBeUndefined();
    await expect(whileHeld('auth0', 'relay2')).resolves.toBeUndefined();
  });

  it('waits while the node (or its peer) is paused, and resolves when the table no longer pauses it', async () => {
    pause('auth0');
    let own = false;
    let peer = false;
    void whileHeld('auth0', null).then(() => (own = true));
    void whileHeld('relay2', 'auth0').then(() => (peer = true));
    await tick();
    expect([own, peer]).toEqual([false, false]);
    // Another table that still pauses auth0 releases nothing.
    applyLinkFaults({ cuts: [['relay1', 'relay2']], slows: [], paused: ['auth0'] });
    await tick();
    expect([own, peer]).toEqual([false, false]);
    applyLinkFaults(EMPTY_LINK_FAULTS);
    await tick();
    expect([own, peer]).toEqual([true, true]);
  });
});

const routes = (consensus: string): DirRoutes => ({
  upload: () => 'ok',
  refused: () => {},
  consensus: () => Buffer.from(consensus),
  nextVote: () => null,
  nextSignatures: () => null,
});

/** One GET on its own connection (no pool: a reset connection is this request's error only). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('an authority DirPort under a pause', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('holds every request unanswered, connection open, and answers it when the pause ends', async () => {
    const server = createDirServer(routes('network-status-version 3\n'), silentLogger, 'auth0');
    servers.push(server);
    const url = await listen(server);
    const path = '/tor/status-vote/current/consensus';
    expect((await get(`${url}${path}`)).status).toBe(200);
    pause('auth0');
    let answered: { status: number } | null = null;
    const held = get(`${url}${path}`).then((r) => (answered = r));
    // A paused node answers nothing, however long one waits.
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBeNull();
    // Another node's pause does not hold it.
    pause('auth1');
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.body).toContain('network-status-version 3');
  });

  it('a kill while held resets the held connection (no answer ever comes)', async () => {
    const server = createDirServer(routes('x'), silentLogger, 'auth2');
    servers.push(server);
    const url = await listen(server);
    pause('auth2');
    const held = get(`${url}/tor/status-vote/current/consensus`);
    await tick();
    expect(dropLinksOf('auth2')).toBe(1);
    await expect(held).rejects.toThrow();
  });

  it('without a node name a pause of anything leaves it answering', async () => {
    const server = createDirServer(routes('x'), silentLogger);
    servers.push(server);
    const url = await listen(server);
    pause('auth0', 'auth1', 'auth2');
    expect((await get(`${url}/tor/status-vote/current/consensus`)).status).toBe(200);
  });
});

class FakeNode {
  static built = 0;
  readonly id = ++FakeNode.built;
  running = false;
  constructor(private readonly failStart = false) {}
  async start(): Promise<void> {
    if (this.failStart) throw new Error('port taken');
    this.running = true;
  }
  async stop(): Promise<void> {
    this.running = false;
  }
}

describe('NodeSlot', () => {
  it('stops its node, and starts a new one built the same way', async () => {
    const slot = new NodeSlot('auth1', () => new FakeNode());
    const first = await slot.start();
    expect(await slot.start()).toBe(first);
    await slot.stop();
    expect(first.running).toBe(false);
    expect(slot.node).toBeNull();
    const second = await slot.start();
    expect(second).not.toBe(first);
    expect(second.running).toBe(true);
  });

  it('a kill drops every link named after the node before its shutdown, and only those', async () => {
    const order: string[] = [];
    const slot = new NodeSlot('onion0-1', () => {
      const n = new FakeNode();
      n.stop = async () => void order.push('stop');
      return n;
    });
    await slot.start();
    const link = (self: string, peer: string) =>
      trackLink({ self, peer, drop: () => order.push(`drop ${self}~${peer}`), release: () => {} });
    link('onion0-1', 'relay3');
    link('relay4', 'onion0-1');
    const other = link('relay4', 'relay5');
    await slotTarget(slot).kill();
    expect(order).toEqual(['drop onion0-1~relay3', 'drop relay4~onion0-1', 'stop']);
    expect(slot.node).toBeNull();
    // Nothing running: a second kill or stop does nothing.
    await slot.kill();
    await slot.stop();
    expect(order).toHaveLength(3);
    other();
  });

  it('a start that fails leaves the slot empty, so a later start tries again', async () => {
    let fail = true;
    const slot = new NodeSlot('auth0', () => new FakeNode(fail));
    await expect(slot.start()).rejects.toThrow('port taken');
    expect(slot.node).toBeNull();
    fail = false;
    expect((await slot.start()).running).toBe(true);
  });

  it("a start that fails is undone by the node's stop(), whose own error does not hide the start's", async () => {
    const undone: string[] = [];
    const n = new FakeNode(true);
    n.stop = async () => {
      undone.push('stop');
      throw new Error('stop failed too');
    };
    await expect(new NodeSlot('relay1', () => n).start()).rejects.toThrow('port taken');
    expect(undone).toEqual(['stop']);
  });
});
