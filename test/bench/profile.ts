/**
 * Where a download's CPU time goes (issue 16): starts `shallot up` (3
 * authorities, 10 relays of which 4 exits, an onion service) with
 * `--cpu-prof` in every thread and process, downloads /bytes/<n> once
 * through an exit or (`--onion`) from the onion service, as one stream or
 * `--streams=N` at once (every body's digest checked), stops the network so each
 * thread writes its profile, and sums the samples taken during the
 * download: busy share per thread, self time per function and per file.
 *
 *   npm run build && node dist/test/bench/profile.js [--process-per-node]
 *     [--workers=N] [--mib=50] [--onion] [--streams=1] [--top=25] [--keep] [--no-profile] [--json] [--trace-gc]
 *     [--node-arg=<flag>]... [--gc-log=<file>]
 *     [--cli=<other checkout>/dist/services/testnet/main.js]
 *
 * Design notes: V8's profile timestamps and process.hrtime are the same
 * monotonic clock (CLOCK_MONOTONIC, µs) in every process on the machine,
 * so the download's start and end, read here, cut the samples of every
 * profile to the download alone (bootstrap, key generation and voting left
 * out). Each sample is charged the time to the next one.
 *
 * Without --process-per-node it also prints each thread's time in the
 * download from /proc/<pid>/task/<tid>/schedstat (the kernel's accounting,
 * not sampled): on a CPU, waiting for one, asleep. A thread near 100 % on a
 * CPU is saturated; one waiting for a CPU lost it to other work; two
 * threads mostly asleep wait on each other (or on flow control).
 *
 * Limitations: V8 samples on the wall clock, so a thread's busy time
 * includes moments it was runnable but waiting for a core; on a loaded
 * machine the busy total exceeds the CPU time (the throughput bench reads
 * CPU time from /proc). Shares within a thread are what to compare.
 *
 * Not in this module: rates (the throughput bench measures those without
 * a profiler's overhead).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NODE_PROCESS_HEAP_FLAGS } from '../../services/runtime/heap-flags.js';
import { collectOutput, smallUpArgs, waitUpReady } from '../helpers/up-cli.js';
import { download } from './throughput.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ThreadFigures {
  /** pid.tid from the profile's file name, with the node it ran when known. */
  thread: string;
  busyMs: number;
  windowMs: number;
  /** This thread's largest self times (share of its own busy time). */
  top: { name: string; share: number }[];
}

export interface ProfileSummary {
  mode: string;
  mib: number;
  downloadMs: number;
  threads: ThreadFigures[];
  busyMs: number;
  /** Self time per function, largest first: share of all busy time in the window. */
  functions: { name: string; ms: number; share: number; caller: string }[];
  /** Self time per source file (our modules; node internals and natives grouped). */
  files: { file: string; ms: number; share: number }[];
}

const IDLE = new Set(['(idle)', '(root)']);

function frameName(f: CallFrame): string {
  const file = f.url ? path.basename(f.url) : '';
  const fn = f.functionName || '(anonymous)';
  return file ? `${fn} ${file}:${f.lineNumber + 1}` : fn;
}

function fileOf(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  if (f.url.startsWith('node:')) return 'node internals';
  const m = /\/dist\/(services\/.*)$/.exec(f.url);
  if (m) return m[1]!;
  if (f.url.includes('node_modules/'))
    return f.url.slice(f.url.lastIndexOf('node_modules/') + 13).split('/')[0]!;
  return path.basename(f.url);
}

/** Self time per profile node inside [fromUs, toUs], and the thread's busy and window time. */
function cut(p: CpuProfile, fromUs: number, toUs: number): { self: Map<number, number>; windowUs: number } {
  const self = new Map<number, number>();
  let t = p.startTime;
  const times: number[] = [];
  for (const d of p.timeDeltas) {
    t += d;
    times.push(t);
  }
  let windowUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const at = times[i]!;
    const next = times[i + 1] ?? p.endTime;
    const from = Math.max(at, fromUs);
    const to = Math.min(next, toUs);
    if (to <= from) continue;
    windowUs += to - from;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (to - from));
  }
  return { self, windowUs };
}

