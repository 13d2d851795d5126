// The authority's DirPort body handling (services/directory/http.ts, dir-spec
// §3.2 uploads) over real HTTP on 127.0.0.1, with recording routes in
// place of an authority: a body at the limit is handed on whole, plain or
// chunked; one over it — by Content-Length, or while reading a chunked one
// — is refused with 400 (as C tor answers a bad upload) before any route
// sees it and the connection is closed; a body the client cuts short is
// never handed on as a short one; garbage framing gets Node's 400; the
// server keeps serving throughout.
import type * as http from 'node:http';
import * as net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_DESCRIPTOR_BYTES } from '../../services/core/dir/fields.js';
import {
  createDirServer,
  type DirRoutes,
  type UploadKind,
  VOTE_PATH,
} from '../../services/directory/http.js';
import { silentLogger } from '../../services/runtime/log.js';

const uploads: { kind: UploadKind; body: Buffer }[] = [];
const refusals: { kind: UploadKind; stage: string; message: string }[] = [];
const routes: DirRoutes = {
  upload(kind, body) {
    uploads.push({ kind, body: Buffer.from(body) });
    return 'ok';
  },
  refused(kind, e, stage) {
    refusals.push({ kind, stage, message: (e as Error).message });
  },
  consensus: () => null,
  nextVote: () => null,
  nextSignatures: () => null,
};

let server: http.Server;
let port: number;

beforeAll(async () => {
  server = createDirServer(routes, silentLogger);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  uploads.length = 0;
  refusals.length = 0;
});

/** Writes raw bytes, half-closes if `end`, and returns what came back before the server closed (or `ms` passed). */
function raw(bytes: string | Buffer, opts: { end?: boolean; ms?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, opts.ms ?? 3_000);
    sock.on('data', (d) => {
      got += d.toString('latin1');
    });
    sock.on('close', done);
    sock.on('error', done);
    sock.on('connect', () => (opts.end === false ? sock.write(bytes) : sock.end(bytes)));
  });
}

const post = (path: string, body: Buffer) =>
  raw(
    Buffer.concat([
      Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`),
      body,
    ]),
  );

const chunked = (path: string, chunks: Buffer[]) =>
  raw(
    Buffer.concat([
      Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`),
      ...chunks.flatMap((c) => [Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]),
      Buffer.from('0\r\n\r\n'),
    ]),
  );

async function stillServing(): Promise<void> {
  const body = Buffer.from('still here');
  expect(await post('/tor/', body)).toMatch(/^HTTP\/1\.1 200/);
  expect(uploads.at(-1)?.body.equals(body)).toBe(true);
}

describe('DirPort bodies', () => {
  it('hands on a body of exactly the limit, plain and chunked, byte for byte', async () => {
    const body = Buffer.alloc(MAX_DESCRIPTOR_BYTES, 0x41);
    body[0] = 0x7b;
    expect(await post('/tor/', body)).toMatch(/^HTTP\/1\.1 200/);
    const pieces = [body.subarray(0, 7), body.subarray(7, 10_000), body.subarray(10_000)];
    expect(await chunked('/tor/', pieces)).toMatch(/^HTTP\/1\.1 200/);
    expect(uploads.map((u) => u.kind)).toEqual(['descriptor', 'descriptor']);
    expect(uploads.every((u) => u.body.equals(body))).toBe(true);
  });

  it('refuses a body over the limit by its Content-Length with 400 before reading it, and hangs up', async () => {
    const reply = await raw(
      `POST /tor/ HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_DESCRIPTOR_BYTES + 1}\r\n\r\nxx`,
      { end: false },
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toMatch(/exceeds 20000 bytes/);
    expect(reply.toLowerCase()).toMatch(/connection: close/);
    expect(uploads).toEqual([]);
    expect(refusals).toEqual([{ kind: 'descriptor', stage: 'body', message: 'body exceeds 20000 bytes' }]);
    // A huge declared length (a vote route's limit is megabytes) is refused as fast.
    expect(await raw(`POST ${VOTE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 400/,
    );
    // Sent in full anyway (600 KB): read and dropped, so the client sees the 400 rather than a reset.
    expect(await post('/tor/', Buffer.alloc(600_000, 0x20))).toMatch(/^HTTP\/1\.1 400/);
    expect(uploads).toEqual([]);
    await stillServing();
  });

  it('refuses a chunked body once it passes the limit, with 400, and hangs up', async () => {
    const pieces = Array.from({ length: 5 }, () => Buffer.alloc(5_000, 0x20));
    const reply = await chunked('/tor/', pieces);
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply.toLowerCase()).toMatch(/connection: close/);
    expect(uploads).toEqual([]);
    expect(refusals.map((r) => r.stage)).toEqual(['body']);
    await stillServing();
  });

  it('never hands on a body the client cut short (Content-Length promised more, then the client went away)', async () => {
    const reply = await raw(`POST /tor/ HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"nickname":`);
    expect(reply).toMatch(/^$|^HTTP\/1\.1 400/);
    // Give the server the moment it needs to see the hang-up.
    for (let i = 0; i < 50 && refusals.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(uploads).toEqual([]);
    expect(refusals.map((r) => r.stage)).toEqual(['body']);
    // A chunked body that stops mid-chunk, likewise.
    await raw(`POST /tor/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc`);
    for (let i = 0; i < 50 && refusals.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(uploads).toEqual([]);
    expect(refusals.map((r) => r.stage)).toEqual(['body', 'body']);
    await stillServing();
  });

  it('answers garbage framing with 400 (bad chunk size, negative or doubled length, a TLS hello) and lives on', async () => {
    for (const req of [
      'POST /tor/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      'POST /tor/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
      'POST /tor/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
      '\x16\x03\x01\x00\xff garbage\r\n\r\n',
    ]) {
      expect(await raw(req), JSON.stringify(req.slice(0, 40))).toMatch(/^HTTP\/1\.1 400|^$/);
    }
    expect(uploads).toEqual([]);
    await stillServing();
  });
});
