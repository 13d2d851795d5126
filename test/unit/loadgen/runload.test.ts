// runLoad end to end on loopback without a Shallot network: the client's
// real SOCKS front end (services/client/socks-server.ts) with a connector
// that dials the target directly, so each failure kind can be provoked.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectError, type ConnectRequest } from '../../../services/client/connect.js';
import { startSocksServer } from '../../../services/client/socks-server.js';
import { EndReason } from '../../../services/core/relay-cell.js';
import { registerLoadCommand } from '../../../services/loadgen/command.js';
import { LoadConfigError, runLoad } from '../../../services/loadgen/loadgen.js';
import { SocksConnectError, socksConnect } from '../../../services/loadgen/socks-client.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { StreamRefusedError } from '../../../services/net/circuit-error.js';
import { type OpsServer, serveOps } from '../../../services/runtime/ops-server.js';
import { type BytesServer, startBytesServer } from './bytes-server.js';

const ONION = `${'c'.repeat(56)}.onion`;
const quiet = { output: { write: () => true }, errors: { write: () => true }, printTable: false };

/** A SOCKS front end whose connector dials `port` on 127.0.0.1, or fails as `fail` says. */
async function fakeProxy(port: () => number, fail?: (req: ConnectRequest, n: number) => Error | null) {
  const seen: ConnectRequest[] = [];
  const socks = await startSocksServer({ host: '127.0.0.1', port: 0 }, async (req) => {
    seen.push(req);
    const failure = fail?.(req, seen.length);
    if (failure) throw failure;
    const s = net.connect({ host: '127.0.0.1', port: port() });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return s;
  });
  return { socks, seen };
}

let good: BytesServer;
let corrupt: BytesServer;
let slow: BytesServer;
let nodigest: BytesServer;
beforeAll(async () => {
  [good, corrupt, slow, nodigest] = await Promise.all([
    startBytesServer(),
    startBytesServer({ corrupt: true }),
    startBytesServer({ delayMs: 3000 }),
    startBytesServer({ noDigest: true }),
  ]);
});
afterAll(() => Promise.all([good, corrupt, slow, nodigest].map((s) => s?.close())));

describe('socksConnect', () => {
  it('connects with credentials, times the CONNECT and hands back a paused socket', async () => {
    const { socks, seen } = await fakeProxy(() => good.port);
    try {
      const c = await socksConnect({
        proxyHost: '127.0.0.1',
        proxyPort: socks.port,
        host: 'example.test',
        port: 80,
        credentials: { username: 'u1', password: 'p' },
      });
      expect(c.replyAt).toBeGreaterThanOrEqual(c.requestSentAt);
      expect(c.requestSentAt).toBeGreaterThanOrEqual(c.proxyConnectedAt);
      expect(c.socket.isPaused()).toBe(true);
      c.socket.destroy();
      expect(seen[0]).toMatchObject({ host: 'example.test', port: 80, isolationKey: 'user:2:u1:p' });
    } finally {
      await socks.close();
    }
  });

  it('reports reply codes, an unreachable proxy and aborts as typed errors', async () => {
    const { socks } = await fakeProxy(
      () => good.port,
      () => new ConnectError('rend_failed', 'test failure'),
    );
    try {
      const e = (await socksConnect({
        proxyHost: '127.0.0.1',
        proxyPort: socks.port,
        host: ONION,
        port: 80,
      }).catch((x: unknown) => x)) as SocksConnectError;
      expect(e).toBeInstanceOf(SocksConnectError);
      expect(e.kind).toBe('reply');
      expect(e.reply).toBe(0xf3);
    } finally {
      await socks.close();
    }
    const u = (await socksConnect({ proxyHost: '127.0.0.1', proxyPort: 1, host: 'h', port: 1 }).catch(
      (x: unknown) => x,
    )) as SocksConnectError;
    expect(u.kind).toBe('proxy_unreachable');
    const a = (await socksConnect({
      proxyHost: '127.0.0.1',
      proxyPort: 1,
      host: 'h',
      port: 1,
      signal: AbortSignal.abort(),
    }).catch((x: unknown) => x)) as SocksConnectError;
    expect(a.kind).toBe('aborted');
  });
});

