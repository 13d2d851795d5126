// Link shaping on real loopback links (net/link-delay.ts): the model's latency
// both ways, order kept under jitter, a slow-link extra delay, bytes queued
// before a close delivered first, and a 1 MiB/s read bucket holding a
// several-MiB transfer to <= 1.05 MiB/s with every byte intact.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNetworkModel } from '../../services/core/network-model.js';
import { BandwidthLimiter, type LinkShaping, setExtraDelay } from '../../services/net/link-delay.js';
import { dialLink, type LinkConnection, type LinkServer, listenLinks } from '../../services/net/transport.js';

const model = parseNetworkModel({
  locations: ['a', 'b'],
  links: [{ from: 'a', to: 'b', latencyMs: 50, jitterMs: 30 }],
});
const shaping = (
  node: string,
  location: string | null,
  limiter: BandwidthLimiter | null = null,
): LinkShaping => ({
  node,
  model: location ? model : null,
  location,
  limiter,
});

let server: LinkServer | null = null;
const links: LinkConnection[] = [];
afterEach(async () => {
  for (const l of links.splice(0)) l.destroy();
  await server?.close();
  server = null;
});

async function pair(
  srv: LinkShaping | null,
  cli: LinkShaping | null,
): Promise<[LinkConnection, LinkConnection]> {
  let accepted: (l: LinkConnection) => void = () => {};
  const got = new Promise<LinkConnection>((r) => {
    accepted = r;
  });
  server = await listenLinks({ host: '127.0.0.1', port: 0, tls: null, shaping: srv }, (l) => accepted(l));
  const client = await dialLink(server.url, 3_000, cli);
  const s = await got;
  links.push(client, s);
  return [client, s];
}

const firstData = (l: LinkConnection) => new Promise<Uint8Array>((r) => l.once('data', r));

describe('link shaping', () => {
  it('delays each direction by the one-way latency between the two locations', async () => {
    const [client, srv] = await pair(shaping('s', 'a'), shaping('c', 'b'));
    const oneWay = async (from: LinkConnection, to: LinkConnection) => {
      const t = performance.now();
      const got = firstData(to);
      from.send(new Uint8Array([1]));
      await got;
      return performance.now() - t;
    };
    for (const [from, to] of [
      [client, srv],
      [srv, client],
    ] as const) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await oneWay(from, to));
      // 50 ms +- 30 ms of jitter: never under 20 ms (load cannot make a delay shorter) ...
      for (const d of times) expect(d).toBeGreaterThanOrEqual(19);
      // ... and, as load only adds time, the fastest of five is the shaped delay itself.
      expect(Math.min(...times)).toBeLessThan(500);
    }
  });

  it('keeps order under jitter', async () => {
    const [client, srv] = await pair(shaping('s', 'a'), shaping('c', 'b'));
    const seen: number[] = [];
    const done = new Promise<void>((r) =>
      srv.on('data', (d) => {
        for (const x of d) seen.push(x);
        if (seen.length === 100) r();
      }),
    );
    for (let i = 0; i < 100; i++) {
      client.send(new Uint8Array([i]));
      await new Promise((r) => setImmediate(r));
    }
    await done;
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('adds no delay without a model, and setExtraDelay slows one named pair until removed', async () => {
    const [client, srv] = await pair(shaping('s', null), shaping('c', null));
    const rtt = async () => {
      const t = performance.now();
      const p = firstData(srv);
      client.send(new Uint8Array([1]));
      await p;
      return performance.now() - t;
    };
    // Load only adds time: "no delay" is judged on the fastest of five sends (a single one
    // can wait tens of ms for the CPU on a busy machine), a delay on every send.
    const fastest = async () => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await rtt());
      return Math.min(...times);
    };
    expect(await fastest()).toBeLessThan(40);
    setExtraDelay('c', 's', 120);
    try {
      for (let i = 0; i < 3; i++) expect(await rtt()).toBeGreaterThanOrEqual(119);
    } finally {
      setExtraDelay('s', 'c', 0);
    }
    expect(await fastest()).toBeLessThan(40);
  });

  it('delivers bytes still queued before reporting the close', async () => {
    const [client, srv] = await pair(shaping('s', 'a'), shaping('c', 'b'));
    const events: string[] = [];
    srv.on('data', () => events.push('data'));
    const closed = new Promise<void>((r) =>
      srv.on('close', () => {
        events.push('close');
        r();
      }),
    );
    client.send(new Uint8Array([7]));
    client.close();
    await closed;
    expect(events).toEqual(['data', 'close']);
  });

  it('a 1 MiB/s read bucket carries 4 MiB at <= 1.05 MiB/s, byte for byte', { timeout: 30_000 }, async () => {
    const MiB = 1024 * 1024;
    const limiter = new BandwidthLimiter(MiB, 64 * 1024);
    const [client, srv] = await pair(shaping('s', null, limiter), shaping('c', null));
    const payload = randomBytes(4 * MiB);
    const hash = createHash('sha256');
    let got = 0;
    const t0 = performance.now();
    const done = new Promise<number>((r) =>
      srv.on('data', (d) => {
        hash.update(d);
        got += d.length;
        if (got === payload.length) r(performance.now());
      }),
    );
    for (let off = 0; off < payload.length; off += 64 * 1024) {
      client.send(payload.subarray(off, off + 64 * 1024));
      // Respect the link's backpressure as channels do.
      while (client.bufferedAmount > 2 * MiB) await new Promise((r) => client.once('drain', r));
      await new Promise((r) => setImmediate(r));
    }
    const seconds = ((await done) - t0) / 1000;
    // Minus the burst, which C tor's bucket also lets through at once.
    const rate = (payload.length - 64 * 1024) / seconds / MiB;
    expect(rate).toBeLessThanOrEqual(1.05);
    expect(rate).toBeGreaterThan(0.8);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
  });
});
