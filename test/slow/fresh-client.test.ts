// A client that has just started serves requests (issue 14: after
// `kubectl rollout restart` of the client, 7 of 24 onion fetches through its
// Service failed right after the rollout). Real processes on 127.0.0.1: a
// `shallot up --process-per-node` network with one onion service, then a NEW
// client process (dist/services/client/main.js, an empty data dir, as a
// restarted pod's emptyDir) started against it.
// - Polled as a kubelet polls its readinessProbe (/readyz about every
//   second), the moment it says ready it must serve curl fetches of the
//   onion service, each under its own SOCKS username (fresh circuits): 12
//   one after another, as a shell loop would, and 12 four at a time; and 24
//   exit fetches the same way. Every one must succeed, body digest checked.
// - A request that arrives before it is ready (its SOCKS port is open at
//   once) waits for the bootstrap, as C tor holds a stream in
//   AP_CONN_STATE_CIRCUIT_WAIT while it lacks the directory information to
//   build circuits (circuit_get_open_circ_or_launch:
//   router_have_minimum_dir_info), up to SocksTimeout. Here the
//   authorities' directory ports are held shut (a gate in front of each)
//   until the requests are in.
// - Told to stop (SIGTERM, as Kubernetes stops the old pod of a rollout
//   while its Service may still route new connections to it for a moment),
//   a client with --shutdown-delay keeps serving new requests for that long
//   with /readyz failing, then exits 0.
// Needs `npm run build` (dist/) and curl.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthorityEndpoint } from '../../services/net/dir-client.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { type ClientProcess, endChildren, readyAt, spawnClient } from '../helpers/client-process.js';
import { isolatedCurl, isolatedFetches, reportOutcomes } from '../helpers/isolated-curl.js';
import { upProcessNetwork } from '../helpers/testnet.js';

const SIZE = 64 * 1024;
const WANT = builtinSha256(SIZE);

let dataDir: string;
let network: RunningNetwork;
let onion: string;
let web: string;
const children: ChildProcess[] = [];
const gates: net.Server[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-fresh-client-'));
  network = await upProcessNetwork({ relays: 6, exits: 2, onionServices: 1, dataDir, logLevel: 'warn' });
  onion = network.state.onionServices[0]?.address ?? '';
  web = network.state.web ?? '';
}, 300_000);

