/**
 * `shallot up`'s bootstrap progress: one line redrawn in place on a
 * terminal (the same TerminalLine as `shallot load`'s bar,
 * loadgen/progress.ts), plain lines when output is a file or pipe.
 */

import { TerminalLine } from '../loadgen/progress.js';
import type { BootstrapProgress } from './network.js';

/** Where bootstrap progress goes. */
export interface ProgressSink {
  update(p: BootstrapProgress): void;
  line(text: string): void;
  done(): void;
}

/** Writes progress to a terminal line (or plain lines when not a TTY). */
export class Progress implements ProgressSink {
  private last = '';
  private readonly terminal: TerminalLine;
  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.terminal = new TerminalLine(out);
  }

  update(p: BootstrapProgress): void {
    const label = {
      authorities: 'directory authorities started',
      relays: 'relays started',
      descriptors: 'relay descriptors accepted',
      consensus: 'relays listed in the consensus',
    }[p.stage];
    this.line(`bootstrapping: ${label} ${p.done}/${p.total}`);
  }

  line(text: string): void {
    if (text === this.last) return;
    this.last = text;
    if (this.out.isTTY) this.terminal.redraw(text);
    else this.out.write(`${text}\n`);
  }

  done(): void {
    this.terminal.end();
    this.last = '';
  }
}
