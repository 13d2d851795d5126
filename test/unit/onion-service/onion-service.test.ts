// Onion-service pieces that need no network: the built-in HTTP backend over an
// in-memory duplex, the instance records (round trip, hostile files, staleness),
// the identity key file (0600, race-free creation), the descriptor periods (the
// service always stores where a client with the same consensus fetches, across
// time-period and SRV-run boundaries, and before each change for the next
// period, so a client whose consensus is a little older or newer still finds
// one), the --backend parser, and the
// client-authorization options.
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShallotClient } from '../../../services/client/client.js';
import { clientFetchSrv, onionPeriodKeys, otherPeriodKeys } from '../../../services/client/onion-params.js';
import { toHex, utf8 } from '../../../services/core/bytes.js';
import { generateClientAuthKey } from '../../../services/core/client-auth.js';
import { ed25519Generate, randomBytes, sha256 } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { IntroPointInfo } from '../../../services/core/hs-descriptor.js';
import { timePeriodNum, timePeriodParams, timePeriodStart } from '../../../services/core/hs-time.js';
import { disasterSrv } from '../../../services/core/hsdir-ring.js';
import { relayLinkSpecifiers } from '../../../services/core/link-specifiers.js';
import { decodeIdentityFile, encodeIdentityFile } from '../../../services/core/onion-identity-file.js';
import {
  BUILTIN_MAX_BYTES,
  builtinBytes,
  builtinSha256,
  serveBuiltinHttp,
} from '../../../services/onion-service/builtin-http.js';
import { loadOrCreateIdentity, readIdentityFile } from '../../../services/onion-service/identity.js';
import {
  decodeInstanceRecord,
  encodeInstanceRecord,
  instancesDir,
  isValidInstanceName,
  readPeerRecords,
  removeInstanceRecord,
  writeInstanceRecord,
} from '../../../services/onion-service/instances.js';
import { parseBackend } from '../../../services/onion-service/main.js';
import { clientFetchPeriod, serviceDescriptorPeriods } from '../../../services/onion-service/periods.js';
import { OnionService } from '../../../services/onion-service/service.js';
import { silentLogger } from '../../../services/runtime/log.js';

/* ------------------------------------------------------------ builtin HTTP */

/** A client/server pair of duplexes joined back to back. */
function duplexPair(): [Duplex, Duplex] {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const mk = (readFrom: PassThrough, writeTo: PassThrough) => {
    const d = new Duplex({
      read() {
        readFrom.resume();
      },
      write(chunk, _enc, cb) {
        if (writeTo.write(chunk)) cb();
        else writeTo.once('drain', () => cb());
      },
      final(cb) {
        writeTo.end();
        cb();
      },
    });
    readFrom.on('data', (c: Buffer) => {
      if (!d.push(c)) readFrom.pause();
    });
    readFrom.on('end', () => d.push(null));
    return d;
  };
  return [mk(bToA, aToB), mk(aToB, bToA)];
}

function exchange(requests: string): Promise<Buffer> {
  const [client, server] = duplexPair();
  serveBuiltinHttp(server);
  const chunks: Buffer[] = [];
  client.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve) => client.on('end', () => resolve(Buffer.concat(chunks))));
  client.write(requests);
  return done;
}

/** Splits a byte stream of HTTP responses (Content-Length framed). */
function responses(raw: Buffer): { status: number; headers: string; body: Buffer }[] {
  const out: { status: number; headers: string; body: Buffer }[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const i = rest.indexOf('\r\n\r\n');
    expect(i).toBeGreaterThan(0);
    const head = rest.subarray(0, i).toString('latin1');
    const len = Number(/Content-Length: (\d+)/.exec(head)?.[1]);
    const bodyLen = len;
    out.push({
      status: Number(head.slice(9, 12)),
      headers: head,
      body: rest.subarray(i + 4, i + 4 + bodyLen),
    });
    rest = rest.subarray(i + 4 + bodyLen);
  }
  return out;
}

