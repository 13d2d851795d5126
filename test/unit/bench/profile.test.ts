// test/bench/profile.ts's summary: only samples inside the download window
// count, idle does not, each sample is charged the time to the next one,
// and a native function is shown under the JavaScript that called it; the
// per-thread table (on a CPU, waiting for one, asleep) from two schedstat readings.
import { describe, expect, it } from 'vitest';
import { formatGcTrace, formatThreadTimes, summarise, type ThreadTimes } from '../../bench/profile.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

/** root -> relay (a JS function) -> update (native); root -> (idle); samples 1 ms apart from t = 1000 µs. */
function profile(samples: number[]) {
  return {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 4] },
      { id: 2, callFrame: frame('relay', 'file:///x/dist/services/net/or-circuit.js', 9), children: [3] },
      { id: 3, callFrame: frame('update') },
      { id: 4, callFrame: frame('(idle)') },
    ],
    startTime: 1000,
    endTime: 1000 + samples.length * 1000,
    samples,
    timeDeltas: samples.map(() => 1000),
  };
}

describe('profile summary', () => {
  it('counts busy time inside the window only, per function, with its caller, and per file', () => {
    // Samples at 2000, 3000, ... 9000 µs: update, relay, idle, update, relay, update, update, idle.
    const p = profile([3, 2, 4, 3, 2, 3, 3, 4]);
    const s = summarise([{ name: 'relay thread', profile: p }], 3000, 8000, 10);
    // In [3000, 8000): relay, idle, update, relay, update = 4 ms busy of a 5 ms window.
    expect(s.busyMs).toBe(4);
    expect(s.threads).toEqual([expect.objectContaining({ thread: 'relay thread', busyMs: 4, windowMs: 5 })]);
    expect(s.functions).toEqual([
      { name: 'relay or-circuit.js:10', ms: 2, share: 0.5, caller: '' },
      { name: 'update', ms: 2, share: 0.5, caller: 'relay or-circuit.js:10' },
    ]);
    expect(s.files).toEqual([
      { file: 'services/net/or-circuit.js', ms: 2, share: 0.5 },
      { file: '(native)', ms: 2, share: 0.5 },
    ]);
  });

  it('a window that misses every sample counts nothing', () => {
    const s = summarise([{ name: 't', profile: profile([3, 2]) }], 50_000, 60_000, 10);
    expect(s.busyMs).toBe(0);
    expect(s.threads).toEqual([]);
    expect(s.functions).toEqual([]);
  });
});

describe('--trace-gc summary', () => {
  const lines = [
    '[2489:0x7f1f1c001030]     9646 ms: Scavenge 21.8 (31.2) -> 14.7 (31.2) MB, 9.97 / 0.13 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ',
    '[2489:0x7f1f1c001030]     9649 ms: [IncrementalMarking] Start (task): (size/limit/slack) v8: 14MB / 47MB / 33MB global: 14MB / 47MB / 33MB',
    '[2489:0x7f1f1c001030]     9704 ms: Mark-Compact 14.7 (31.2) -> 13.7 (31.5) MB, 14.47 / 0.05 ms  (+ 20.4 ms in 43 steps since start of marking, biggest step 16.4 ms, walltime since start of marking 55 ms) (average mu = 0.996, current mu = 0.996) finalize incremental marking via task; GC in old space requested',
    '[2489:0x7f1f1c001030]     9920 ms: Mark-Compact 17.6 (31.5) -> 13.9 (31.5) MB, 25.74 / 0.03 ms  (+ 26.3 ms in 15 steps since start of marking, biggest step 24.2 ms, walltime since start of marking 87 ms) (average mu = 0.991, current mu = 0.760) finalize incremental marking via task; GC in old space requested',
    '[2489:0x43b9e7a0]    13678 ms: [IncrementalMarking] Start (external memory pressure): (size/limit/slack) v8: 15MB / 40MB / 25MB',
  ];

  it('counts collections per isolate, kind and reason, with their pauses, and what started each marking', () => {
    const s = formatGcTrace(lines.join('\n'), 4000);
    expect(s).toContain('GC during the download (4.0 s)');
    expect(s).toMatch(
      / 2 x +40 ms {2}0x7f1f1c001030 Mark-Compact: finalize incremental marking via task; GC in old space requested/,
    );
    expect(s).toMatch(/ 1 x +10 ms {2}0x7f1f1c001030 Scavenge: allocation failure;/);
    expect(s).toMatch(/ 1 x +0 ms {2}0x7f1f1c001030 incremental marking started by: task/);
    expect(s).toMatch(/ 1 x +0 ms {2}0x43b9e7a0 incremental marking started by: external memory pressure/);
  });

  it('ignores log lines, truncated and garbled trace lines', () => {
    const junk = [
      'relay1 listening on 127.0.0.1:5000',
      lines[2]!.slice(0, 60),
      '[2489:0x7f] 12 ms: Mark-Compact lots of MB',
      '[x:y] 1 ms: [IncrementalMarking] Start (',
      '\u0000'.repeat(100),
      '',
    ].join('\n');
    expect(formatGcTrace(junk, 1000).split('\n')).toHaveLength(1);
  });
});

describe('per-thread times from schedstat', () => {
  it('names the launcher thread, differences the two readings, derives asleep, sums small threads', () => {
    const pid = 100;
    const a: ThreadTimes = new Map([
      [100, { run: 1, wait: 1 }],
      [101, { run: 5, wait: 0 }],
      [102, { run: 0, wait: 0 }],
      [103, { run: 0, wait: 0 }],
    ]);
    // A 2 s download: the relay thread ran 1.2 s and waited 0.4 s, the launcher ran 1 s and waited 0.2 s,
    // two helpers ran 0.05 s each (under 5 %); 104 started during the download.
    const b: ThreadTimes = new Map([
      [100, { run: 2, wait: 1.2 }],
      [101, { run: 6.2, wait: 0.4 }],
      [102, { run: 0.05, wait: 0.1 }],
      [103, { run: 0.05, wait: 0 }],
      [104, { run: 0.02, wait: 0 }],
    ]);
    const lines = formatThreadTimes(pid, a, b, 2000).split('\n');
    expect(lines[0]).toContain('cores used: 1.16');
    expect(lines[2]).toMatch(/^\s+60\.0 %\s+20\.0 %\s+20\.0 %\s+thread 101$/);
    expect(lines[3]).toMatch(/^\s+50\.0 %\s+10\.0 %\s+40\.0 %\s+launcher thread/);
    expect(lines[4]).toMatch(/^\s+6\.0 %\s+5\.0 %\s+every other thread/);
    expect(lines).toHaveLength(5);
  });
});
