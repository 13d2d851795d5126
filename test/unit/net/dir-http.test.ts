// HTTP over BEGIN_DIR (net/dir-http.ts): the message reader's limits and
// framing, and the server's 413/400 refusals over an in-memory duplex pair.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  DirHttpError,
  type DirRequestLine,
  dirRequest,
  HttpMessageReader,
  MAX_HEAD_BYTES,
  serveDirRequest,
} from '../../../services/net/dir-http.js';

const request = (n: number) =>
  Buffer.concat([Buffer.from(`POST /up HTTP/1.0\r\nContent-Length: ${n}\r\n\r\n`), Buffer.alloc(n, 0x61)]);

/** Feeds `bytes` in chunks of `size`; returns the message and how many pushes it took. */
function feed(reader: HttpMessageReader, bytes: Buffer, size: number) {
  for (let off = 0; off < bytes.length; off += size) {
    const msg = reader.push(bytes.subarray(off, off + size));
    if (msg) return msg;
  }
  return reader.end();
}

const caught = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return null;
};

describe('HttpMessageReader', () => {
  it('finds the head however the bytes are split, and takes exactly Content-Length', () => {
    const bytes = request(10);
    for (const size of [1, 2, 3, 4, 5, 7, 16, bytes.length]) {
      const msg = feed(new HttpMessageReader({ maxBody: () => 100, noLength: 'empty' }), bytes, size);
      expect(msg.head, `chunk size ${size}`).toBe('POST /up HTTP/1.0\r\nContent-Length: 10');
      expect(Buffer.from(msg.body).toString()).toBe('a'.repeat(10));
    }
  });

  it('reads an 8 MiB body in 498-byte DATA-cell chunks in linear time (a per-chunk join would not finish)', () => {
    const n = 8 * 1024 * 1024;
    const msg = feed(new HttpMessageReader({ maxBody: () => n, noLength: 'empty' }), request(n), 498);
    expect(msg.body.length).toBe(n);
    expect(msg.body[n - 1]).toBe(0x61);
  });

  it('refuses a declared body over the route limit at the head, before any body byte', () => {
    const r = new HttpMessageReader({ maxBody: () => 50_000, noLength: 'empty' });
    const e = caught(() => r.push(Buffer.from('POST /up HTTP/1.0\r\nContent-Length: 8388608\r\n\r\n')));
    expect(e).toBeInstanceOf(DirHttpError);
    expect(e).toMatchObject({ status: 413, reason: 'body_too_large' });
  });

  it('refuses a body that outgrows the limit without a Content-Length (response read to the end)', () => {
    const r = new HttpMessageReader({ maxBody: () => 1000, noLength: 'to-end' });
    expect(r.push(Buffer.from('HTTP/1.0 200 OK\r\n\r\n'))).toBeNull();
    expect(r.push(Buffer.alloc(1000))).toBeNull();
    expect(caught(() => r.push(Buffer.alloc(1)))).toMatchObject({ status: 413, reason: 'body_too_large' });
  });

  it('treats a request without Content-Length as bodiless (it does not wait for the stream to end)', () => {
    const r = new HttpMessageReader({ maxBody: () => 0, noLength: 'empty' });
    const msg = r.push(Buffer.from('GET /x HTTP/1.0\r\n\r\n'));
    expect(msg?.body.length).toBe(0);
  });

  it('refuses a head longer than MAX_HEAD_BYTES, with or without its blank line', () => {
    const long = Buffer.from(`GET /x HTTP/1.0\r\nX: ${'b'.repeat(MAX_HEAD_BYTES)}`);
    const open = new HttpMessageReader({ maxBody: () => 0, noLength: 'empty' });
    expect(caught(() => feed(open, long, 512))).toMatchObject({ status: 413, reason: 'head_too_large' });
    const closed = new HttpMessageReader({ maxBody: () => 0, noLength: 'empty' });
    expect(caught(() => closed.push(Buffer.concat([long, Buffer.from('\r\n\r\n')])))).toMatchObject({
      reason: 'head_too_large',
    });
  });

  it('refuses a bad or repeated Content-Length and a truncated message as 400', () => {
    const mk = () => new HttpMessageReader({ maxBody: () => 100, noLength: 'empty' });
    for (const head of [
      'Content-Length: -1',
      'Content-Length: 1e3',
      'Content-Length: 5\r\nContent-Length: 5',
    ]) {
      const e = caught(() => mk().push(Buffer.from(`POST /up HTTP/1.0\r\n${head}\r\n\r\n`)));
      expect(e, head).toMatchObject({ status: 400, reason: 'malformed' });
    }
    const r = mk();
    r.push(Buffer.from('POST /up HTTP/1.0\r\nContent-Length: 5\r\n\r\nab'));
    expect(caught(() => r.end())).toMatchObject({ status: 400, reason: 'truncated' });
    expect(caught(() => mk().end())).toMatchObject({ reason: 'truncated' });
  });
});

/** Two in-memory duplexes wired back to back, as a BEGIN_DIR stream's two ends. */
function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const side = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
    });
  ends.push(
    side(() => ends[1] as Duplex),
    side(() => ends[0] as Duplex),
  );
  return [ends[0] as Duplex, ends[1] as Duplex];
}

describe('serveDirRequest', () => {
  const limits = (req: DirRequestLine) => (req.method === 'POST' ? 50_000 : 0);

  it('answers a request within its route limit', async () => {
    const [client, server] = duplexPair();
    const served = serveDirRequest(server, (req) => ({ status: 200, body: req.body }), limits);
    const res = await dirRequest(client, { method: 'POST', path: '/up', body: Buffer.from('hello') });
    expect(res.status).toBe(200);
    expect(Buffer.from(res.body).toString()).toBe('hello');
    expect(await served).toBeNull();
  });

  it('answers 413 to an 8 MiB POST without reading it, and reports the refusal', async () => {
    const [client, server] = duplexPair();
    let handled = false;
    const served = serveDirRequest(
      server,
      () => {
        handled = true;
        return { status: 200, body: new Uint8Array(0) };
      },
      limits,
    );
    const res = await dirRequest(client, { method: 'POST', path: '/up', body: Buffer.alloc(8 << 20) });
    expect(res.status).toBe(413);
    expect(handled).toBe(false);
    expect(await served).toMatchObject({ reason: 'body_too_large' });
  });

  it('answers 413 to a GET that carries a body and 400 to a malformed request line', async () => {
    const [c1, s1] = duplexPair();
    const r1 = serveDirRequest(s1, () => ({ status: 200, body: new Uint8Array(0) }), limits);
    expect((await dirRequest(c1, { method: 'GET', path: '/x', body: Buffer.from('x') })).status).toBe(413);
    expect(await r1).toMatchObject({ reason: 'body_too_large' });
    const [c2, s2] = duplexPair();
    const r2 = serveDirRequest(s2, () => ({ status: 200, body: new Uint8Array(0) }), limits);
    c2.write('DELETE / HTTP/1.0\r\n\r\n');
    expect(await r2).toMatchObject({ status: 400, reason: 'malformed' });
  });
});
