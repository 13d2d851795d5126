/**
 * HTTP/1.0 over a BEGIN_DIR stream (dir-spec §4, rend-spec-v3 §2.2): how
 * clients fetch the consensus from a relay's directory cache and how onion
 * services publish and fetch descriptors at HSDirs, anonymously, through a
 * circuit.
 *
 * Overview: one request per stream. The server reads a request head, then
 * a body of exactly Content-Length bytes (no Content-Length: no body, as
 * for any HTTP request), answers with status, Content-Length and body, then
 * ends the stream. The client reads the answer's body up to Content-Length
 * or, without one, to the end of the stream (HTTP/1.0).
 *
 * Design notes: `HttpMessageReader` collects a message in time linear in
 * its size — a list of chunks, joined once when complete — because a
 * relay stream delivers at most 498 bytes per DATA cell: joining per chunk
 * made an 8 MiB POST cost ~17,000 copies of a growing buffer (issue 12).
 * Limits are checked while reading, before anything is kept: the head
 * against `MAX_HEAD_BYTES`, the declared body against the limit the route
 * sets for that method and path (the server) or the caller's (the client).
 * A refused request is answered 413 (too large) or 400 (malformed) and the
 * stream is ended, so the rest of the upload is dropped unread (tor-spec
 * §6.3: DATA for a closed stream is discarded).
 *
 * Not in this module: the routes (relay/node.ts, relay/onion-roles.ts) and
 * what each may take (relay/relay.ts `beginDir`).
 */
import type { Duplex } from 'node:stream';
import { ShallotError } from '../core/errors.js';

/**
 * Request or response head. C tor allows MAX_HEADERS_SIZE = 50000; every
 * Shallot head is one line plus Content-Length, so 8 KiB is ample.
 */
export const MAX_HEAD_BYTES = 8192;
/** Default body cap for callers that give none (C tor MAX_DIRECTORY_OBJECT_SIZE is 10 MiB). */
export const MAX_DIR_BODY = 8 * 1024 * 1024;

/** Why a message was refused; the relay counts refusals by it. */
export type DirHttpRefusal = 'head_too_large' | 'body_too_large' | 'malformed' | 'truncated';

export class DirHttpError extends ShallotError {
  constructor(
    message: string,
    readonly status = 400,
    readonly reason: DirHttpRefusal = 'malformed',
  ) {
    super('ERR_DIR_HTTP', message, { status, reason });
  }
}

export interface DirRequest {
  method: 'GET' | 'POST';
  path: string;
  body: Uint8Array;
}

export interface DirResponse {
  status: number;
  body: Uint8Array;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Too Large',
  500: 'Error',
};

const HEAD_END = Buffer.from('\r\n\r\n');

export interface HttpMessage {
  head: string;
  body: Uint8Array;
}

/**
 * One HTTP message assembled from chunks: `push` each chunk as it arrives,
 * `end` when the stream ends. Both return the message once it is complete
 * (null while more is needed) and throw DirHttpError on a limit or a
 * malformed head. Total work is linear in the bytes pushed.
 */
export class HttpMessageReader {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Set once the blank line is found: the head, and the body length wanted (-1: until the end). */
  private head: string | null = null;
  private want = -1;
  private maxBody = 0;
  /** Up to 3 bytes before the current chunk, so a "\r\n\r\n" split across chunks is found. */
  private carry = Buffer.alloc(0);

  constructor(
    private readonly o: {
      /** The body cap, decided from the head (e.g. by method and path); may throw DirHttpError. */
      maxBody: (head: string) => number;
      /** A message without Content-Length: a request has no body, a response runs to the stream's end. */
      noLength: 'empty' | 'to-end';
    },
  ) {}

  push(chunk: Buffer): HttpMessage | null {
    if (this.head === null) return this.pushHead(chunk);
    this.keep(chunk);
    return this.complete();
  }

  end(): HttpMessage {
    if (this.head === null)
      throw new DirHttpError('stream ended before the head was complete', 400, 'truncated');
    const done = this.complete();
    if (done) return done;
    if (this.want >= 0) throw new DirHttpError('stream ended before the body was complete', 400, 'truncated');
    return { head: this.head, body: this.joined() };
  }

  private pushHead(chunk: Buffer): HttpMessage | null {
    const window = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const at = window.indexOf(HEAD_END);
    if (at < 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
      if (this.length > MAX_HEAD_BYTES)
        throw new DirHttpError(`head longer than ${MAX_HEAD_BYTES} bytes`, 413, 'head_too_large');
      this.carry = Buffer.from(window.subarray(Math.max(0, window.length - 3)));
      return null;
    }
    // The head ends `at - carry.length` bytes into this chunk (negative: inside the carried bytes).
    const cut = at - this.carry.length;
    const headBytes = Buffer.concat([...this.chunks, chunk.subarray(0, Math.max(0, cut))]);
    const headLength = this.length + cut;
    if (headLength > MAX_HEAD_BYTES)
      throw new DirHttpError(`head longer than ${MAX_HEAD_BYTES} bytes`, 413, 'head_too_large');
    this.head = headBytes.subarray(0, headLength).toString('latin1');
    this.chunks = [];
    this.length = 0;
    this.carry = Buffer.alloc(0);
    this.maxBody = this.o.maxBody(this.head);
    this.want = this.declaredLength(this.head);
    if (this.want > this.maxBody)
      throw new DirHttpError(`body of ${this.want} bytes exceeds ${this.maxBody}`, 413, 'body_too_large');
    const rest = chunk.subarray(cut + HEAD_END.length);
    if (rest.length > 0) this.keep(rest);
    return this.complete();
  }

