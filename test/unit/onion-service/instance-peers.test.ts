// Instances finding each other over HTTP (instance-peers.ts), on 127.0.0.1: a peer by
// address and a peer by DNS name both yield the other's record; one's own address
// (listed by the DNS name) is skipped; another service's record, an oversized body and
// a junk body are refused and counted; a silent peer times out without holding the
// round; a lasting problem is logged once; the server answers GET /instance-record
// only; peer address parsing and the service's --instance-* options with their
// SHALLOT_INSTANCE_* fallbacks.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from '../../../services/core/crypto.js';
import {
  HttpInstanceExchange,
  INSTANCE_RECORD_PATH,
  type InstancePeersOptions,
  parsePeerAddress,
  parsePeerList,
} from '../../../services/onion-service/instance-peers.js';
import type { InstanceRecordRefusal } from '../../../services/onion-service/instance-record.js';
import { instancePeersOf } from '../../../services/onion-service/main.js';
import { createLogger } from '../../../services/runtime/log.js';
import { testLogger } from '../../helpers/log.js';

const HOST = '127.0.0.1';
const seed = randomBytes(32);
const open: { close(): Promise<unknown> }[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

async function exchange(
  opts: Partial<InstancePeersOptions>,
  refused: InstanceRecordRefusal[] = [],
  identity = seed,
  lookup?: (name: string) => Promise<string[]>,
): Promise<HttpInstanceExchange> {
  const ex = await HttpInstanceExchange.start(
    { logger: testLogger('instances'), refused: (r) => refused.push(r), ...(lookup ? { lookup } : {}) },
    { listen: { host: HOST, port: 0 }, pollMs: 60_000, ...opts },
    identity,
  );
  open.push({ close: () => ex.close() });
  return ex;
}

/** A raw HTTP server answering every request with `handler`. */
async function rawServer(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, HOST, r));
  open.push({
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
  return (server.address() as AddressInfo).port;
}

function get(port: number, path: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path, method, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A port nothing listens on (bound, then closed). */
async function freeClosedPort(): Promise<number> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, HOST, r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

const rec = (instance: string, updatedMs = Date.now()) => ({ instance, updatedMs, introPoints: [] });

describe('HttpInstanceExchange', () => {
  it('gets a peer record by address and by DNS name, skipping its own', async () => {
    const a = await exchange({});
    const names: string[] = [];
    // b finds every instance by a name that resolves to 127.0.0.1 (a's port); a lists b by address.
    const b = await exchange({ dns: { host: 'instances.test', port: a.port } }, [], seed, async (n) => {
      names.push(n);
      return [HOST];
    });
    const a2 = await exchange({ peers: [{ host: HOST, port: b.port }] });
    await a.publish(rec('a'));
    await b.publish(rec('b'));
    await a2.publish(rec('a2'));
    await Promise.all([b.poll(), a2.poll()]);
    const now = Date.now();
    expect((await b.peers('b', now, 20_000)).map((r) => r.instance)).toEqual(['a']);
    expect((await a2.peers('a2', now, 20_000)).map((r) => r.instance)).toEqual(['b']);
    expect(names).toContain('instances.test');
    // Own record, reached through the DNS name: skipped.
    const self = await exchange({ dns: { host: 'me.test', port: 0 } }, [], seed, async () => [HOST]);
    await self.publish(rec('self'));
    const selfByAddr = await exchange({ peers: [{ host: HOST, port: self.port }] });
    await selfByAddr.publish(rec('self'));
    await selfByAddr.poll();
    expect(await selfByAddr.peers('self', Date.now(), 20_000)).toEqual([]);
  });

  it('forgets a record once it is stale, and keeps the newest of a peer', async () => {
    const a = await exchange({});
    const b = await exchange({ peers: [{ host: HOST, port: a.port }] });
    const t = Date.now();
    await a.publish(rec('a', t - 1000));
    await b.poll();
    await a.publish(rec('a', t - 5000)); // an older one (a stale replay) does not replace it
    await b.poll();
    expect((await b.peers('b', t, 20_000)).map((r) => r.updatedMs)).toEqual([t - 1000]);
    expect(await b.peers('b', t + 20_000, 20_000)).toEqual([]);
    expect(await b.peers('b', t, 20_000)).toEqual([]); // dropped, not just hidden
  });

  it("refuses and counts another service's record, an oversized body and junk", async () => {
    const refused: InstanceRecordRefusal[] = [];
    const foreign = await exchange({}, [], randomBytes(32));
    await foreign.publish(rec('x'));
    const big = await rawServer((_req, res) => res.end(Buffer.alloc(70_000)));
    const junk = await rawServer((_req, res) => res.end(randomBytes(200)));
    const b = await exchange(
      {
        peers: [
          { host: HOST, port: foreign.port },
          { host: HOST, port: big },
          { host: HOST, port: junk },
        ],
      },
      refused,
    );
    await b.publish(rec('b'));
    await b.poll();
    expect(refused.sort()).toEqual(['bad_signature', 'malformed', 'oversized']);
    expect(await b.peers('b', Date.now(), 20_000)).toEqual([]);
  });

  it('gives up on a silent peer after its deadline and still reads the others', async () => {
    const silent = await rawServer(() => {}); // accepts, never answers
    const down = await rawServer((_q, res) => res.writeHead(500).end());
    const a = await exchange({});
    await a.publish(rec('a'));
    const refused: InstanceRecordRefusal[] = [];
    const b = await exchange(
      {
        peers: [
          { host: HOST, port: silent },
          { host: HOST, port: down },
          { host: HOST, port: a.port },
        ],
      },
      refused,
    );
    const t0 = Date.now();
    await b.poll();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await b.peers('b', Date.now(), 20_000)).map((r) => r.instance)).toEqual(['a']);
    expect(refused).toEqual([]); // unreachable is not refused
  }, 15_000);

  it('logs a lasting problem once, and forgets addresses the name no longer lists', async () => {
    const dead = await freeClosedPort();
    const lines: string[] = [];
    let listed = [HOST];
    const ex = await HttpInstanceExchange.start(
      {
        logger: createLogger('instances', 'info', (l) => lines.push(l)),
        refused: () => {},
        lookup: async () => listed,
      },
      { listen: { host: HOST, port: 0 }, pollMs: 60_000, dns: { host: 'peers.test', port: dead } },
      seed,
    );
    open.push({ close: () => ex.close() });
    const noRecord = () => lines.filter((l) => l.includes('instance peer: no record')).length;
    await ex.poll();
    await ex.poll();
    expect(noRecord()).toBe(1);
    listed = []; // the pod went away
    await ex.poll();
    listed = [HOST]; // an address seen again is a new peer: its problem is news
    await ex.poll();
    expect(noRecord()).toBe(2);
  });

  it('serves GET /instance-record only, 503 before the first record', async () => {
    const a = await exchange({});
    expect(await get(a.port, INSTANCE_RECORD_PATH)).toBe(503);
    await a.publish(rec('a'));
    expect(await get(a.port, INSTANCE_RECORD_PATH)).toBe(200);
    expect(await get(a.port, '/metrics')).toBe(404);
    expect(await get(a.port, INSTANCE_RECORD_PATH, 'POST')).toBe(405);
  });
});