export function summarise(
  profiles: { name: string; profile: CpuProfile }[],
  fromUs: number,
  toUs: number,
  top: number,
): Pick<ProfileSummary, 'threads' | 'busyMs' | 'functions' | 'files'> {
  const fn = new Map<string, { us: number; callers: Map<string, number> }>();
  const files = new Map<string, number>();
  const threads: ThreadFigures[] = [];
  let busyUs = 0;
  for (const { name, profile } of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const { self, windowUs } = cut(profile, fromUs, toUs);
    let threadBusy = 0;
    const mine = new Map<string, number>();
    for (const [id, us] of self) {
      const node = byId.get(id);
      if (!node || IDLE.has(node.callFrame.functionName)) continue;
      threadBusy += us;
      const key = frameName(node.callFrame);
      mine.set(key, (mine.get(key) ?? 0) + us);
      const e = fn.get(key) ?? { us: 0, callers: new Map<string, number>() };
      e.us += us;
      // The nearest caller that is JavaScript of a file (natives show up under who called them).
      let pid = parent.get(id);
      while (pid !== undefined && !byId.get(pid)?.callFrame.url) pid = parent.get(pid);
      const caller = pid === undefined ? '' : frameName(byId.get(pid)!.callFrame);
      e.callers.set(caller, (e.callers.get(caller) ?? 0) + us);
      fn.set(key, e);
      const f = fileOf(node.callFrame);
      files.set(f, (files.get(f) ?? 0) + us);
    }
    busyUs += threadBusy;
    if (windowUs > 0)
      threads.push({
        thread: name,
        busyMs: threadBusy / 1000,
        windowMs: windowUs / 1000,
        top: [...mine.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 8)
          .map(([n, us]) => ({ name: n, share: Number((us / threadBusy).toFixed(4)) })),
      });
  }
  const share = (us: number) => Number((us / busyUs).toFixed(4));
  return {
    threads: threads.sort((a, b) => b.busyMs - a.busyMs),
    busyMs: busyUs / 1000,
    functions: [...fn.entries()]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([name, e]) => ({
        name,
        ms: e.us / 1000,
        share: share(e.us),
        caller: [...e.callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '',
      })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, us]) => ({ file, ms: us / 1000, share: share(us) })),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** Per thread id: seconds on a CPU and seconds runnable but waiting for one, from /proc/<pid>/task/<tid>/schedstat. */
export type ThreadTimes = Map<number, { run: number; wait: number }>;

function threadTimes(pid: number): ThreadTimes {
  const out: ThreadTimes = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      // "<ns on a CPU> <ns waiting on a run queue> <timeslices>" (Documentation/scheduler/sched-stats.rst).
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      out.set(Number(tid), { run: (run ?? 0) / 1e9, wait: (wait ?? 0) / 1e9 });
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return out;
}

/**
 * Each thread's time in the download between two readings, busiest first:
 * on a CPU, runnable but waiting for one (other threads or other work on
 * the machine had the cores), and the rest asleep (nothing to do: waiting
 * on another thread, a window or a socket). The launcher's own thread
 * (tid = pid) is named, the others go by thread id (Node does not name
 * worker threads; ids ascend in creation order: the authorities' workers,
 * then the relays'); threads under 5 % are summed.
 */
export function formatThreadTimes(pid: number, a: ThreadTimes, b: ThreadTimes, ms: number): string {
  const secs = ms / 1000;
  const rows: { name: string; run: number; wait: number }[] = [];
  const rest = { name: 'every other thread (each under 5 % on a CPU)', run: 0, wait: 0 };
  for (const [tid, t] of b) {
    const run = t.run - (a.get(tid)?.run ?? 0);
    const wait = t.wait - (a.get(tid)?.wait ?? 0);
    if (tid === pid) rows.push({ name: 'launcher thread (client, exit target, onion services)', run, wait });
    else if (run >= 0.05 * secs) rows.push({ name: `thread ${tid}`, run, wait });
    else {
      rest.run += run;
      rest.wait += wait;
    }
  }
  const total = rows.reduce((x, r) => x + r.run, rest.run);
  return [
    `threads in the ${secs.toFixed(2)} s download (/proc schedstat; cores used: ${(total / secs).toFixed(2)}):`,
    '     on CPU   waiting for a CPU   asleep',
    ...rows
      .sort((x, y) => y.run - x.run)
      .concat(rest)
      .map(
        (r) =>
          `  ${pct(r.run / secs).padStart(9)}  ${pct(r.wait / secs).padStart(18)}  ${r === rest ? '' : pct(Math.max(0, 1 - (r.run + r.wait) / secs)).padStart(7)}  ${r.name}`,
      ),
  ].join('\n');
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [
    `${s.mode}: ${s.mib} MiB in ${(s.downloadMs / 1000).toFixed(2)} s (${(s.mib / (s.downloadMs / 1000)).toFixed(1)} MiB/s under the profiler); busy thread time in the window ${(s.busyMs / 1000).toFixed(2)} s = ${(s.busyMs / 1000 / s.mib).toFixed(4)} s/MiB (wall-clock samples)`,
    'threads (busy / window):',
    ...s.threads.flatMap((t) => [
      `  ${t.thread.padEnd(40)} ${pct(t.busyMs / t.windowMs)}  ${t.busyMs.toFixed(0)} ms`,
      ...(t.busyMs > 0.05 * s.busyMs ? t.top.map((f) => `      ${pct(f.share).padStart(7)}  ${f.name}`) : []),
    ]),
    'self time by function (share of all busy time; main caller):',
    ...s.functions.map((f) => `  ${pct(f.share).padStart(7)}  ${f.name}  <- ${f.caller}`),
    'self time by file:',
    ...s.files.map((f) => `  ${pct(f.share).padStart(7)}  ${f.file}`),
  ];
  return lines.join('\n');
}

