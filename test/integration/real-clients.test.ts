// Real curl through a whole network started as `shallot up` starts it (one
// process: 3 authorities, 6 relays, 2 exits, one onion service with the
// built-in backend, the exit target, the client's SOCKS port and HTTP
// tunnel): SOCKS5h, SOCKS4a, SOCKS4 and the HTTP CONNECT tunnel (curl -p)
// to the onion service and to the exit target, each download checked
// against the built-in SHA-256; curl's view of a 405 and of a refused
// tunnel. These are README "Using real clients" command lines.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { readmeBlocks } from '../helpers/readme.js';
import { upReadmeNetwork } from '../helpers/testnet.js';

let dataDir: string;
let net: RunningNetwork;
let socks: string;
let tunnel: string;
let onion: string;
let web: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-real-clients-'));
  net = await upReadmeNetwork({ dataDir });
  socks = net.state.socks;
  tunnel = net.state.httpTunnel ?? '';
  onion = net.state.onionServices[0]?.address ?? '';
  web = net.state.web ?? '';
}, 180_000);

afterAll(async () => {
  await net?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

interface CurlResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs curl to completion; its exit code, body and error text (curl -sS prints only errors). */
function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '60', ...args],
      { encoding: 'buffer', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString() });
      },
    );
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const N = 1 << 20;

describe('curl through the SOCKS port and the HTTP tunnel', () => {
  it('shallot up reports the HTTP tunnel in state.json', () => {
    expect(tunnel).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
  });

  const cases: [string, () => string[]][] = [
    ['SOCKS5h to the onion service', () => ['--socks5-hostname', socks, `http://${onion}/bytes/${N}`]],
    ['SOCKS4a to the onion service', () => ['--socks4a', socks, `http://${onion}/bytes/${N}`]],
    [
      'HTTP tunnel (curl -p) to the onion service',
      () => ['-p', '-x', `http://${tunnel}`, `http://${onion}/bytes/${N}`],
    ],
    ['SOCKS5h to the exit target', () => ['--socks5-hostname', socks, `http://${web}/bytes/${N}`]],
    ['SOCKS4a to the exit target', () => ['--socks4a', socks, `http://${web}/bytes/${N}`]],
    ['SOCKS4 (IPv4 only) to the exit target', () => ['--socks4', socks, `http://${web}/bytes/${N}`]],
    [
      'HTTP tunnel (curl -p) to the exit target',
      () => ['-p', '-x', `http://${tunnel}`, `http://${web}/bytes/${N}`],
    ],
  ];
  for (const [name, args] of cases)
    it(`${name}: 1 MiB with the built-in digest`, async () => {
      const r = await curl(args());
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.length).toBe(N);
      expect(sha256(r.stdout)).toBe(builtinSha256(N));
    }, 90_000);

  it("README's Using real clients lines, as written there (ports of this run): every digest the built-in one", async () => {
    const block = (await readmeBlocks('Using real clients'))[0] ?? '';
    expect(block).toContain('curl --socks4a');
    const script = block
      .replaceAll('./.shallot/', `${dataDir}/`)
      .replaceAll('127.0.0.1:9050', socks)
      .replaceAll('127.0.0.1:9080', tunnel)
      .replaceAll('127.0.0.1:7117', web);
    const out = await new Promise<string>((resolve, reject) =>
      execFile('bash', ['-c', `set -eo pipefail\n${script}`], { timeout: 240_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const sums = out.trim().split('\n');
    expect(sums).toHaveLength(block.split('\n').filter((l) => l.startsWith('curl ')).length);
    for (const line of sums) expect(line).toBe(`${builtinSha256(N)}  -`);
  }, 240_000);

  it('the digest the server states matches, read through the tunnel', async () => {
    const r = await curl(['-p', '-x', `http://${tunnel}`, `http://${onion}/sha256/${N}`]);
    expect(r.stdout.toString().trim()).toBe(builtinSha256(N));
  }, 90_000);

  it('curl without -p sends an absolute-URI GET: 405, as C tor answers it', async () => {
    const r = await curl([
      '-x',
      `http://${tunnel}`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${onion}/`,
    ]);
    expect(r.stdout.toString()).toBe('405');
  }, 30_000);

  it('curl reports a refused tunnel with its status and a refused SOCKS4a request as rejected', async () => {
    const viaTunnel = await curl(['-p', '-x', `http://${tunnel}`, 'http://10.1.2.3:80/']);
    expect(viaTunnel.code).not.toBe(0);
    expect(viaTunnel.stderr).toMatch(/CONNECT tunnel failed, response 403/);
    const viaSocks4 = await curl(['--socks4a', socks, 'http://10.1.2.3:80/']);
    expect(viaSocks4.code).not.toBe(0);
    expect(viaSocks4.stderr).toMatch(/rejected or failed/i);
  }, 60_000);
});
