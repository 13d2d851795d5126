// The HTTP response reader over a fake stream: framing by Content-Length,
// chunked coding and end of stream, body hashing, and broken responses.
import { createHash } from 'node:crypto';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HttpGetError, httpGet, parseResponseHead } from '../../../services/loadgen/http-get.js';

/** A stream that answers the first write with `chunks` (then ends unless `end` is false). */
function fakeServer(chunks: (string | Buffer)[], end = true): { stream: Duplex; sent: string[] } {
  const sent: string[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      sent.push(chunk.toString('latin1'));
      setImmediate(() => {
        for (const c of chunks) stream.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
        if (end) stream.push(null);
      });
      cb();
    },
  });
  return { stream, sent };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('httpGet', () => {
  it('sends one GET with Host and Connection: close, reads a Content-Length body split anywhere', async () => {
    const body = Buffer.from('hello, onion world');
    const { stream, sent } = fakeServer([
      'HTTP/1.1 200 OK\r\nContent-Le',
      'ngth: 18\r\n\r\nhello, ',
      'onion world',
    ]);
    const res = await httpGet(stream, { host: 'x.onion', path: '/bytes/18', hash: true, keepBody: 5 });
    expect(sent.join('')).toMatch(
      /^GET \/bytes\/18 HTTP\/1\.1\r\nHost: x\.onion\r\n.*Connection: close\r\n\r\n$/s,
    );
    expect(res.status).toBe(200);
    expect(res.bodyBytes).toBe(18);
    expect(res.sha256).toBe(sha(body));
    expect(res.body?.toString()).toBe('hello');
    expect(res.firstByteAt).toBeGreaterThanOrEqual(res.requestSentAt);
    expect(res.lastByteAt).toBeGreaterThanOrEqual(res.firstByteAt);
  });

  it('stops at Content-Length even if the peer sends more and does not end', async () => {
    const { stream } = fakeServer(['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef'], false);
    const res = await httpGet(stream, { host: 'h', path: '/', hash: true });
    expect(res.bodyBytes).toBe(3);
    expect(res.sha256).toBe(sha(Buffer.from('abc')));
  });

  it('decodes chunked bodies (extensions and trailers too)', async () => {
    const { stream } = fakeServer([
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
      '5;ext=1\r\nhel',
      'lo\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n',
    ]);
    const res = await httpGet(stream, { host: 'h', path: '/', keepBody: 100 });
    expect(res.body?.toString()).toBe('hello world');
  });

  it('reads to the end of stream without a length', async () => {
    const { stream } = fakeServer(['HTTP/1.0 200 OK\r\n\r\n', 'abc', 'def']);
    expect((await httpGet(stream, { host: 'h', path: '/' })).bodyBytes).toBe(6);
  });

  it('returns non-200 statuses (the caller decides) and empty bodies', async () => {
    const { stream } = fakeServer(['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'], false);
    const res = await httpGet(stream, { host: 'h', path: '/' });
    expect(res.status).toBe(404);
    expect(res.bodyBytes).toBe(0);
  });

  const broken: [string, (string | Buffer)[], string][] = [
    ['a body cut short', ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], 'short_read'],
    ['no response at all', [], 'short_read'],
    ['a head cut short', ['HTTP/1.1 200 OK\r\nContent-'], 'short_read'],
    [
      'a chunked body cut short',
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'],
      'short_read',
    ],
    ['a non-HTTP answer', ['SSH-2.0-OpenSSH\r\n\r\n'], 'bad_response'],
    ['a bad header line', ['HTTP/1.1 200 OK\r\nnocolon\r\n\r\n'], 'bad_response'],
    ['a bad Content-Length', ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'], 'bad_response'],
    ['a bad chunk size', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'], 'bad_response'],
    ['an endless head', [`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`], 'bad_response'],
  ];
  for (const [what, chunks, kind] of broken) {
    it(`fails with ${kind} on ${what}`, async () => {
      const { stream } = fakeServer(chunks);
      const err = await httpGet(stream, { host: 'h', path: '/' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpGetError);
      expect((err as HttpGetError).kind).toBe(kind);
    });
  }

  it('reports body bytes received before a short read', async () => {
    const { stream } = fakeServer(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd']);
    const err = (await httpGet(stream, { host: 'h', path: '/' }).catch((e: unknown) => e)) as HttpGetError;
    expect(err.bodyBytes).toBe(4);
    expect(err.gotFirstByte).toBe(true);
  });

  it('fails with aborted when the signal fires, and with connection_error on a stream error', async () => {
    const { stream } = fakeServer([], false);
    const ac = new AbortController();
    const p = httpGet(stream, { host: 'h', path: '/', signal: ac.signal });
    ac.abort();
    expect(((await p.catch((e: unknown) => e)) as HttpGetError).kind).toBe('aborted');
    const s2 = fakeServer([], false).stream;
    const p2 = httpGet(s2, { host: 'h', path: '/' });
    s2.destroy(new Error('reset'));
    expect(((await p2.catch((e: unknown) => e)) as HttpGetError).kind).toBe('connection_error');
  });

  it('parseResponseHead', () => {
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nA: b')?.headers.get('a')).toBe('b');
    expect(parseResponseHead('HTTP/1.1 204')?.status).toBe(204);
    expect(parseResponseHead('HTTP/2 200 OK')).toBeNull();
  });
});
