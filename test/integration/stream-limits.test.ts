// The exit's stream defences over real links and sockets on 127.0.0.1, with
// in-process relays: the DoSStreamCreation bucket per circuit (and its
// close-the-circuit defence), the per-circuit cap, the process-wide exit
// socket cap with its reserve for light circuits, and BEGIN_DIR uploads
// refused 413 by the route's limit. Each refusal is END RESOURCELIMIT (or
// 413) and counted in shallot_relay_stream_refusals_total /
// shallot_relay_dir_refusals_total.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import { EndReason } from '../../services/core/relay-cell.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { StreamRefusedError } from '../../services/net/circuit-error.js';
import { dirRequest } from '../../services/net/dir-http.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { RelayStream } from '../../services/net/stream.js';
import { ExitSockets } from '../../services/relay/exit-sockets.js';
import { Relay } from '../../services/relay/relay.js';
import type { RelayComponents, RelayLimits } from '../../services/relay/relay-options.js';
import { silentLogger } from '../../services/runtime/log.js';
import { buildCircuit, LOCAL_EXIT_POLICY, startLocalRelay } from '../helpers/relays.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';

const relays: Relay[] = [];
let guard: Relay;
let echo: TestServer;
let pool: ChannelPool;

beforeAll(async () => {
  echo = await startEchoServer();
  guard = await startLocalRelay('guard');
  relays.push(guard);
  pool = new ChannelPool({ keys: null, tls: true, dialTimeoutMs: 5_000 });
});

afterAll(async () => {
  pool.closeAll();
  await Promise.all(relays.map((r) => r.stop()));
  await echo.close();
});

/** An exit with its own registry, consensus params and exit socket budget. */
async function startExit(
  nickname: string,
  c: Partial<Pick<RelayComponents, 'consensusParams' | 'exitSockets' | 'directory'>>,
  limits: Partial<RelayLimits> = {},
) {
  const registry = new Registry();
  const r = new Relay(
    { logger: silentLogger, registry, ...c },
    {
      nickname,
      host: '127.0.0.1',
      port: 0,
      tls: true,
      keys: generateNodeKeys(),
      exitPolicy: LOCAL_EXIT_POLICY,
      limits,
    },
  );
  await r.start();
  relays.push(r);
  const metric = async (name: string, where: Record<string, string>) => {
    const m = registry.getSingleMetric(name);
    const values = m ? (await m.get()).values : [];
    return values
      .filter((v) => Object.entries(where).every(([k, x]) => v.labels[k] === x))
      .reduce((sum, v) => sum + v.value, 0);
  };
  return { relay: r, metric };
}

