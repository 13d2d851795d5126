// Nested SOCKS timeouts on real loopback sockets: the connector's deadline
// is `replyMarginMs` inside SocksTimeout, its own failure code is written
// before the close, a connector that ignores the deadline still gets 0x06
// (TTL expired) written by the outer timer, and a late stream is dropped.
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConnectError,
  type Connector,
  type ConnectRequest,
  remainingMs,
  withDeadline,
} from '../../../services/client/connect.js';
import { startSocksServer } from '../../../services/client/socks-server.js';
import { EndReason } from '../../../services/core/relay-cell.js';
import { SocksReply } from '../../../services/core/socks5.js';
import { StreamRefusedError } from '../../../services/net/circuit-error.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

async function start(connect: Connector, socksTimeoutMs: number, replyMarginMs: number) {
  const registry = new Registry();
  const socks = await startSocksServer(
    { host: '127.0.0.1', port: 0, socksTimeoutMs, replyMarginMs },
    connect,
    {
      registry,
    },
  );
  cleanup.push(() => socks.close());
  const replies = async (code: string) =>
    (await registry.getSingleMetric('shallot_client_socks_replies_total')?.get())?.values.find(
      (v) => v.labels.code === code,
    )?.value ?? 0;
  return { port: socks.port, replies };
}

/** Sends a CONNECT and returns every byte the proxy wrote until it closed, and when. */
function connectAndDrain(port: number): Promise<{ bytes: Buffer; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve({ bytes: Buffer.concat(chunks), ms: performance.now() - t0 }));
    s.write(Buffer.from([5, 1, 0, 5, 1, 0, 3, 4, ...Buffer.from('host'), 0, 80]));
  });
}

describe('nested SOCKS timeouts', () => {
  it('gives the connector a deadline replyMarginMs before SocksTimeout', async () => {
    let deadline = Number.NaN;
    let calledAt = Number.NaN;
    let left = Number.NaN;
    const { port } = await start(
      async (req) => {
        calledAt = performance.now();
        left = remainingMs(req);
        deadline = req.deadline ?? Number.NaN;
        throw new StreamRefusedError(EndReason.RESOLVEFAILED);
      },
      5_000,
      1_000,
    );
    // The proxy accepted the connection between these two instants, so its deadline
    // (accept + 5 s - 1 s) lies between them plus 4 s however slow the machine is.
    const sentAt = performance.now();
    const { bytes } = await connectAndDrain(port);
    expect(bytes.length).toBe(12);
    expect(bytes[3]).toBe(SocksReply.HOST_UNREACHABLE);
    expect(deadline).toBeGreaterThanOrEqual(sentAt + 4_000);
    expect(deadline).toBeLessThanOrEqual(calledAt + 4_000);
    // remainingMs is what is left of that deadline when asked.
    expect(left).toBeLessThanOrEqual(deadline - calledAt);
  });

  it("writes the inner failure's own code when the connector keeps its deadline", async () => {
    const { port, replies } = await start(
      (req) =>
        withDeadline(new Promise<never>(() => {}), req).catch((e: unknown) => {
          // What onion.ts does for a late RENDEZVOUS2, answered before the outer timer.
          throw e instanceof ConnectError ? new ConnectError('rend_failed', 'late') : e;
        }),
      1_500,
      700,
    );
    const { bytes, ms } = await connectAndDrain(port);
    // The inner code, not the outer timer's 0x06: the connector's deadline (800 ms) answered
    // before SocksTimeout (1.5 s). Timers fire in deadline order however late they run, so
    // this holds on a busy machine too, where a wall-clock bound would not.
    expect(bytes[3]).toBe(SocksReply.ONION_REND_FAILED);
    expect(ms).toBeGreaterThanOrEqual(750);
    expect(await replies('0xf3')).toBe(1);
    expect(await replies('0x06')).toBe(0);
  });

  it('writes 0x06 at SocksTimeout when the connector never answers, then drops its late stream', async () => {
    let late: PassThrough | null = null;
    const { port, replies } = await start(
      () =>
        new Promise((resolve) =>
          setTimeout(() => {
            late = new PassThrough();
            resolve(late);
          }, 1_500),
        ),
      800,
      100,
    );
    const { bytes, ms } = await connectAndDrain(port);
    // 0x06, not success: the outer timer (800 ms) answered rather than waiting for the
    // connector's stream (1.5 s), which would have been spliced and answered 0x00.
    expect(bytes.length).toBe(12);
    expect(bytes[3]).toBe(SocksReply.TTL_EXPIRED);
    expect(ms).toBeGreaterThanOrEqual(750);
    // The late stream arrives at 1.5 s and is dropped: wait for it rather than a fixed time.
    const until = performance.now() + 10_000;
    while (!(late as PassThrough | null)?.destroyed && performance.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect((late as PassThrough | null)?.destroyed).toBe(true);
    expect(await replies('0x06')).toBe(1);
    expect(await replies('0x00')).toBe(0);
  });

  it('withDeadline hands a late result to its cleanup', async () => {
    const req: ConnectRequest = {
      command: 1,
      host: 'h',
      port: 1,
      addressType: 'domain',
      isolationKey: 'k',
      deadline: performance.now() + 50,
    };
    const got: string[] = [];
    const p = withDeadline(new Promise<string>((r) => setTimeout(() => r('late'), 150)), req, (v) =>
      got.push(v),
    );
    await expect(p).rejects.toMatchObject({ kind: 'timeout' });
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual(['late']);
  });
});
