// e2e: `npx shallot up` started exactly as README says, used through its
// SOCKS port by curl (onion address and exit), then stopped with Ctrl-C
// (SIGINT) leaving no process behind. Needs `npm run build` and curl
// (both done by `npm run test:all`).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchConsensus } from '../../services/net/dir-client.js';
import type { NetworkState } from '../../services/testnet/state.js';
import { expectResultFields } from '../helpers/load-report.js';
import { collectOutput, curlSocks, sha256Hex, smallUpArgs, waitUpReady } from '../helpers/up-cli.js';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
let dataDir: string;
let child: ChildProcess;
let out: { text: string };
let state: NetworkState;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-e2e-'));
  child = spawn(
    'npx',
    [
      'shallot',
      'up',
      ...(await smallUpArgs(dataDir, 6, 2)),
      // Network-wide limits as a user sets them (README: Defences); checked in the consensus below.
      '--consensus-params',
      'DoSCircuitCreationBurst=120,allow-network-reentry=0',
    ],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  out = collectOutput(child);
  state = await waitUpReady(child, out, dataDir, 150_000);
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(dataDir, { recursive: true, force: true });
});

describe('shallot up (e2e)', () => {
  it('prints the SOCKS address, an onion address, a curl line, metrics URLs and the file_sd path', () => {
    expect(out.text).toMatch(/SOCKS5 proxy\s+127\.0\.0\.1:\d+/);
    expect(out.text).toMatch(/HTTP tunnel\s+127\.0\.0\.1:\d+/);
    expect(out.text).toMatch(/curl -p -x http:\/\/127\.0\.0\.1:\d+ http:\/\/[a-z2-7]{56}\.onion\//);
    expect(out.text).toMatch(/[a-z2-7]{56}\.onion/);
    expect(out.text).toMatch(/curl --socks5-hostname/);
    expect(out.text).toMatch(/http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(out.text).toContain('prometheus-targets.json');
  });

  it('serves bytes through an exit, checked against the target digest', async () => {
    const body = await curlSocks(state.socks, `http://${state.web}/bytes/300000`);
    const digest = (await curlSocks(state.socks, `http://${state.web}/sha256/300000`)).toString().trim();
    expect(body.length).toBe(300000);
    expect(sha256Hex(body)).toBe(digest);
  }, 90_000);

  it('serves bytes from the onion service', async () => {
    const onion = state.onionServices[0]?.address;
    expect(onion).toMatch(/\.onion$/);
    const body = await curlSocks(state.socks, `http://${onion}/bytes/500000`);
    const digest = (await curlSocks(state.socks, `http://${onion}/sha256/500000`)).toString().trim();
    expect(sha256Hex(body)).toBe(digest);
  }, 120_000);

  it('--consensus-params reach the consensus every node reads', async () => {
    const { consensus } = await fetchConsensus(state.authorities, { nowMs: Date.now(), skewMs: 5_000 });
    expect(consensus.params).toMatchObject({ DoSCircuitCreationBurst: 120, 'allow-network-reentry': 0 });
  });

  it('shallot status shows the consensus', async () => {
    const { stdout } = await run('npx', ['shallot', 'status', '--data-dir', dataDir], { cwd: repo });
    expect(stdout).toMatch(/relays/);
    expect(stdout).toMatch(/Running/);
  }, 60_000);

  it('shallot load: a bounded run against the onion service exits 0 and writes JSON and HTML', async () => {
    const onion = state.onionServices[0]?.address ?? '';
    const out = path.join(dataDir, 'load.json');
    const html = path.join(dataDir, 'load.html');
    await run(
      'npx',
      [
        'shallot',
        'load',
        onion,
        '--socks',
        state.socks,
        '--count',
        '12',
        '--concurrency',
        '3',
        '--size',
        '20k',
        '--new-circuit',
        '--targets-file',
        state.targetsFile,
        '--out',
        out,
        '--html',
        html,
      ],
      { cwd: repo, timeout: 120_000 },
    );
    const result = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
    expectResultFields(result, ['circuitBuild']);
    expect(result.successRatio).toBe(1);
    expect((result.counts as { requests: number }).requests).toBe(12);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<svg');
    expect(page).not.toMatch(/<script[^>]+src=/);
  }, 150_000);

  it('stops cleanly on Ctrl-C and leaves no process behind', async () => {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // A terminal's Ctrl-C signals the whole foreground process group.
    process.kill(-(child.pid ?? 0), 'SIGINT');
    await exited;
    // npx itself dies of the SIGINT; the launcher under it reports a clean stop.
    expect(out.text).toContain('stopped.');
    // Nothing is left in the process group: npx, the launcher, any node.
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      try {
        process.kill(-(child.pid ?? 0), 0);
        await new Promise((r) => setTimeout(r, 200));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
  }, 40_000);
});
