/**
 * CPU seconds a process has spent, from Linux's /proc/<pid>/stat (proc(5):
 * utime and stime, fields 14 and 15, in clock ticks), and its resident
 * memory (/proc/<pid>/status VmRSS) and open descriptors (/proc/<pid>/fd), for the benches that measure the node
 * processes they start (throughput.ts, scale.ts, processes.ts, soak.ts).
 *
 * Design notes: the fields are counted after the last ')' because the
 * command name (field 2) is parenthesised and may itself hold spaces and
 * parentheses. Ticks per second are `getconf CLK_TCK` (USER_HZ, 100 on
 * every Linux we run on), read once.
 *
 * Not in this module: the bench's own CPU (process.cpuUsage()).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** utime + stime of a /proc/<pid>/stat line, in seconds at `ticksPerSecond`. */
export function cpuSecondsFromStat(stat: string, ticksPerSecond: number): number {
  // Fields after the parenthesised command name: state is field 3, so utime (14) and stime (15) are [11] and [12].
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond;
}

/** CPU seconds (user + system) process `pid` has spent so far. */
export function processCpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), clockTicks);
}

/** Resident memory of process `pid` in MiB; 0 once it has exited (a zombie has no VmRSS). */
export function processRssMiB(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 0;
  }
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Open file descriptors of process `pid`; 0 once it has exited. */
export function processOpenFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}
