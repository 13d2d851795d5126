/**
 * Live progress for a load run: a one-line bar redrawn in place on a
 * terminal, or plain periodic lines when output is a file or pipe (CI
 * logs, `kubectl logs` of a LoadTest job), where carriage returns would
 * make a mess.
 *
 * Design notes: written here rather than taken from a library because it
 * is one line of text; redraws are throttled to 10 per second. The
 * in-place line itself (`TerminalLine`) is also `shallot up`'s bootstrap
 * progress (testnet/progress.ts).
 */

export interface ProgressState {
  /** Requests finished (ok + failed). */
  done: number;
  ok: number;
  failed: number;
  inFlight: number;
  elapsedMs: number;
  /** Requests the run will make, when known. */
  total: number | null;
  /** Run length in ms when bounded by duration. */
  durationMs: number | null;
  /** Time left in a backoff pause after consecutive failures (0 or absent: none). */
  backoffMs?: number;
}

export interface ProgressSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Fraction done: by count when known, else by time (whichever is further for both). */
export function progressFraction(s: ProgressState): number {
  const byCount = s.total ? s.done / s.total : 0;
  const byTime = s.durationMs ? s.elapsedMs / s.durationMs : 0;
  return Math.max(0, Math.min(1, Math.max(byCount, byTime)));
}

function rate(s: ProgressState): string {
  return s.elapsedMs > 0 ? ((s.done * 1000) / s.elapsedMs).toFixed(1) : '0.0';
}

/** One plain progress line, e.g. `load 45/100 ok 44 failed 1 in-flight 4 12.3 req/s 3.2 s` (`backoff 1.6 s` while pausing). */
export function progressLine(s: ProgressState): string {
  const of = s.total !== null ? `${s.done}/${s.total}` : `${s.done}`;
  const time = s.durationMs !== null ? `/${(s.durationMs / 1000).toFixed(0)}` : '';
  const backoff = s.backoffMs ? ` backoff ${(s.backoffMs / 1000).toFixed(1)} s` : '';
  return `load ${of} ok ${s.ok} failed ${s.failed} in-flight ${s.inFlight} ${rate(s)} req/s ${(s.elapsedMs / 1000).toFixed(1)}${time} s${backoff}`;
}

/** The bar line for a terminal `width` columns wide (no newline). */
export function progressBar(s: ProgressState, width = 80): string {
  const pct = progressFraction(s);
  const text = ` ${(pct * 100).toFixed(0).padStart(3)}% ${progressLine(s).slice(5)}`;
  const barWidth = Math.max(10, Math.min(40, width - text.length - 3));
  const filled = Math.round(pct * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${text}`.slice(0, Math.max(20, width - 1));
}

/** One line on a terminal, redrawn in place: carriage return, the text, erase to the end. */
export class TerminalLine {
  private drawn = false;
  constructor(private readonly out: ProgressSink) {}

  redraw(text: string): void {
    this.out.write(`\r${text}\x1b[K`);
    this.drawn = true;
  }

  /** Leaves the line as it is and moves below it, so later output does not overwrite it. */
  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

export class Progress {
  private timer: NodeJS.Timeout | null = null;
  private lastDraw = 0;
  private readonly mode: 'bar' | 'lines' | 'none';
  private readonly line: TerminalLine;

  constructor(
    private readonly out: ProgressSink,
    mode: 'auto' | 'bar' | 'lines' | 'none',
    private readonly intervalMs: number,
    private readonly state: () => ProgressState,
  ) {
    this.mode = mode === 'auto' ? (out.isTTY ? 'bar' : 'lines') : mode;
    this.line = new TerminalLine(out);
  }

  start(): void {
    if (this.mode === 'none') return;
    const every = this.mode === 'bar' ? 100 : this.intervalMs;
    this.timer = setInterval(() => this.draw(), every);
    this.timer.unref();
    if (this.mode === 'bar') this.draw();
  }

  /** Called on each completed request: redraws the bar (throttled). */
  tick(): void {
    if (this.mode !== 'bar') return;
    if (Date.now() - this.lastDraw >= 100) this.draw();
  }

  private draw(): void {
    this.lastDraw = Date.now();
    const s = this.state();
    if (this.mode === 'bar') this.line.redraw(progressBar(s, this.out.columns ?? 80));
    else if (this.mode === 'lines') this.out.write(`${progressLine(s)}\n`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.mode === 'none') return;
    this.draw();
    this.line.end();
  }
}
