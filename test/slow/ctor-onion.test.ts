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
import { spawn } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { parseDirAuthorities } from '../../services/core/ctor/dir-authority.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { type CtorWorld, SERVICE_MAIN, startCtorWorld, waitReadyz } from '../helpers/ctor-run.js';
import { testLogger } from '../helpers/log.js';
import { collectOutput, curlSocks, sha256Hex } from '../helpers/up-cli.js';
import { type CtorClient, ctorHostname, startCtorClient } from '../setup/ctor-testnet.js';

const SIZE = 1024 * 1024;

let world: CtorWorld;
let ctorClient: CtorClient;
const clients: ShallotClient[] = [];

beforeAll(async () => {
  world = await startCtorWorld('ctor-onion', { relays: 3, exits: 1 });
  const hsDir = path.join(world.dir, 'ctor-hs');
  await mkdir(hsDir, { mode: 0o700 });
  await chmod(hsDir, 0o700);
  ctorClient = await startCtorClient(world.bin, world.net, {
    nickname: 'client9',
    onionService: { dir: hsDir, virtualPort: 80, target: `127.0.0.1:${world.web.port}` },
  });
}, 420_000);

afterAll(async () => {
  for (const c of clients) await c.stop().catch(() => {});
  await ctorClient?.stop();
  await world?.stop();
}, 60_000);

async function shallotClient(name: string, socks: boolean): Promise<ShallotClient> {
  const c = new ShallotClient(
    { logger: testLogger(name), registry: new Registry() },
    {
      torAuthorities: parseDirAuthorities(world.net.dirAuthorities),
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
    const keyDir = path.join(world.dir, 'shallot-hs-key');
    await mkdir(keyDir, { mode: 0o700 });
    await chmod(keyDir, 0o700);
    const hostname = (await ctorHostname(world.bin, keyDir)).trim();
    const opsPort = await ephemeralPort();
    const child = spawn(
      process.execPath,
      [
        SERVICE_MAIN,
        '--key-file',
        path.join(keyDir, 'hs_ed25519_secret_key'),
        '--tor-authorities',
        world.authFile,
        '--backend',
        `127.0.0.1:${world.web.port}`,
        '--intro-points',
        '2',
        '--ops-port',
        String(opsPort),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    world.children.push(child);
    const out = collectOutput(child);
    // Ready once a descriptor is published: C tor HSDirs answered the upload with 200.
    await waitReadyz(opsPort, out, 180_000);
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
