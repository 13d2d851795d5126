// `shallot fault` on authorities and onion-service instances of a network
// in the default mode (worker threads: each authority in a worker of
// its own, the relays in another, the client and the onion service on
// the launcher's thread) and in one process, through the built CLI
// (dist/services/testnet/main.js), one fault after another:
//   - pause auth0: its DirPort answers nothing while the other two still
//     publish a fresh consensus (2 of 3 signatures, dir-spec §3.4.1), and
//     it answers again once healed;
//   - cut auth0~relay2: auth0's reachability probes of relay2 are refused,
//     so its vote stops calling relay2 Running (dir-spec §3.4.2), and after
//     the heal it does again;
//   - restart auth1: it is down and back, and serves a consensus again;
//   - pause onion0-0 (the service's only instance): a client cannot reach
//     the service while it lasts (every link of the instance holds), and
//     reaches it again after the heal;
//   - kill onion0-0: unreachable while it is down, reachable again once the
//     heal has built it anew from its identity key and it has published.
// Needs `npm run build` (npm run test:all).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchConsensus } from '../../services/net/dir-client.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { socksConnect } from '../helpers/socks-client.js';
import { socksPortOf, upReadmeNetwork } from '../helpers/testnet.js';

const cli = path.resolve('dist/services/testnet/main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function shallot(dataDir: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [cli, ...args, '--data-dir', dataDir], (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** The fault number `shallot fault` printed ("#3 pause auth0 for 30s ..."). */
const faultId = (line: string): string => /^#(\d+) /.exec(line)?.[1] ?? '';

/** Polls `probe` every second until it holds, for at most `ms`; the last value. */
async function until<T>(ms: number, probe: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await sleep(1_000);
  }
}

