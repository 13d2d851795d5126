/**
 * Talking to directory authorities over plain HTTP (dir-spec §4-§5, on the
 * DirPort): relays upload their descriptor to every authority
 * (`POST /tor/`, dir-spec §4.3 "uploading server descriptors"), and
 * bootstrapping clients and relays fetch the consensus
 * (`GET /tor/status-vote/current/consensus`, dir-spec §5.2).
 *
 * Design notes:
 * - Authorities are addressed by URL and pinned by Ed25519 identity: a
 *   consensus is only accepted if more than half of the configured
 *   authorities signed it (verifyConsensus), so a lying or broken authority
 *   cannot feed a client a document of its own making.
 * - Every request has a timeout and every response body a size cap, so an
 *   unresponsive or hostile authority costs bounded time and memory; the
 *   client then moves on to the next authority (random order, as Tor's
 *   clients spread the load over the directory mirrors).
 * - The consensus is asked for deflated (`Accept-Encoding: deflate`,
 *   dir-spec §6.1) and inflated with its output bounded while inflating:
 *   at most MAX_CONSENSUS_BYTES, and at most C tor's 25 times the
 *   compressed size past 64 KiB (tor_compress_is_compression_bomb), so a
 *   zip bomb costs neither memory nor time. An authority that answers
 *   uncompressed is read as before.
 * - Failures are typed (DirClientError) and list what went wrong per
 *   authority, for logs and for tests.
 */
import * as http from 'node:http';
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import { toHex } from '../core/bytes.js';
import { type Rng, randomBytes } from '../core/crypto.js';
import { type Consensus, verifyConsensus } from '../core/dir/consensus.js';
import { InvalidError, ShallotError } from '../core/errors.js';
import { shuffled } from '../core/random.js';

export interface AuthorityEndpoint {
  /** Lowercase hex Ed25519 identity. */
  identity: string;
  /** Base URL, e.g. http://127.0.0.1:7000 */
  url: string;
}

/**
 * The consensus limit, on the wire and inflated (C tor MAX_DIR_DL_SIZE is
 * 8 MiB compressed). A relay entry is about 460 bytes (npm run bench: 2.2 MiB
 * for 5,000 relays), so MAX_RELAYS (10,000) fit inflated.
 */
export const MAX_CONSENSUS_BYTES = 8 << 20;
/** C tor compress.c MAX_UNCOMPRESSION_FACTOR and CHECK_FOR_COMPRESSION_BOMB_AFTER. */
export const MAX_UNCOMPRESSION_FACTOR = 25;
export const CHECK_FOR_COMPRESSION_BOMB_AFTER = 64 * 1024;
/** Small replies (status lines, error text) to a descriptor upload. */
const MAX_SMALL_REPLY = 64 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;

export const CONSENSUS_PATH = '/tor/status-vote/current/consensus';
export const DESCRIPTOR_PATH = '/tor/';

/** One authority's failure in a DirClientError. */
export interface DirFailure {
  url: string;
  error: string;
}

/** A directory request that failed at every authority tried. */
export class DirClientError extends ShallotError {
  constructor(
    message: string,
    readonly failures: DirFailure[],
  ) {
    super('ERR_DIR_CLIENT', `${message}: ${failures.map((f) => `${f.url}: ${f.error}`).join('; ')}`, {
      failures: failures.length,
    });
  }
}

/** A single HTTP exchange failed (network, timeout, status, size). */
export class DirHttpRequestError extends ShallotError {
  constructor(
    readonly url: string,
    message: string,
    readonly status?: number,
  ) {
    super('ERR_DIR_HTTP_REQUEST', `${url}: ${message}`, { url, status });
  }
}

export interface HttpResult {
  status: number;
  /** Inflated when it came deflated. */
  body: Uint8Array;
  /** Bytes on the wire. */
  wireBytes: number;
}

const inflateAsync = promisify(inflate);

/**
 * Inflates a zlib (`deflate`) body, stopping at `maxBytes` or at C tor's
 * compression-bomb ratio, whichever is smaller (the limit is zlib's
 * maxOutputLength, so no more is ever produced).
 */