describe('builtin HTTP backend', () => {
  it('builtinBytes and builtinSha256 agree, across block boundaries', () => {
    for (const n of [0, 1, 65535, 65536, 65537, 200_000]) {
      const b = builtinBytes(n);
      expect(b.length).toBe(n);
      expect(builtinSha256(n)).toBe(toHex(sha256(b)));
    }
    // Not a trivial pattern: the 64 KiB block does not repeat inside itself.
    const b = builtinBytes(65536);
    expect(toHex(b.subarray(0, 32))).not.toBe(toHex(b.subarray(32, 64)));
  });

  it('serves /bytes/<n> with an exact Content-Length and the deterministic bytes', async () => {
    const raw = await exchange('GET /bytes/150000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const [r] = responses(raw);
    expect(r?.status).toBe(200);
    expect(r?.headers).toContain('Content-Length: 150000');
    expect(r?.headers).toContain('Connection: close');
    expect(createHash('sha256').update(r!.body).digest('hex')).toBe(builtinSha256(150000));
  });

  it('serves several requests on one connection in order (keep-alive, pipelined)', async () => {
    const raw = await exchange(
      'GET /sha256/1000 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const rs = responses(raw);
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(rs[0]?.body.toString().trim()).toBe(builtinSha256(1000));
    expect(Buffer.compare(rs[1]!.body, Buffer.from(builtinBytes(1000)))).toBe(0);
    expect(rs[2]?.body.toString()).toContain('Shallot onion service');
  });

  it('answers HEAD without a body and closes HTTP/1.0 without keep-alive', async () => {
    const raw = await exchange('HEAD /bytes/5000 HTTP/1.0\r\n\r\n');
    const head = raw.toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head).toContain('Content-Length: 5000');
    expect(head.endsWith('\r\n\r\n')).toBe(true);
  });

  it.each([
    ['GET /nope HTTP/1.1\r\n\r\n', 404],
    ['GET /bytes/abc HTTP/1.1\r\n\r\n', 400],
    [`GET /bytes/${BUILTIN_MAX_BYTES + 1} HTTP/1.1\r\n\r\n`, 400],
    ['GET /bytes/99999999999 HTTP/1.1\r\n\r\n', 400],
    ['POST / HTTP/1.1\r\n\r\n', 405],
    ['POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello', 413],
    ['garbage\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nno colon here\r\n\r\n', 400],
  ])('refuses %j with %i and closes', async (req, status) => {
    const rs = responses(await exchange(req));
    expect(rs).toHaveLength(1);
    expect(rs[0]?.status).toBe(status);
    expect(rs[0]?.headers).toContain('Connection: close');
  });

  it('refuses an endless head with 431', async () => {
    const rs = responses(await exchange(`GET / HTTP/1.1\r\nX: ${'a'.repeat(10_000)}`));
    expect(rs[0]?.status).toBe(431);
  });

  it('closes quietly when the client ends mid-head', async () => {
    const [client, server] = duplexPair();
    serveBuiltinHttp(server);
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
    client.end('GET / HT');
    await ended;
    expect(Buffer.concat(chunks).length).toBe(0);
  });
});

/* ------------------------------------------------------------ instances */

function introPoint(): IntroPointInfo {
  return {
    linkSpecifiers: relayLinkSpecifiers({
      address: '127.0.0.1',
      port: 5000 + (randomBytes(1)[0] ?? 0),
      legacyId: randomBytes(20),
      ed25519Id: randomBytes(32),
    }),
    onionKey: randomBytes(32),
    authKey: randomBytes(32),
    encKey: randomBytes(32),
  };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'shallot-hs-unit-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('instance records', () => {
  it('round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 2 ** 47 }), (n, t) => {
        const rec = { instance: 'inst-1', updatedMs: t, introPoints: Array.from({ length: n }, introPoint) };
        expect(decodeInstanceRecord(encodeInstanceRecord(rec))).toEqual(rec);
      }),
      { numRuns: 30 },
    );
  });

  it.each([
    ['not json', '{'],
    ['wrong kind', JSON.stringify({ kind: 'x', instance: 'a', updatedMs: 1, introPoints: [] })],
    [
      'path in name',
      JSON.stringify({ kind: 'shallot-onion-instance-v1', instance: '../a', updatedMs: 1, introPoints: [] }),
    ],
    [
      'short key',
      JSON.stringify({
        kind: 'shallot-onion-instance-v1',
        instance: 'a',
        updatedMs: 1,
        introPoints: [{ linkSpecifiers: 'AA==', onionKey: 'AA==', authKey: 'AA==', encKey: 'AA==' }],
      }),
    ],
    [
      'too many',
      JSON.stringify({
        kind: 'shallot-onion-instance-v1',
        instance: 'a',
        updatedMs: 1,
        introPoints: Array.from({ length: 21 }, () => ({})),
      }),
    ],
  ])('rejects %s', (_what, text) => {
    expect(() => decodeInstanceRecord(text)).toThrow();
  });

  it('instance names cannot escape the directory', () => {
    for (const bad of ['', '..', '../x', 'a/b', '.hidden', 'a'.repeat(65), 'a b']) {
      expect(isValidInstanceName(bad)).toBe(false);
    }
    for (const good of ['a', '0', 'web-1', 'pod.name_2']) expect(isValidInstanceName(good)).toBe(true);
  });

  it('peers see each other’s fresh records only, and never their own', async () => {
    const dir = path.join(tmp, 'svc');
    const now = 1_000_000;
    const ipA = [introPoint()];
    const ipB = [introPoint(), introPoint()];
    await writeInstanceRecord(dir, { instance: 'a', updatedMs: now, introPoints: ipA });
    await writeInstanceRecord(dir, { instance: 'b', updatedMs: now - 1000, introPoints: ipB });
    await writeInstanceRecord(dir, { instance: 'old', updatedMs: now - 60_000, introPoints: [introPoint()] });
    await writeFile(path.join(instancesDir(dir), 'junk.json'), 'not json');
    // A record filed under another instance's name is ignored.
    await writeFile(
      path.join(instancesDir(dir), 'c.json'),
      encodeInstanceRecord({ instance: 'a', updatedMs: now, introPoints: [] }),
    );
    expect((await stat(path.join(instancesDir(dir), 'a.json'))).mode & 0o777).toBe(0o600);
    const fromA = await readPeerRecords(dir, 'a', now, 20_000);
    expect(fromA.map((r) => r.instance)).toEqual(['b']);
    expect(fromA[0]?.introPoints).toEqual(ipB);
    const fromB = await readPeerRecords(dir, 'b', now, 20_000);
    expect(fromB.map((r) => r.instance)).toEqual(['a']);
    await removeInstanceRecord(dir, 'a');
    expect(await readPeerRecords(dir, 'b', now, 20_000)).toEqual([]);
    expect(await readPeerRecords(path.join(tmp, 'missing'), 'a', now, 20_000)).toEqual([]);
  });
});

