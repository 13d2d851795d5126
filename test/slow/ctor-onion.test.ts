// Issue 19: onion services across Shallot and C tor, on a C tor network
// started by the test (test/setup/ctor-testnet.ts: 3 authorities, 3
// relays, 1 exit of Debian's tor; every one an HSDir) and a stock C tor
// client that also hosts a C tor onion service (startCtorClient).
//
// - The Shallot onion service process (`node dist/services/onion-service/
//   main.js --tor-authorities FILE`, its key file C tor's
//   hs_ed25519_secret_key) picks intro points among C tor
//   relays, publishes its descriptor to the C tor HSDirs its ring names
//   (rend-spec-v3 §2.2.3, from the C tor consensus's SRVs and time periods)
//   by POST /tor/hs/3/publish over BEGIN_DIR, and the stock C tor client
//   reaches it: curl through C tor's SOCKS port, digest checked.
// - A Shallot client reaches the C tor onion service: curl through the
//   Shallot client's SOCKS port, digest checked.
// Needs `npm run build` (dist/) and tor + tor-gencert.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { parseDirAuthorities } from '../../services/core/ctor/dir-authority.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { startWebTarget, type WebTarget } from '../../services/testnet/web.js';
import { testLogger } from '../helpers/log.js';
import { collectOutput, curlSocks, sha256Hex } from '../helpers/up-cli.js';
import {
  type CtorClient,
  type CtorTestnet,
  ctorHostname,
  requireTor,
  startCtorClient,
  startCtorTestnet,
  stopChildren,
} from '../setup/ctor-testnet.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SERVICE = path.join(ROOT, 'dist/services/onion-service/main.js');
const SIZE = 1024 * 1024;

let bin: string;
let net: CtorTestnet;
let web: WebTarget;
let tmp: string;
let ctorClient: CtorClient;
let authFile: string;
const clients: ShallotClient[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  bin = requireTor();
  tmp = await mkdtemp(path.join(tmpdir(), 'shallot-ctor-onion-'));
  web = await startWebTarget('127.0.0.1', await ephemeralPort());
  net = await startCtorTestnet({ bin, relays: 3, exits: 1 });
  authFile = path.join(tmp, 'authorities.torrc');
  await writeFile(authFile, `${net.dirAuthorities}\n`);
  const hsDir = path.join(tmp, 'ctor-hs');
  await mkdir(hsDir, { mode: 0o700 });
  await chmod(hsDir, 0o700);
  ctorClient = await startCtorClient(bin, net, {
    nickname: 'client9',
    onionService: { dir: hsDir, virtualPort: 80, target: `127.0.0.1:${web.port}` },
  });
}, 420_000);

afterAll(async () => {
  await stopChildren(children);
  for (const c of clients) await c.stop().catch(() => {});
  await ctorClient?.stop();
  await net?.stop();
  await web?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 60_000);

async function shallotClient(name: string, socks: boolean): Promise<ShallotClient> {
  const c = new ShallotClient(
    { logger: testLogger(name), registry: new Registry() },
    {
      torAuthorities: parseDirAuthorities(net.dirAuthorities),
      socksHost: '127.0.0.1',
      socksPort: socks ? 0 : null,
      circuits: { prebuild: 0 },
    },
  );
  clients.push(c);
  await c.start();
  await c.ready(60_000);
  return c;
}

/** GET /readyz until it answers 200 (the service: a descriptor published). */
async function waitReady(opsPort: number, out: { text: string }, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const res = await fetch(`http://127.0.0.1:${opsPort}/readyz`, {
      signal: AbortSignal.timeout(2_000),
    }).catch(() => null);
    if (res?.ok) return;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new Error(`not ready in ${timeoutMs} ms:\n${out.text}`);
}

/** curl through SOCKS until it succeeds or the deadline passes (descriptors take a while to spread). */
async function curlUntil(socks: string, url: string, timeoutMs: number, logs: () => Promise<string>) {
  const end = Date.now() + timeoutMs;
  let last: Error | null = null;
  while (Date.now() < end) {
    try {
      return await curlSocks(socks, url);
    } catch (e) {
      last = e as Error;
      await new Promise((r) => setTimeout(r, 3_000));
    }
  }
  throw new Error(`${url} via ${socks}: ${last?.message}\n${await logs()}`);
}

describe('onion services between Shallot and C tor', () => {
  it('a stock C tor client reaches a Shallot onion service published to C tor HSDirs', async () => {
    // The service's identity is a key C tor made: the address stays C tor's.
    const keyDir = path.join(tmp, 'shallot-hs-key');
    await mkdir(keyDir, { mode: 0o700 });
    await chmod(keyDir, 0o700);
    const hostname = (await ctorHostname(bin, keyDir)).trim();
    const opsPort = await ephemeralPort();
    const child = spawn(
      process.execPath,
      [
        SERVICE,
        '--key-file',
        path.join(keyDir, 'hs_ed25519_secret_key'),
        '--tor-authorities',
        authFile,
        '--backend',
        `127.0.0.1:${web.port}`,
        '--intro-points',
        '2',
        '--ops-port',
        String(opsPort),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    const out = collectOutput(child);
    // Ready once a descriptor is published: C tor HSDirs answered the upload with 200.
    await waitReady(opsPort, out, 180_000);
    // The address it prints (stdout, among the logs) is the one C tor gave that key.
    expect(out.text.split('\n')).toContain(hostname);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    const ok = /^shallot_hs_descriptor_upload_total\{[^}]*outcome="success"[^}]*\} (\d+)/m.exec(metrics);
    expect(Number(ok?.[1] ?? 0)).toBeGreaterThan(0);
    const body = await curlUntil(
      `127.0.0.1:${ctorClient.socksPort}`,
      `http://${hostname}/bytes/${SIZE}`,
      180_000,
      async () => `${await ctorClient.logs()}\nservice output:\n${out.text}`,
    );
    expect(body.length).toBe(SIZE);
    expect(sha256Hex(body)).toBe(builtinSha256(SIZE));
  }, 480_000);

  it('a Shallot client reaches a C tor onion service', async () => {
    const onion = ctorClient.onion;
    expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    const client = await shallotClient('user', true);
    const body = await curlUntil(
      `127.0.0.1:${client.socksPort}`,
      `http://${onion}/bytes/${SIZE}`,
      180_000,
      ctorClient.logs,
    );
    expect(body.length).toBe(SIZE);
    expect(sha256Hex(body)).toBe(builtinSha256(SIZE));
  }, 300_000);
});