export async function inflateBounded(body: Uint8Array, maxBytes: number, where: string): Promise<Uint8Array> {
  const limit = Math.min(
    maxBytes,
    Math.max(CHECK_FOR_COMPRESSION_BOMB_AFTER, body.length * MAX_UNCOMPRESSION_FACTOR),
  );
  try {
    return new Uint8Array(await inflateAsync(body, { maxOutputLength: limit }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE')
      throw new DirHttpRequestError(where, `inflated body exceeds ${limit} bytes (cap or compression bomb)`);
    throw new DirHttpRequestError(where, `bad deflate body: ${(e as Error).message}`);
  }
}

/**
 * One HTTP request with a deadline for the whole exchange and a cap on the
 * response body. Resolves with any status; rejects (DirHttpRequestError) on
 * network errors, timeouts and oversized bodies.
 */
export function httpRequest(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  opts: {
    body?: Uint8Array;
    timeoutMs?: number;
    /** Bytes on the wire (and inflated, unless `maxInflatedBytes`). */
    maxBytes?: number;
    /** Ask for `deflate` and inflate what comes deflated, to at most this many bytes. */
    maxInflatedBytes?: number;
  } = {},
): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? MAX_SMALL_REPLY;
  let url: URL;
  try {
    url = new URL(path, baseUrl);
  } catch {
    return Promise.reject(new DirHttpRequestError(baseUrl, 'bad URL'));
  }
  if (url.protocol !== 'http:') return Promise.reject(new DirHttpRequestError(baseUrl, 'not an http URL'));
  const where = url.toString();
  return new Promise<HttpResult>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, value?: HttpResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    const headers: Record<string, string | number> = { connection: 'close' };
    if (opts.maxInflatedBytes !== undefined) headers['accept-encoding'] = 'deflate, identity';
    if (opts.body) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = opts.body.length;
    }
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const declared = Number(res.headers['content-length'] ?? -1);
      if (declared > maxBytes) {
        finish(new DirHttpRequestError(where, `response of ${declared} bytes exceeds ${maxBytes}`));
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > maxBytes) {
          finish(new DirHttpRequestError(where, `response exceeds ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      const encoding = (res.headers['content-encoding'] ?? 'identity').toLowerCase();
      res.on('end', () => {
        const body = new Uint8Array(Buffer.concat(chunks));
        const status = res.statusCode ?? 0;
        if (encoding === 'identity') return finish(null, { status, body, wireBytes: total });
        if (encoding !== 'deflate' || opts.maxInflatedBytes === undefined)
          return finish(
            new DirHttpRequestError(where, `unrequested content-encoding ${encoding.slice(0, 20)}`),
          );
        // Still under the deadline: the timer stays armed while inflating.
        inflateBounded(body, opts.maxInflatedBytes, where).then(
          (inflated) => finish(null, { status, body: inflated, wireBytes: total }),
          (e: Error) => finish(e),
        );
      });
      res.on('error', (e) => finish(new DirHttpRequestError(where, e.message)));
    });
    const timer = setTimeout(
      () => finish(new DirHttpRequestError(where, `timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (e) => finish(new DirHttpRequestError(where, e.message)));
    req.end(opts.body ? Buffer.from(opts.body.buffer, opts.body.byteOffset, opts.body.length) : undefined);
  });
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A short printable excerpt of a response body for error messages. */
function bodyExcerpt(b: Uint8Array): string {
  return Buffer.from(b.subarray(0, 200))
    .toString('latin1')
    .trim()
    .replace(/[^\x20-\x7e]/g, '?');
}

/**
 * Uploads a signed relay descriptor to every authority in parallel
 * (dir-spec §4.3: relays publish to all authorities). Never throws: the
 * caller decides what number of acceptances is enough.
 */
export async function publishDescriptor(
  auths: readonly AuthorityEndpoint[],
  signed: Uint8Array,
  opts: { timeoutMs?: number } = {},
): Promise<{
  accepted: number;
  /** `status` is the HTTP status when the authority answered (none on network errors and timeouts). */
  results: { url: string; ok: boolean; status?: number; error?: string }[];
}> {
  const results = await Promise.all(
    auths.map(async (a) => {
      try {
        const r = await httpRequest(a.url, 'POST', DESCRIPTOR_PATH, {
          body: signed,
          timeoutMs: opts.timeoutMs,
        });
        if (r.status === 200) return { url: a.url, ok: true, status: 200 };
        return { url: a.url, ok: false, status: r.status, error: `HTTP ${r.status}: ${bodyExcerpt(r.body)}` };
      } catch (e) {
        return { url: a.url, ok: false, error: errorText(e) };
      }
    }),
  );
  return { accepted: results.filter((r) => r.ok).length, results };
}

/**
 * Fetches the current consensus, trying authorities in random order until
 * one serves a document signed by more than half of `auths` and valid at
 * `nowMs` (± `skewMs`). Throws DirClientError listing every failure.
 */
export async function fetchConsensus(
  auths: readonly AuthorityEndpoint[],
  opts: { nowMs: number; timeoutMs?: number; skewMs?: number; rng?: Rng },
): Promise<{ consensus: Consensus; raw: Uint8Array; from: string }> {
  const authorityIds = auths.map((a) => a.identity);
  const failures: DirFailure[] = [];
  for (const a of shuffled(auths, opts.rng ?? randomBytes)) {
    try {
      const r = await httpRequest(a.url, 'GET', CONSENSUS_PATH, {
        timeoutMs: opts.timeoutMs,
        maxBytes: MAX_CONSENSUS_BYTES,
        maxInflatedBytes: MAX_CONSENSUS_BYTES,
      });
      if (r.status !== 200) {
        failures.push({ url: a.url, error: `HTTP ${r.status}: ${bodyExcerpt(r.body)}` });
        continue;
      }
      const consensus = verifyConsensus(r.body, {
        authorityIds,
        nowMs: opts.nowMs,
        skewMs: opts.skewMs,
        maxBytes: MAX_CONSENSUS_BYTES,
      });
      return { consensus, raw: r.body, from: a.url };
    } catch (e) {
      failures.push({ url: a.url, error: errorText(e) });
    }
  }
  throw new DirClientError('no authority served a valid consensus', failures);
}

/**
 * When a client fetches its next consensus (dir-spec §5.1; C tor
 * update_consensus_networkstatus_fetch_time_impl for clients, arti
 * client_download_range): uniformly between 3/4 of a voting interval after
 * fresh-until (the caches have the new one by then) and 7/8 of the time
 * left from there to valid-until, so clients spread their fetches over
 * most of the validity instead of all asking at fresh-until. `fraction` is
 * uniform in [0, 1).
 */
export function clientConsensusFetchTime(
  c: Pick<Consensus, 'validAfterMs' | 'freshUntilMs' | 'validUntilMs'>,
  fraction: number,
): number {
  const start = c.freshUntilMs + ((c.freshUntilMs - c.validAfterMs) * 3) / 4;
  const window = Math.max(0, ((c.validUntilMs - start) * 7) / 8);
  return Math.floor(start + fraction * window);
}

const ID_RE = /^[0-9a-fA-F]{64}$/;

/**
 * Parses `"<hexid>@<host>:<port>,..."` (or `<hexid>@http://host:port`), the
 * form used on command lines and in SHALLOT_AUTHORITIES. Ids are
 * normalised to lowercase. Throws InvalidError.
 */
export function parseAuthorityList(spec: string): AuthorityEndpoint[] {
  const what = 'authority list';
  const out: AuthorityEndpoint[] = [];
  for (const raw of spec.split(/[,\s]+/)) {
    const item = raw.trim();
    if (item === '') continue;
    const at = item.indexOf('@');
    if (at < 0) throw new InvalidError(what, 'entry is not id@host:port', { entry: item.slice(0, 80) });
    const id = item.slice(0, at);
    if (!ID_RE.test(id))
      throw new InvalidError(what, 'id is not 64 hex digits', { entry: item.slice(0, 80) });
    let rest = item.slice(at + 1);
    if (!/^https?:\/\//.test(rest)) rest = `http://${rest}`;
    let u: URL;
    try {
      u = new URL(rest);
    } catch {
      throw new InvalidError(what, 'bad address', { entry: item.slice(0, 80) });
    }
    if (u.protocol !== 'http:' || u.port === '' || u.hostname === '') {
      throw new InvalidError(what, 'need http host:port', { entry: item.slice(0, 80) });
    }
    const identity = id.toLowerCase();
    if (out.some((a) => a.identity === identity)) throw new InvalidError(what, 'duplicate id');
    out.push({ identity, url: `http://${u.host}` });
  }
  if (out.length === 0) throw new InvalidError(what, 'empty');
  return out;
}

/** The inverse of parseAuthorityList: `"<hexid>@host:port,..."`. */
export function formatAuthorityList(auths: readonly AuthorityEndpoint[]): string {
  return auths.map((a) => `${a.identity}@${new URL(a.url).host}`).join(',');
}

/** Lowercase hex of an identity key, as used in AuthorityEndpoint. */
export const identityHex = (id: Uint8Array): string => toHex(id);
