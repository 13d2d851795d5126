/**
 * `shallot load`: drives HTTP requests through a Shallot client's SOCKS
 * port to an onion service or an exit destination and reports what the
 * network did: connect, first- and last-byte latency, failures by SOCKS
 * reply code, and how rendezvous and introduction load spread over relays.
 *
 * Overview: `runLoad` resolves options, fetches the expected SHA-256 of
 * each payload size once, scrapes the relays' and the client's /metrics,
 * runs `concurrency` workers until the count or duration bound (paced by
 * `rate` when given), scrapes again and builds the result (result.ts),
 * which it prints as a table and writes as JSON and HTML (report.ts).
 * While it runs it exports its own metrics (stream ttfb/ttlb, onion
 * connect, streams by outcome) when given a metrics port.
 *
 * Each request: SOCKS5 CONNECT (socks-client.ts) with a username that
 * selects circuit isolation, then `GET /bytes/<n>` (http-get.ts) on the
 * stream, body hashed and checked. The target must speak HTTP/1.1 and
 * serve /bytes/<n> (n deterministic bytes) and, for checking, /sha256/<n>
 * as the onion service's built-in backend and `shallot up`'s web target do.
 *
 * Not in this module: starting a network or a client (`shallot up`).
 *
 * Failing loudly (issue 13): after consecutive failures requests pause
 * and probe one at a time (backoff.ts), so a dead target is not hammered;
 * with a count bound the run stops once its success ratio can no longer
 * reach --min-success (unless --keep-going), and the command exits 1.
 *
 * Limitations: HTTP mode only (`--mode http`); a plain TCP echo target is
 * not supported. Requests are closed-loop per worker: with `rate` higher
 * than the workers can sustain, requests start late rather than pile up.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { randomBytes } from '../core/crypto.js';
import { createRegistry, metricsFor } from '../metrics/metrics.js';
import { type OpsServer, serveOps } from '../runtime/ops-server.js';
import { BACKOFF_BASE_MS, Backoff } from './backoff.js';
import { RequestFailure, failureReason as reasonOf } from './failure-reason.js';
import { HttpGetError, httpGet } from './http-get.js';
import { applyUpState, readUpState } from './network-state.js';
import {
  LoadConfigError,
  type LoadInput,
  parseHostPort,
  parseTarget,
  resolveLoadOptions,
} from './options.js';
import { Progress, type ProgressSink } from './progress.js';
import { renderTable, writeJsonReport } from './report.js';
import { writeHtmlReport } from './report-html.js';
import { buildResult, type LoadResult, type RequestRecord } from './result.js';
import { metricsUrlsFromTargets, ScrapeConfigError, type Snapshot, scrape } from './scrape.js';
import { type Pair, scrapedFigures } from './scraped.js';
import { socksConnect } from './socks-client.js';
import { type TorClientFactory, withTorClient } from './tor-network.js';

export { LoadConfigError, type LoadInput, type LoadOptions, resolveLoadOptions } from './options.js';
export type { LoadResult } from './result.js';

export interface LoadRuntime {
  /** Progress and the final table (default stdout). */
  output?: ProgressSink;
  /** Warnings (default stderr). */
  errors?: { write(chunk: string): unknown };
  /** Print the end-of-run table to `output` (default true). */
  printTable?: boolean;
  /** Where the load generator's own metrics go (default: a fresh registry). */
  registry?: Registry;
  /** Aborting stops starting requests; those in flight finish (or time out) and the result is reported. */
  signal?: AbortSignal;
  /** Starts a client on a C tor network for `--tor-authorities` (tor-network.ts; `shallot load` gives one). */
  torClient?: TorClientFactory;
  /** How the report names the network when the run started its own client. */
  networkName?: string;
}

interface Outcome {
  record: RequestRecord;
}

