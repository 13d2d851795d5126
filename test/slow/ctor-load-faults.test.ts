// Issue 19 as users break it: sustained `shallot load --tor-authorities
// FILE` on a C tor network (test/setup/ctor-testnet.ts: 3 authorities, 3
// relays, 2 exits of Debian's tor) while the test pauses one relay
// (SIGSTOP ~20 s, then SIGCONT), kills an exit (SIGKILL; the other exit
// stays) and runs a CPU hog (a bounded busy loop, killed by pid) for part
// of the run. Then a short onion run: `shallot load` against a C tor onion
// service (hosted by a stock C tor client) with one relay paused throughout.
//
// What C tor does with these faults (and so what the Shallot client must do):
// - A killed relay's TLS connections close, so its neighbours send DESTROY
//   on every circuit through it (tor-spec §5.4); a stream already CONNECTED
//   on such a circuit is lost (C tor never moves a stream once data flowed),
//   one not yet answered is detached and retried on another circuit
//   (C tor connection_ap_detach_retriable). Circuits still being built
//   through it fail at EXTEND and the client picks another path. The
//   authorities (AssumeReachable) keep listing it, so clients keep trying it
//   and must fail fast and move on.
// - A paused relay answers nothing and closes nothing: C tor gives a stream
//   10-15 s to be CONNECTED (connection_ap_expire_beginning) before retrying
//   it elsewhere, and a circuit build its timeout; a stream already flowing
//   stalls until the relay resumes.
// So a run loses at most the requests in flight on the killed relay's
// circuits when it dies, and any stalled longer than the request timeout at
// the paused relay: a few of hundreds (see MIN_OK).
// Needs `npm run build` (dist/) and tor + tor-gencert.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import {
  type ClientProcess,
  type CtorWorld,
  runTorLoad,
  startClientProcess,
  startCtorWorld,
} from '../helpers/ctor-run.js';
import { curlSocks, sha256Hex } from '../helpers/up-cli.js';
import { type CtorClient, type CtorNode, startCtorClient } from '../setup/ctor-testnet.js';

/**
 * The least success ratio: with -c 4 the kill can take at most 4 requests
 * in flight with it, and the pause at most the 4 in flight through the
 * paused relay when they outlast --timeout: 8 of the 600 a run makes. Runs
 * here lost 0 and 13 (the 13 within 25 s after the kill, fast failures of
 * every attempt); 0.95 allows that and still fails a client that keeps
 * choosing the dead exit, as one whose first guard was the other exit did
 * (every request after the kill failed: 92 %).
 */
const MIN_OK = 0.95;
const LOAD_SEC = 150;
const PAUSE_SEC = 20;

/**
 * The onion run: 12 requests, 3 at a time, each within 90 s or failed, with
 * relay4 paused throughout. The stock C tor service is told never to use
 * relay4 (ExcludeNodes), so every stall the run meets is on the Shallot
 * client's side, which this test is about: relay4 as the client's guard,
 * vanguard or middle, as an HSDir it asks, as a rendezvous point it picks.
 * A stall inside the service's own circuits is one no client can shorten: a
 * C tor service waits out its build timeout (60 s x 10/6 + 1 s before it has
 * learned one) before it builds a rendezvous circuit again, and one whose
 * intro circuit runs through the paused relay acks INTRODUCE1 at its intro
 * point and never sees it; in CI runs that made whole requests fail by
 * chance (3 of 4 rendezvous attempts met it in one, every one in another,
 * where relay5 was the service's guard without being a confirmed one).
 * The run's bound is what the requests' own timeout allows: the digest
 * request `shallot load` makes first (up to 3 tries of 90 s, 1 s apart),
 * then 12 / 3 rounds of 90 s, plus the client's bootstrap. Whether each
 * request made it in 90 s is what the run's success count checks.
 */
const ONION_PAUSED = 'relay4';
const ONION_REQUESTS = 12;
const ONION_CONCURRENCY = 3;
const ONION_TIMEOUT_SEC = 90;
const ONION_RUN_BOUND_MS = ((3 + ONION_REQUESTS / ONION_CONCURRENCY) * (ONION_TIMEOUT_SEC + 1) + 30) * 1000;

