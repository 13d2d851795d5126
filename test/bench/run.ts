/**
 * `npm run bench`: runs the core micro-benchmarks and the end-to-end
 * circuit figures, prints a table, and writes JSON to
 * bench-results/bench-<timestamp>.json and bench-results/latest.json.
 *
 * Options: --quick (shorter budgets), --no-e2e (skip the wss figures),
 * --only=<substring> (run only benchmarks whose name contains it; `--only=throughput`
 * runs the data-path figures of issue 16 in both modes), --workers=N (the
 * default-mode throughput network's `shallot up --workers`; one per core),
 * --soak (add the soak bench: --soak-minutes=N of load per phase, default
 * 10, then --soak-idle-minutes=N idle, default 5, with the client's
 * MaxCircuitDirtiness --soak-dirtiness=S, default C tor's 600; `--soak
 * --only=soak` runs it alone; --soak-log-level=L sets the nodes' log level,
 * default warn, and --soak-keep keeps their data dir and logs).
 * A section that fails becomes a "not available" row with the reason; the
 * run still writes its results and exits non-zero.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isLogLevel } from '../../services/runtime/log.js';
import {
  blindingBenches,
  descriptorBenches,
  handshakeBenches,
  relayCellBenches,
  relayCryptoShare,
} from './core.js';
import { directoryBenches } from './directory.js';
import { e2eBenches } from './e2e.js';
import { type BenchResult, formatResult, formatTable, skipped } from './harness.js';
import { onionBenches } from './onion.js';
import { onionModelBenches } from './onion-model.js';
import { processBenches } from './processes.js';
import { benchResultsPath, REPO_ROOT } from './results-file.js';
import { shapingBenches } from './shaping.js';
import { soakBenches } from './soak.js';
import { type ThroughputOptions, throughputBenches } from './throughput.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const noE2e = args.includes('--no-e2e');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const soak = args.includes('--soak');
const numArg = (name: string, fallback: number) => {
  const v = Number(args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

const BUDGET = quick ? 300 : 1200;
const soakLogLevel = args.find((a) => a.startsWith('--soak-log-level='))?.slice('--soak-log-level='.length);
if (soakLogLevel !== undefined && !isLogLevel(soakLogLevel))
  throw new Error(`--soak-log-level: not a log level: ${soakLogLevel}`);
const workersArg = args.find((a) => a.startsWith('--workers='))?.slice('--workers='.length);
const workers = workersArg === undefined ? undefined : Number(workersArg);
if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) {
  throw new Error(`--workers must be a whole number of at least 1, not ${workersArg}`);
}

const throughputSizes: Omit<ThroughputOptions, 'processPerNode'> = quick
  ? { singleBytes: 16 * 1024 * 1024, singleRuns: 1, parallelBytes: 4 * 1024 * 1024 }
  : { singleBytes: 64 * 1024 * 1024, singleRuns: 3, parallelBytes: 16 * 1024 * 1024 };

interface Section {
  title: string;
  /** Row names to show if the section cannot run at all. */
  rows: string[];
  run: () => BenchResult[] | Promise<BenchResult[]>;
}

