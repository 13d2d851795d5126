// The SOCKS front end's exhaustion defences on real loopback sockets: the
// handshake timeout, and the cap on connections in handshake that closes
// the least recently active one instead of refusing the newcomer. And the
// splice of a stream that ended before the proxy got it: its data then EOF,
// or EOF at once when it was already destroyed.
import * as net from 'node:net';
import { type Duplex, PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type SocksServer,
  type SocksServerOptions,
  startSocksServer,
} from '../../../services/client/socks-server.js';
import { startEchoServer, type TestServer } from '../../helpers/servers.js';
import { socksConnect } from '../../helpers/socks-client.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

/** A SOCKS server whose connector dials an echo server; metrics in its own registry. */
async function start(opts: Omit<SocksServerOptions, 'host' | 'port'>) {
  const echo: TestServer = await startEchoServer();
  const registry = new Registry();
  const socks: SocksServer = await startSocksServer(
    { host: '127.0.0.1', port: 0, ...opts },
    async () => {
      const s = net.connect({ host: '127.0.0.1', port: echo.port });
      await new Promise((resolve) => s.once('connect', resolve));
      return s;
    },
    { registry },
  );
  cleanup.push(
    () => socks.close(),
    () => echo.close(),
  );
  const metric = async (name: string, where: Record<string, string> = {}) => {
    const m = registry.getSingleMetric(name);
    const values = m ? (await m.get()).values : [];
    return values
      .filter((v) => Object.entries(where).every(([k, x]) => v.labels[k] === x))
      .reduce((sum, v) => sum + v.value, 0);
  };
  return { socks, metric };
}

/** An idle TCP connection to the proxy; resolves once connected, with a promise for its close. */
async function idle(port: number, sockets: net.Socket[]) {
  const s = net.connect({ host: '127.0.0.1', port });
  sockets.push(s);
  s.on('error', () => {});
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  await new Promise((resolve) => s.once('connect', resolve));
  return { socket: s, closed };
}

async function echoOnce(port: number): Promise<string> {
  const s = await socksConnect(port, '127.0.0.1', 7, { timeoutMs: 5_000 });
  s.write('ping');
  const got = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
  s.destroy();
  return got;
}

const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('SOCKS handshake timeout', () => {
  it('closes a connection that sends nothing, and counts it', async () => {
    const { socks, metric } = await start({ handshakeTimeoutMs: 200 });
    const sockets: net.Socket[] = [];
    const a = await idle(socks.port, sockets);
    await a.closed;
    expect(await metric('shallot_client_socks_closed_total', { reason: 'handshake_timeout' })).toBe(1);
    expect(await echoOnce(socks.port)).toBe('ping');
    // A completed handshake is not timed out afterwards.
    expect(await metric('shallot_client_socks_closed_total', { reason: 'handshake_timeout' })).toBe(1);
  });
});

