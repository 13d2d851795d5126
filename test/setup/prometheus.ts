/**
 * A real Prometheus for tests: Debian's `prometheus` binary (installed by
 * test/setup/install-tools.sh), started by hand on 127.0.0.1 with a config
 * that scrapes file_sd targets every second, its TSDB in a temp dir. Every
 * wait is bounded; stop() kills the process and removes the directory.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ephemeralPort } from '../../services/testnet/ports.js';

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface PromQueryResult {
  resultType: 'vector' | 'matrix' | 'scalar' | 'string';
  result: PromSample[] | [number, string];
}

export interface RunningPrometheus {
  url: string;
  /** Instant query through /api/v1/query; throws with Prometheus's error text on a bad query. */
  query(expr: string, timeSec?: number): Promise<PromQueryResult>;
  /** Waits until `expr` returns a non-empty vector whose first value satisfies `ok`. */
  waitFor(expr: string, ok: (v: number) => boolean, timeoutMs: number): Promise<number>;
  /** The last lines Prometheus logged (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** The prometheus binary: $PROMETHEUS_BIN or `prometheus` on PATH; null when missing. */
export function findPrometheus(): string | null {
  const bin = process.env.PROMETHEUS_BIN ?? 'prometheus';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? bin : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPrometheus(opts: {
  bin: string;
  /** file_sd target files (the format `shallot up` writes). */
  targetFiles: string[];
  scrapeIntervalSec?: number;
  readyTimeoutMs?: number;
}): Promise<RunningPrometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'shallot-prom-'));
  const every = `${opts.scrapeIntervalSec ?? 1}s`;
  const config = [
    'global:',
    `  scrape_interval: ${every}`,
    `  scrape_timeout: ${every}`,
    `  evaluation_interval: ${every}`,
    'scrape_configs:',
    '  - job_name: shallot',
    '    file_sd_configs:',
    `      - files: [${opts.targetFiles.map((f) => JSON.stringify(f)).join(', ')}]`,
    `        refresh_interval: ${every}`,
    '',
  ].join('\n');
  const configFile = path.join(dir, 'prometheus.yml');
  await writeFile(configFile, config);
  const port = await ephemeralPort();
  const url = `http://127.0.0.1:${port}`;
  const logLines: string[] = [];
  let child: ChildProcess | null = spawn(
    opts.bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const onLog = (d: Buffer) => {
    logLines.push(...d.toString().split('\n').filter(Boolean));
    logLines.splice(0, Math.max(0, logLines.length - 50));
  };
  child.stdout?.on('data', onLog);
  child.stderr?.on('data', onLog);
  let exited: string | null = null;
  const exit = new Promise<void>((resolve) => {
    child?.once('exit', (code, signal) => {
      exited = `prometheus exited (${code ?? signal})`;
      resolve();
    });
  });

  const stop = async () => {
    const c = child;
    child = null;
    if (c && exited === null) {
      c.kill('SIGTERM');
      const killer = setTimeout(() => c.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const query = async (expr: string, timeSec?: number): Promise<PromQueryResult> => {
    const params = new URLSearchParams({ query: expr });
    if (timeSec !== undefined) params.set('time', String(timeSec));
    const res = await fetch(`${url}/api/v1/query?${params}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as {
      status: string;
      data?: PromQueryResult;
      error?: string;
      errorType?: string;
    };
    if (body.status !== 'success' || !body.data) {
      throw new Error(`Prometheus refused ${expr}: ${body.errorType ?? res.status}: ${body.error ?? ''}`);
    }
    return body.data;
  };

  const waitFor = async (expr: string, ok: (v: number) => boolean, timeoutMs: number): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    let last = 'no result';
    while (Date.now() < deadline) {
      if (exited) throw new Error(`${exited}\n${logLines.join('\n')}`);
      try {
        const r = await query(expr);
        const first = Array.isArray(r.result) ? (r.result[0] as PromSample | undefined) : undefined;
        const v = Number(first?.value?.[1]);
        if (first && ok(v)) return v;
        last = first ? `value ${v}` : 'empty result';
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(250);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${expr} (${last})\n${logLines.join('\n')}`);
  };

  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (exited) throw new Error(`${exited}\n${logLines.join('\n')}`);
      const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ready) break;
      if (Date.now() > deadline)
        throw new Error(`prometheus not ready after ${opts.readyTimeoutMs ?? 30_000} ms`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, query, waitFor, log: () => logLines.join('\n'), stop };
}