  private declaredLength(head: string): number {
    const all = [...head.matchAll(/\r\ncontent-length:[ \t]*([^\r]*)/gi)];
    if (all.length === 0) return this.o.noLength === 'empty' ? 0 : -1;
    const value = all[0]![1]!.trim();
    if (all.length > 1 || !/^\d{1,10}$/.test(value)) throw new DirHttpError('bad Content-Length');
    return Number(value);
  }

  private keep(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length > this.maxBody)
      throw new DirHttpError(`body exceeds ${this.maxBody} bytes`, 413, 'body_too_large');
  }

  private complete(): HttpMessage | null {
    if (this.head === null || this.want < 0 || this.length < this.want) return null;
    return { head: this.head, body: this.joined().subarray(0, this.want) };
  }

  private joined(): Uint8Array {
    const all = Buffer.concat(this.chunks, this.length);
    return new Uint8Array(all.buffer, all.byteOffset, all.length);
  }
}

/** Reads one message from a stream with `reader`, resolving when complete. */
function readMessage(stream: Duplex, reader: HttpMessageReader): Promise<HttpMessage> {
  return new Promise((resolve, reject) => {
    const finish = (err: Error | null, value?: HttpMessage) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      if (err) reject(err);
      else resolve(value as HttpMessage);
    };
    const attempt = (step: () => HttpMessage | null) => {
      try {
        const msg = step();
        if (msg) finish(null, msg);
      } catch (e) {
        finish(e as Error);
      }
    };
    const onData = (chunk: Buffer) => attempt(() => reader.push(chunk));
    const onEnd = () => attempt(() => reader.end());
    const onError = (e: Error) => finish(e);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  });
}

/**
 * Relay streams have no half-close (tor-spec §6.3: END closes both ways),
 * so only the server ends the stream, after its answer, as HTTP/1.0 does,
 * and then forgets it: whatever the client still sends is dropped.
 */
function writeMessage(stream: Duplex, firstLine: string, body: Uint8Array, end: boolean): void {
  const head = `${firstLine}\r\nContent-Length: ${body.length}\r\n\r\n`;
  stream.write(Buffer.from(head, 'latin1'));
  if (body.length > 0) stream.write(body);
  if (end) stream.end(() => stream.destroy());
}

/** Client side: one request on a fresh BEGIN_DIR stream; the answer's body may be at most `maxBody` bytes. */
export async function dirRequest(
  stream: Duplex,
  req: DirRequest,
  maxBody = MAX_DIR_BODY,
): Promise<DirResponse> {
  // Errors while reading reject `response`; after it, a torn-down circuit must not throw.
  stream.on('error', () => {});
  const response = readMessage(stream, new HttpMessageReader({ maxBody: () => maxBody, noLength: 'to-end' }));
  writeMessage(stream, `${req.method} ${req.path} HTTP/1.0`, req.body, false);
  const { head, body } = await response;
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!m) throw new DirHttpError('malformed response status line');
  return { status: Number(m[1]), body };
}

/** A request line: method and path (the route decides the body cap from them). */
export type DirRequestLine = Pick<DirRequest, 'method' | 'path'>;

function parseRequestLine(head: string): DirRequestLine {
  const m = /^(GET|POST) (\/[\x21-\x7e]*) HTTP\/1\.[01]$/.exec(head.split('\r\n')[0] ?? '');
  if (!m) throw new DirHttpError('malformed request line');
  return { method: m[1] as DirRequest['method'], path: m[2] as string };
}

/**
 * Server side: reads one request, lets `handle` answer it, writes the
 * answer and ends the stream. `maxBody` gives the body cap for a request
 * line. Resolves with the refusal when the request broke a limit or was
 * malformed (it was answered 413/400), null otherwise.
 */
export async function serveDirRequest(
  stream: Duplex,
  handle: (req: DirRequest) => Promise<DirResponse> | DirResponse,
  maxBody: (req: DirRequestLine) => number,
): Promise<DirHttpError | null> {
  // The client may tear its circuit down once it has the answer; that must not crash the relay.
  stream.on('error', () => {});
  let res: DirResponse;
  let refusal: DirHttpError | null = null;
  try {
    const reader = new HttpMessageReader({
      maxBody: (head) => maxBody(parseRequestLine(head)),
      noLength: 'empty',
    });
    const { head, body } = await readMessage(stream, reader);
    res = await handle({ ...parseRequestLine(head), body });
  } catch (e) {
    if (e instanceof DirHttpError) refusal = e;
    res = { status: refusal?.status ?? 500, body: Buffer.from(`${(e as Error).message}\n`) };
  }
  if (stream.writable)
    writeMessage(stream, `HTTP/1.0 ${res.status} ${REASONS[res.status] ?? 'Status'}`, res.body, true);
  return refusal;
}
