/**
 * The authority's DirPort: HTTP routes and body limits (dir-spec §3.2
 * descriptor uploads, §3.4.1 vote exchange, §3.10 detached signatures;
 * the consensus at Tor's URL).
 *
 * Routes (plain HTTP; bodies and replies are bounded):
 *   POST /tor/                                   relay descriptor upload
 *   POST /tor/post/vote                          a peer's vote
 *   POST /tor/post/consensus-signature           a peer's consensus signature
 *   GET  /tor/status-vote/current/consensus      the latest consensus (404 before one)
 *   GET  /tor/status-vote/current/consensus.z    the same, deflated (dir-spec §6.1)
 *   GET  /tor/status-vote/next/vote              own vote for the coming round
 *   GET  /tor/status-vote/next/consensus-signatures  own pending consensus + signatures
 *
 * Design notes:
 * - A body over its route's limit (by Content-Length, or counted while
 *   reading a chunked one) is refused with 400 (as C tor answers a bad
 *   upload) before it is parsed, with Connection: close; up to 1 MiB more
 *   is read and dropped so the client sees the reply, then the connection
 *   is closed. The bounded read is runtime/control-request.ts's.
 * - The consensus is served deflated (zlib, `Content-Encoding: deflate`)
 *   at the `.z` URL, and at the plain one to a client whose
 *   Accept-Encoding names deflate (dir-spec §6.1; C tor does both). It
 *   is compressed once per served document, off the event loop (zlib's
 *   thread pool), and kept until the next one: a 5,000-relay consensus
 *   is about a quarter of its size deflated (npm run bench).
 * - Refusals: a typed error (ShallotError) is a 400 with its message (503
 *   when `status` says it may succeed later); anything else is a 500 and is
 *   logged.
 *
 * Not in this module: what the documents mean (authority.ts, round.ts);
 * /metrics, /healthz and /readyz, which the shared ops server answers on the
 * ops port only (runtime/ops-server.ts via main.ts): the DirPort is reachable
 * from every exit.
 */
import * as http from 'node:http';
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import { MAX_SIGNATURE_BYTES } from '../core/dir/consensus.js';
import { MAX_DESCRIPTOR_BYTES } from '../core/dir/fields.js';
import { ShallotError } from '../core/errors.js';
import { MAX_CONSENSUS_BYTES } from '../net/dir-client.js';
import { isHeld, whileHeld } from '../net/link-faults.js';
import { readLimitedBytes } from '../runtime/control-request.js';
import type { Logger } from '../runtime/log.js';

export const DESCRIPTOR_PATH = '/tor/';
export const VOTE_PATH = '/tor/post/vote';
export const SIGNATURE_PATH = '/tor/post/consensus-signature';
export const CONSENSUS_PATH = '/tor/status-vote/current/consensus';
export const CONSENSUS_Z_PATH = `${CONSENSUS_PATH}.z`;
export const NEXT_VOTE_PATH = '/tor/status-vote/next/vote';
export const NEXT_SIGNATURES_PATH = '/tor/status-vote/next/consensus-signatures';

export const MAX_VOTE_BYTES = MAX_CONSENSUS_BYTES;
/** Bytes of an oversized body read and discarded (so the client sees the 400) before hanging up. */
const MAX_DRAIN_BYTES = 1 << 20;

const LIMITS: Record<string, number> = {
  [DESCRIPTOR_PATH]: MAX_DESCRIPTOR_BYTES,
  [VOTE_PATH]: MAX_VOTE_BYTES,
  [SIGNATURE_PATH]: MAX_SIGNATURE_BYTES,
};

export type UploadKind = 'descriptor' | 'vote' | 'signature';

/** What the routes do; the authority implements it. Handlers throw to refuse. */
export interface DirRoutes {
  /** Returns the reply text. */
  upload(kind: UploadKind, body: Uint8Array): string;
  /** Counts and logs a refused upload; `e` is from reading the body or from `upload`. */
  refused(kind: UploadKind, e: unknown, stage: 'body' | 'document'): void;
  consensus(): Uint8Array | null;
  nextVote(): Uint8Array | null;
  nextSignatures(): Uint8Array | null;
}

/** An HTTP refusal that is not a document's fault (size, transport). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The request body was not read to the end (oversized). */
    readonly unread = false,
  ) {
    super(message);
  }
}

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };
const OCTETS = { 'content-type': 'application/json' };

const kindOf = (path: string): UploadKind | undefined =>
  path === DESCRIPTOR_PATH
    ? 'descriptor'
    : path === VOTE_PATH
      ? 'vote'
      : path === SIGNATURE_PATH
        ? 'signature'
        : undefined;

const deflateAsync = promisify(deflate);
/** The deflated form of each served consensus, made once (keyed by the served bytes, so it goes with them). */
const deflated = new WeakMap<Uint8Array, Promise<Buffer>>();

