/**
 * The soak bench (`npm run bench -- --soak`, issue 13): sustained mixed
 * onion and exit load at concurrency 8 against a process-per-node network,
 * once on shared circuits and once with a new circuit per request (SOCKS
 * isolation by fresh credentials, as `shallot load --new-circuit` does),
 * then idle. Every SAMPLE_MS it samples each node process's resident memory
 * and open file descriptors and the network's circuits and V8 heap from
 * /metrics, so a leak shows as an upward trend in the second half of the
 * load and as values that do not fall back once it stops.
 *
 * Figures, never assertions: the rows carry the success ratio, failures
 * by reason (the names `shallot load` uses: SOCKS reply code, connect or
 * read timeout, reset, length or checksum mismatch; soak-failures.ts) with
 * the first few failure times, the first/last values and the second-half
 * slope; the full timeline and every failure go to the JSON report.
 *
 * The nodes log to <data dir>/logs/<node>.log; `keep` leaves the data dir
 * in place (its path is printed) so a failure's time can be looked up
 * there, and `logLevel` raises what they write.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { failureReason, RequestFailure } from '../../services/loadgen/failure-reason.js';
import { httpGet } from '../../services/loadgen/http-get.js';
import { scrape, sumOf } from '../../services/loadgen/scrape.js';
import { socksConnect } from '../../services/loadgen/socks-client.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import type { LogLevel } from '../../services/runtime/log.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { socksPortOf, upProcessNetwork } from '../helpers/testnet.js';
import type { BenchResult } from './harness.js';
import { processOpenFds, processRssMiB } from './proc-stat.js';
import { type SoakFailure, summariseFailures } from './soak-failures.js';

const SAMPLE_MS = 30_000;
const CONCURRENCY = 8;
const SIZE = 16 * 1024;
/** What every /bytes/SIZE body must hash to (the onion service's and the web target's built-in bytes). */
const DIGEST = builtinSha256(SIZE);
/**
 * Each request's SOCKS deadline (reading gets as long again): above the
 * client's SocksTimeout (120 s, C tor's), so a stuck connect fails with the
 * client's reply code (0x06 TTL expired for END TIMEOUT), not this timer.
 */
const REQUEST_TIMEOUT_MS = 130_000;

interface PhaseResult {
  samples: SoakSample[];
  ok: number;
  total: number;
  failed: SoakFailure[];
}

export interface SoakSample {
  /** Seconds since the phase began. */
  t: number;
  phase: 'load' | 'idle';
  requests: number;
  failures: number;
  rssMiB: number;
  fds: number;
  relayCircuits: number;
  clientCircuits: number;
  heapMiB: number;
}

async function sample(net: RunningNetwork, t: number, phase: SoakSample['phase'], req: number, fail: number) {
  const pids = net.state.nodes.map((n) => n.pid).filter((p): p is number => typeof p === 'number');
  const snap = await scrape(
    net.state.nodes.filter((n) => n.metrics).map((n) => `http://${n.metrics}/metrics`),
  );
  return {
    t: Math.round(t),
    phase,
    requests: req,
    failures: fail,
    rssMiB: Number(pids.reduce((a, p) => a + processRssMiB(p), 0).toFixed(1)),
    fds: pids.reduce((a, p) => a + processOpenFds(p), 0),
    relayCircuits: sumOf(snap, 'shallot_relay_circuits_active'),
    clientCircuits: sumOf(snap, 'shallot_client_circuits_open'),
    heapMiB: Number((sumOf(snap, 'shallot_nodejs_heap_size_used_bytes') / 2 ** 20).toFixed(1)),
  } satisfies SoakSample;
}