/** Shallot's version from its package.json (found upwards from this file: src and dist differ in depth). */
function shallotVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'shallot' && pkg.version) return pkg.version;
    } catch {
      // Not here: look one directory up.
    }
    if (dir.pathname === '/') return 'unknown';
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function runLoad(input: LoadInput, rt: LoadRuntime = {}): Promise<LoadResult> {
  const tor = input.torAuthorities;
  if (tor)
    return withTorClient(
      { ...input, torAuthorities: tor },
      rt.torClient,
      rt.errors ?? process.stderr,
      (i, c) => runLoad(i, { ...rt, networkName: c.network }),
    );
  const up = input.dataDir ? await readUpState(input.dataDir) : null;
  const o = resolveLoadOptions(up ? applyUpState(input, up) : input);
  const target = parseTarget(o.target);
  const proxy = parseHostPort(o.socks, 'SOCKS address');
  const out: ProgressSink = rt.output ?? process.stdout;
  const errOut = rt.errors ?? process.stderr;
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    errOut.write(`warning: ${w}\n`);
  };

  let relayUrls = [...o.relayMetrics];
  if (o.targetsFile) {
    try {
      relayUrls.push(...(await metricsUrlsFromTargets(o.targetsFile)));
    } catch (e) {
      throw e instanceof ScrapeConfigError ? new LoadConfigError(e.message) : e;
    }
  }
  relayUrls = [...new Set(relayUrls)];

  const registry =
    rt.registry ?? (o.metricsPort !== null ? createRegistry({ role: 'loadgen' }) : new Registry());
  const m = metricsFor(registry).client;
  const server = target.onion ? 'onion' : 'public';
  let ops: OpsServer | null = null;
  if (o.metricsPort !== null) {
    ops = await serveOps({
      host: o.metricsHost,
      port: o.metricsPort,
      registry,
      health: () => ({ ok: true, ready: true, role: 'loadgen' }),
    });
    errOut.write(`load generator metrics at ${ops.url}\n`);
  }

  const runId = Buffer.from(randomBytes(6)).toString('hex');
  const sharedCreds = { username: `shallot-load-${runId}`, password: 'shared' };
  const credsFor = (i: number) =>
    o.newCircuit ? { username: `shallot-load-${runId}-${i}`, password: 'isolated' } : sharedCreds;

  /** One GET through SOCKS; resolves with the response or throws with a phase and timeout flag. */
  const exchange = async (
    path: string,
    creds: { username: string; password: string },
    opts: { hash: boolean; keepBody?: number },
    onPhase: (p: 'http') => void,
    signal: AbortSignal,
  ) => {
    const conn = await socksConnect({
      proxyHost: proxy.host,
      proxyPort: proxy.port,
      host: target.host,
      port: target.port,
      credentials: creds,
      signal,
    });
    onPhase('http');
    try {
      const res = await httpGet(conn.socket, {
        host: target.port === 80 ? target.host : `${target.host}:${target.port}`,
        path,
        signal,
        hash: opts.hash,
        ...(opts.keepBody !== undefined ? { keepBody: opts.keepBody } : {}),
      });
      return { conn, res };
    } finally {
      conn.socket.destroy();
    }
  };

  // Expected digests, once per size, before the clock starts.
  const checksums: Record<string, string | null> = {};
  if (o.verify) {
    for (const size of [...new Set(o.sizes)]) {
      let digest: string | null = null;
      let last = '';
      for (let attempt = 0; attempt < 3 && digest === null && !rt.signal?.aborted; attempt++) {
        const signal = AbortSignal.timeout(o.timeoutSec * 1000);
        try {
          const { res } = await exchange(
            `/sha256/${size}`,
            sharedCreds,
            { hash: false, keepBody: 256 },
            () => {},
            signal,
          );
          const text = res.body?.toString('latin1').trim() ?? '';
          if (res.status === 200 && /^[0-9a-f]{64}$/i.test(text)) digest = text.toLowerCase();
          else {
            last = `HTTP ${res.status}, ${JSON.stringify(text.slice(0, 40))}`;
            break; // the target answered: it just does not serve digests
          }
        } catch (e) {
          last = reasonOf(e, 'socks', signal.aborted);
          await sleep(1000, rt.signal);
        }
      }
      checksums[String(size)] = digest;
      if (digest === null)
        warn(`no checksum for ${size} bytes (GET /sha256/${size}: ${last}); checking length only`);
    }
  }

  const relayBefore = relayUrls.length ? await scrape(relayUrls) : null;
  const clientBefore = o.clientMetrics ? await scrape([o.clientMetrics]) : null;
  for (const s of [relayBefore, clientBefore])
    for (const e of s?.errors ?? []) warn(`scrape ${e.url} failed before the run: ${e.error}`);

  const records: RequestRecord[] = [];
  let inFlight = 0;
  let next = 0;
  let failed = 0;
  let stoppedEarly: string | null = null;
  const backoff = new Backoff(BACKOFF_BASE_MS, o.backoffMaxSec * 1000);
  const startedAt = new Date();
  const t0 = performance.now();
  const deadline = o.durationSec !== null ? t0 + o.durationSec * 1000 : Number.POSITIVE_INFINITY;
  const limit = o.count ?? Number.POSITIVE_INFINITY;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  rt.signal?.addEventListener('abort', onAbort, { once: true });
  // Wake sleeping workers when the duration ends.
  const deadlineTimer = o.durationSec !== null ? setTimeout(() => stop.abort(), o.durationSec * 1000) : null;
  /** Workers waiting out a backoff pause or a probe; woken at each request's end. */
  const waiting = new Set<() => void>();

  const progress = new Progress(out, o.progress, o.progressIntervalSec * 1000, () => {
    const ok = records.filter((r) => r.ok).length;
    const now = performance.now() - t0;
    return {
      done: records.length,
      ok,
      failed: records.length - ok,
      inFlight,
      elapsedMs: now,
      total: o.count,
      durationMs: o.durationSec !== null ? o.durationSec * 1000 : null,
      backoffMs: backoff.failures > 0 ? Math.max(0, backoff.untilMs - now) : 0,
    };
  });

  const runOne = async (i: number): Promise<Outcome> => {
    const size = o.sizes[i % o.sizes.length]!;
    const startMs = performance.now() - t0;
    let phase: 'socks' | 'http' = 'socks';
    const timeout = AbortSignal.timeout(o.timeoutSec * 1000);
    const record: RequestRecord = { i, size, startMs, endMs: startMs, ok: false, bytes: 0 };
    try {
      const { conn, res } = await exchange(
        `/bytes/${size}`,
        credsFor(i),
        { hash: o.verify && checksums[String(size)] != null },
        (p) => {
          phase = p;
        },
        timeout,
      );
      record.connectMs = conn.replyAt - conn.requestSentAt;
      record.bytes = res.bodyBytes;
      if (res.status !== 200) throw new RequestFailure(`http_${res.status}`);
      if (res.bodyBytes !== size) throw new RequestFailure('length_mismatch');
      const want = checksums[String(size)];
      if (want && res.sha256 !== want) throw new RequestFailure('checksum_mismatch');
      record.ttfbMs = res.firstByteAt - conn.requestSentAt;
      record.ttlbMs = res.lastByteAt - conn.requestSentAt;
      record.ok = true;
      if (target.onion) m.onionConnect.observe(record.connectMs / 1000);
      m.ttfb.labels({ server }).observe(record.ttfbMs / 1000);
      m.ttlb.labels({ server, size: String(size) }).observe(record.ttlbMs / 1000);
      m.streams.labels({ outcome: 'success' }).inc();
    } catch (e) {
      record.reason = reasonOf(e, phase, timeout.aborted);
      if (e instanceof HttpGetError) record.bytes = e.bodyBytes;
      m.streams.labels({ outcome: record.reason }).inc();
    }
    record.endMs = performance.now() - t0;
    return { record };
  };

  /**
   * Waits until backoff lets a request start, then claims the start (the
   * probe, during a failure streak) in the same tick, so two workers never
   * both pass. Returns the ms waited, or null when the run ended meanwhile.
   */
  const admit = async (): Promise<number | null> => {
    const since = performance.now();
    for (;;) {
      if (stop.signal.aborted || performance.now() >= deadline) return null;
      const wait = backoff.waitMs(performance.now() - t0);
      if (wait === 0) break;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiting.delete(done);
          stop.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = Number.isFinite(wait) ? setTimeout(done, wait) : undefined;
        waiting.add(done);
        stop.signal.addEventListener('abort', done, { once: true });
      });
    }
    backoff.started();
    return performance.now() - since;
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (stop.signal.aborted || next >= limit) return;
      const i = next++;
      if (o.rate !== null) await sleep(t0 + (i * 1000) / o.rate - performance.now(), stop.signal);
      const waited = await admit();
      if (waited === null) return;
      inFlight++;
      const { record } = await runOne(i);
      inFlight--;
      if (waited >= 1) record.backoffMs = waited;
      records.push(record);
      backoff.ended(record.ok, record.endMs);
      if (!record.ok) failed++;
      for (const wake of [...waiting]) wake();
      // With a count bound the verdict can be settled early: even if every
      // request left succeeded, the ratio would stay below --min-success.
      if (o.count !== null && !o.keepGoing && !stoppedEarly && (o.count - failed) / o.count < o.minSuccess) {
        stoppedEarly = `${failed} of ${o.count} requests failed: the success ratio can no longer reach --min-success ${o.minSuccess}`;
        stop.abort();
      }
      progress.tick();
    }
  };

  progress.start();
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, limit) }, () => worker()));
  } finally {
    progress.stop();
    if (deadlineTimer) clearTimeout(deadlineTimer);
    rt.signal?.removeEventListener('abort', onAbort);
  }
  const finishedAt = new Date();

  const relayAfter = relayBefore ? await scrape(relayUrls) : null;
  const clientAfter = clientBefore ? await scrape([o.clientMetrics!]) : null;
  for (const s of [relayAfter, clientAfter])
    for (const e of s?.errors ?? []) warn(`scrape ${e.url} failed after the run: ${e.error}`);

  const usable = (a: Snapshot | null, b: Snapshot | null): Pair | null =>
    a && b && a.series.size > 0 && b.series.size > 0 ? [a, b] : null;

  const result = buildResult({
    options: o,
    target,
    relayMetricsUrls: relayUrls,
    records,
    startedAt,
    finishedAt,
    interrupted: rt.signal?.aborted ?? false,
    stoppedEarly,
    checksums,
    backoff,
    ...scrapedFigures({
      target,
      relays: usable(relayBefore, relayAfter),
      client: usable(clientBefore, clientAfter),
      up,
      networkName: rt.networkName ?? null,
      version: shallotVersion(),
    }),
    warnings,
  });

  try {
    if (rt.printTable !== false) out.write(`\n${renderTable(result)}`);
    if (o.out) await writeJsonReport(o.out, result);
    if (o.html) await writeHtmlReport(o.html, result);
    if (ops && o.metricsLingerSec > 0) await sleep(o.metricsLingerSec * 1000, rt.signal);
  } finally {
    await ops?.close();
  }
  return result;
}