describe('SOCKS connections in handshake', () => {
  it('closes the least recently active idle connection for a newcomer, which completes', async () => {
    const { socks, metric } = await start({ maxHandshaking: 4, minIdleMs: 100 });
    const sockets: net.Socket[] = [];
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
    });
    const conns = [];
    for (let i = 0; i < 4; i++) conns.push(await idle(socks.port, sockets));
    await until(
      'all four in handshake',
      async () => (await metric('shallot_client_socks_handshaking')) === 4,
    );
    await new Promise((r) => setTimeout(r, 150));
    // The oldest shows activity (the first byte of a greeting): the second oldest is now the idlest.
    conns[0]?.socket.write(Buffer.from([5]));
    await new Promise((r) => setTimeout(r, 20));
    expect(await echoOnce(socks.port)).toBe('ping');
    await conns[1]?.closed;
    expect(conns[0]?.socket.destroyed).toBe(false);
    expect(await metric('shallot_client_socks_closed_total', { reason: 'evicted' })).toBe(1);
  });

  it('admits a burst of fresh connections over the cap: none has been silent for minIdleMs', async () => {
    const { socks, metric } = await start({ maxHandshaking: 4, minIdleMs: 60_000 });
    const sockets: net.Socket[] = [];
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
    });
    await Promise.all(Array.from({ length: 8 }, () => idle(socks.port, sockets)));
    const results = await Promise.all(Array.from({ length: 4 }, () => echoOnce(socks.port)));
    expect(results).toEqual(['ping', 'ping', 'ping', 'ping']);
    expect(await metric('shallot_client_socks_closed_total', { reason: 'evicted' })).toBe(0);
    expect(await metric('shallot_client_socks_handshaking')).toBe(8);
  });

  it('at maxConnections closes the idlest connection in handshake however fresh, and refuses only when all are streams', async () => {
    const { socks, metric } = await start({ maxConnections: 4, minIdleMs: 60_000 });
    const sockets: net.Socket[] = [];
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
    });
    const conns = await Promise.all(Array.from({ length: 4 }, () => idle(socks.port, sockets)));
    expect(await echoOnce(socks.port)).toBe('ping');
    await Promise.race(conns.map((c) => c.closed));
    expect(await metric('shallot_client_socks_closed_total', { reason: 'evicted' })).toBeGreaterThanOrEqual(
      1,
    );
    for (const c of conns) c.socket.destroy();
    await until(
      'the proxy saw them go',
      async () => (await metric('shallot_client_socks_handshaking')) === 0,
    );
    // Four working streams fill the listener: a fifth connection has nothing to displace.
    const streams = await Promise.all(
      Array.from({ length: 4 }, () => socksConnect(socks.port, '127.0.0.1', 7, { timeoutMs: 5_000 })),
    );
    cleanup.push(() => {
      for (const s of streams) s.destroy();
    });
    const fifth = await idle(socks.port, sockets);
    await fifth.closed;
    expect(await metric('shallot_client_socks_closed_total', { reason: 'refused' })).toBe(1);
  });

  it('keeps serving honest clients while 200 idle connections churn through a cap of 16', async () => {
    const { socks, metric } = await start({ maxHandshaking: 16, minIdleMs: 0 });
    const sockets: net.Socket[] = [];
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
    });
    for (let i = 0; i < 200; i++) await idle(socks.port, sockets);
    const results = await Promise.all(Array.from({ length: 10 }, () => echoOnce(socks.port)));
    expect(results.every((r) => r === 'ping')).toBe(true);
    await until('evictions counted', async () => (await metric('shallot_client_socks_closed_total')) >= 184);
    expect(await metric('shallot_client_socks_handshaking')).toBeLessThanOrEqual(16);
  });
});

describe('a stream that ended before the splice', () => {
  /** A SOCKS server whose connector hands back `stream`. */
  async function serving(stream: () => Duplex) {
    const socks = await startSocksServer(
      { host: '127.0.0.1', port: 0 },
      async () => {
        const s = stream();
        // As when the cells came in the link read that resolved the connect: the stream's own
        // events ('end', 'close') are past when the proxy gets it.
        await new Promise((r) => setImmediate(r));
        return s;
      },
      { registry: new Registry() },
    );
    cleanup.push(() => socks.close());
    return socks;
  }

  /** Everything the application reads after the SOCKS success, and whether it saw EOF within 3 s. */
  async function readAfterSuccess(port: number): Promise<{ text: string; eof: boolean }> {
    const s = await socksConnect(port, '127.0.0.1', 7, { timeoutMs: 5_000 });
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => resolve({ text: Buffer.concat(chunks).toString(), eof: false }), 3_000);
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => {
        clearTimeout(timer);
        resolve({ text: Buffer.concat(chunks).toString(), eof: true });
      });
    });
  }

  it('delivers the data it holds, then EOF (END before the splice)', async () => {
    const socks = await serving(() => {
      const p = new PassThrough();
      p.end('banner');
      return p;
    });
    expect(await readAfterSuccess(socks.port)).toEqual({ text: 'banner', eof: true });
  });

  it('ends the socket of a stream already destroyed (reset in the same read as CONNECTED)', async () => {
    const socks = await serving(() => {
      const p = new PassThrough();
      p.on('error', () => {});
      p.destroy(new Error('END CONNRESET'));
      return p;
    });
    expect(await readAfterSuccess(socks.port)).toEqual({ text: '', eof: true });
  });
});