let world: CtorWorld;
let client: ClientProcess;
let ctorHs: CtorClient;
const stopped = new Set<number>();

interface LoadJson {
  counts: { requests: number; ok: number };
  successRatio: number;
  elapsedSec: number;
  failuresByReason: Record<string, number>;
  checksums: Record<string, string | null>;
  samples: { ok: boolean; reason?: string; startMs: number; endMs: number }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const node = (name: string): CtorNode => world.net.nodes.find((n) => n.nickname === name)!;
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
function signal(pid: number, sig: NodeJS.Signals): void {
  if (sig === 'SIGSTOP') stopped.add(pid);
  if (sig === 'SIGCONT' || sig === 'SIGKILL') stopped.delete(pid);
  process.kill(pid, sig);
}

beforeAll(async () => {
  world = await startCtorWorld('ctor-load-faults', { relays: 3, exits: 2, exitPorts: 'web' });
  client = await startClientProcess(world, 'client');
  // The C tor onion service for the last test, started now so its descriptor is on the
  // HSDirs by the time the exit load is over.
  const hsDir = path.join(world.dir, 'ctor-hs');
  await mkdir(hsDir, { mode: 0o700 });
  await chmod(hsDir, 0o700);
  ctorHs = await startCtorClient(world.bin, world.net, {
    nickname: 'client9',
    onionService: { dir: hsDir, virtualPort: 80, target: `127.0.0.1:${world.web.port}` },
    excludeNodes: [node(ONION_PAUSED).fingerprint],
  });
}, 420_000);

afterAll(async () => {
  // Never leave a tor stopped: a stopped process ignores SIGTERM until it runs again.
  for (const pid of stopped) if (alive(pid)) process.kill(pid, 'SIGCONT');
  await ctorHs?.stop();
  await world?.stop();
}, 60_000);

/** Each failed request's reason and start-end (seconds on the run's clock, which starts once its client bootstrapped). */
const failureTimes = (r: LoadJson): string =>
  r.samples
    .filter((x) => !x.ok)
    .map((x) => `${x.reason}@${(x.startMs / 1000).toFixed(1)}-${(x.endMs / 1000).toFixed(1)}s`)
    .join(' ') || 'none';

/** A node child that spins for `ms` (it ends by itself too), so the machine's cores are busy. */
function cpuHog(ms: number): ChildProcess {
  const child = spawn(process.execPath, ['-e', `const e = Date.now() + ${ms}; while (Date.now() < e) {}`], {
    stdio: 'ignore',
  });
  world.children.push(child);
  return child;
}

describe('shallot load on a C tor network with a relay paused, an exit killed and the CPU busy', () => {
  it('keeps a high success ratio, exits by itself, and the client process still serves', async () => {
    const paused = node('relay3');
    const killed = node('exit7');
    const out = path.join(world.dir, 'load.json');
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string) => marks.push(`${what}@${((Date.now() - t0) / 1000).toFixed(1)}s`);
    const run = runTorLoad(world, {
      target: `127.0.0.1:${world.web.port}`,
      count: 600,
      concurrency: 4,
      size: '32k',
      out,
      extra: ['--duration', `${LOAD_SEC}s`, '--rate', '4', '--timeout', '30s', '--min-success', '0'],
      timeoutMs: (LOAD_SEC + 120) * 1000,
    });
    // The faults, on a clock from the start of the run (the client bootstraps in the first seconds).
    const faults = (async () => {
      await sleep(15_000);
      const hog = cpuHog(45_000);
      mark('hog');
      await sleep(10_000);
      signal(paused.pid, 'SIGSTOP');
      mark('stop');
      await sleep(PAUSE_SEC * 1000);
      signal(paused.pid, 'SIGCONT');
      mark('cont');
      await sleep(10_000);
      if (hog.pid && hog.exitCode === null) process.kill(hog.pid, 'SIGKILL');
      await sleep(10_000);
      signal(killed.pid, 'SIGKILL');
      mark('kill');
    })();
    const [{ code, text, ms }] = await Promise.all([run, faults]);
    // It stopped by itself (not by runTorLoad's SIGKILL), within its --duration and a margin.
    expect(code, text).toBe(0);
    expect(ms).toBeLessThan((LOAD_SEC + 90) * 1000);
    expect(text).toMatch(/success \d+\/\d+/);
    const r = JSON.parse(await readFile(out, 'utf8')) as LoadJson;
    // When the failures fell, against the faults (the run's clock starts once its client bootstrapped).
    console.log(`faults ${marks.join(' ')}; failures ${failureTimes(r)}`);
    console.log(
      `ctor-load-faults: ${r.counts.ok}/${r.counts.requests} ok (${(r.successRatio * 100).toFixed(1)} %) in ${r.elapsedSec.toFixed(1)} s; failures ${JSON.stringify(r.failuresByReason)}`,
    );
    expect(r.counts.requests).toBeGreaterThan(100);
    expect(r.successRatio, text).toBeGreaterThanOrEqual(MIN_OK);
    expect(r.checksums[String(32 * 1024)]).toBe(builtinSha256(32 * 1024));
    // Only the killed exit died: every other tor and the client process run on.
    expect(alive(killed.pid)).toBe(false);
    for (const n of world.net.nodes.filter((x) => x !== killed))
      expect(alive(n.pid), `${n.nickname} died`).toBe(true);
    expect(client.child.exitCode, client.out.text).toBeNull();
    expect(client.child.signalCode).toBeNull();
    // The client process, through the same faults, serves a fresh fetch (digest checked).
    const body = await curlSocks(
      `127.0.0.1:${client.socksPort}`,
      `http://127.0.0.1:${world.web.port}/bytes/${1 << 20}`,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nclient output:\n${client.out.text}`);
    });
    expect(sha256Hex(body)).toBe(builtinSha256(1 << 20));
  }, 360_000);

  it(
    'loads a C tor onion service with a relay paused throughout',
    async () => {
      const onion = ctorHs.onion!;
      // Published once the client process reaches it (descriptors take a while to spread).
      const end = Date.now() + 120_000;
      for (;;) {
        const ok = await curlSocks(`127.0.0.1:${client.socksPort}`, `http://${onion}/bytes/1000`).then(
          () => true,
          () => false,
        );
        if (ok) break;
        if (Date.now() > end) throw new Error(`${onion} never reachable:\n${await ctorHs.logs()}`);
        await sleep(3_000);
      }
      const paused = node(ONION_PAUSED);
      signal(paused.pid, 'SIGSTOP');
      try {
        const out = path.join(world.dir, 'load-onion.json');
        const { code, text } = await runTorLoad(world, {
          target: onion,
          count: ONION_REQUESTS,
          concurrency: ONION_CONCURRENCY,
          size: '16k',
          out,
          // Progress lines, so a run that outlasts its bound shows how far it got.
          extra: ['--timeout', `${ONION_TIMEOUT_SEC}s`, '--min-success', '0', '--progress', 'lines'],
          timeoutMs: ONION_RUN_BOUND_MS,
        });
        expect(code, text).toBe(0);
        const r = JSON.parse(await readFile(out, 'utf8')) as LoadJson;
        console.log(
          `ctor-load-faults onion: ${r.counts.ok}/${r.counts.requests} ok in ${r.elapsedSec.toFixed(1)} s; failures ${failureTimes(r)}`,
        );
        // A paused HSDir, intro or rendezvous point costs time, not requests: C tor moves on
        // to the next HSDir / intro point / a new rendezvous circuit when one does not answer.
        expect(r.counts.ok, text).toBe(ONION_REQUESTS);
      } finally {
        signal(paused.pid, 'SIGCONT');
      }
      expect(alive(paused.pid)).toBe(true);
    },
    ONION_RUN_BOUND_MS + 150_000,
  );
});
