// `shallot up`'s bootstrap progress (services/testnet/progress.ts): on a
// terminal one line redrawn in place through the same TerminalLine as the
// load bar, ended once; elsewhere one plain line per change.
import { describe, expect, it } from 'vitest';
import { Progress } from '../../../services/testnet/progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  const stream = { isTTY, write: (s: string) => out.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { out, stream };
}

describe('bootstrap progress', () => {
  it('redraws one terminal line in place and ends it once', () => {
    const { out, stream } = sink(true);
    const p = new Progress(stream);
    p.update({ stage: 'authorities', done: 1, total: 3 });
    p.update({ stage: 'authorities', done: 1, total: 3 });
    p.line('bootstrapping: client fetching the consensus');
    p.done();
    p.done();
    expect(out).toEqual([
      '\rbootstrapping: directory authorities started 1/3\x1b[K',
      '\rbootstrapping: client fetching the consensus\x1b[K',
      '\n',
    ]);
  });

  it('writes plain lines, each change once, when not a terminal', () => {
    const { out, stream } = sink(false);
    const p = new Progress(stream);
    p.update({ stage: 'consensus', done: 2, total: 6 });
    p.update({ stage: 'consensus', done: 2, total: 6 });
    p.update({ stage: 'consensus', done: 6, total: 6 });
    p.done();
    expect(out).toEqual([
      'bootstrapping: relays listed in the consensus 2/6\n',
      'bootstrapping: relays listed in the consensus 6/6\n',
    ]);
  });

  it('ends nothing when nothing was drawn', () => {
    const { out, stream } = sink(true);
    new Progress(stream).done();
    expect(out).toEqual([]);
  });
});
