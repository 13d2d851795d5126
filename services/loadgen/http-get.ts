/**
 * One HTTP/1.1 GET over an already-connected stream (a SOCKS connection
 * through Shallot), timing the first and last response byte and hashing
 * the body as it arrives.
 *
 * Overview: writes `GET <path> HTTP/1.1` with `Connection: close`, parses
 * the status line and headers (head capped at 16 KiB), then reads the body
 * framed by Content-Length, chunked transfer coding, or the end of the
 * stream. Nothing is buffered beyond the head unless `keepBody` is set
 * (small bodies such as /sha256/<n>).
 *
 * Not in this module: keep-alive and pipelining (each load request is its
 * own stream, as OnionPerf's are), redirects, request bodies.
 */
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { sha256Incremental } from '../core/crypto.js';

export type HttpErrorKind = 'short_read' | 'bad_response' | 'connection_error' | 'aborted';

export class HttpGetError extends Error {
  constructor(
    readonly kind: HttpErrorKind,
    message: string,
    /** Body bytes received before the failure. */
    readonly bodyBytes = 0,
    /** Whether any response byte had arrived. */
    readonly gotFirstByte = false,
  ) {
    super(message);
    this.name = 'HttpGetError';
  }
}

export interface HttpGetOptions {
  /** Host header value. */
  host: string;
  path: string;
  signal?: AbortSignal;
  /** Hash the body with SHA-256 (hex in the result). */
  hash?: boolean;
  /** Keep up to this many body bytes in `body`. */
  keepBody?: number;
}

export interface HttpGetResult {
  status: number;
  headers: Map<string, string>;
  bodyBytes: number;
  /** Hex SHA-256 of the body, when requested. */
  sha256?: string;
  body?: Buffer;
  /** performance.now() timestamps, ms. */
  requestSentAt: number;
  firstByteAt: number;
  lastByteAt: number;
}

const MAX_HEAD = 16 * 1024;

interface Head {
  status: number;
  headers: Map<string, string>;
}

/** Parses a response head (without the final CRLFCRLF); null when malformed. */
export function parseResponseHead(head: string): Head | null {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) return null;
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/** Decodes chunked transfer coding incrementally (RFC 9112 §7.1); trailers are skipped. */
class ChunkedDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'size';

  get done(): boolean {
    return this.state === 'done';
  }

  /** Feeds bytes; returns the body bytes they carried. Throws on bad framing. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.state === 'size' || this.state === 'trailer') {
        const i = this.buf.indexOf('\r\n');
        if (i < 0) {
          if (this.buf.length > 1024) throw new Error('chunk header too long');
          return out;
        }
        const line = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        if (this.state === 'trailer') {
          if (line === '') {
            this.state = 'done';
            return out;
          }
          continue;
        }
        const m = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line.trim());
        if (!m) throw new Error('bad chunk size');
        this.remaining = Number.parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (this.state === 'data') {
        if (this.buf.length === 0) return out;
        const n = Math.min(this.remaining, this.buf.length);
        out.push(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'data-crlf';
      } else if (this.state === 'data-crlf') {
        if (this.buf.length < 2) return out;
        if (this.buf[0] !== 13 || this.buf[1] !== 10) throw new Error('chunk not followed by CRLF');
        this.buf = this.buf.subarray(2);
        this.state = 'size';
      } else {
        return out;
      }
    }
  }
}

/** Sends the GET on `stream` and reads the response; the stream is left for the caller to destroy. */
export function httpGet(stream: Duplex, o: HttpGetOptions): Promise<HttpGetResult> {
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    let parsed: Head | null = null;
    let firstByteAt = 0;
    let bodyBytes = 0;
    let expected: number | null = null;
    let chunked: ChunkedDecoder | null = null;
    let settled = false;
    const hasher = o.hash ? sha256Incremental() : null;
    const kept: Buffer[] = [];
    let keptBytes = 0;

    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
      o.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (kind: HttpErrorKind, msg: string) => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(new HttpGetError(kind, msg, bodyBytes, firstByteAt > 0));
    };
    const succeed = () => {
      if (settled || !parsed) return;
      settled = true;
      cleanup();
      const res: HttpGetResult = {
        status: parsed.status,
        headers: parsed.headers,
        bodyBytes,
        requestSentAt,
        firstByteAt,
        lastByteAt: performance.now(),
      };
      if (hasher) res.sha256 = Buffer.from(hasher.digest()).toString('hex');
      if (o.keepBody !== undefined) res.body = Buffer.concat(kept);
      resolve(res);
    };
    const body = (b: Buffer) => {
      if (b.length === 0) return;
      bodyBytes += b.length;
      hasher?.update(b);
      if (o.keepBody !== undefined && keptBytes < o.keepBody) {
        const part = b.subarray(0, o.keepBody - keptBytes);
        kept.push(Buffer.from(part));
        keptBytes += part.length;
      }
    };
    const onBody = (b: Buffer) => {
      if (chunked) {
        let parts: Buffer[];
        try {
          parts = chunked.push(b);
        } catch (e) {
          fail('bad_response', (e as Error).message);
          return;
        }
        for (const p of parts) body(p);
        if (chunked.done) succeed();
        return;
      }
      if (expected !== null) {
        const room = expected - bodyBytes;
        body(b.subarray(0, room));
        if (bodyBytes >= expected) succeed();
        return;
      }
      body(b);
    };
    const onData = (d: Buffer) => {
      if (settled) return;
      if (firstByteAt === 0) firstByteAt = performance.now();
      if (parsed) {
        onBody(d);
        return;
      }
      head = head.length === 0 ? d : Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) fail('bad_response', 'response head too long');
        return;
      }
      parsed = parseResponseHead(head.subarray(0, end).toString('latin1'));
      if (!parsed) {
        fail('bad_response', 'malformed response head');
        return;
      }
      const te = parsed.headers.get('transfer-encoding');
      const cl = parsed.headers.get('content-length');
      if (te && /chunked/i.test(te)) chunked = new ChunkedDecoder();
      else if (cl !== undefined) {
        if (!/^\d{1,15}$/.test(cl)) {
          fail('bad_response', 'bad Content-Length');
          return;
        }
        expected = Number(cl);
      }
      const rest = head.subarray(end + 4);
      head = Buffer.alloc(0);
      if (expected === 0) succeed();
      else if (rest.length > 0) onBody(rest);
    };
    const onEnd = () => {
      if (settled) return;
      if (!parsed) fail('short_read', 'stream ended before the response head');
      else if (chunked) fail('short_read', 'stream ended inside a chunked body');
      else if (expected !== null && bodyBytes < expected)
        fail('short_read', `stream ended after ${bodyBytes} of ${expected} body bytes`);
      else succeed();
    };
    const onError = (e: Error) => fail('connection_error', e.message);
    const onAbort = () => fail('aborted', 'aborted');

    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
    if (o.signal?.aborted) {
      onAbort();
      return;
    }
    o.signal?.addEventListener('abort', onAbort, { once: true });
    stream.write(
      `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}\r\nUser-Agent: shallot-load\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
    );
    const requestSentAt = performance.now();
    stream.resume();
  });
}
