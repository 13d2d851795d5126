/**
 * HTTP/1.0 over a BEGIN_DIR stream (dir-spec §4, rend-spec-v3 §2.2): how
 * clients fetch the consensus from a relay's directory cache and how onion
 * services publish and fetch descriptors at HSDirs, anonymously, through a
 * circuit.
 *
 * One request per stream: the server reads a request head (and a body for
 * POST, sized by Content-Length), answers with status, Content-Length and
 * body, then ends the stream. Sizes are capped on both sides.
 */
import type { Duplex } from 'node:stream';
import { ShallotError } from '../core/errors.js';

export const MAX_HEAD_BYTES = 8192;
export const MAX_DIR_BODY = 8 * 1024 * 1024;

export class DirHttpError extends ShallotError {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super('ERR_DIR_HTTP', message, { status });
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

/** Reads one head + body from a stream, resolving when complete. */
function readMessage(stream: Duplex, maxBody: number): Promise<{ head: string; body: Uint8Array }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let head: string | null = null;
    let want = -1;
    const finish = (err: Error | null, value?: { head: string; body: Uint8Array }) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
      if (err) reject(err);
      else resolve(value!);
    };
    const tryParse = (ended: boolean) => {
      if (head === null) {
        const idx = buf.indexOf('\r\n\r\n');
        if (idx < 0) {
          if (buf.length > MAX_HEAD_BYTES) return finish(new DirHttpError('request head too large', 413));
          if (ended) return finish(new DirHttpError('stream ended before the head was complete'));
          return;
        }
        head = buf.subarray(0, idx).toString('latin1');
        buf = buf.subarray(idx + 4);
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        want = m ? Number(m[1]) : -1;
        if (want > maxBody) return finish(new DirHttpError(`body of ${want} bytes exceeds ${maxBody}`, 413));
      }
      if (want >= 0 && buf.length >= want)
        return finish(null, { head, body: new Uint8Array(buf.subarray(0, want)) });
      if (buf.length > maxBody) return finish(new DirHttpError('body too large', 413));
      if (ended) {
        if (want >= 0) return finish(new DirHttpError('stream ended before the body was complete'));
        return finish(null, { head, body: new Uint8Array(buf) });
      }
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk]);
      tryParse(false);
    };
    const onEnd = () => tryParse(true);
    const onError = (e: Error) => finish(e);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  });
}

/**
 * Relay streams have no half-close (tor-spec §6.3: END closes both ways),
 * so only the server ends the stream, after its answer, as HTTP/1.0 does.
 */
function writeMessage(stream: Duplex, firstLine: string, body: Uint8Array, end: boolean): void {
  const head = `${firstLine}\r\nContent-Length: ${body.length}\r\n\r\n`;
  stream.write(Buffer.from(head, 'latin1'));
  if (body.length > 0) stream.write(body);
  if (end) stream.end();
}

/** Client side: one request on a fresh BEGIN_DIR stream. */
export async function dirRequest(
  stream: Duplex,
  req: DirRequest,
  maxBody = MAX_DIR_BODY,
): Promise<DirResponse> {
  // Errors while reading reject `response`; after it, a torn-down circuit must not throw.
  stream.on('error', () => {});
  const response = readMessage(stream, maxBody);
  writeMessage(stream, `${req.method} ${req.path} HTTP/1.0`, req.body, false);
  const { head, body } = await response;
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!m) throw new DirHttpError('malformed response status line');
  return { status: Number(m[1]), body };
}

/** Server side: reads one request, lets `handle` answer it, writes the answer. */
export async function serveDirRequest(
  stream: Duplex,
  handle: (req: DirRequest) => Promise<DirResponse> | DirResponse,
  maxBody = MAX_DIR_BODY,
): Promise<void> {
  // The client may tear its circuit down once it has the answer; that must not crash the relay.
  stream.on('error', () => {});
  let res: DirResponse;
  try {
    const { head, body } = await readMessage(stream, maxBody);
    const m = /^(GET|POST) (\/[\x21-\x7e]*) HTTP\/1\.[01]$/.exec(head.split('\r\n')[0] ?? '');
    if (!m) throw new DirHttpError('malformed request line');
    res = await handle({ method: m[1] as 'GET' | 'POST', path: m[2]!, body });
  } catch (e) {
    const status = e instanceof DirHttpError ? e.status : 500;
    res = { status, body: Buffer.from(`${(e as Error).message}\n`) };
  }
  if (stream.writable)
    writeMessage(stream, `HTTP/1.0 ${res.status} ${REASONS[res.status] ?? 'Status'}`, res.body, true);
}
