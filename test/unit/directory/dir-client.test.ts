// dir-client: authority-list parsing, and the HTTP helper's bounds
// (response size, timeout, refused connections) against tiny local servers.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidError } from '../../../services/core/errors.js';
import {
  DirClientError,
  DirHttpRequestError,
  fetchConsensus,
  formatAuthorityList,
  httpRequest,
  parseAuthorityList,
  publishDescriptor,
} from '../../../services/directory/dir-client.js';

const idA = 'a'.repeat(64);
const idB = '0123456789abcdef'.repeat(4);

describe('parseAuthorityList / formatAuthorityList', () => {
  it('parses id@host:port lists and round-trips', () => {
    const list = parseAuthorityList(` ${idA.toUpperCase()}@127.0.0.1:7000, ${idB}@http://localhost:7001 `);
    expect(list).toEqual([
      { identity: idA, url: 'http://127.0.0.1:7000' },
      { identity: idB, url: 'http://localhost:7001' },
    ]);
    expect(parseAuthorityList(formatAuthorityList(list))).toEqual(list);
  });

  it.each([
    '',
    'nohost',
    `${idA}`,
    `${idA.slice(1)}@127.0.0.1:7000`,
    `${idA}@127.0.0.1`,
    `${idA}@https://127.0.0.1:7000`,
    `${idA}@127.0.0.1:7000,${idA}@127.0.0.1:7001`,
    `${idA}@:7000`,
  ])('refuses %j', (spec) => {
    expect(() => parseAuthorityList(spec)).toThrow(InvalidError);
  });

  it('throws only InvalidError on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parseAuthorityList(s);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidError);
        }
      }),
    );
  });
});

describe('httpRequest bounds', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
  async function serve(handler: http.RequestListener): Promise<string> {
    const s = http.createServer(handler);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  it('returns status and body, and sends the request body', async () => {
    const url = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.writeHead(201).end(Buffer.concat(chunks).reverse()));
    });
    const r = await httpRequest(url, 'POST', '/x', { body: new Uint8Array([1, 2, 3]) });
    expect(r.status).toBe(201);
    expect([...r.body]).toEqual([3, 2, 1]);
  });

  it('refuses responses over the cap, declared or streamed', async () => {
    const declared = await serve((_req, res) =>
      res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000)),
    );
    await expect(httpRequest(declared, 'GET', '/', { maxBytes: 4096 })).rejects.toBeInstanceOf(
      DirHttpRequestError,
    );
    const streamed = await serve((_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000));
      res.end();
    });
    await expect(httpRequest(streamed, 'GET', '/', { maxBytes: 4096 })).rejects.toThrow(/exceeds 4096/);
  });

  it('times out on a server that never answers', async () => {
    const url = await serve(() => {});
    const t0 = Date.now();
    await expect(httpRequest(url, 'GET', '/', { timeoutMs: 200 })).rejects.toThrow(/timed out/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('publishDescriptor and fetchConsensus report per-authority failures without throwing untyped errors', async () => {
    const refusing = await serve((_req, res) => res.writeHead(400).end('bad descriptor\n'));
    const garbage = await serve((_req, res) => res.writeHead(200).end('not a consensus'));
    const dead = 'http://127.0.0.1:1';
    const auths = [
      { identity: idA, url: refusing },
      { identity: idB, url: dead },
      { identity: 'c'.repeat(64), url: garbage },
    ];
    const pub = await publishDescriptor(auths, new Uint8Array([1]), { timeoutMs: 1000 });
    expect(pub.accepted).toBe(1); // the garbage server says 200 to anything
    expect(pub.results.find((r) => r.url === refusing)).toEqual({
      url: refusing,
      ok: false,
      error: 'HTTP 400: bad descriptor',
    });
    const err = await fetchConsensus(auths, { nowMs: Date.now(), timeoutMs: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(DirClientError);
    expect((err as DirClientError).failures.map((f) => f.url).sort()).toEqual(
      [refusing, dead, garbage].sort(),
    );
  });
});
