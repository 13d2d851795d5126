// `shallot up --workers 2` end to end: each authority in a worker thread of
// its own (auth0..auth2, so one's vote computation never holds another's
// HTTP answers), the relays in another (worker0), used through the SOCKS port
// (onion and exit fetches with digests checked), every worker's /metrics
// reachable from state.json and serving only its own nodes, and a
// launcher killed with SIGKILL leaves no worker serving (threads die with
// their process). Needs `npx tsc -p tsconfig.json` (dist/) and curl.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetworkState } from '../../services/testnet/state.js';
import { collectOutput, curlSocks, sha256Hex, smallUpArgs, waitUpReady } from '../helpers/up-cli.js';

const repo = path.resolve(import.meta.dirname, '../..');
let dataDir: string;
let child: ChildProcess;
let out: { text: string };
let state: NetworkState;

/** True when something accepts a TCP connection on host:port. */
function listening(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const s = net.connect(Number(port), host, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-workers-'));
  child = spawn(
    process.execPath,
    [
      path.join(repo, 'dist/services/testnet/main.js'),
      'up',
      '--workers',
      '2',
      ...(await smallUpArgs(dataDir, 6, 2)),
    ],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  out = collectOutput(child);
  state = await waitUpReady(child, out, dataDir, 170_000);
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('shallot up --workers 2', () => {
  it('runs in worker mode: the launcher, one worker per authority and one for the relays in state.json', () => {
    expect(state.mode).toBe('workers');
    expect(state.nodes.map((n) => `${n.name}/${n.role}`)).toEqual([
      'shallot/launcher',
      'auth0/worker',
      'auth1/worker',
      'auth2/worker',
      'worker0/worker',
    ]);
    // Each thread has a metrics port of its own.
    expect(new Set(state.nodes.map((n) => n.metrics)).size).toBe(state.nodes.length);
    expect(out.text).toMatch(/Logs: .*shallot\.log/);
  });

  it('fetches through an exit, checked against the target digest', async () => {
    const body = await curlSocks(state.socks, `http://${state.web}/bytes/300000`);
    const digest = (await curlSocks(state.socks, `http://${state.web}/sha256/300000`)).toString().trim();
    expect(body.length).toBe(300000);
    expect(sha256Hex(body)).toBe(digest);
  }, 120_000);

  it('fetches from the onion service, checked against its digest', async () => {
    const onion = state.onionServices[0]?.address;
    expect(onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    const body = await curlSocks(state.socks, `http://${onion}/bytes/500000`);
    const digest = (await curlSocks(state.socks, `http://${onion}/sha256/500000`)).toString().trim();
    expect(body.length).toBe(500000);
    expect(sha256Hex(body)).toBe(digest);
  }, 120_000);

  it("every worker's metrics are served where state.json says: each authority's series from its own worker only, relay series from worker0", async () => {
    const text = async (name: string) => {
      const n = state.nodes.find((x) => x.name === name);
      const res = await fetch(`http://${n?.metrics}/metrics`);
      expect(res.status).toBe(200);
      return res.text();
    };
    for (const i of [0, 1, 2]) {
      const auth = await text(`auth${i}`);
      // Descriptors each authority received, labelled with the thread and the authority...
      const received = auth.split('\n').filter((l) => l.startsWith('shallot_dir_descriptors_total{'));
      expect(received.some((l) => l.includes(`node="auth${i}"`) && / [1-9]\d*$/.test(l))).toBe(true);
      // ...and no other authority's: a registry is per thread, so none shares this one.
      const authorities = new Set(received.map((l) => /authority="([^"]+)"/.exec(l)?.[1]));
      expect([...authorities]).toEqual([`auth${i}`]);
      expect(auth).not.toMatch(/shallot_relay_cells_total\{/);
    }
    const relays = await text('worker0');
    expect(relays).toMatch(/shallot_relay_cells_total\{[^}]*node="worker0"[^}]*\} [1-9]/);
    expect(relays).not.toMatch(/shallot_dir_descriptors_total\{/);
    const launcher = await text('shallot');
    expect(launcher).toMatch(/shallot_circuits_total\{[^}]*\} [1-9]/);
    // The Prometheus file_sd targets name all five.
    const targets = JSON.parse(await readFile(state.targetsFile, 'utf8')) as { targets: string[] }[];
    expect(targets.flatMap((t) => t.targets).sort()).toEqual(state.nodes.map((n) => n.metrics).sort());
  }, 30_000);

  it('kill -9 of the launcher leaves no worker: every metrics, authority and SOCKS port closes', async () => {
    const endpoints = [
      ...state.nodes.map((n) => n.metrics ?? ''),
      ...state.authorities.map((a) => new URL(a.url).host),
      state.socks,
    ];
    for (const e of endpoints) expect(await listening(e)).toBe(true);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    for (const e of endpoints) expect(await listening(e)).toBe(false);
    expect(() => process.kill(state.pid, 0)).toThrow();
  }, 30_000);
});
