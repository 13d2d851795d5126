// test/bench/profile.ts's summary: only samples inside the download window
// count, idle does not, each sample is charged the time to the next one,
// and a native function is shown under the JavaScript that called it.
import { describe, expect, it } from 'vitest';
import { summarise } from '../../bench/profile.js';

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