describe('runLoad', () => {
  it('completes a bounded run: checksums once per size, fresh isolation per request, own metrics', async () => {
    const { socks, seen } = await fakeProxy(() => good.port);
    const registry = new Registry();
    const before = good.requests.length;
    try {
      const r = await runLoad(
        {
          target: `127.0.0.1:${good.port}`,
          socks: `127.0.0.1:${socks.port}`,
          count: 12,
          concurrency: 3,
          size: '1k,3000',
          newCircuit: true,
        },
        { ...quiet, registry },
      );
      expect(r.successRatio).toBe(1);
      expect(r.counts).toEqual({ requests: 12, ok: 12, failed: 0, bytes: 6 * 1024 + 6 * 3000 });
      expect(Object.values(r.checksums).every((c) => /^[0-9a-f]{64}$/.test(c ?? ''))).toBe(true);
      const reqs = good.requests.slice(before);
      expect(reqs.filter((p) => p.startsWith('/sha256/')).sort()).toEqual(['/sha256/1024', '/sha256/3000']);
      expect(reqs.filter((p) => p.startsWith('/bytes/'))).toHaveLength(12);
      // 2 preflight requests share one key; the 12 load requests each have their own.
      const loadKeys = new Set(seen.slice(2).map((s) => s.isolationKey));
      expect(loadKeys.size).toBe(12);
      expect(r.latency.ttlb.count).toBe(12);
      expect(r.latency.connect.p50).not.toBeNull();
      expect(r.latency.ttfb.p50!).toBeLessThanOrEqual(r.latency.ttlb.p50!);
      expect(r.samples).toHaveLength(12);
      const m = metricsFor(registry).client;
      expect((await m.streams.get()).values).toEqual([
        expect.objectContaining({ labels: { outcome: 'success' }, value: 12 }),
      ]);
      const ttlb = await m.ttlb.get();
      const counts = ttlb.values.filter((v) => v.metricName === 'shallot_stream_ttlb_seconds_count');
      expect(counts.map((v) => [v.labels.size, v.labels.server, v.value]).sort()).toEqual([
        ['1024', 'public', 6],
        ['3000', 'public', 6],
      ]);
    } finally {
      await socks.close();
    }
  });

  it('shares one isolation group without --new-circuit', async () => {
    const { socks, seen } = await fakeProxy(() => good.port);
    try {
      await runLoad(
        { target: `127.0.0.1:${good.port}`, socks: `127.0.0.1:${socks.port}`, count: 4, verify: false },
        quiet,
      );
      expect(new Set(seen.map((s) => s.isolationKey)).size).toBe(1);
    } finally {
      await socks.close();
    }
  });

  it('counts checksum mismatches, SOCKS replies and timeouts by reason (and still completes)', async () => {
    const corruptProxy = await fakeProxy(() => corrupt.port);
    const failing = await fakeProxy(
      () => good.port,
      (_req, n) => (n > 1 && n % 2 === 0 ? new ConnectError('desc_not_found', 'test failure') : null),
    );
    const slowProxy = await fakeProxy(() => slow.port);
    try {
      // --min-success 0: run every request however many fail (no early stop).
      const c = await runLoad(
        {
          target: `127.0.0.1:${corrupt.port}`,
          socks: `127.0.0.1:${corruptProxy.socks.port}`,
          count: 3,
          minSuccess: 0,
        },
        quiet,
      );
      expect(c.failuresByReason).toEqual({ checksum_mismatch: 3 });
      expect(c.successRatio).toBe(0);

      const f = await runLoad(
        {
          target: ONION,
          socks: `127.0.0.1:${failing.socks.port}`,
          count: 6,
          concurrency: 1,
          size: '100',
          minSuccess: 0,
        },
        quiet,
      );
      expect(f.config.targetKind).toBe('onion');
      expect(f.failuresByReason).toEqual({ socks_f0_onion_desc_not_found: 3 });
      expect(f.counts.ok).toBe(3);
      expect(f.successRatio).toBe(0.5);

      const s = await runLoad(
        {
          target: `127.0.0.1:${slow.port}`,
          socks: `127.0.0.1:${slowProxy.socks.port}`,
          count: 2,
          timeout: 0.3,
          verify: false,
          minSuccess: 0,
        },
        quiet,
      );
      expect(s.failuresByReason).toEqual({ read_timeout: 2 });
    } finally {
      await Promise.all([corruptProxy.socks.close(), failing.socks.close(), slowProxy.socks.close()]);
    }
  });

  it('warns and checks length only when the target has no /sha256', async () => {
    const { socks } = await fakeProxy(() => nodigest.port);
    try {
      const r = await runLoad(
        { target: `127.0.0.1:${nodigest.port}`, socks: `127.0.0.1:${socks.port}`, count: 2 },
        quiet,
      );
      expect(r.checksums).toEqual({ '51200': null });
      expect(r.warnings.join()).toMatch(/no checksum for 51200 bytes/);
      expect(r.successRatio).toBe(1);
    } finally {
      await socks.close();
    }
  });

  it('records every request as proxy_unreachable when no proxy listens', async () => {
    const r = await runLoad(
      { target: '127.0.0.1:9', socks: '127.0.0.1:1', count: 3, verify: false, keepGoing: true },
      quiet,
    );
    expect(r.failuresByReason).toEqual({ proxy_unreachable: 3 });
  });

  it('backs off against a dead proxy: one probe per pause, pauses on the timeline; without backoff it spins', async () => {
    const dead = { target: '127.0.0.1:9', socks: '127.0.0.1:1', verify: false, concurrency: 4 };
    const r = await runLoad({ ...dead, duration: 2.5, backoffMax: 1 }, quiet);
    // 4 at once and fail; pause 800 ms (4th failure: 100·2^3); probe, pause 1 s (cap); probe, pause past the end.
    expect(r.failuresByReason).toEqual({ proxy_unreachable: r.counts.requests });
    expect(r.counts.requests).toBeGreaterThanOrEqual(5);
    expect(r.counts.requests).toBeLessThanOrEqual(7);
    expect(r.elapsedSec).toBeGreaterThanOrEqual(2.4);
    expect(r.backoff.pauses.length).toBeGreaterThanOrEqual(2);
    expect(r.backoff.longestMs).toBeGreaterThanOrEqual(990);
    // The cap: every pause ends at most 1 s after the failure that set its end. (Not "no
    // pause over 1 s": failures of requests already in flight extend a pause, so the first
    // one spans the four first failures' spread plus 800 ms, and on a loaded machine those
    // four connection refusals can end more than 200 ms apart.)
    const failedAt = r.samples.filter((x) => !x.ok).map((x) => x.endMs);
    expect(failedAt).toHaveLength(r.counts.requests);
    for (const p of r.backoff.pauses) {
      const cause = failedAt.filter((t) => t <= p.endMs).reduce((x, y) => Math.max(x, y), -Infinity);
      expect(p.endMs - cause, JSON.stringify({ p, failedAt })).toBeLessThanOrEqual(1_001);
    }
    expect(r.backoff.totalMs).toBeGreaterThan(1500);
    // The timeline carries the pauses second by second; the probes record their wait.
    const inTimeline = r.timeline.reduce((sum, t) => sum + t.backoffMs, 0);
    expect(inTimeline).toBeGreaterThan(1500);
    expect(inTimeline).toBeLessThanOrEqual(r.backoff.totalMs + 1);
    const probes = r.samples.filter((x) => x.backoffMs !== undefined);
    expect(probes.length).toBeGreaterThanOrEqual(1);
    expect(probes[0]!.backoffMs!).toBeGreaterThan(700);
    expect(r.stoppedEarly).toBeNull(); // a duration bound has no count to settle early

    const spin = await runLoad({ ...dead, duration: 0.5, backoffMax: 0 }, quiet);
    expect(spin.counts.requests).toBeGreaterThan(10 * r.counts.requests);
    expect(spin.backoff.pauses).toEqual([]);
  });

  it('resets the backoff on the first success', async () => {
    const { socks } = await fakeProxy(
      () => good.port,
      // END NOROUTE: SOCKS5 0x04, host unreachable.
      (_req, n) => (n <= 3 ? new StreamRefusedError(EndReason.NOROUTE) : null),
    );
    try {
      const r = await runLoad(
        {
          target: `127.0.0.1:${good.port}`,
          socks: `127.0.0.1:${socks.port}`,
          count: 8,
          concurrency: 1,
          size: '10',
          verify: false,
          minSuccess: 0,
        },
        quiet,
      );
      expect(r.counts).toMatchObject({ ok: 5, failed: 3 });
      // 100, 200 and 400 ms after the three failures, none after the success.
      expect(r.backoff.pauses.map((p) => Math.round((p.endMs - p.startMs) / 100) * 100)).toEqual([
        100, 200, 400,
      ]);
      expect(r.samples.map((x) => x.backoffMs !== undefined)).toEqual([
        false,
        true,
        true,
        true,
        false,
        false,
        false,
        false,
      ]);
    } finally {
      await socks.close();
    }
  });

  it('stops a counted run once --min-success is out of reach, unless --keep-going', async () => {
    const dead = { target: '127.0.0.1:9', socks: '127.0.0.1:1', verify: false, count: 100 };
    const r = await runLoad(dead, quiet);
    // Default 0.99 of 100: the second failure settles it; the 4 in flight at once all finish.
    expect(r.counts.requests).toBeLessThanOrEqual(4);
    expect(r.stoppedEarly).toMatch(/can no longer reach --min-success 0.99/);
    expect(r.successRatio).toBeLessThan(r.config.minSuccess);
    const all = await runLoad({ ...dead, keepGoing: true, backoffMax: 0 }, quiet);
    expect(all.counts.requests).toBe(100);
    expect(all.stoppedEarly).toBeNull();
  });

  it('bounds a run by duration and paces it by rate', async () => {
    const { socks } = await fakeProxy(() => good.port);
    try {
      const r = await runLoad(
        {
          target: `127.0.0.1:${good.port}`,
          socks: `127.0.0.1:${socks.port}`,
          duration: 1,
          rate: 5,
          concurrency: 4,
          size: '10',
        },
        quiet,
      );
      expect(r.counts.requests).toBeGreaterThanOrEqual(4);
      expect(r.counts.requests).toBeLessThanOrEqual(6);
      expect(r.elapsedSec).toBeLessThan(2);
      const starts = r.samples.map((s) => s.startMs).sort((a, b) => a - b);
      expect(starts[starts.length - 1]!).toBeGreaterThanOrEqual(550); // the 4th request waits ~600 ms
    } finally {
      await socks.close();
    }
  });

  it('reports per-relay rendezvous spread and circuit builds from scraped /metrics deltas', async () => {
    const relayReg = new Registry();
    const clientReg = new Registry();
    const relayM = metricsFor(relayReg).relay;
    const cm = metricsFor(clientReg).client;
    for (const r of ['relay0', 'relay1', 'relay2']) relayM.cells.labels({ relay: r, direction: 'in' }).inc();
    relayM.rendezvous.labels({ relay: 'relay0', event: 'joined' }).inc(100); // before the run: not counted
    const ops: OpsServer[] = await Promise.all(
      [relayReg, clientReg].map((registry) =>
        serveOps({ host: '127.0.0.1', port: 0, registry, health: () => ({ ok: true, ready: true }) }),
      ),
    );
    // The relays' endpoint comes from a file_sd targets file, as `shallot up` writes it.
    const dir = await mkdtemp(path.join(tmpdir(), 'shallot-load-'));
    const targetsFile = path.join(dir, 'targets.json');
    await writeFile(
      targetsFile,
      JSON.stringify([{ targets: [`127.0.0.1:${ops[0]!.port}`], labels: { role: 'relay' } }]),
    );
    // Each stream "joins" at relay0 or relay1 (2:1), as a rendezvous point would.
    const { socks } = await fakeProxy(
      () => good.port,
      (_req, n) => {
        const relay = n % 3 === 0 ? 'relay1' : 'relay0';
        relayM.rendezvous.labels({ relay, event: 'joined' }).inc();
        cm.rendezvousChosen.labels({ relay }).inc();
        cm.circuitBuild.labels({ purpose: 'rend' }).observe(0.03);
        return null;
      },
    );
    try {
      const r = await runLoad(
        {
          target: ONION,
          socks: `127.0.0.1:${socks.port}`,
          count: 9,
          concurrency: 1,
          verify: false,
          targetsFile,
          clientMetrics: ops[1]!.url,
        },
        quiet,
      );
      expect(r.rendezvousSpread?.counts).toEqual({ relay0: 6, relay1: 3, relay2: 0 });
      expect(r.rendezvousSpread?.perRelay.relay0).toBeCloseTo(2 / 3, 12);
      expect(r.rendezvousSpread?.maxOverMean).toBeCloseTo(2, 12);
      expect(r.introSpread?.total).toBe(0);
      expect(r.clientRendezvousChosen?.counts).toEqual({ relay0: 6, relay1: 3, relay2: 0 });
      expect(r.circuitBuild?.count).toBe(9);
      expect(r.circuitBuild?.p50).toBeGreaterThan(25);
      expect(r.circuitBuild?.p50).toBeLessThanOrEqual(50);
      expect(r.circuitBuild?.byPurpose.rend?.count).toBe(9);
    } finally {
      await socks.close();
      await Promise.all(ops.map((o) => o.close()));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects an unreadable or malformed targets file as a configuration error', async () => {
    await expect(
      runLoad({ target: '127.0.0.1:9', targetsFile: '/nonexistent/targets.json' }, quiet),
    ).rejects.toBeInstanceOf(LoadConfigError);
  });

  it('serves its own metrics while it runs (and lingers after)', async () => {
    const { socks } = await fakeProxy(() => good.port);
    let url = '';
    let finished = false;
    try {
      const run = runLoad(
        {
          target: ONION,
          socks: `127.0.0.1:${socks.port}`,
          count: 3,
          size: '10',
          verify: false,
          metricsPort: 0,
          metricsLinger: 2,
        },
        {
          output: { write: () => true },
          printTable: false,
          errors: {
            write: (s: string) => {
              url ||= /metrics at (\S+)/.exec(s)?.[1] ?? '';
            },
          },
        },
      ).finally(() => {
        finished = true;
      });
      // Wait for the run to finish its requests (the endpoint lingers 2 s after); the
      // deadline is a hung-test guard, not a measure (a loaded machine may need seconds).
      let text = '';
      const until = performance.now() + 20_000;
      while (
        performance.now() < until &&
        !/shallot_client_streams_total\{[^}]*outcome="success"[^}]*\} 3/.test(text)
      ) {
        await new Promise((r) => setTimeout(r, 50));
        if (url) text = await (await fetch(url)).text();
      }
      expect(finished).toBe(false);
      expect(text).toMatch(/shallot_client_streams_total\{[^}]*outcome="success"[^}]*\} 3/);
      expect(text).toMatch(/shallot_onion_connect_seconds_count\{[^}]*\} 3/);
      expect(text).toMatch(/shallot_stream_ttlb_seconds_count\{[^}]*server="onion",size="10"[^}]*\} 3/);
      expect(text).toMatch(/shallot_process_cpu_seconds_total/);
      const r = await run;
      expect(r.successRatio).toBe(1);
      await expect(fetch(url)).rejects.toThrow();
    } finally {
      await socks.close();
    }
  });
});

