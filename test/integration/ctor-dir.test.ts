// client/ctor-dir.ts against a stand-in DirPort on 127.0.0.1 serving the
// C tor testnet vectors (test/vectors/ctor/) as `.z`: the directory
// verifies and maps; with a microdescriptor cache only missing digests are
// fetched; a failing authority is skipped for the next; bad
// deflate, an oversized body, a bad signature, a stale consensus, a
// truncated consensus and a silent server all fail typed.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { CtorDirError, dirPortGet, fetchCtorDirectory } from '../../services/client/ctor-dir.js';
import { type DirAuthority, parseDirAuthorities } from '../../services/core/ctor/dir-authority.js';
import { MAX_MD_CONSENSUS_LEN } from '../../services/core/ctor/md-consensus.js';
import type { Microdesc } from '../../services/core/ctor/microdesc.js';

const vector = (f: string) => readFileSync(new URL(`../vectors/ctor/${f}`, import.meta.url), 'utf8');
const CONSENSUS = vector('consensus-microdesc.txt');
const CERTS = vector('key-certificates.txt');
const MDS = vector('microdescs.txt');
/** Inside the vector consensus's validity (valid-after 19:38:20, valid-until 19:39:20). */
const NOW = Date.parse('2026-12-05T19:38:30Z');
const AUTHS = parseDirAuthorities(vector('authorities.torrc'));

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

type Route = (path: string) => Buffer | string | number | null;

/** A DirPort serving `route(path)` (a number is a status code, null never answers); every path requested is kept. */
async function dirPort(route: Route): Promise<{ port: number; paths: string[] }> {
  const paths: string[] = [];
  const s = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    const body = route(req.url ?? '');
    if (body === null) return;
    if (typeof body === 'number') return void res.writeHead(body).end();
    res.writeHead(200).end(typeof body === 'string' ? deflateSync(body) : body);
  });
  s.on('connection', (c) => c.unref());
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return { port: (s.address() as AddressInfo).port, paths };
}

const vectors =
  (consensus = CONSENSUS): Route =>
  (p) =>
    p === '/tor/keys/all.z'
      ? CERTS
      : p === '/tor/status-vote/current/consensus-microdesc.z'
        ? consensus
        : p.startsWith('/tor/micro/d/')
          ? MDS
          : 404;

const at = (port: number, a: DirAuthority = AUTHS[0]!): DirAuthority => ({
  ...a,
  address: '127.0.0.1',
  dirPort: port,
});
const withPort = (port: number) => AUTHS.map((a) => at(port, a));

describe('C tor directory over a DirPort', () => {
  it('verifies and maps the testnet documents', async () => {
    const d = await dirPort(vectors());
    const dir = await fetchCtorDirectory(withPort(d.port), { now: () => NOW });
    expect(dir.consensus.relays).toHaveLength(5);
    expect(dir.skipped).toEqual([]);
    expect(dir.legacyIds.size).toBe(5);
    expect(d.paths.filter((p) => p.startsWith('/tor/micro/d/'))).toHaveLength(1);
  });

  it('with a microdescriptor cache, fetches only the digests it does not hold (dir-spec §5.2)', async () => {
    const d = await dirPort(vectors());
    const held = new Map<string, Microdesc>();
    const first = await fetchCtorDirectory(withPort(d.port), { now: () => NOW, microdescs: held });
    expect(held.size).toBe(5);
    const microPaths = () => d.paths.filter((p) => p.startsWith('/tor/micro/d/'));
    expect(microPaths()).toHaveLength(1);
    // A digest the consensus no longer names is dropped; one it names but the cache lost is fetched alone.
    const [lost] = [...held.keys()];
    held.delete(lost!);
    held.set('stale', [...held.values()][0]!);
    const second = await fetchCtorDirectory(withPort(d.port), { now: () => NOW, microdescs: held });
    expect(microPaths()).toEqual([microPaths()[0], `/tor/micro/d/${lost}.z`]);
    expect(held.has('stale')).toBe(false);
    expect(held.size).toBe(5);
    expect(second.consensus).toEqual(first.consensus);
    await fetchCtorDirectory(withPort(d.port), { now: () => NOW, microdescs: held });
    expect(microPaths()).toHaveLength(2);
  });

  it('skips an authority that fails and uses the next', async () => {
    const bad = await dirPort(() => 404);
    const good = await dirPort(vectors());
    const dir = await fetchCtorDirectory(
      [at(bad.port, AUTHS[0]), at(good.port, AUTHS[1]), at(good.port, AUTHS[2])],
      {
        now: () => NOW,
      },
    );
    expect(dir.consensus.relays).toHaveLength(5);
    expect(bad.paths).toEqual(['/tor/keys/all.z']);
  });

  it('refuses a consensus with a bad signature', async () => {
    const sigAt = CONSENSUS.lastIndexOf('-----BEGIN SIGNATURE-----') + 40;
    const flipped =
      CONSENSUS.slice(0, sigAt) + (CONSENSUS[sigAt] === 'A' ? 'B' : 'A') + CONSENSUS.slice(sigAt + 1);
    // Two of three signatures still verify: enough. With only that authority configured, not.
    const d = await dirPort(vectors(flipped));
    const lastSigner = /directory-signature (?:\S+ )?([0-9A-F]{40})/g;
    const signers = [...CONSENSUS.matchAll(lastSigner)].map((m) => m[1]);
    const victim = AUTHS.find(
      (a) => Buffer.from(a.v3ident).toString('hex').toUpperCase() === signers.at(-1),
    )!;
    await expect(fetchCtorDirectory(withPort(d.port), { now: () => NOW })).resolves.toBeDefined();
    await expect(fetchCtorDirectory([at(d.port, victim)], { now: () => NOW })).rejects.toThrow(
      /valid of 1 needed/,
    );
  });

  it('refuses a stale consensus, a truncated one, bad deflate, an oversized body and a silent server', async () => {
    const fresh = await dirPort(vectors());
    await expect(fetchCtorDirectory(withPort(fresh.port), { now: () => NOW + 3_600_000 })).rejects.toThrow(
      /not live/,
    );
    const cut = await dirPort(vectors(CONSENSUS.slice(0, CONSENSUS.length / 2)));
    await expect(fetchCtorDirectory(withPort(cut.port), { now: () => NOW })).rejects.toThrow(CtorDirError);
    const junk = await dirPort(() => Buffer.from('not deflate at all'));
    await expect(dirPortGet('127.0.0.1', junk.port, '/tor/keys/all.z', 1000)).rejects.toThrow(/bad deflate/);
    // Over the limit before inflating, and a small body that inflates past it.
    const big = await dirPort(() => Buffer.alloc(MAX_MD_CONSENSUS_LEN + 1));
    await expect(dirPortGet('127.0.0.1', big.port, '/x', MAX_MD_CONSENSUS_LEN)).rejects.toThrow(/over/);
    const bomb = await dirPort(() => deflateSync(Buffer.alloc(64 * 1024 * 1024)));
    await expect(dirPortGet('127.0.0.1', bomb.port, '/x.z', 1024 * 1024)).rejects.toThrow(CtorDirError);
    const silent = await dirPort(() => null);
    await expect(dirPortGet('127.0.0.1', silent.port, '/x.z', 1000, 300)).rejects.toThrow(/no answer/);
  });
});
