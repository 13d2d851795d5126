// dir-client: authority-list parsing, and the HTTP helper's bounds
// (response size, timeout, refused connections) against tiny local servers.

import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidError } from '../../../services/core/errors.js';
import { uniformFraction } from '../../../services/core/random.js';
import { acceptsDeflate } from '../../../services/directory/http.js';
import {
  clientConsensusFetchTime,
  DirClientError,
  DirHttpRequestError,
  fetchConsensus,
  formatAuthorityList,
  httpRequest,
  inflateBounded,
  MAX_UNCOMPRESSION_FACTOR,
  parseAuthorityList,
  publishDescriptor,
} from '../../../services/net/dir-client.js';
import { seededRng } from '../../helpers/seeded-rng.js';

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

  it('inflates a deflated body when asked for deflate; refuses encodings it did not ask for', async () => {
    const doc = Buffer.from('{"consensus":1}'.repeat(2000));
    const url = await serve((req, res) => {
      if (req.url === '/gzip') return res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(doc));
      const z = acceptsDeflate(req.headers['accept-encoding']);
      res.writeHead(200, z ? { 'content-encoding': 'deflate' } : {}).end(z ? deflateSync(doc) : doc);
    });
    const r = await httpRequest(url, 'GET', '/', { maxBytes: 1 << 20, maxInflatedBytes: 1 << 20 });
    expect(Buffer.compare(r.body, doc)).toBe(0);
    expect(r.wireBytes).toBe(deflateSync(doc).length);
    const plain = await httpRequest(url, 'GET', '/', { maxBytes: 1 << 20 });
    expect(plain.wireBytes).toBe(doc.length);
    await expect(
      httpRequest(url, 'GET', '/gzip', { maxBytes: 1 << 20, maxInflatedBytes: 1 << 20 }),
    ).rejects.toThrow(/unrequested content-encoding gzip/);
  });

  it('times out on a server that never answers', async () => {
    const url = await serve(() => {});
    const t0 = performance.now();
    // The message names the timeout that fired: the 200 ms asked for, not the default.
    await expect(httpRequest(url, 'GET', '/', { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
    // Not early either (a lower bound: load only makes it later).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(195);
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
      status: 400,
      error: 'HTTP 400: bad descriptor',
    });
    // No status where nothing answered: the publisher retries those (and 5xx), never a 4xx.
    const down = pub.results.find((r) => r.url === dead);
    expect(down?.ok).toBe(false);
    expect(down?.status).toBeUndefined();
    const err = await fetchConsensus(auths, { nowMs: Date.now(), timeoutMs: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(DirClientError);
    expect((err as DirClientError).failures.map((f) => f.url).sort()).toEqual(
      [refusing, dead, garbage].sort(),
    );
  });
});

describe('clientConsensusFetchTime (dir-spec §5.1)', () => {
  const H = 3600_000;
  // dir-spec §5.1's example: valid at 1:00, fresh until 2:00, expires 4:00: between 2:45 and 3:50.
  const c = { validAfterMs: 1 * H, freshUntilMs: 2 * H, validUntilMs: 4 * H };

  it('spans 3/4 of an interval after fresh-until to 7/8 of what is left before valid-until', () => {
    expect(clientConsensusFetchTime(c, 0)).toBe(2 * H + 45 * 60_000);
    expect(clientConsensusFetchTime(c, 1)).toBe(3 * H + 50 * 60_000 + 37_500);
    // The testnet's shape (valid-until = VA + 3 I): VA + 1.75 I to VA + 2.84 I.
    const t = { validAfterMs: 0, freshUntilMs: 20_000, validUntilMs: 60_000 };
    expect(clientConsensusFetchTime(t, 0)).toBe(35_000);
    expect(clientConsensusFetchTime(t, 1)).toBe(56_875);
  });

  it('spreads 1,000 clients over the whole window (no stampede at fresh-until)', () => {
    const rng = seededRng(7);
    const start = clientConsensusFetchTime(c, 0);
    const window = clientConsensusFetchTime(c, 1) - start;
    const tenths = new Array(10).fill(0);
    for (let i = 0; i < 1000; i++) {
      const t = clientConsensusFetchTime(c, uniformFraction(rng));
      expect(t).toBeGreaterThanOrEqual(start);
      expect(t).toBeLessThan(c.validUntilMs);
      tenths[Math.min(9, Math.floor(((t - start) / window) * 10))]++;
    }
    // Uniform: every tenth of the window gets 100 +- 40.
    for (const n of tenths) expect(n).toBeGreaterThan(60);
    for (const n of tenths) expect(n).toBeLessThan(140);
  });
});

describe('inflateBounded (zip-bomb safe)', () => {
  // Hex text compresses about 2:1, as a consensus does about 4:1; 100 KiB is past the ratio check's start.
  const doc = new Uint8Array(Buffer.from(randomBytes(50_000).toString('hex'), 'latin1'));

  it('inflates within the cap', async () => {
    expect(Buffer.compare(await inflateBounded(deflateSync(doc), 1 << 20, 'x'), doc)).toBe(0);
  });

  it(`refuses more than the cap, and more than ${MAX_UNCOMPRESSION_FACTOR}x the input past 64 KiB (C tor's bomb rule)`, async () => {
    const z = deflateSync(Buffer.alloc(1 << 20));
    expect(z.length * MAX_UNCOMPRESSION_FACTOR).toBeLessThan(1 << 20);
    await expect(inflateBounded(z, 8 << 20, 'x')).rejects.toThrow(/compression bomb/);
    await expect(inflateBounded(deflateSync(doc), 1000, 'x')).rejects.toBeInstanceOf(DirHttpRequestError);
    // Small outputs are not judged by ratio (C tor CHECK_FOR_COMPRESSION_BOMB_AFTER).
    expect((await inflateBounded(deflateSync(Buffer.alloc(60_000)), 1 << 20, 'x')).length).toBe(60_000);
  });

  it('refuses garbage, truncated and empty input with a typed error', async () => {
    const z = deflateSync(doc);
    for (const bad of [new Uint8Array([1, 2, 3, 4]), z.subarray(0, z.length - 10), new Uint8Array(0)]) {
      await expect(inflateBounded(bad, 1 << 20, 'x')).rejects.toBeInstanceOf(DirHttpRequestError);
    }
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (b) => {
        await inflateBounded(b, 1 << 16, 'x').catch((e) => {
          if (!(e instanceof DirHttpRequestError)) throw e;
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('acceptsDeflate (Accept-Encoding)', () => {
  it('names deflate unless its q is 0', () => {
    expect(acceptsDeflate('deflate, identity')).toBe(true);
    expect(acceptsDeflate('gzip, DEFLATE;q=0.5')).toBe(true);
    expect(acceptsDeflate('deflate;q=0')).toBe(false);
    expect(acceptsDeflate('deflate; q=0.000')).toBe(false);
    expect(acceptsDeflate('x-deflate, gzip')).toBe(false);
    expect(acceptsDeflate(undefined)).toBe(false);
    expect(acceptsDeflate('')).toBe(false);
  });
});