describe('peer addresses', () => {
  it('parses host:port lists, IPv6 in brackets', () => {
    expect(parsePeerList('a.svc:9101, 10.0.0.2:9101,[::1]:80,')).toEqual([
      { host: 'a.svc', port: 9101 },
      { host: '10.0.0.2', port: 9101 },
      { host: '::1', port: 80 },
    ]);
    expect(parsePeerAddress('web-onion-peers.ns.svc:9101')).toEqual({
      host: 'web-onion-peers.ns.svc',
      port: 9101,
    });
  });

  it('refuses what is not host:port', () => {
    for (const bad of ['a', 'a:', ':80', 'a:0', 'a:65536', 'a:b', 'a b:80', 'http://a:80', '::1:80'])
      expect(() => parsePeerAddress(bad)).toThrow(/host:port/);
  });
});

describe('shallot-onion-service --instance-* options', () => {
  const host = { instanceHost: '0.0.0.0' };

  it('shares over HTTP only with --instance-port (else the data directory)', () => {
    expect(instancePeersOf(host, {})).toBeUndefined();
    expect(instancePeersOf({ ...host, instancePort: 9101 }, {})).toEqual({
      listen: { host: '0.0.0.0', port: 9101 },
    });
  });

  it('refuses peers without a port of its own (they could never list this instance)', () => {
    expect(() => instancePeersOf({ ...host, instancePeers: [{ host: 'a', port: 1 }] }, {})).toThrow(
      /needs --instance-port/,
    );
    expect(() =>
      instancePeersOf(host, { SHALLOT_INSTANCE_PEERS_DNS: 'web-onion-peers.ns.svc:9101' }),
    ).toThrow(/needs --instance-port/);
  });

  it('takes peers from SHALLOT_INSTANCE_PEERS(_DNS) unless the flags give them', () => {
    const e = {
      SHALLOT_INSTANCE_PEERS: '10.0.0.1:9101,10.0.0.2:9101',
      SHALLOT_INSTANCE_PEERS_DNS: 'p.ns.svc:9101',
    };
    expect(instancePeersOf({ ...host, instancePort: 9101 }, e)).toEqual({
      listen: { host: '0.0.0.0', port: 9101 },
      peers: [
        { host: '10.0.0.1', port: 9101 },
        { host: '10.0.0.2', port: 9101 },
      ],
      dns: { host: 'p.ns.svc', port: 9101 },
    });
    const flags = instancePeersOf(
      {
        ...host,
        instancePort: 1,
        instancePeers: [{ host: 'x', port: 2 }],
        instancePeersDns: { host: 'y', port: 3 },
      },
      e,
    );
    expect(flags?.peers).toEqual([{ host: 'x', port: 2 }]);
    expect(flags?.dns).toEqual({ host: 'y', port: 3 });
    expect(() => instancePeersOf({ ...host, instancePort: 1 }, { SHALLOT_INSTANCE_PEERS: 'nope' })).toThrow(
      /host:port/,
    );
  });
});