/** The DirPort's answer to a consensus GET within 3 s: its status, or "none". */
async function dirAnswer(url: string): Promise<number | 'none'> {
  try {
    const r = await fetch(`${url}/tor/status-vote/current/consensus`, { signal: AbortSignal.timeout(3_000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 'none';
  }
}

/** Relays auth0's latest vote did not call Running for want of reachability (the authorities' worker metrics). */
async function unreachableIn(metrics: string, authority: string): Promise<number> {
  const text = await (await fetch(`http://${metrics}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('shallot_dir_vote_relays_not_running{') &&
        l.includes(`authority="${authority}"`) &&
        l.includes('reason="unreachable"'),
    );
  return line ? Number(line.split(' ').pop()) : -1;
}

/** One HTTP GET of the onion service's built-in backend over the client's SOCKS port, within `ms`. */
async function onionGet(net: RunningNetwork, ms: number): Promise<'ok' | string> {
  const onion = net.state.onionServices[0]?.address ?? '';
  try {
    const sock = await socksConnect(socksPortOf(net), onion, 80, { timeoutMs: ms });
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => {
        sock.destroy();
        resolve('no answer');
      }, ms);
      let head = '';
      sock.on('data', (c: Buffer) => (head += c.toString('latin1')));
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(
          head.startsWith('HTTP/1.1 200') || head.startsWith('HTTP/1.0 200') ? 'ok' : head.slice(0, 40),
        );
      });
      sock.on('error', () => {});
      sock.write(`GET /bytes/1000 HTTP/1.0\r\nHost: ${onion}\r\n\r\n`);
    });
  } catch (e) {
    return (e as Error).message;
  }
}

/** The default (worker threads: auth0's metrics on its own worker, auth0) and one process (all on the launcher's). */
const MODES = [
  { label: 'worker threads (the default)', workers: 2, mode: 'workers', authMetrics: 'auth0' },
  { label: 'one process', workers: 1, mode: 'one-process', authMetrics: 'shallot' },
] as const;

describe.each(MODES)('shallot fault on authorities and onion-service instances, $label', (m) => {
  let dataDir: string;
  let net: RunningNetwork;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-thread-faults-'));
    net = await upReadmeNetwork({
      dataDir,
      relays: 6,
      exits: 2,
      onionServices: 1,
      instances: 1,
      workers: m.workers,
    });
    // Ready means one authority's consensus lists the relays; the others serve the same round a
    // moment later (their own, or their peers' if they lost it: directory/authority.ts
    // takePeersConsensus). Every test here starts from all three serving.
    for (const a of net.state.authorities)
      expect(
        await until(
          60_000,
          () => dirAnswer(a.url),
          (s) => s === 200,
        ),
      ).toBe(200);
  }, 300_000);
  afterAll(async () => {
    await net?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('pauses an authority: it answers nothing, the other two still publish, it answers again once healed', async () => {
    expect(net.state.mode).toBe(m.mode);
    const [a0, a1] = net.state.authorities.map((a) => a.url);
    expect(await dirAnswer(a0 as string)).toBe(200);
    const line = await shallot(dataDir, ['fault', 'pause', 'auth0', '--duration', '60']);
    expect(line).toContain('pause auth0');
    const pausedAt = Date.now();
    expect(await dirAnswer(a0 as string)).toBe('none');
    expect(await dirAnswer(a1 as string)).toBe(200);
    // A consensus made after the pause began, signed without auth0 (fetchConsensus checks the majority).
    const fresh = await until(
      40_000,
      () =>
        fetchConsensus(net.state.authorities, { nowMs: Date.now(), timeoutMs: 3_000 }).then(
          (r) => r.consensus.validAfterMs,
          () => 0,
        ),
      (va) => va > pausedAt,
    );
    expect(fresh).toBeGreaterThan(pausedAt);
    expect(await dirAnswer(a0 as string)).toBe('none');
    await shallot(dataDir, ['fault', 'heal', faultId(line)]);
    expect(
      await until(
        10_000,
        () => dirAnswer(a0 as string),
        (s) => s === 200,
      ),
    ).toBe(200);
  }, 120_000);

  it('cuts the link between an authority and a relay: its vote calls the relay unreachable until the heal', async () => {
    const authMetrics = net.state.nodes.find((n) => n.name === m.authMetrics)?.metrics ?? '';
    expect(authMetrics).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(
      await until(
        30_000,
        () => unreachableIn(authMetrics, 'auth0'),
        (n) => n === 0,
      ),
    ).toBe(0);
    const line = await shallot(dataDir, ['fault', 'cut', 'auth0', 'relay2', '--duration', '60']);
    expect(line).toContain('cut auth0 relay2');
    expect(
      await until(
        40_000,
        () => unreachableIn(authMetrics, 'auth0'),
        (n) => n >= 1,
      ),
    ).toBe(1);
    await shallot(dataDir, ['fault', 'heal', faultId(line)]);
    expect(
      await until(
        40_000,
        () => unreachableIn(authMetrics, 'auth0'),
        (n) => n === 0,
      ),
    ).toBe(0);
  }, 150_000);

  it('restarts an authority: it comes back and serves a consensus again', async () => {
    const a1 = net.state.authorities[1]?.url as string;
    const line = await shallot(dataDir, ['fault', 'inject', 'restart', 'auth1']);
    expect(line).toContain('restart auth1');
    expect(
      await until(
        60_000,
        () => dirAnswer(a1),
        (s) => s === 200,
      ),
    ).toBe(200);
  }, 90_000);

  it('pauses the onion service instance: the service is unreachable while it lasts, reachable after the heal', async () => {
    expect(
      await until(
        60_000,
        () => onionGet(net, 20_000),
        (r) => r === 'ok',
      ),
    ).toBe('ok');
    const line = await shallot(dataDir, ['fault', 'pause', 'onion0-0', '--duration', '120']);
    expect(line).toContain('pause onion0-0');
    // Every link of the instance holds: nothing a client sends it is answered.
    expect(await onionGet(net, 10_000)).not.toBe('ok');
    expect(await onionGet(net, 10_000)).not.toBe('ok');
    await shallot(dataDir, ['fault', 'heal', faultId(line)]);
    expect(
      await until(
        60_000,
        () => onionGet(net, 20_000),
        (r) => r === 'ok',
      ),
    ).toBe('ok');
  }, 240_000);

  it('kills the onion service instance: unreachable while down, reachable again once built anew and published', async () => {
    const line = await shallot(dataDir, ['fault', 'kill', 'onion0-0', '--duration', '15']);
    expect(line).toContain('kill onion0-0');
    expect(await onionGet(net, 10_000)).not.toBe('ok');
    // Healed after 15 s: a new instance (same identity key) publishes a fresh descriptor.
    expect(
      await until(
        150_000,
        () => onionGet(net, 20_000),
        (r) => r === 'ok',
      ),
    ).toBe('ok');
    const list = await shallot(dataDir, ['fault', 'list']);
    // Every fault of this network is healed.
    expect(list.trim().split('\n')).toHaveLength(5);
    for (const l of list.trim().split('\n')) expect(l).toMatch(/healed/);
  }, 240_000);
});
