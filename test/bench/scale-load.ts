/**
 * The running half of `npm run bench:scale --load --faults` (issue 17):
 * sustained load with the product's own `shallot load` (one run to the
 * first onion service, one to the exit target, each bounded in duration,
 * rate and concurrency, every body checked against /sha256 as `shallot
 * load` does) and relay faults with the product's own `shallot fault`,
 * both as child processes of the built CLI on the network in the data dir,
 * as a user would run them. The judging is in scale-faults.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadResult } from '../../services/loadgen/result.js';
import type { FaultRecord } from '../../services/testnet/fault.js';
import { callFaultControl } from '../../services/testnet/fault-control.js';
import { readState } from '../../services/testnet/state.js';
import type { FaultWindow, PlannedFault, PlannedKind } from './scale-faults.js';

export interface LoadSettings {
  durationSec: number;
  concurrency: number;
  /** Requests started per second, per target. */
  rate: number;
  /** Payload size as `shallot load --size` takes it (e.g. 100k). */
  size: string;
}

export interface LoadSummary {
  target: 'onion' | 'web';
  exitCode: number | null;
  /** `shallot load`'s verdict (its last line). */
  verdict: string;
  requests: number;
  ok: number;
  failed: number;
  successRatio: number;
  requestsPerSec: number;
  bytesPerSec: number;
  failuresByReason: Record<string, number>;
  /** Milliseconds, from the SOCKS CONNECT: connect (circuit or rendezvous) and the whole request, p50 / p99. */
  connectP50Ms: number | null;
  connectP99Ms: number | null;
  ttlbP50Ms: number | null;
  ttlbP99Ms: number | null;
  /** The client's circuit builds during this run, p50 / p99 ms (shallot_circuit_build_seconds). */
  circuitBuildP50Ms: number | null;
  circuitBuildP99Ms: number | null;
  /** Where its JSON result and its output went (kept with the data dir of a failed size). */
  out: string;
  error?: string;
}

export interface RunningLoad {
  pid: number;
  done: Promise<LoadSummary>;
  /** SIGINT (it finishes what is in flight and writes its result), SIGKILL after `graceMs`. */
  stop(graceMs: number): void;
}

/**
 * `shallot load <target>` on the network in `dataDir` for `s.durationSec`,
 * a new circuit per request (so circuits spread over the relays, faulted
 * ones included), `--min-success 0` (the bench judges), no progress lines.
 */
export function startLoad(
  cli: string,
  dataDir: string,
  target: 'onion' | 'web',
  s: LoadSettings,
): RunningLoad {
  const out = join(dataDir, `bench-load-${target}.json`);
  const log = createWriteStream(join(dataDir, `bench-load-${target}.log`));
  const child = spawn(
    process.execPath,
    [
      cli,
      'load',
      target,
      ...['--data-dir', dataDir, '--duration', String(s.durationSec)],
      ...['--concurrency', String(s.concurrency), '--rate', String(s.rate), '--size', s.size],
      ...['--new-circuit', '--timeout', '60', '--min-success', '0', '--progress', 'none', '--out', out],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  const keep = (d: Buffer) => {
    log.write(d);
    tail = (tail + d.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const done = new Promise<LoadSummary>((res) => {
    child.once('exit', (code) => {
      log.end();
      const verdict =
        tail
          .trim()
          .split('\n')
          .filter((l) => /^(PASS|FAIL|error)/.test(l))
          .pop() ??
        tail.trim().split('\n').pop() ??
        '';
      readFile(out, 'utf8')
        .then((text) => res(summarise(target, code, verdict, out, JSON.parse(text) as LoadResult)))
        .catch((e: Error) => res({ ...emptySummary(target, code, verdict, out), error: e.message }));
    });
  });
  return {
    pid: child.pid ?? 0,
    done,
    stop(graceMs) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT');
      const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => clearTimeout(force));
    },
  };
}

function emptySummary(
  target: 'onion' | 'web',
  code: number | null,
  verdict: string,
  out: string,
): LoadSummary {
  return {
    target,
    exitCode: code,
    verdict,
    requests: 0,
    ok: 0,
    failed: 0,
    successRatio: 0,
    requestsPerSec: 0,
    bytesPerSec: 0,
    failuresByReason: {},
    connectP50Ms: null,
    connectP99Ms: null,
    ttlbP50Ms: null,
    ttlbP99Ms: null,
    circuitBuildP50Ms: null,
    circuitBuildP99Ms: null,
    out,
  };
}

function summarise(
  target: 'onion' | 'web',
  code: number | null,
  verdict: string,
  out: string,
  r: LoadResult,
): LoadSummary {
  return {
    ...emptySummary(target, code, verdict, out),
    requests: r.counts.requests,
    ok: r.counts.ok,
    failed: r.counts.failed,
    successRatio: r.successRatio,
    requestsPerSec: r.throughput.requestsPerSec,
    bytesPerSec: r.throughput.bytesPerSec,
    failuresByReason: r.failuresByReason,
    connectP50Ms: r.latency.connect.p50,
    connectP99Ms: r.latency.connect.p99,
    ttlbP50Ms: r.latency.ttlb.p50,
    ttlbP99Ms: r.latency.ttlb.p99,
    circuitBuildP50Ms: r.circuitBuild?.p50 ?? null,
    circuitBuildP99Ms: r.circuitBuild?.p99 ?? null,
  };
}

/** `shallot fault <kind> <target> --duration <sec>` on the network in `dataDir`; its one line of output. */
export function injectFault(
  cli: string,
  dataDir: string,
  f: PlannedFault,
  durationSec: number,
): Promise<string> {
  return new Promise((res, rej) =>
    execFile(
      process.execPath,
      [cli, 'fault', f.kind, f.target, '--duration', String(durationSec), '--data-dir', dataDir],
      { timeout: 30_000 },
      (err, stdout, stderr) =>
        err ? rej(new Error(`${err.message.trim()} ${stderr.trim()}`)) : res(stdout.trim()),
    ),
  );
}

/**
 * Every node fault of the run as it happened, from the launcher's fault
 * control (what `shallot fault list` prints): started and healed times.
 */
export async function faultWindows(dataDir: string): Promise<FaultWindow[]> {
  const state = await readState(dataDir);
  if (!state.control) return [];
  const all = (await callFaultControl(dataDir, state.control, 'GET', '/faults')) as FaultRecord[];
  return all
    .filter((f) => f.kind === 'kill' || f.kind === 'pause' || f.kind === 'stop')
    .map((f) => ({
      target: f.target,
      kind: f.kind as PlannedKind,
      startMs: Date.parse(f.startedAt),
      endMs: f.healedAt ? Date.parse(f.healedAt) : null,
    }));
}
