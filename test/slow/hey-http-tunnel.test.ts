// An ecosystem load tool through the HTTP CONNECT tunnel: hey (Go module
// proxy, test/setup/install-tools.sh) against onion services of a network
// started as `shallot up` starts it. Go's HTTP client sends an http:// URL
// to a proxy as an absolute-URI GET, which C tor's HTTPTunnelPort refuses
// with 405, and so does Shallot's: hey needs an https:// URL, for which it
// sends CONNECT. So the test runs README's "Using real clients" lines: an
// onion service (its own process, dist/) in front of an HTTPS server, then
// hey through the tunnel, every response a 200; and shows the 405 for the
// built-in http:// service. Needs `npm run build` and hey (npm run test:all).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveBuiltinHttp } from '../../services/onion-service/builtin-http.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { readmeBlocks } from '../helpers/readme.js';
import { upReadmeNetwork } from '../helpers/testnet.js';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
const hey = path.join(process.env.SHALLOT_TOOLS ?? path.join(homedir(), '.cache/shallot-tools'), 'bin/hey');

let dir: string;
let dataDir: string;
let net: RunningNetwork;
let tunnelPort: number;
let httpsServer: tls.Server;
let httpsPort: number;
let service: ChildProcess | null = null;
let tlsOnion: string;

/** README's lines, with the data dir and ports of this run. */
function readme(line: string): string {
  return line
    .replaceAll('./.shallot/', `${dataDir}/`)
    .replaceAll('127.0.0.1:9080', `127.0.0.1:${tunnelPort}`)
    .replaceAll('127.0.0.1:8443', `127.0.0.1:${httpsPort}`)
    .replaceAll('/tmp/tls-onion.key', path.join(dir, 'tls-onion.key'));
}

/** README's load-tool block: the AUTH line, the onion service line, the hey line. */
let lines: string[];

beforeAll(async () => {
  lines = ((await readmeBlocks('Using real clients'))[1] ?? '').split('\n');
  expect(lines).toHaveLength(3);
  expect(lines[2]).toMatch(/^hey /);
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-hey-'));
  dataDir = path.join(dir, 'data');
  tunnelPort = await ephemeralPort();
  net = await upReadmeNetwork({ dataDir, httpTunnelPort: tunnelPort });
  // Any HTTPS server will do; this one serves the built-in backend's /bytes/<n> over TLS.
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-days',
    '1',
    '-keyout',
    path.join(dir, 'key.pem'),
    '-out',
    path.join(dir, 'cert.pem'),
  ]);
  httpsServer = tls.createServer(
    { key: await readFile(path.join(dir, 'key.pem')), cert: await readFile(path.join(dir, 'cert.pem')) },
    (s) => {
      s.on('error', () => s.destroy());
      serveBuiltinHttp(s, 'HTTPS backend');
    },
  );
  await new Promise<void>((r) => httpsServer.listen(0, '127.0.0.1', r));
  httpsPort = (httpsServer.address() as { port: number }).port;
  const opsPort = await ephemeralPort();
  service = spawn(
    'bash',
    ['-c', `${readme(lines[0] as string)}; exec ${readme(lines[1] as string)} --ops-port ${opsPort}`],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  service.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  service.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${opsPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    const m = /([a-z2-7]{56}\.onion)/.exec(out);
    if (ready && m) {
      tlsOnion = m[1] as string;
      break;
    }
    if (service.exitCode !== null || Date.now() > deadline)
      throw new Error(`onion service not ready; output:\n${out}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}, 300_000);

afterAll(async () => {
  if (service && service.exitCode === null) {
    const exited = new Promise((r) => service?.once('exit', r));
    service.kill('SIGTERM');
    await exited;
  }
  httpsServer?.close();
  await net?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** hey's status-code lines ("[200]\t200 responses") and whether it listed errors. */
async function runHey(
  line: string,
): Promise<{ codes: Record<string, number>; errors: boolean; out: string }> {
  const [, ...args] = readme(line).split(' ');
  const { stdout } = await run(hey, args, { timeout: 240_000 });
  const codes: Record<string, number> = {};
  for (const m of stdout.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)) codes[m[1] as string] = Number(m[2]);
  return { codes, errors: /Error distribution/.test(stdout), out: stdout };
}

describe('hey through the HTTP tunnel', () => {
  it("README's hey line: 200 requests, 10 at a time, to an onion service in front of HTTPS, every one a 200", async () => {
    const r = await runHey((lines[2] as string).replace('<the address it prints>', tlsOnion));
    expect(r.codes, r.out).toEqual({ '200': 200 });
    expect(r.errors, r.out).toBe(false);
    // Keep-alive: hey's 10 connections are 10 tunnels, each a CONNECT the client counted.
    const metrics = await (await fetch(`http://${net.state.nodes[0]?.metrics}/metrics`)).text();
    const m =
      /shallot_client_proxy_requests_total\{[^}]*protocol="http_connect",result="success"[^}]*\} (\d+)/.exec(
        metrics,
      );
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(10);
  }, 300_000);

  it('an http:// URL goes to the proxy as an absolute-URI GET: 405 from the tunnel, as C tor answers', async () => {
    const onion = net.state.onionServices[0]?.address;
    const r = await runHey(`hey -n 20 -c 2 -x http://127.0.0.1:9080 http://${onion}/bytes/1024`);
    expect(r.codes, r.out).toEqual({ '405': 20 });
  }, 120_000);
});