/** A preload that profiles its process from start to exit, written as --cpu-prof names its files. */
function profilerHook(dir: string): string {
  return `import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const s = new Session();
s.connect();
s.post('Profiler.enable');
s.post('Profiler.start');
process.on('exit', () => {
  // The main thread's own session answers synchronously, so this runs before the process is gone.
  s.post('Profiler.stop', (err, r) => {
    if (!err) writeFileSync(${JSON.stringify(dir)} + '/CPU.hook.0.' + process.pid + '.0.0.cpuprofile', JSON.stringify(r.profile));
  });
});
`;
}

/**
 * Sums V8's --trace-gc lines ("[pid:isolate] t ms: Mark-Compact a (b) -> c (d) MB, pause / ext ms ... reason")
 * by isolate, kind and reason: how often each thread collected during the download, why, and the pauses' total.
 */
export function formatGcTrace(text: string, windowMs: number): string {
  const rows = new Map<string, { n: number; ms: number }>();
  const re =
    /^\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: ([A-Za-z -]+?) [\d.]+ \([\d.]+\) -> [\d.]+ \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms\s+(?:\([^)]*\)\s*)*(.*)$/;
  // --trace-incremental-marking says what started each incremental mark (the Mark-Compact line only says what finished it).
  const start = /^\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: \[IncrementalMarking\] Start \(([^)]*)\)/;
  for (const line of text.split('\n')) {
    const s = start.exec(line.trim());
    if (s) {
      const key = `${s[1]} incremental marking started by: ${s[2]}`;
      const r = rows.get(key) ?? { n: 0, ms: 0 };
      r.n++;
      rows.set(key, r);
      continue;
    }
    const m = re.exec(line.trim());
    if (!m) continue;
    const key = `${m[1]} ${m[2]}: ${m[4]!.trim() || '(no reason)'}`;
    const r = rows.get(key) ?? { n: 0, ms: 0 };
    r.n++;
    r.ms += Number(m[3]);
    rows.set(key, r);
  }
  const lines = [...rows].sort((a, b) => b[1].ms - a[1].ms || b[1].n - a[1].n);
  return [
    `GC during the download (${(windowMs / 1000).toFixed(1)} s), per isolate, kind and reason:`,
    ...lines.map(([k, r]) => `  ${String(r.n).padStart(5)} x ${r.ms.toFixed(0).padStart(6)} ms  ${k}`),
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const num = (name: string, fallback: number) => {
    const v = Number(args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3));
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  const perNode = args.includes('--process-per-node');
  const workers = num('workers', availableParallelism());
  const mib = num('mib', 50);
  const onion = args.includes('--onion');
  const streams = num('streams', 1);
  const top = num('top', 25);
  const here = path.dirname(fileURLToPath(import.meta.url));
  // --cli=<main.js> profiles another build (a baseline checkout's dist/) with this tool.
  const cli =
    args.find((a) => a.startsWith('--cli='))?.slice(6) ??
    path.resolve(here, '../../services/testnet/main.js');
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-profile-'));
  const profDir = path.join(dataDir, 'profiles');
  const upArgs = [
    ...(await smallUpArgs(dataDir, 10, 4)),
    '--log-level',
    'warn',
    ...(perNode ? ['--process-per-node'] : ['--workers', String(workers)]),
  ];
  // --cpu-prof covers the launcher and its worker threads. Node refuses it in
  // NODE_OPTIONS, so node processes (--process-per-node) get a preloaded hook
  // that runs the same profiler through node:inspector and writes on exit.
  const profile = !args.includes('--no-profile');
  let nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  // The launcher gets the heap flags `npm start` and the shallot command's shebang give it (runtime/heap-flags.ts); --cli= (another build) none.
  if (!args.some((a) => a.startsWith('--cli='))) nodeArgs.push(...NODE_PROCESS_HEAP_FLAGS);
  // --trace-gc: V8 prints each collection of every isolate (launcher and workers); the ones during the download are summed.
  const traceGc = args.includes('--trace-gc') && !perNode;
  if (traceGc) nodeArgs.push('--trace-gc', '--trace-incremental-marking');
  // --node-arg=<flag> (repeatable) passes V8/Node flags to the launcher, e.g. --trace-gc-nvp or heap sizes to try.
  for (const a of args) if (a.startsWith('--node-arg=')) nodeArgs.push(a.slice(11));
  const gcLog = args.find((a) => a.startsWith('--gc-log='))?.slice(9);
  let env = process.env;
  if (perNode && profile) {
    await mkdir(profDir, { recursive: true });
    const hook = path.join(profDir, 'hook.mjs');
    await writeFile(hook, profilerHook(profDir));
    nodeArgs = [];
    env = { ...process.env, NODE_OPTIONS: `--import=${pathToFileURL(hook).href}` };
  }
  const child = spawn(process.execPath, [...nodeArgs, cli, 'up', ...upArgs], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const out = collectOutput(child);
  try {
    const state = await waitUpReady(child, out, dataDir, 240_000);
    const socksPort = Number(state.socks.split(':')[1]);
    const web = state.web;
    const address = state.onionServices[0]?.address;
    if (!web || !address) throw new Error('no exit target or onion service in state.json');
    const host = onion ? address : web.slice(0, web.lastIndexOf(':'));
    const port = onion ? 80 : Number(web.slice(web.lastIndexOf(':') + 1));
    // Warm-up: the circuit, the JIT, and a consensus that may not list a Guard yet.
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await download(socksPort, host, port, 1 << 20);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const gcFrom = out.text.length;
    const cpu0 = perNode ? null : threadTimes(state.pid);
    const from = Number(process.hrtime.bigint() / 1000n);
    const each = Math.floor((mib << 20) / streams);
    await Promise.all(Array.from({ length: streams }, () => download(socksPort, host, port, each)));
    const to = Number(process.hrtime.bigint() / 1000n);
    const ms = (to - from) / 1000;
    if (cpu0) process.stdout.write(`${formatThreadTimes(state.pid, cpu0, threadTimes(state.pid), ms)}\n`);
    if (traceGc) process.stdout.write(`${formatGcTrace(out.text.slice(gcFrom), ms)}\n`);
    if (gcLog) await writeFile(gcLog, out.text.slice(gcFrom));
    child.kill('SIGINT');
    await exited;
    if (!profile) {
      process.stdout.write(
        `${mib} MiB in ${(ms / 1000).toFixed(2)} s: ${(mib / (ms / 1000)).toFixed(1)} MiB/s\n`,
      );
      return;
    }
    const names = new Map<number, string>();
    for (const n of state.nodes) if (n.pid !== undefined) names.set(n.pid, n.name);
    const profiles: { name: string; profile: CpuProfile }[] = [];
    for (const f of await readdir(profDir)) {
      if (!f.endsWith('.cpuprofile')) continue;
      // CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile
      const [, , , pid, tid] = f.split('.');
      // Worker threads share the launcher's pid: thread 0 is the launcher's own (client, exit target, onion services).
      const who =
        Number(pid) === state.pid
          ? tid === '0'
            ? 'launcher thread'
            : 'worker thread'
          : (names.get(Number(pid)) ?? `pid ${pid}`);
      profiles.push({
        name: `${who} (pid ${pid}, thread ${tid})`,
        profile: JSON.parse(await readFile(path.join(profDir, f), 'utf8')) as CpuProfile,
      });
    }
    const summary: ProfileSummary = {
      mode: `${perNode ? '--process-per-node' : `--workers ${workers}`}, ${onion ? 'onion' : 'exit'}, ${streams} stream(s)`,
      mib,
      downloadMs: ms,
      ...summarise(profiles, from, to, top),
    };
    process.stdout.write(`${formatSummary(summary)}\n`);
    if (args.includes('--json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await exited;
    }
    if (!args.includes('--keep')) await rm(dataDir, { recursive: true, force: true });
    else process.stdout.write(`profiles kept in ${profDir}\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
