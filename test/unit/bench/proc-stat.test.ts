// test/bench/proc-stat.ts: utime + stime from a /proc/<pid>/stat line
// (proc(5) fields 14 and 15), counted after the last ')' so a command name
// holding spaces and parentheses does not shift them; VmRSS in MiB, 0 for
// a process that is gone.

import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  cpuSecondsFromStat,
  processCpuSeconds,
  processOpenFds,
  processRssMiB,
} from '../../bench/proc-stat.js';

/** A stat line: pid, (comm), state, then fields 4..13 as 0, utime, stime, and a tail. */
const statLine = (comm: string, utime: number, stime: number) =>
  `4242 (${comm}) S ${Array(10).fill('7').join(' ')} ${utime} ${stime} 3 4 20 0 1 0\n`;

describe('cpuSecondsFromStat', () => {
  it('adds utime and stime at the clock rate', () => {
    expect(cpuSecondsFromStat(statLine('node', 250, 50), 100)).toBe(3);
    expect(cpuSecondsFromStat(statLine('node', 250, 50), 1000)).toBe(0.3);
  });

  it('is not misled by a command name with spaces and parentheses', () => {
    expect(cpuSecondsFromStat(statLine('a) b (c) d', 120, 30), 100)).toBe(1.5);
  });
});

describe('processCpuSeconds', () => {
  it('reads this process: a finite count that does not go back', () => {
    const a = processCpuSeconds(process.pid);
    const b = processCpuSeconds(process.pid);
    expect(Number.isFinite(a)).toBe(true);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThanOrEqual(a);
  });
});

describe('processRssMiB', () => {
  it("reads this process's resident memory, and 0 for a process that has exited", () => {
    const rss = processRssMiB(process.pid);
    expect(rss).toBeCloseTo(process.memoryUsage().rss / 2 ** 20, -1);
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(processRssMiB(gone)).toBe(0);
  });
});

describe('processOpenFds', () => {
  it("counts this process's open descriptors, more once it opens a file, and 0 for a process that has exited", () => {
    const before = processOpenFds(process.pid);
    expect(before).toBeGreaterThanOrEqual(3);
    const fd = openSync(process.execPath, 'r');
    try {
      expect(processOpenFds(process.pid)).toBeGreaterThanOrEqual(before + 1);
    } finally {
      closeSync(fd);
    }
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(processOpenFds(gone)).toBe(0);
  });
});