afterAll(async () => {
  await endChildren(children);
  for (const g of gates) g.close();
  await network?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

/** Resolves once something listens on host:port. */
async function listening(hostPort: string, timeoutMs: number): Promise<void> {
  const [host, port] = hostPort.split(':');
  const end = Date.now() + timeoutMs;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(Number(port), host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > end) throw new Error(`${hostPort} not listening in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A new client process (client-process.ts), ended in afterAll. */
async function startClient(
  name: string,
  authorities: readonly AuthorityEndpoint[],
  extra: string[] = [],
): Promise<ClientProcess> {
  const c = await spawnClient({ dataDir, name, authorities, extra });
  children.push(c.child);
  return c;
}

/** A TCP gate in front of `target`: connections are held, unanswered, until `open()`. */
async function gate(target: URL): Promise<{ url: string; open: () => void }> {
  const held: net.Socket[] = [];
  let isOpen = false;
  const pipe = (s: net.Socket) => {
    const up = net.connect(Number(target.port), target.hostname);
    s.pipe(up).pipe(s);
    up.on('error', () => s.destroy());
    s.on('error', () => up.destroy());
  };
  const server = net.createServer((s) => {
    s.pause();
    if (isOpen) pipe(s);
    else held.push(s);
  });
  gates.push(server);
  const port = await ephemeralPort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${port}`,
    open: () => {
      isOpen = true;
      for (const s of held.splice(0)) pipe(s);
    },
  };
}

describe('a client that has just started', () => {
  it('serves onion and exit fetches from the moment /readyz says ready', async () => {
    const c = await startClient('fresh', network.state.authorities);
    const started = performance.now();
    const ready = await readyAt(c, 60_000);
    console.log(`fresh client ready ${((ready - started) / 1000).toFixed(1)} s after start`);
    const onionUrl = `http://${onion}/bytes/${SIZE}`;
    const exitUrl = `http://${web}/bytes/${SIZE}`;
    const [onionSeq, exitSeq] = await Promise.all([
      isolatedFetches(c.socks, onionUrl, WANT, { prefix: 'onion-seq-', n: 12, parallel: 1 }),
      isolatedFetches(c.socks, exitUrl, WANT, { prefix: 'exit-seq-', n: 12, parallel: 1 }),
    ]);
    const [onionPar, exitPar] = await Promise.all([
      isolatedFetches(c.socks, onionUrl, WANT, { prefix: 'onion-par-', n: 12, parallel: 4 }),
      isolatedFetches(c.socks, exitUrl, WANT, { prefix: 'exit-par-', n: 12, parallel: 4 }),
    ]);
    reportOutcomes('onion, one at a time', onionSeq);
    reportOutcomes('onion, four at a time', onionPar);
    reportOutcomes('exit, one at a time', exitSeq);
    reportOutcomes('exit, four at a time', exitPar);
    const all = [...onionSeq, ...onionPar, ...exitSeq, ...exitPar];
    if (all.some((o) => !o.ok)) console.log(`client log: ${c.log}\n${await readFile(c.log, 'utf8')}`);
    expect(all.filter((o) => !o.ok).map((o) => `${o.label}: ${o.error}`)).toEqual([]);
  }, 600_000);

  it('holds requests that arrive before it is ready until it has bootstrapped', async () => {
    const gated = await Promise.all(
      network.state.authorities.map(async (a) => ({ a, g: await gate(new URL(a.url)) })),
    );
    const c = await startClient(
      'early',
      gated.map(({ a, g }) => ({ identity: a.identity, url: g.url })),
    );
    await listening(c.socks, 30_000);
    const early = [
      isolatedCurl(c.socks, `http://${onion}/bytes/${SIZE}`, 'early-onion', WANT),
      isolatedCurl(c.socks, `http://${web}/bytes/${SIZE}`, 'early-exit', WANT),
    ];
    // The requests are in while the client has no consensus; then let the directory through.
    await new Promise((r) => setTimeout(r, 3_000));
    const notReady = await fetch(`http://127.0.0.1:${c.ops}/readyz`).then((r) => r.status);
    for (const { g } of gated) g.open();
    const r = await Promise.all(early);
    reportOutcomes('requests before ready', r);
    expect(notReady).toBe(503);
    expect(r.filter((o) => !o.ok).map((o) => `${o.label}: ${o.error}`)).toEqual([]);
  }, 300_000);

  it('told to stop, it serves new requests for --shutdown-delay with /readyz failing, then exits', async () => {
    const c = await startClient('draining', network.state.authorities, ['--shutdown-delay', '4']);
    await readyAt(c, 60_000);
    expect((await isolatedCurl(c.socks, `http://${onion}/bytes/${SIZE}`, 'before-stop', WANT)).ok).toBe(true);
    const exited = new Promise<number | null>((r) => c.child.once('exit', (code) => r(code)));
    const stopAt = performance.now();
    c.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // Kubernetes takes a not-ready pod out of the Service; connections already routed here are served.
    const readyz = await fetch(`http://127.0.0.1:${c.ops}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    const late = await Promise.all([
      isolatedCurl(c.socks, `http://${onion}/bytes/${SIZE}`, 'after-sigterm-onion', WANT),
      isolatedCurl(c.socks, `http://${web}/bytes/${SIZE}`, 'after-sigterm-exit', WANT),
    ]);
    reportOutcomes('requests after SIGTERM', late);
    expect(readyz).toBe(503);
    expect(late.filter((o) => !o.ok).map((o) => `${o.label}: ${o.error}`)).toEqual([]);
    expect(await exited).toBe(0);
    expect(performance.now() - stopAt).toBeGreaterThanOrEqual(3_500);
  }, 120_000);
});
