// Issue 13: stream lifecycle under sustained sequential load. 10,000 HTTP
// requests one after another over one shared circuit, to the onion service
// and to an exit, first with the server closing each stream (HTTP
// `Connection: close`), then with the client closing first (keep-alive
// request, the client hangs up after the response). Every request must
// succeed, and afterwards the far edge's stream table (the exit relay's,
// the service's rendezvous circuits') must return to empty: open streams
// and half-closed ids both. Before, the service refused every stream after
// the 256th it had closed first. In-process network, real sockets.
import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { OnionService } from '../../services/onion-service/service.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { startWebTarget, type WebTarget } from '../../services/testnet/web.js';
import { testLogger } from '../helpers/log.js';
import { socksConnect } from '../helpers/socks-client.js';

const N = 10_000;
const SIZE = 64;
let dataDir: string;
let net_: LocalNetwork;
let web: WebTarget;
let service: OnionService;
let hsClient: ShallotClient;
let user: ShallotClient;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-streams-'));
  net_ = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    { authorities: 3, relays: 6, exits: 2, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await net_.waitForConsensus(6, 40_000);
  web = await startWebTarget('127.0.0.1', 0);
  const client = (name: string, socks: boolean) =>
    new ShallotClient(
      { logger: testLogger(name), registry: new Registry() },
      {
        authorities: net_.endpoints,
        socksHost: '127.0.0.1',
        socksPort: socks ? 0 : null,
        circuits: { prebuild: socks ? 2 : 0 },
      },
    );
  hsClient = client('hs', false);
  user = client('user', true);
  await Promise.all([hsClient.start(), user.start()]);
  await Promise.all([hsClient.ready(30_000), user.ready(30_000)]);
  service = new OnionService(
    { logger: testLogger('hs'), registry: new Registry(), client: hsClient },
    { name: 'web', identityKeyFile: path.join(dataDir, 'web.json'), backend: { type: 'builtin' } },
  );
  await service.start();
  // The first onion connection proves the descriptor is out.
  for (let i = 0; ; i++) {
    try {
      await request(service.onionAddress, 80, 'server');
      break;
    } catch (e) {
      if (i > 30) throw e;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await Promise.allSettled([user?.stop(), hsClient?.stop()]);
  await net_?.stop();
  await web?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Reads from `s` until it ends, or until `done(buffer)` says enough arrived; resolves with what came. */
function readUntil(s: net.Socket, done: (b: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => reject(new Error(`stalled after ${buf.length} bytes`)), 30_000);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (done(buf)) {
        clearTimeout(t);
        resolve(buf);
      }
    });
    s.on('end', () => {
      clearTimeout(t);
      resolve(buf);
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

const whole = (b: Buffer) => {
  const i = b.indexOf('\r\n\r\n');
  return i >= 0 && b.length - i - 4 >= SIZE;
};

/** One GET of SIZE bytes: `server` closes first (Connection: close), or the `client` hangs up after the response. */
async function request(host: string, port: number, closer: 'server' | 'client'): Promise<void> {
  const s = await socksConnect(user.socksPort, host, port, { timeoutMs: 30_000 });
  try {
    const conn = closer === 'server' ? 'close' : 'keep-alive';
    s.write(`GET /bytes/${SIZE} HTTP/1.1\r\nHost: ${host}\r\nConnection: ${conn}\r\n\r\n`);
    const b = await readUntil(s, closer === 'server' ? () => false : whole);
    if (!whole(b)) throw new Error(`short response: ${b.length} bytes`);
    if (closer === 'server' && !s.readableEnded) throw new Error('server did not close');
  } finally {
    s.end();
  }
}

async function sequential(host: string, port: number, closer: 'server' | 'client'): Promise<string[]> {
  const failures: string[] = [];
  for (let i = 0; i < N; i++) {
    await request(host, port, closer).catch((e: Error) => failures.push(`#${i}: ${e.message}`));
  }
  return failures;
}

async function until(what: string, cond: () => boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const exitStreams = () =>
  net_.relays.reduce((n, r) => n + r.relay.activeStreams + r.relay.halfClosedStreams, 0);

describe(`${N} sequential requests over one shared circuit`, () => {
  for (const closer of ['server', 'client'] as const) {
    it(`to the onion service, ${closer} closing first: all succeed, the service's stream table empties`, async () => {
      const failures = await sequential(service.onionAddress, 80, closer);
      expect(failures.slice(0, 5), `${failures.length} failed`).toEqual([]);
      await until('service streams to close', () => {
        const s = service.rendezvousStreams;
        return s.open === 0 && s.halfClosed === 0;
      });
    }, 600_000);

    it(`to an exit, ${closer} closing first: all succeed, the exits' stream tables empty`, async () => {
      const failures = await sequential('127.0.0.1', web.port, closer);
      expect(failures.slice(0, 5), `${failures.length} failed`).toEqual([]);
      await until('exit streams to close', () => exitStreams() === 0);
    }, 600_000);
  }
});
