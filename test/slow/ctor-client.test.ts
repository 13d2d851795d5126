// Issue 19: the Shallot client and `shallot load` on a C tor network, used
// as a user uses them. The test starts a C tor network
// (test/setup/ctor-testnet.ts: 3 authorities, 2 relays, 2 exits of
// Debian's tor; the exits advertise the web target's port, see its header),
// writes the authorities' DirAuthority lines to a file and runs
// - the real client process, `node dist/services/client/main.js
//   --tor-authorities FILE`: it reads the directory from the C tor
//   authorities, picks its own path from the mapped consensus, dials raw TLS
//   links checking RSA identities, and curl fetches 10 MiB through its SOCKS
//   port and a C tor exit, digest checked;
// - `shallot load --tor-authorities FILE` against the web target: every
//   request succeeds and the report shows, from what its client saw, how
//   circuits spread over the C tor relays at each position.
// Needs `npm run build` (dist/) and tor + tor-gencert.
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import {
  CLIENT_MAIN,
  type CtorWorld,
  runNodeToEnd,
  runTorLoad,
  SHALLOT_MAIN,
  startClientProcess,
  startCtorWorld,
} from '../helpers/ctor-run.js';
import { collectOutput, curlSocks, sha256Hex } from '../helpers/up-cli.js';
import { type CtorClient, startCtorClient } from '../setup/ctor-testnet.js';

const SIZE = 10 * 1024 * 1024;

let world: CtorWorld;
let ctorHs: CtorClient | null = null;
/** The SOCKS port of the client process the second test starts. */
let clientSocks: number | null = null;

beforeAll(async () => {
  world = await startCtorWorld('ctor-client', { relays: 2, exits: 2, exitPorts: 'web' });
}, 300_000);

afterAll(async () => {
  await ctorHs?.stop();
  await world?.stop();
}, 30_000);

