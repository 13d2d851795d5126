// The HTTP tunnel and SOCKS4a of a client running as its own process
// (`shallot up --process-per-node`: dist/services/client/main.js
// --http-tunnel-port), used by real curl to the onion service and the exit
// target with digests checked. Needs `npm run build` (npm run test:all).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { upProcessNetwork } from '../helpers/testnet.js';

let dataDir: string;
let net: RunningNetwork;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-tunnel-procs-'));
  net = await upProcessNetwork({
    relays: 5,
    exits: 2,
    onionServices: 1,
    dataDir,
    logLevel: 'warn',
    httpTunnelPort: await ephemeralPort(),
  });
}, 300_000);

afterAll(async () => {
  await net?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** curl's stdout as the SHA-256 of the body, or its error. */
function curlDigest(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'curl',
      ['-sS', '--max-time', '90', ...args],
      { encoding: 'buffer', maxBuffer: 64 << 20 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${err.message}\n${stderr.toString()}`))
          : resolve(createHash('sha256').update(stdout).digest('hex')),
    ),
  );
}

const N = 1 << 20;

describe('the client process: HTTP tunnel and SOCKS4a', () => {
  it('state.json names the tunnel of the client process', () => {
    expect(net.state.mode).toBe('process-per-node');
    expect(net.state.httpTunnel).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('curl -p through the tunnel and --socks4a, to the onion service and the exit target', async () => {
    const onion = net.state.onionServices[0]?.address;
    const tunnel = `http://${net.state.httpTunnel}`;
    for (const target of [`http://${onion}/bytes/${N}`, `http://${net.state.web}/bytes/${N}`]) {
      expect(await curlDigest(['-p', '-x', tunnel, target])).toBe(builtinSha256(N));
      expect(await curlDigest(['--socks4a', net.state.socks, target])).toBe(builtinSha256(N));
    }
  }, 240_000);
});