function deflatedOf(doc: Uint8Array): Promise<Buffer> {
  let z = deflated.get(doc);
  if (!z) {
    z = deflateAsync(doc);
    deflated.set(doc, z);
  }
  return z;
}

/** Whether an Accept-Encoding header names deflate (with a q-value other than 0). */
export function acceptsDeflate(header: string | undefined): boolean {
  return (header ?? '').split(',').some((part) => {
    const [coding, ...ps] = part.trim().toLowerCase().split(';');
    return coding === 'deflate' && !ps.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p));
  });
}

/**
 * A DirPort server (not listening yet) answering `routes`, with C tor-like
 * header and request timeouts. With `node` (its link-fault name), a pause
 * fault on it holds every request unanswered, connection open, until the
 * pause ends (net/link-faults.ts whileHeld), as a hung process would; a kill
 * meanwhile resets the held connections.
 */
export function createDirServer(routes: DirRoutes, log: Logger, node?: string): http.Server {
  const server = http.createServer((req, res) => {
    if (node === undefined || !isHeld(node, null)) return handle(routes, log, req, res);
    void whileHeld(node, null, () => req.socket.destroy()).then(() => handle(routes, log, req, res));
  });
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  return server;
}

function handle(routes: DirRoutes, log: Logger, req: http.IncomingMessage, res: http.ServerResponse) {
  const path = (req.url ?? '/').split('?')[0]!;
  const reply = (status: number, body: string | Uint8Array, headers: Record<string, string> = TEXT) => {
    if (res.headersSent) return;
    const b =
      typeof body === 'string'
        ? Buffer.from(`${body}\n`)
        : Buffer.from(body.buffer, body.byteOffset, body.length);
    res.writeHead(status, { ...headers, 'content-length': b.length }).end(b);
  };
  const fail = (e: unknown) => {
    if (e instanceof HttpError) return reply(e.status, e.message);
    // A refusal may carry its HTTP status (503: try again later).
    if (e instanceof ShallotError)
      return reply('status' in e && typeof e.status === 'number' ? e.status : 400, e.message);
    log.error('request failed', { path, error: (e as Error).message });
    return reply(500, 'internal error');
  };
  if (req.method === 'POST') {
    const kind = kindOf(path);
    if (kind === undefined) return reply(404, 'not found');
    readBody(req, LIMITS[path]!).then(
      (body) => {
        try {
          return reply(200, routes.upload(kind, body));
        } catch (e) {
          routes.refused(kind, e, 'document');
          return fail(e);
        }
      },
      (e: unknown) => {
        routes.refused(kind, e, 'body');
        // Left unread, the body's rest would be taken for the next request: this reply ends the connection.
        if (e instanceof HttpError && e.unread) res.setHeader('connection', 'close');
        fail(e);
        if (e instanceof HttpError && e.unread) drainThenClose(req);
      },
    );
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed');
  const serve = (doc: Uint8Array | null, missing: string) =>
    doc ? reply(200, doc, OCTETS) : reply(404, missing);
  switch (path) {
    case CONSENSUS_PATH:
    case CONSENSUS_Z_PATH: {
      const doc = routes.consensus();
      if (!doc || (path === CONSENSUS_PATH && !acceptsDeflate(req.headers['accept-encoding'])))
        return serve(doc, 'no consensus yet');
      deflatedOf(doc).then(
        (z) => reply(200, z, { ...OCTETS, 'content-encoding': 'deflate' }),
        (e: unknown) => fail(e),
      );
      return;
    }
    case NEXT_VOTE_PATH:
      return serve(routes.nextVote(), 'no vote yet');
    case NEXT_SIGNATURES_PATH:
      return serve(routes.nextSignatures(), 'no pending consensus');
    default:
      return reply(404, 'not found');
  }
}

/**
 * Reads a request body of at most `limit` bytes (runtime/control-request.ts,
 * shared with the fault endpoints). Beyond that it rejects with HttpError
 * 400 (as Tor answers a bad upload) marked `unread`; a body cut short by
 * the client is a 400 too (its reply may never arrive).
 */
async function readBody(req: http.IncomingMessage, limit: number): Promise<Uint8Array> {
  let body: Buffer | null;
  try {
    body = await readLimitedBytes(req, limit);
  } catch (e) {
    throw new HttpError(400, (e as Error).message);
  }
  if (body === null) throw new HttpError(400, `body exceeds ${limit} bytes`, true);
  return new Uint8Array(body.buffer, body.byteOffset, body.length);
}

/** Discards the rest of an oversized upload (up to a cap) so the client reads our 400, then hangs up. */
function drainThenClose(req: http.IncomingMessage): void {
  let seen = 0;
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > MAX_DRAIN_BYTES) req.socket.destroy();
  });
  req.resume();
}