/* ------------------------------------------------------------ identity */

describe('identity key file', () => {
  it('round-trips and rejects malformed files', () => {
    const seed = randomBytes(32);
    expect(decodeIdentityFile(encodeIdentityFile(seed))).toEqual(seed);
    for (const bad of ['', '{}', '{"kind":"shallot-onion-service-identity-v1","ed25519Seed":"00"}', 'x']) {
      expect(() => decodeIdentityFile(bad)).toThrow();
    }
  });

  it('creates a 0600 key once, even when several instances start together', async () => {
    const file = path.join(tmp, 'race', 'identity.key');
    const results = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateIdentity(file)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const seeds = new Set(results.map((r) => toHex(r.seed)));
    expect(seeds.size).toBe(1);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(toHex(await readIdentityFile(file))).toBe([...seeds][0]);
    expect((await loadOrCreateIdentity(file)).created).toBe(false);
  });

  it('refuses a key file others can read', async () => {
    const file = path.join(tmp, 'open.key');
    await writeFile(file, encodeIdentityFile(randomBytes(32)), { mode: 0o644 });
    await chmod(file, 0o644);
    await expect(readIdentityFile(file)).rejects.toThrow(/too open/);
    expect((await readFile(file, 'utf8')).length).toBeGreaterThan(0);
  });
});

/* ------------------------------------------------------------ periods */

/**
 * A consensus as a 5 s-interval testnet would publish it at `va`: the current
 * SRV is the one made at the start of the SRV run containing `va`, the
 * previous one that of the run before (each named after its run, so tests
 * can tell them apart), or none in the first runs.
 */
function consensusAt(va: number, votingIntervalSec: number, firstRunWithSrv = -Infinity): Consensus {
  const p = timePeriodParams({ testnet: true, votingIntervalSec });
  const run = Math.floor(va / (p.srvRunSeconds * 1000));
  const srv = (r: number) =>
    r >= firstRunWithSrv ? { reveals: 3, value: sha256(utf8(`run ${r}`)) } : undefined;
  const cur = srv(run);
  const prev = srv(run - 1);
  return {
    validAfterMs: va,
    freshUntilMs: va + votingIntervalSec * 1000,
    validUntilMs: va + 3 * votingIntervalSec * 1000,
    votingIntervalSec,
    knownFlags: [],
    params: {},
    ...(cur ? { sharedRandCurrent: cur } : {}),
    ...(prev ? { sharedRandPrevious: prev } : {}),
    relays: [],
    bandwidthWeights: {},
    authorities: [],
  };
}

