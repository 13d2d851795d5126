// Progress output: a bar redrawn in place on terminals, plain lines elsewhere.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Progress,
  type ProgressState,
  progressBar,
  progressFraction,
  progressLine,
} from '../../../services/loadgen/progress.js';

const state = (over: Partial<ProgressState> = {}): ProgressState => ({
  done: 45,
  ok: 44,
  failed: 1,
  inFlight: 4,
  elapsedMs: 3000,
  total: 100,
  durationMs: null,
  ...over,
});

describe('progress text', () => {
  it('a plain line with live counts and rate', () => {
    expect(progressLine(state())).toBe('load 45/100 ok 44 failed 1 in-flight 4 15.0 req/s 3.0 s');
    expect(progressLine(state({ total: null, durationMs: 60_000 }))).toBe(
      'load 45 ok 44 failed 1 in-flight 4 15.0 req/s 3.0/60 s',
    );
    // During a backoff pause the line says how long is left.
    expect(progressLine(state({ backoffMs: 1600 }))).toBe(
      'load 45/100 ok 44 failed 1 in-flight 4 15.0 req/s 3.0 s backoff 1.6 s',
    );
    expect(progressLine(state({ backoffMs: 0 }))).toBe(progressLine(state()));
  });

  it('fraction by count or by time, whichever is further, clamped to 1', () => {
    expect(progressFraction(state())).toBe(0.45);
    expect(progressFraction(state({ total: null, durationMs: 6000 }))).toBe(0.5);
    expect(progressFraction(state({ total: 100, durationMs: 1000 }))).toBe(1);
    expect(progressFraction(state({ total: null }))).toBe(0);
  });

  it('a bar that fits the terminal width', () => {
    const bar = progressBar(state(), 100);
    expect(bar).toMatch(/^\[#+-+\] {2}45% 45\/100 ok 44/);
    expect(bar.length).toBeLessThan(100);
    expect(progressBar(state(), 30).length).toBeLessThanOrEqual(29);
  });
});

describe('Progress', () => {
  afterEach(() => vi.useRealTimers());

  it('prints lines on an interval when not a terminal, and a last line at stop', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const p = new Progress({ write: (s: string) => out.push(s), isTTY: false }, 'auto', 1000, () => state());
    p.start();
    vi.advanceTimersByTime(2500);
    p.tick();
    p.stop();
    expect(out).toHaveLength(3);
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
  });

  it('redraws a bar in place on a terminal and ends with a newline', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const p = new Progress(
      { write: (s: string) => out.push(s), isTTY: true, columns: 80 },
      'auto',
      1000,
      () => state(),
    );
    p.start();
    vi.advanceTimersByTime(350);
    p.stop();
    expect(out[0]!.startsWith('\r[')).toBe(true);
    expect(out.length).toBeGreaterThanOrEqual(4);
    expect(out.at(-1)).toBe('\n');
  });

  it('prints nothing in none mode', () => {
    const out: string[] = [];
    const p = new Progress({ write: (s: string) => out.push(s), isTTY: true }, 'none', 1000, () => state());
    p.start();
    p.tick();
    p.stop();
    expect(out).toEqual([]);
  });
});
