// README "torsocks, Chromium and Tor Browser", run as written there (the
// ports and data dir of this run substituted): torsocks with the documented
// config downloads from the onion service with the built-in digest, fails
// with an empty config and refuses the 127.0.0.1 exit target, as README says;
// headless Chromium with the documented flags dumps the onion service's and
// the exit target's pages, and the exit target's goes through the SOCKS port
// (with a closed port in its place the page does not load). Needs Debian's
// torsocks and chromium-headless-shell (test/setup/install-tools.sh).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { readmeBlocks } from '../helpers/readme.js';
import { upReadmeNetwork } from '../helpers/testnet.js';

let dataDir: string;
let net: RunningNetwork;
let socksPort: string;
let blocks: string[];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** bash -c with pipefail; never rejects, so failures can be asserted. */
function bash(script: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-o', 'pipefail', '-c', script],
      { cwd: path.dirname(dataDir), timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A README line with this run's data dir, SOCKS port and exit target. */
const local = (line: string): string =>
  line
    .replaceAll(/(\.\/)?\.shallot\//g, `${dataDir}/`)
    .replaceAll(/\b9050\b/g, socksPort)
    .replaceAll('127.0.0.1:7117', net.state.web ?? '');

/** Chromium refuses to run as root without its sandbox switched off (README says so). */
const rootFlag = process.getuid?.() === 0 ? ' --no-sandbox' : '';

beforeAll(async () => {
  dataDir = path.join(await mkdtemp(path.join(tmpdir(), 'shallot-torsocks-')), '.shallot');
  socksPort = String(await ephemeralPort());
  net = await upReadmeNetwork({ dataDir, socksPort: Number(socksPort) });
  expect(net.state.socks).toBe(`127.0.0.1:${socksPort}`);
  blocks = await readmeBlocks('torsocks, Chromium and Tor Browser');
}, 180_000);

afterAll(async () => {
  await net?.stop();
  if (dataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
});

describe('torsocks', () => {
  it("README's torsocks lines: the onion service's 1 MiB with the built-in digest", async () => {
    const lines = (blocks[0] ?? '').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^TORSOCKS_CONF_FILE=\S+ torsocks curl /);
    const r = await bash(lines.map(local).join('\n'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`${builtinSha256(1 << 20)}  -`);
  }, 150_000);

  it('exits 1 with an empty config, as README warns', async () => {
    const empty = path.join(dataDir, 'torsocks-empty.conf');
    await writeFile(empty, '');
    const onion = net.state.onionServices[0]?.address ?? '';
    const r = await bash(`TORSOCKS_CONF_FILE=${empty} torsocks curl -s http://${onion}/`);
    expect(r.code).toBe(1);
  }, 60_000);

  it('refuses the 127.0.0.1 exit target, as README says', async () => {
    const [conf = ''] = (blocks[0] ?? '').split('\n');
    expect(conf).toMatch(/^printf .* > \.shallot\/torsocks\.conf$/);
    const r = await bash(
      `${local(conf)}\nTORSOCKS_CONF_FILE=${dataDir}/torsocks.conf torsocks curl -sS http://${net.state.web}/sha256/16`,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Connection to a local address are denied');
  }, 60_000);
});

describe('Chromium (headless)', () => {
  /** README's headless lines, with ONION set as the torsocks block sets it. */
  const headless = async (): Promise<string[]> => {
    const lines = (blocks[1] ?? '').split('\n').filter((l) => l.startsWith('chromium-headless-shell '));
    expect(lines).toHaveLength(2);
    const onion = `ONION=${net.state.onionServices[0]?.address}`;
    return lines.map((l) => `${onion}\n${local(l)}${rootFlag} 2>/dev/null`);
  };

  it("dumps the onion service's page", async () => {
    const r = await bash((await headless())[0] ?? '');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Shallot onion service');
    expect(r.stdout).toContain('GET /bytes/');
  }, 120_000);

  it("dumps the exit target's page through the SOCKS port, which <-loopback> makes it use", async () => {
    const line = (await headless())[1] ?? '';
    const r = await bash(line);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Shallot exit target');
    // The same line with a port nobody listens on: no page, so the one above came through the proxy.
    const closed = String(await ephemeralPort());
    const without = await bash(line.replace(`127.0.0.1:${socksPort}`, `127.0.0.1:${closed}`));
    expect(without.stdout).not.toContain('Shallot exit target');
  }, 120_000);
});
