// Three relays in one process on 127.0.0.1 over real wss links: a client
// builds a 3-hop circuit with CREATE2/EXTEND2 (ntor, and ntor-v3) and moves
// bytes to an exit.
import { createHash } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../services/core/crypto.js';
import { EndReason } from '../../services/core/relay-cell.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { StreamRefusedError } from '../../services/net/circuit-error.js';
import type { Relay } from '../../services/relay/relay.js';
import { buildCircuit, startLocalRelay } from '../helpers/relays.js';
import { readAll, startBlobServer, startEchoServer, type TestServer } from '../helpers/servers.js';

const relays: Relay[] = [];
let echo: TestServer;
let blob: TestServer;
const BLOB = randomBytes(3 * 1024 * 1024);
const pool = new ChannelPool({ keys: null, tls: true });
const registry = new Registry();

const build = (path: Relay[]) => buildCircuit(pool, path);

beforeAll(async () => {
  echo = await startEchoServer();
  blob = await startBlobServer(BLOB);
  for (let i = 0; i < 3; i++) relays.push(await startLocalRelay(`r${i}`, { registry }));
});

afterAll(async () => {
  pool.closeAll();
  await Promise.all(relays.map((r) => r.stop()));
  await echo?.close();
  await blob?.close();
});

describe('circuits over wss links', () => {
  it('builds three hops and echoes data through the exit', async () => {
    const circ = await build(relays);
    expect(circ.length).toBe(3);
    const s = await circ.openStream({ host: '127.0.0.1', port: echo.port });
    const payload = randomBytes(200_000);
    const got = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let n = 0;
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= payload.length) resolve(Buffer.concat(chunks));
      });
    });
    s.write(payload);
    expect(Buffer.compare(await got, Buffer.from(payload))).toBe(0);
    s.end();
    circ.destroy();
  });

  it('downloads 3 MiB intact (windows and SENDMEs keep it flowing)', async () => {
    const circ = await build(relays);
    const s = await circ.openStream({ host: '127.0.0.1', port: blob.port });
    const data = await readAll(s);
    expect(createHash('sha256').update(data).digest('hex')).toBe(
      createHash('sha256').update(BLOB).digest('hex'),
    );
    circ.destroy();
  });

  it('builds three hops with ntor-v3 (HTYPE 3) and downloads through them intact', async () => {
    /** Onionskins each relay processed, by handshake. */
    const skins = async (type: string) => {
      const values = (await registry.getSingleMetric('shallot_relay_onionskins_total')?.get())?.values ?? [];
      return relays.map(
        (r) =>
          values.find(
            (v) => v.labels.relay === r.nickname && v.labels.type === type && v.labels.action === 'processed',
          )?.value ?? 0,
      );
    };
    const [v3, ntor] = [await skins('ntor-v3'), await skins('ntor')];
    const circ = await buildCircuit(pool, relays, 'ntor-v3');
    expect((await skins('ntor-v3')).map((v, i) => v - (v3[i] ?? 0))).toEqual([1, 1, 1]);
    expect(await skins('ntor')).toEqual(ntor);
    const s = await circ.openStream({ host: '127.0.0.1', port: blob.port });
    const data = await readAll(s);
    expect(createHash('sha256').update(data).digest('hex')).toBe(
      createHash('sha256').update(BLOB).digest('hex'),
    );
    circ.destroy();
  });

  it('refuses a target outside the exit policy with END EXITPOLICY', async () => {
    const circ = await build(relays);
    const err = await circ.openStream({ host: '10.1.2.3', port: 80 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamRefusedError);
    expect((err as StreamRefusedError).reason).toBe(EndReason.EXITPOLICY);
    circ.destroy();
  });
});
