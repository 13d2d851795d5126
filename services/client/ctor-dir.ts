/**
 * A C tor network's directory for a Shallot client (dir-spec §4 "Directory
 * cache operation", §5 "Client operation"): the authorities' key
 * certificates, the microdesc consensus and the microdescriptors it names,
 * fetched over a DirPort as zlib-compressed `.z` documents, verified and
 * mapped into Shallot's Consensus.
 *
 * Overview: `fetchCtorDirectory` asks each configured authority in turn
 * (DirAuthority lines, core/ctor/dir-authority.ts) for
 * `/tor/keys/all.z`, `/tor/status-vote/current/consensus-microdesc.z`
 * (signatures checked against the certificates, a majority of the
 * configured v3idents, the consensus live now) and
 * `/tor/micro/d/<d1>-<d2>….z` in batches; to-consensus.ts joins each
 * router status to the microdescriptor whose SHA-256 its `m` line names
 * and ignores any other. The result is
 * core/ctor/to-consensus.ts's CtorConsensus: the Consensus plus each
 * relay's RSA legacy id for EXTEND2 and ntor.
 *
 * Design notes: plain HTTP/1.0 to the DirPort, as C tor's directory
 * clients speak it before they have circuits; every body is bounded
 * before and after inflating (the parsers' own limits), every request has
 * a deadline. Digests in the URL are unpadded base64, joined by `-`
 * (dir-spec §5.2), at most 92 per request as C tor's client asks.
 *
 * Microdescriptors change rarely, so a caller that keeps `microdescs`
 * between fetches asks only for the digests it does not hold, as C tor's
 * client does (dir-spec §5.2: "download any microdescriptors it does not
 * have"); the map keeps exactly those the latest verified consensus names.
 *
 * Not in this module: BEGIN_DIR fetches through a circuit, refetch timing
 * (net/dir-client.ts has dir-spec §5.1's schedule), consensus diffs.
 *
 * Limitations: authorities only (no directory caches); one attempt each.
 */
import * as http from 'node:http';
import { inflateSync } from 'node:zlib';
import { toBase64 } from '../core/bytes.js';
import { mdConsensusLive, verifyMdConsensus } from '../core/ctor/consensus-signatures.js';
import type { DirAuthority } from '../core/ctor/dir-authority.js';
import { MAX_KEY_CERT_LEN, parseKeyCertificates } from '../core/ctor/key-cert.js';
import { MAX_MD_CONSENSUS_LEN, parseMdConsensus } from '../core/ctor/md-consensus.js';
import { MAX_MICRODESCS_LEN, type Microdesc, parseMicrodescs } from '../core/ctor/microdesc.js';
import { type CtorConsensus, consensusFromCtor } from '../core/ctor/to-consensus.js';
import { ShallotError } from '../core/errors.js';

/** Digests per `/tor/micro/d/` request. */
export const MICRODESCS_PER_REQUEST = 92;

export class CtorDirError extends ShallotError {
  constructor(message: string, context: Record<string, string | number> = {}) {
    super('ERR_CTOR_DIR', message, context);
  }
}

export interface CtorDirOptions {
  timeoutMs?: number;
  now?: () => number;
  /**
   * Microdescriptors held from earlier fetches, by unpadded base64 digest:
   * only the others are fetched; updated in place after a successful fetch.
   */
  microdescs?: Map<string, Microdesc>;
}

/** GET `path` from a DirPort; the body inflated when the path ends in `.z`, at most `max` bytes either way. */
export function dirPortGet(
  host: string,
  port: number,
  path: string,
  max: number,
  timeoutMs = 15_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const where = `${host}:${port}${path.slice(0, 80)}`;
    const req = http.get(
      { host, port, path, timeout: timeoutMs, headers: { connection: 'close' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(
            new CtorDirError(`${where}: HTTP ${res.statusCode}`, { status: res.statusCode ?? 0 }),
          );
        }
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > max) {
            req.destroy();
            reject(new CtorDirError(`${where}: body over ${max} bytes`));
          } else chunks.push(c);
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (!path.endsWith('.z')) return resolve(body.toString('utf8'));
          try {
            resolve(inflateSync(body, { maxOutputLength: max }).toString('utf8'));
          } catch (e) {
            reject(new CtorDirError(`${where}: bad deflate body: ${(e as Error).message}`));
          }
        });
        res.on('error', (e) => reject(new CtorDirError(`${where}: ${e.message}`)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new CtorDirError(`${where}: ${e.message}`)));
  });
}

/** Fetches, verifies and maps a C tor network's directory from the first authority that serves it. */
export async function fetchCtorDirectory(
  authorities: readonly DirAuthority[],
  opts: CtorDirOptions = {},
): Promise<CtorConsensus> {
  const failures: string[] = [];
  for (const a of authorities) {
    try {
      return await fetchFrom(a, authorities, opts);
    } catch (e) {
      failures.push(`${a.nickname ?? a.address}: ${(e as Error).message}`);
    }
  }
  throw new CtorDirError(`no authority served a valid directory (${failures.join('; ')})`);
}

async function fetchFrom(
  a: DirAuthority,
  all: readonly DirAuthority[],
  opts: CtorDirOptions,
): Promise<CtorConsensus> {
  const get = (path: string, max: number) => dirPortGet(a.address, a.dirPort, path, max, opts.timeoutMs);
  const now = (opts.now ?? Date.now)();
  const certs = parseKeyCertificates(await get('/tor/keys/all.z', MAX_KEY_CERT_LEN * all.length));
  const consensus = parseMdConsensus(
    await get('/tor/status-vote/current/consensus-microdesc.z', MAX_MD_CONSENSUS_LEN),
  );
  verifyMdConsensus(
    consensus,
    certs,
    all.map((x) => x.v3ident),
    now,
  );
  if (!mdConsensusLive(consensus, now)) throw new CtorDirError('consensus is not live');
  const digests = [...new Set(consensus.relays.map((r) => toBase64(r.microdescDigest, false)))];
  const held = opts.microdescs ?? new Map<string, Microdesc>();
  const missing = digests.filter((d) => !held.has(d));
  const fetched: Microdesc[] = [];
  for (let i = 0; i < missing.length; i += MICRODESCS_PER_REQUEST) {
    const path = `/tor/micro/d/${missing.slice(i, i + MICRODESCS_PER_REQUEST).join('-')}.z`;
    fetched.push(...parseMicrodescs(await get(path, MAX_MICRODESCS_LEN)));
  }
  // Filed by the digest of the text served (microdesc.ts), so a wrong body never stands in for a wanted one.
  for (const md of fetched) held.set(toBase64(md.digest, false), md);
  const wanted = new Set(digests);
  for (const d of [...held.keys()]) if (!wanted.has(d)) held.delete(d);
  return consensusFromCtor(
    consensus,
    digests.flatMap((d) => held.get(d) ?? []),
  );
}
