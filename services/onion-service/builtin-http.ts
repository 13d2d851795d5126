/**
 * The onion service's built-in backend: a tiny HTTP/1.1 server over any
 * Duplex (a rendezvous stream), so a testnet service needs no web server.
 *
 *   GET /               a short text
 *   GET /bytes/<n>      n deterministic bytes (see `builtinBytes`)
 *   GET /sha256/<n>     hex SHA-256 of those n bytes, so a client can check a download
 *
 * HEAD is answered like GET without a body. Requests are served in order
 * on one connection (keep-alive) until `Connection: close`, HTTP/1.0
 * without keep-alive, or the peer ends. Request bodies are refused (these
 * are all GETs), the head is capped at 8 KiB and n at 1 GiB.
 *
 * The content is a fixed 64 KiB block (SHAKE-256 of a constant string)
 * repeated, so both ends can compute it and the server needs no state.
 */
import type { Duplex } from 'node:stream';
import { utf8 } from '../core/bytes.js';
import { sha256, shake256 } from '../core/crypto.js';

export const BUILTIN_MAX_BYTES = 1 << 30;
const MAX_HEAD = 8192;
const BLOCK_LEN = 64 * 1024;
/** The repeating block of `/bytes/<n>`. */
export const BUILTIN_BLOCK: Uint8Array = shake256(BLOCK_LEN, utf8('shallot onion-service builtin bytes v1'));

/** The first n bytes of the built-in content (for tests and small n). */
export function builtinBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += BLOCK_LEN)
    out.set(BUILTIN_BLOCK.subarray(0, Math.min(BLOCK_LEN, n - off)), off);
  return out;
}

/** Hex SHA-256 of the first n bytes, hashed block by block (no n-byte buffer). */
export function builtinSha256(n: number): string {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < n; off += BLOCK_LEN)
    parts.push(BUILTIN_BLOCK.subarray(0, Math.min(BLOCK_LEN, n - off)));
  return Buffer.from(sha256(...parts)).toString('hex');
}

/** The `/` page: what serves it (the onion service's backend, or `shallot up`'s exit target), then the routes. */
const indexText = (title: string) =>
  `${title}\n` +
  'GET /bytes/<n>   n deterministic bytes (n <= 1073741824)\n' +
  'GET /sha256/<n>  hex SHA-256 of /bytes/<n>\n';

const ONION_TITLE = 'Shallot onion service (built-in backend)';

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
};

interface Request {
  method: string;
  path: string;
  keepAlive: boolean;
  bad?: number;
}

function parseHead(head: string): Request {
  const lines = head.split('\r\n');
  const m = /^([A-Z]{1,16}) (\S{1,4096}) HTTP\/1\.([01])$/.exec(lines[0] ?? '');
  if (!m) return { method: 'GET', path: '/', keepAlive: false, bad: 400 };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) return { method: m[1]!, path: m[2]!, keepAlive: false, bad: 400 };
    headers.set(
      line.slice(0, i).trim().toLowerCase(),
      line
        .slice(i + 1)
        .trim()
        .toLowerCase(),
    );
  }
  const conn = headers.get('connection') ?? '';
  const keepAlive = m[3] === '1' ? !/\bclose\b/.test(conn) : /\bkeep-alive\b/.test(conn);
  const req: Request = { method: m[1]!, path: m[2]!, keepAlive };
  // No request here has a body; rather than frame one, refuse it and close.
  const cl = headers.get('content-length');
  if (headers.has('transfer-encoding') || (cl !== undefined && cl !== '0')) {
    req.bad = 413;
    req.keepAlive = false;
  }
  return req;
}

function sizeFrom(s: string): number | null {
  if (!/^\d{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n <= BUILTIN_MAX_BYTES ? n : null;
}

/** Writes `chunk`, resolving once the stream can take more (or is gone). */
function write(stream: Duplex, chunk: Uint8Array): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.reject(new Error('stream closed'));
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('stream closed'));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}

async function respond(stream: Duplex, req: Request, title: string): Promise<void> {
  let status = 200;
  let body: Uint8Array | null = null;
  let length = 0;
  let type = 'text/plain; charset=utf-8';
  const m = /^\/(bytes|sha256)\/([^/?#]+)$/.exec(req.path);
  if (req.bad) {
    status = req.bad;
  } else if (req.method !== 'GET' && req.method !== 'HEAD') {
    status = 405;
  } else if (req.path === '/') {
    body = utf8(indexText(title));
  } else if (m) {
    const n = sizeFrom(m[2]!);
    if (n === null) status = 400;
    else if (m[1] === 'sha256') body = utf8(`${builtinSha256(n)}\n`);
    else {
      type = 'application/octet-stream';
      length = n;
    }
  } else {
    status = 404;
  }
  if (status !== 200) body = utf8(`${status} ${REASONS[status] ?? ''}\n`);
  if (body) length = body.length;
  const close = !req.keepAlive || status >= 400;
  const head =
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}\r\n` +
    `Content-Type: ${type}\r\nContent-Length: ${length}\r\n` +
    `${close ? 'Connection: close\r\n' : ''}\r\n`;
  await write(stream, Buffer.from(head, 'latin1'));
  if (req.method !== 'HEAD') {
    if (body) await write(stream, body);
    else {
      for (let off = 0; off < length; off += BLOCK_LEN) {
        await write(stream, BUILTIN_BLOCK.subarray(0, Math.min(BLOCK_LEN, length - off)));
      }
    }
  }
  if (close) throw new CloseAfterResponse();
}

class CloseAfterResponse extends Error {}

/** Serves HTTP on `stream` until it closes; never throws. `title` heads the `/` page. */
export function serveBuiltinHttp(stream: Duplex, title = ONION_TITLE): void {
  let buf: Buffer = Buffer.alloc(0);
  let busy = false;
  let ended = false;
  const finish = () => {
    stream.off('data', onData);
    if (!stream.destroyed) stream.end();
  };
  const next = (): void => {
    if (busy) return;
    const idx = buf.indexOf('\r\n\r\n');
    if (idx < 0) {
      if (buf.length > MAX_HEAD) {
        busy = true;
        respond(stream, { method: 'GET', path: '/', keepAlive: false, bad: 431 }, title).catch(finish);
      } else if (ended) finish();
      return;
    }
    const req = parseHead(buf.subarray(0, idx).toString('latin1'));
    buf = buf.subarray(idx + 4);
    busy = true;
    // Stop reading while a response is written, so pipelined requests wait their turn.
    stream.pause();
    respond(stream, req, title).then(
      () => {
        busy = false;
        stream.resume();
        next();
      },
      () => finish(),
    );
  };
  const onData = (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    next();
  };
  stream.on('data', onData);
  stream.on('end', () => {
    ended = true;
    next();
  });
  stream.on('error', () => stream.destroy());
}