const sections: Section[] = [
  { title: 'relay-cell crypto', rows: ['relay cell crypto'], run: () => relayCellBenches(BUDGET) },
  {
    title: 'relay-cell crypto share of the node:crypto ceiling',
    rows: ['relay cell crypto, 1 hop', 'relay cell crypto ceiling'],
    run: () => relayCryptoShare(BUDGET),
  },
  { title: 'handshakes', rows: ['ntor', 'ntor-v3', 'hs-ntor'], run: () => handshakeBenches(BUDGET) },
  { title: 'key blinding', rows: ['key blinding'], run: () => blindingBenches(BUDGET) },
  {
    title: 'hs descriptors',
    rows: ['hs descriptor build/parse/decrypt'],
    run: () => descriptorBenches(BUDGET),
  },
  {
    title: 'directory authority at 1,000 and 5,000 relays (vote, consensus, signing)',
    rows: ['vote build+sign', 'consensus compute (3 votes)', 'consensus sign'],
    run: () => directoryBenches(BUDGET),
  },
  {
    title: 'network model: 50 ms one-way on every link (expected vs measured, README: Realistic networks)',
    rows: ['3-hop build, 50 ms links'],
    run: () => shapingBenches(quick ? 1 : 3),
  },
  {
    title: 'network model: onion connect, 50 ms one-way on every link (expected vs measured)',
    rows: ['onion first connect, 50 ms links', 'onion warm connect, 50 ms links'],
    run: () =>
      noE2e
        ? [skipped('onion connect, 50 ms links', 'skipped by --no-e2e')]
        : onionModelBenches({ clients: quick ? 2 : 4, warmPerClient: quick ? 1 : 2 }),
  },
  {
    title: 'end-to-end (wss on 127.0.0.1)',
    rows: ['3-hop circuit build', '3-hop download'],
    run: () =>
      noE2e
        ? [skipped('end-to-end', 'skipped by --no-e2e')]
        : e2eBenches({
            buildBudgetMs: quick ? 1000 : 3000,
            maxBuilds: 2000,
            downloadBytes: (quick ? 4 : 16) * 1024 * 1024,
            downloads: 3,
            downloadBudgetMs: quick ? 3000 : 12_000,
          }),
  },
  {
    title: 'relays as processes (shallot up --process-per-node)',
    rows: ['SOCKS download', 'relay process RSS'],
    run: () =>
      noE2e
        ? [skipped('relays as processes', 'skipped by --no-e2e')]
        : processBenches({
            relays: 5,
            downloadBytes: (quick ? 4 : 16) * 1024 * 1024,
            downloads: quick ? 1 : 3,
          }),
  },
  {
    title: 'onion connect (processes)',
    rows: ['onion first connect', 'onion warm connect'],
    run: () =>
      noE2e
        ? [skipped('onion connect', 'skipped by --no-e2e')]
        : onionBenches({ clients: quick ? 3 : 8, warmPerClient: quick ? 2 : 4 }),
  },
  ...([false, true] as const).map(
    (processPerNode): Section => ({
      title: `throughput (${processPerNode ? '--process-per-node' : 'default: --workers, one per core'}: exit and onion, 1 and 8 streams)`,
      rows: ['single stream', 'parallel streams', 'CPU seconds per MiB'],
      run: () =>
        noE2e
          ? [skipped('throughput', 'skipped by --no-e2e')]
          : throughputBenches({ processPerNode, ...throughputSizes, ...(workers ? { workers } : {}) }),
    }),
  ),
  ...(soak
    ? [
        {
          title: 'soak (processes, concurrency 8, onion and exit)',
          rows: ['soak, shared circuits', 'soak, --new-circuit'],
          run: () =>
            soakBenches({
              loadMinutes: numArg('soak-minutes', 10),
              idleMinutes: numArg('soak-idle-minutes', 5),
              dirtinessSec: numArg('soak-dirtiness', 600),
              ...(soakLogLevel ? { logLevel: soakLogLevel } : {}),
              keep: args.includes('--soak-keep'),
            }),
        },
      ]
    : []),
];

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl,
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

async function main(): Promise<number> {
  const m = machine();
  const commit = gitCommit();
  console.log(`Shallot benchmarks — ${new Date().toISOString()}${commit ? `  commit ${commit}` : ''}`);
  console.log(`node ${m.node} (V8 ${m.v8}, OpenSSL ${m.openssl}) on ${m.platform} ${m.arch}`);
  console.log(`${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB RAM, load ${m.loadavg.join(' ')}\n`);

  const t0 = performance.now();
  const results: BenchResult[] = [];
  let failed = false;
  for (const s of sections) {
    if (only && !s.title.includes(only) && !s.rows.some((r) => r.includes(only))) continue;
    process.stdout.write(`[${s.title}]\n`);
    try {
      for (const r of await s.run()) {
        results.push(r);
        console.log(`  ${formatResult(r)}`);
      }
    } catch (e) {
      failed = true;
      const reason = e instanceof Error ? e.message : String(e);
      for (const name of s.rows) {
        const r = skipped(name, reason);
        results.push(r);
        console.log(`  ${formatResult(r)}`);
      }
    }
  }
  const totalSeconds = (performance.now() - t0) / 1000;

  console.log(`\n${formatTable(results)}`);
  console.log(
    '\nMB/s = 10^6 payload bytes/s (relay cells: 498 data bytes per cell). Latencies of fast ops are' +
      '\nbatch averages (see "batch" in the JSON). End-to-end runs client and 3 relays in one process.',
  );

  const report = {
    timestamp: new Date().toISOString(),
    commit,
    machine: m,
    options: { quick, noE2e, soak, only: only ?? null, budgetMs: BUDGET },
    totalSeconds: Number(totalSeconds.toFixed(1)),
    results,
  };
  const json = `${JSON.stringify(report, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
  const file = benchResultsPath('bench');
  writeFileSync(file, json);
  writeFileSync(join(dirname(file), 'latest.json'), json);
  console.log(`\n${totalSeconds.toFixed(1)} s; wrote ${file} and bench-results/latest.json`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