describe('the load command', () => {
  it('documents every option in --help', () => {
    const program = new Command().name('shallot');
    const cmd = registerLoadCommand(program);
    const help = cmd.helpInformation();
    for (const flag of [
      '--socks',
      '--concurrency',
      '--rate',
      '--duration',
      '--count',
      '--size',
      '--new-circuit',
      '--timeout',
      '--mode',
      '--no-verify',
      '--client-metrics',
      '--relay-metrics',
      '--targets-file',
      '--out',
      '--html',
      '--metrics-port',
      '--min-success',
      '--keep-going',
      '--backoff-max',
      '--progress',
    ])
      expect(help).toContain(flag);
  });

  it('refuses --tor-authorities by name, exit 2, where no client can be started (the loadgen image entry)', async () => {
    // services/loadgen/main.ts registers the command without a client factory.
    const help = registerLoadCommand(new Command().name('shallot-loadgen')).helpInformation();
    expect(help).toMatch(/--tor-authorities <file>\s+not in this entry \(the loadgen image\)/);
    const saved = process.exitCode;
    const errWrite = process.stderr.write;
    let stderr = '';
    process.stderr.write = ((s: string) => {
      stderr += s;
      return true;
    }) as typeof process.stderr.write;
    try {
      process.exitCode = undefined;
      const program = new Command().name('shallot-loadgen');
      registerLoadCommand(program);
      await program.parseAsync(['node', 'main.js', 'load', '127.0.0.1:9', '--tor-authorities', 'x.torrc']);
      expect(process.exitCode).toBe(2);
      expect(stderr).toMatch(/^error: --tor-authorities needs the shallot CLI \(`shallot load`\)/m);
    } finally {
      process.stderr.write = errWrite;
      process.exitCode = saved;
    }
  });

  it('exits 2 for invalid configuration and 1 below --min-success (default 0.99), saying why last', async () => {
    const saved = process.exitCode;
    const errWrite = process.stderr.write;
    const outWrite = process.stdout.write;
    let stderr = '';
    let stdout = '';
    process.stderr.write = ((s: string) => {
      stderr += s;
      return true;
    }) as typeof process.stderr.write;
    process.stdout.write = ((s: string) => {
      stdout += s;
      return true;
    }) as typeof process.stdout.write;
    try {
      const run = async (...args: string[]) => {
        process.exitCode = undefined;
        const program = new Command().name('shallot');
        registerLoadCommand(program);
        await program.parseAsync(['node', 'shallot', 'load', ...args]);
        return process.exitCode;
      };
      expect(await run('127.0.0.1:80', '--count', '0')).toBe(2);
      expect(await run('no-port-here')).toBe(2);
      expect(
        await run(
          '127.0.0.1:9',
          '--socks',
          '127.0.0.1:1',
          '-n',
          '2',
          '--no-verify',
          '--progress',
          'none',
          '--min-success',
          '0.5',
        ),
      ).toBe(1);
      expect(stderr.trimEnd().split('\n').at(-1)).toMatch(
        /^FAIL: success ratio 0\.0% \(0\/2\) is below --min-success 50\.0%; failures: proxy_unreachable x2/,
      );
      stderr = '';
      // The default bar is 0.99: one failed request in one fails the run.
      expect(
        await run('127.0.0.1:9', '--socks', '127.0.0.1:1', '-n', '1', '--no-verify', '--progress', 'none'),
      ).toBe(1);
      expect(stderr.trimEnd().split('\n').at(-1)).toMatch(/^FAIL: .* below --min-success 99\.0%/);
      expect(
        await run(
          '127.0.0.1:9',
          ...['--socks', '127.0.0.1:1', '-n', '1', '--no-verify', '--progress', 'none', '--min-success', '0'],
        ),
      ).toBe(0);
      expect(stdout.trimEnd().split('\n').at(-1)).toMatch(
        /^PASS: success ratio 0\.0% \(0\/1\), --min-success 0\.0%/,
      );
    } finally {
      process.stderr.write = errWrite;
      process.stdout.write = outWrite;
      process.exitCode = saved;
    }
  });
});