/** Least-squares slope of y over t (per minute). */
function slopePerMinute(xs: { t: number; y: number }[]): number {
  if (xs.length < 2) return Number.NaN;
  const n = xs.length;
  const mt = xs.reduce((a, x) => a + x.t, 0) / n;
  const my = xs.reduce((a, x) => a + x.y, 0) / n;
  const num = xs.reduce((a, x) => a + (x.t - mt) * (x.y - my), 0);
  const den = xs.reduce((a, x) => a + (x.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}

async function phase(
  net: RunningNetwork,
  web: { host: string; port: number },
  onion: string,
  newCircuit: boolean,
  loadMs: number,
  idleMs: number,
): Promise<PhaseResult> {
  const socksPort = socksPortOf(net);
  let requests = 0;
  const failed: SoakFailure[] = [];
  const samples: SoakSample[] = [];
  const t0 = performance.now();
  const end = t0 + loadMs;
  const worker = async (w: number) => {
    for (let i = 0; performance.now() < end; i++) {
      const isOnion = (i + w) % 2 === 0;
      const [host, port] = isOnion ? [onion, 80] : [web.host, web.port];
      const credentials = newCircuit ? { username: `soak-${w}-${i}`, password: 'x' } : undefined;
      requests++;
      const started = performance.now();
      let step: 'socks' | 'http' = 'socks';
      const connectTimeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      const readTimeout = AbortSignal.timeout(2 * REQUEST_TIMEOUT_MS);
      try {
        const conn = await socksConnect({
          proxyHost: '127.0.0.1',
          proxyPort: socksPort,
          host,
          port,
          signal: connectTimeout,
          ...(credentials ? { credentials } : {}),
        });
        step = 'http';
        try {
          const r = await httpGet(conn.socket, {
            host,
            path: `/bytes/${SIZE}`,
            signal: readTimeout,
            hash: true,
          });
          if (r.status !== 200) throw new RequestFailure(`http_${r.status}`);
          if (r.bodyBytes !== SIZE) throw new RequestFailure('length_mismatch');
          if (r.sha256 !== DIGEST) throw new RequestFailure('checksum_mismatch');
        } finally {
          conn.socket.destroy();
        }
      } catch (e) {
        const timedOut = (step === 'socks' ? connectTimeout : readTimeout).aborted;
        failed.push({
          t: Number(((started - t0) / 1000).toFixed(1)),
          at: new Date().toISOString(),
          target: isOnion ? 'onion' : 'exit',
          reason: failureReason(e, step, timedOut),
          ms: Math.round(performance.now() - started),
        });
      }
    }
  };
  const sampler = setInterval(() => {
    void sample(net, (performance.now() - t0) / 1000, 'load', requests, failed.length).then((s) =>
      samples.push(s),
    );
  }, SAMPLE_MS);
  samples.push(await sample(net, 0, 'load', 0, 0));
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  clearInterval(sampler);
  samples.push(await sample(net, (performance.now() - t0) / 1000, 'load', requests, failed.length));
  for (let waited = 0; waited < idleMs; waited += SAMPLE_MS) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    samples.push(await sample(net, (performance.now() - t0) / 1000, 'idle', requests, failed.length));
  }
  return { samples, ok: requests - failed.length, total: requests, failed };
}

function row(name: string, r: PhaseResult, loadS: number): BenchResult {
  const load = r.samples.filter((s) => s.phase === 'load');
  const secondHalf = load.filter((s) => s.t >= loadS / 2);
  const slope = (k: keyof SoakSample) =>
    Number(slopePerMinute(secondHalf.map((s) => ({ t: s.t, y: s[k] as number }))).toFixed(2));
  const first = r.samples[0];
  const lastLoad = load.at(-1);
  const lastIdle = r.samples.at(-1);
  const why = summariseFailures(r.failed);
  return {
    name,
    unit: 'request',
    perSecond: r.total / loadS,
    ops: r.total,
    seconds: loadS,
    extra: {
      success: Number((r.ok / Math.max(1, r.total)).toFixed(5)),
      failures: r.total - r.ok,
      failuresByReason: why.byReason,
      failureTimes: why.times,
      rssMiB: `${first?.rssMiB} -> ${lastLoad?.rssMiB} -> idle ${lastIdle?.rssMiB}`,
      rssSlopeMiBPerMin2ndHalf: slope('rssMiB'),
      heapMiB: `${first?.heapMiB} -> ${lastLoad?.heapMiB} -> idle ${lastIdle?.heapMiB}`,
      heapSlopeMiBPerMin2ndHalf: slope('heapMiB'),
      fds: `${first?.fds} -> ${lastLoad?.fds} -> idle ${lastIdle?.fds}`,
      relayCircuits: `${first?.relayCircuits} -> ${lastLoad?.relayCircuits} -> idle ${lastIdle?.relayCircuits}`,
      relayCircuitSlopePerMin2ndHalf: slope('relayCircuits'),
      clientCircuits: `${first?.clientCircuits} -> ${lastLoad?.clientCircuits} -> idle ${lastIdle?.clientCircuits}`,
    },
    series: r.samples,
    failures: r.failed,
  };
}

export async function soakBenches(o: {
  loadMinutes: number;
  idleMinutes: number;
  /** The client's MaxCircuitDirtiness, s: with a new circuit per request, circuits level off at rate x this. */
  dirtinessSec: number;
  /** The nodes' log level (default warn). */
  logLevel?: LogLevel;
  /** Keep the data dir (logs, state) after the run instead of removing it. */
  keep?: boolean;
}): Promise<BenchResult[]> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-soak-'));
  const net = await upProcessNetwork({
    relays: 8,
    exits: 3,
    onionServices: 1,
    dataDir,
    logLevel: o.logLevel ?? 'warn',
    maxCircuitDirtiness: o.dirtinessSec,
  });
  try {
    const [host, port] = (net.state.web ?? '').split(':');
    const web = { host: host ?? '127.0.0.1', port: Number(port) };
    const onion = net.state.onionServices[0]?.address ?? '';
    const loadMs = o.loadMinutes * 60_000;
    const idleMs = o.idleMinutes * 60_000;
    const shared = await phase(net, web, onion, false, loadMs, idleMs);
    const isolated = await phase(net, web, onion, true, loadMs, idleMs);
    return [
      row(
        `soak, shared circuits, ${o.loadMinutes} min, dirtiness ${o.dirtinessSec} s`,
        shared,
        loadMs / 1000,
      ),
      row(
        `soak, --new-circuit, ${o.loadMinutes} min, dirtiness ${o.dirtinessSec} s`,
        isolated,
        loadMs / 1000,
      ),
    ];
  } finally {
    await net.stop();
    if (o.keep) process.stderr.write(`soak: kept the network's data dir, logs in ${dataDir}/logs\n`);
    else await rm(dataDir, { recursive: true, force: true });
  }
}