describe('the Shallot client process on a C tor network', () => {
  it('refuses a malformed authorities file as a usage error', async () => {
    const bad = path.join(world.dir, 'bad.torrc');
    await writeFile(bad, 'DirAuthority auth0 orport=1 v3ident=ZZ 127.0.0.1:1 00\n');
    const child = spawn(process.execPath, [CLIENT_MAIN, '--tor-authorities', bad, '--socks-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = collectOutput(child);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).not.toBe(0);
    expect(out.text).toMatch(/bad\.torrc:1: DirAuthority: v3ident is not 40 hex digits/);
  }, 30_000);

  it('serves SOCKS: curl fetches 10 MiB through a C tor exit, digest checked', async () => {
    const { socksPort, opsPort, out } = await startClientProcess(world, 'client');
    clientSocks = socksPort;
    const body = await curlSocks(
      `127.0.0.1:${socksPort}`,
      `http://127.0.0.1:${world.web.port}/bytes/${SIZE}`,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nclient output:\n${out.text}`);
    });
    expect(body.length).toBe(SIZE);
    expect(sha256Hex(body)).toBe(builtinSha256(SIZE));
    // The client's own view: its circuits ran through C tor relays, not a Shallot network.
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toMatch(/shallot_circuits_total\{[^}]*outcome="success"[^}]*\} [1-9]/);
  }, 180_000);
});

describe('shallot load --tor-authorities on a C tor network', () => {
  const COUNT = 24;

  it('loads an exit target through a client of its own and reports the C tor relays it used', async () => {
    const json = path.join(world.dir, 'load.json');
    const { code, text } = await runTorLoad(world, {
      target: `127.0.0.1:${world.web.port}`,
      count: COUNT,
      concurrency: 4,
      size: '64k',
      out: json,
      timeoutMs: 240_000,
    });
    expect(code, text).toBe(0);
    expect(text).toMatch(/client bootstrapped: \d+ relays/);
    expect(text).toMatch(/circuits per relay as exit \(client\)/);
    const r = JSON.parse(await readFile(json, 'utf8')) as {
      counts: { requests: number; ok: number };
      failuresByReason: Record<string, number>;
      checksums: Record<string, string | null>;
      network: { mode: string | null };
      clientRelayUse: Record<string, { total: number; counts: Record<string, number> }> | null;
    };
    expect(r.counts).toMatchObject({ requests: COUNT, ok: COUNT });
    // Bodies were checked against the target's own digest, fetched through the network.
    expect(r.checksums[String(64 * 1024)]).toBe(builtinSha256(64 * 1024));
    expect(r.network.mode).toMatch(/^C tor network \(3 authorities, 7 relays\)$/);
    const exits = world.net.nodes.filter((n) => n.role === 'exit').map((n) => n.nickname);
    const use = r.clientRelayUse!;
    // Every request had a circuit of its own (--new-circuit) ending at one of the C tor exits;
    // every exit is listed, used or not.
    expect(Object.keys(use.exit!.counts).sort(), JSON.stringify(use)).toEqual(exits.sort());
    // Circuits built during the run: one per request, less the (at most 2) clean circuits
    // pre-built before it started, which the first requests may take (--prebuild, default 2).
    expect(use.exit!.total).toBeGreaterThanOrEqual(COUNT - 2);
    expect(use.guard!.total).toBe(use.exit!.total);
    const names = new Set(world.net.nodes.map((n) => n.nickname));
    for (const s of Object.values(use))
      for (const relay of Object.keys(s.counts)) expect(names).toContain(relay);
  }, 300_000);

  it('refuses a bad authorities file with exit code 2 before sending anything', async () => {
    const bad = path.join(world.dir, 'empty.torrc');
    await writeFile(bad, '# nothing here\n');
    const { code, text } = await runNodeToEnd(
      world,
      [SHALLOT_MAIN, 'load', `127.0.0.1:${world.web.port}`, '--tor-authorities', bad, '-n', '1'],
      30_000,
    );
    expect(code).toBe(2);
    expect(text).toMatch(/empty\.torrc: DirAuthority: no DirAuthority lines/);
  }, 60_000);

  it('loads a C tor onion service and reports the rendezvous points its client chose', async () => {
    const hsDir = path.join(world.dir, 'ctor-hs');
    await mkdir(hsDir, { mode: 0o700 });
    await chmod(hsDir, 0o700);
    ctorHs = await startCtorClient(world.bin, world.net, {
      nickname: 'client9',
      onionService: { dir: hsDir, virtualPort: 80, target: `127.0.0.1:${world.web.port}` },
    });
    const onion = ctorHs.onion!;
    // The service's descriptor takes a while to reach the HSDirs: wait until the client
    // process of the test above reaches it, so the run measures a published service.
    if (clientSocks === null) throw new Error('the client process test did not get a SOCKS port');
    const end = Date.now() + 180_000;
    for (;;) {
      const ok = await curlSocks(`127.0.0.1:${clientSocks}`, `http://${onion}/bytes/1000`).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (Date.now() > end) throw new Error(`${onion} never reachable:\n${await ctorHs.logs()}`);
      await new Promise((r) => setTimeout(r, 3_000));
    }
    const json = path.join(world.dir, 'load-onion.json');
    const n = 12;
    const { code, text } = await runTorLoad(world, {
      target: onion,
      count: n,
      concurrency: 3,
      size: '16k',
      out: json,
      timeoutMs: 240_000,
    });
    expect(code, text).toBe(0);
    expect(text).toMatch(/rendezvous points chosen \(client\)/);
    const r = JSON.parse(await readFile(json, 'utf8')) as {
      counts: { ok: number };
      clientRendezvousChosen: { total: number; counts: Record<string, number> } | null;
      clientRelayUse: Record<string, { total: number }> | null;
    };
    expect(r.counts.ok).toBe(n);
    const rp = r.clientRendezvousChosen!;
    expect(rp.total).toBeGreaterThan(0);
    const names = new Set(world.net.nodes.map((x) => x.nickname));
    for (const relay of Object.keys(rp.counts)) expect(names).toContain(relay);
    // Onion-service circuits end at chosen hops (HSDir, intro and rendezvous points).
    expect(r.clientRelayUse!.last!.total).toBeGreaterThanOrEqual(rp.total);
  }, 480_000);
});