describe('descriptor periods', () => {
  const v = 5;
  const p = timePeriodParams({ testnet: true, votingIntervalSec: v });
  const start = timePeriodStart(14_963_000, p);

  it('the service stores every period with the SRV made in the run that contains its start', () => {
    for (let va = start; va < start + 10 * p.srvRunSeconds * 1000; va += v * 1000) {
      const c = consensusAt(va, v);
      for (const d of serviceDescriptorPeriods(c, p)) {
        const runOfStart = Math.floor(timePeriodStart(d.tp, p) / (p.srvRunSeconds * 1000));
        expect(toHex(d.srv)).toBe(toHex(sha256(utf8(`run ${runOfStart}`))));
      }
    }
  });

  it('a client with the same consensus fetches from one of the service’s two rings (also the client module)', () => {
    const identity = ed25519Generate().public;
    for (let va = start; va < start + 6 * p.srvRunSeconds * 1000; va += v * 1000) {
      for (const c of [consensusAt(va, v), consensusAt(va, v, Infinity)]) {
        const fetch = clientFetchPeriod(c, p);
        expect(fetch.tp).toBe(timePeriodNum(va, p));
        const stored = serviceDescriptorPeriods(c, p);
        const hit = stored.find((d) => d.tp === fetch.tp);
        expect(hit && toHex(hit.srv)).toBe(toHex(fetch.srv));
        // services/client/onion-params.ts derives the same pair.
        const k = onionPeriodKeys(identity, c);
        expect(Number(k.tp)).toBe(fetch.tp);
        expect(toHex(k.srv)).toBe(toHex(fetch.srv));
        expect(toHex(clientFetchSrv(c, k.tp, k.len))).toBe(toHex(fetch.srv));
      }
    }
  });

  it('before each change the next period is stored; a client two consensuses ahead or behind finds a ring', () => {
    const identity = ed25519Generate().public;
    const tpMs = p.lengthMinutes * 60_000;
    for (let va = start; va < start + 4 * p.srvRunSeconds * 1000; va += v * 1000) {
      const stored = serviceDescriptorPeriods(consensusAt(va, v), p);
      const tp = timePeriodNum(va, p);
      // rend-spec-v3 §2.2.1: in the half period before the change, the next period's descriptor is out.
      if (timePeriodStart(tp + 1, p) - va <= tpMs / 2) expect(stored.map((d) => d.tp)).toEqual([tp, tp + 1]);
      for (let d = -2; d <= 2; d++) {
        const c = consensusAt(va + d * v * 1000, v);
        const want = [onionPeriodKeys(identity, c), otherPeriodKeys(identity, c)];
        const found = want.some((k) =>
          stored.some((s) => s.tp === Number(k.tp) && toHex(s.srv) === toHex(k.srv)),
        );
        expect(found, `service at ${va}, client ${d} voting intervals off`).toBe(true);
      }
    }
  });

  it('falls back to the disaster SRV of the period it is used with', () => {
    const c = consensusAt(start + 1000, v, Infinity);
    const [first, second] = serviceDescriptorPeriods(c, p);
    expect(first.source).toBe('disaster');
    expect(toHex(first.srv)).toBe(toHex(disasterSrv(BigInt(first.tp), BigInt(p.lengthMinutes))));
    expect(toHex(second.srv)).toBe(toHex(disasterSrv(BigInt(second.tp), BigInt(p.lengthMinutes))));
    expect(second.tp).toBe(first.tp + 1);
  });
});

/* ------------------------------------------------------------ main */

describe('--backend', () => {
  it.each([
    ['builtin', { type: 'builtin' }],
    ['127.0.0.1:8080', { type: 'tcp', host: '127.0.0.1', port: 8080 }],
    ['web.svc:80', { type: 'tcp', host: 'web.svc', port: 80 }],
    ['[::1]:443', { type: 'tcp', host: '::1', port: 443 }],
  ])('%s', (spec, want) => {
    expect(parseBackend(spec)).toEqual(want);
  });

  it.each(['', 'host', 'host:0', 'host:70000', ':80', 'a b:80'])('rejects %j', (spec) => {
    expect(() => parseBackend(spec)).toThrow();
  });
});

describe('client authorization options', () => {
  const make = (authorizedClients: Uint8Array[]) =>
    new OnionService(
      { logger: silentLogger, registry: new Registry(), client: {} as ShallotClient },
      { name: 'x', identitySeed: randomBytes(32), backend: { type: 'builtin' }, authorizedClients },
    );

  it('refuses an empty list (it would publish to anyone) and a low-order key, at construction', () => {
    expect(() => make([])).toThrow(/empty/);
    expect(() => make([new Uint8Array(32)])).toThrow(/low-order/);
    expect(() => make([randomBytes(31)])).toThrow(/32 bytes/);
    expect(() => make([generateClientAuthKey(randomBytes).public])).not.toThrow();
  });
});