/** Opens `n` streams to the echo server at once; the opened ones and the END reasons of the refused. */
async function openMany(circ: OriginCircuit, n: number) {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => circ.openStream({ host: '127.0.0.1', port: echo.port }, 10_000)),
  );
  const opened: RelayStream[] = [];
  const refused: number[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') {
      // Streams still open when their circuit goes error out; nobody here reads them.
      r.value.on('error', () => {});
      opened.push(r.value);
    } else if (r.reason instanceof StreamRefusedError) refused.push(r.reason.reason);
    else throw r.reason;
  }
  return { opened, refused };
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DoSStreamCreation at the exit', () => {
  it('refuses streams over the burst with END RESOURCELIMIT, per circuit, and counts them', async () => {
    const { relay, metric } = await startExit('bucket', {
      consensusParams: () => ({ DoSStreamCreationRate: 1, DoSStreamCreationBurst: 5 }),
    });
    const greedy = await buildCircuit(pool, [guard, relay]);
    const { opened, refused } = await openMany(greedy, 8);
    expect(opened.length).toBe(5);
    expect(refused).toEqual([EndReason.RESOURCELIMIT, EndReason.RESOURCELIMIT, EndReason.RESOURCELIMIT]);
    expect(await metric('shallot_relay_stream_refusals_total', { type: 'BEGIN', reason: 'rate' })).toBe(3);
    // Another circuit has its own bucket.
    const other = await buildCircuit(pool, [guard, relay]);
    expect((await openMany(other, 2)).opened.length).toBe(2);
    greedy.destroy();
    other.destroy();
  });

  it('closes the circuit instead when the consensus says DoSStreamCreationDefenseType=3', async () => {
    const { relay, metric } = await startExit('closer', {
      // Rate 1/s: with the default rate a loaded host refills a token between
      // the second and third BEGIN, the third stream opens and nothing closes.
      consensusParams: () => ({
        DoSStreamCreationRate: 1,
        DoSStreamCreationBurst: 2,
        DoSStreamCreationDefenseType: 3,
      }),
    });
    const circ = await buildCircuit(pool, [guard, relay]);
    await openMany(circ, 2);
    await circ.openStream({ host: '127.0.0.1', port: echo.port }, 5_000).catch(() => {});
    await until('circuit closed by the exit', () => relay.activeCircuits === 0);
    expect(await metric('shallot_relay_stream_refusals_total', { reason: 'rate' })).toBe(1);
  });

  it('counts refusals at the per-circuit stream cap as reason=circuit', async () => {
    const { relay, metric } = await startExit('capped', {}, { maxStreamsPerCircuit: 3 });
    const circ = await buildCircuit(pool, [guard, relay]);
    const { opened, refused } = await openMany(circ, 5);
    expect(opened.length).toBe(3);
    expect(refused).toEqual([EndReason.RESOURCELIMIT, EndReason.RESOURCELIMIT]);
    expect(await metric('shallot_relay_stream_refusals_total', { reason: 'circuit' })).toBe(2);
    circ.destroy();
  });
});

describe('exit socket cap', () => {
  it('stops a stream-heavy circuit at the cap less the reserve, lets a light circuit through, and frees slots as sockets close', async () => {
    const sockets = new ExitSockets(24); // reserve 3: heavy circuits stop at 21
    const { relay, metric } = await startExit('sockets', { exitSockets: sockets });
    const heavy = await buildCircuit(pool, [guard, relay]);
    const a = await openMany(heavy, 30);
    expect(a.opened.length).toBe(21);
    expect(a.refused.every((r) => r === EndReason.RESOURCELIMIT)).toBe(true);
    expect(await metric('shallot_relay_stream_refusals_total', { reason: 'exit_sockets' })).toBe(9);
    expect(sockets.inUse).toBe(21);
    const light = await buildCircuit(pool, [guard, relay]);
    expect((await openMany(light, 2)).opened.length).toBe(2);
    for (const s of a.opened) s.end();
    await until('exit sockets released', () => sockets.inUse === 2);
    heavy.destroy();
    light.destroy();
    await until('all released', () => sockets.inUse === 0);
  });
});

describe('BEGIN_DIR uploads', () => {
  it('answers an 8 MiB POST with 413 at once and keeps serving on the same circuit', async () => {
    const { relay, metric } = await startExit('dircache', {
      directory: (req) => ({
        status: 200,
        body: Buffer.from(`${req.method} ${req.path} ${req.body.length}`),
      }),
    });
    const circ = await buildCircuit(pool, [guard, relay]);
    const big = await dirRequest(await circ.openDirStream(5_000), {
      method: 'POST',
      path: '/tor/hs/3/publish',
      body: Buffer.alloc(8 << 20, 0x41),
    });
    expect(big.status).toBe(413);
    expect(await metric('shallot_relay_dir_refusals_total', { reason: 'body_too_large' })).toBe(1);
    const small = await dirRequest(await circ.openDirStream(5_000), {
      method: 'POST',
      path: '/tor/hs/3/publish',
      body: Buffer.alloc(1000, 0x41),
    });
    expect(small.status).toBe(200);
    expect(Buffer.from(small.body).toString()).toBe('POST /tor/hs/3/publish 1000');
    circ.destroy();
  });
});
