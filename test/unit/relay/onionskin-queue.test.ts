// The onionskin queue: channels served in turn (one channel's flood delays
// another's CREATE2 by one onionskin), heads older than MaxOnionQueueDelay
// shed, a closed channel's onionskins dropped, failures passed on.
import { describe, expect, it } from 'vitest';
import type { OnionskinAnswer, OnionskinRequest } from '../../../services/relay/cpuworker.js';
import { OnionskinQueue } from '../../../services/relay/onionskin-queue.js';

const ANSWER: OnionskinAnswer = {
  reply: new Uint8Array(1),
  keys: {
    df: new Uint8Array(),
    db: new Uint8Array(),
    kf: new Uint8Array(),
    kb: new Uint8Array(),
    kh: new Uint8Array(),
  },
};
const req = (tag: number): OnionskinRequest => ({
  htype: 2,
  hdata: new Uint8Array([tag]),
  keys: { identity: new Uint8Array(32), onionKeys: [] },
});

/** An executor the test completes by hand. */
function manual() {
  const waiting: { tag: number; resolve: (a: OnionskinAnswer) => void; reject: (e: Error) => void }[] = [];
  return {
    waiting,
    execute: (r: OnionskinRequest) =>
      new Promise<OnionskinAnswer>((resolve, reject) => waiting.push({ tag: r.hdata[0]!, resolve, reject })),
  };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('OnionskinQueue', () => {
  it('serves channels in turn: a flood on one channel does not hold another back', async () => {
    const ex = manual();
    const q = new OnionskinQueue(ex.execute, 1, () => 10_000);
    const order: string[] = [];
    const flood = {};
    const honest = {};
    for (let i = 0; i < 100; i++)
      q.add(flood, { req: req(i), done: () => order.push(`f${i}`), shed: () => order.push('shed') });
    q.add(honest, { req: req(200), done: () => order.push('honest'), shed: () => order.push('shed') });
    for (let i = 0; i < 4; i++) {
      ex.waiting.shift()?.resolve(ANSWER);
      await flush();
    }
    // f0 was already running when the honest CREATE2 came; f1 had its turn queued before it.
    expect(order).toEqual(['f0', 'f1', 'honest', 'f2']);
    expect(q.length).toBe(96);
  });

  it('sheds heads that waited longer than the max delay, without running them', async () => {
    let t = 0;
    const ex = manual();
    const q = new OnionskinQueue(
      ex.execute,
      1,
      () => 1750,
      () => t,
    );
    const shed: number[] = [];
    const done: number[] = [];
    const ch = {};
    for (let i = 0; i < 5; i++)
      q.add(ch, { req: req(i), done: () => done.push(i), shed: () => shed.push(i) });
    t = 2000;
    ex.waiting.shift()?.resolve(ANSWER);
    await flush();
    expect(done).toEqual([0]);
    expect(shed).toEqual([1, 2, 3, 4]);
    expect(ex.waiting).toHaveLength(0);
    expect(q.length).toBe(0);
  });

  it('drops a closed channel’s onionskins and passes handshake failures on', async () => {
    const ex = manual();
    const q = new OnionskinQueue(ex.execute, 1, () => 10_000);
    const a = {};
    const events: string[] = [];
    q.add(a, {
      req: req(1),
      done: (r) => events.push(r instanceof Error ? 'error' : 'ok'),
      shed: () => events.push('shed'),
    });
    q.add(a, { req: req(2), done: () => events.push('ok2'), shed: () => events.push('shed2') });
    q.dropOwner(a);
    ex.waiting.shift()?.reject(new Error('bad handshake'));
    await flush();
    expect(events).toEqual(['shed2', 'error']);
  });
});
