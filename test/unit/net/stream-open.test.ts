// A stream the client opened (tor-spec §6.2) whose CONNECTED, DATA and END
// (tor-spec §6.3) arrive in one link read: a target that speaks first and
// closes. The opener resumes after CONNECTED only in a later microtask and
// the proxy splices the stream later still, so the cells of that one turn
// must wait in the stream for the reader, END included. Driven through a
// CircuitEdge with a fake EdgeIo: no sockets.
import { describe, expect, it } from 'vitest';
import { EndReason, type RelayMessage } from '../../../services/core/relay-cell.js';
import { CircuitEdge, type EdgeIo } from '../../../services/net/edge.js';

function fakeIo() {
  const sent: { streamId: number; msg: RelayMessage }[] = [];
  const violations: string[] = [];
  const io: EdgeIo = {
    send: (streamId, msg) => {
      sent.push({ streamId, msg });
    },
    lastSentDigest: () => new Uint8Array(20),
    lastReceivedDigest: () => new Uint8Array(20),
    linkWritable: () => true,
    protocolViolation: (why) => {
      violations.push(why);
    },
  };
  return { io, sent, violations };
}

/** Reads `s` to its end; resolves with the bytes, or rejects on 'error' or a close without 'end'. */
function readToEnd(s: NodeJS.ReadableStream & NodeJS.EventEmitter): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    s.on('error', reject);
    s.on('close', () => {
      if (!ended) reject(new Error(`closed without end after ${Buffer.concat(chunks).length} bytes`));
    });
  });
}

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('CONNECTED, DATA and END in one turn', () => {
  it('keeps the data and the end for a reader that attaches after the opener resumes', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.newStream();
    if (!s) throw new Error('no stream');
    // CONNECTED is left to the opener's waiter (false), which resumes in a later microtask.
    expect(edge.handle(s.streamId, { type: 'CONNECTED' })).toBe(false);
    edge.handle(s.streamId, { type: 'DATA', data: bytes(498, 1) });
    edge.handle(s.streamId, { type: 'DATA', data: bytes(4, 2) });
    edge.handle(s.streamId, { type: 'END', reason: EndReason.DONE });
    // The proxy answers SOCKS and pipes only after its own awaits and I/O.
    await new Promise((r) => setImmediate(r));
    expect(s.destroyed).toBe(false);
    const got = await readToEnd(s);
    expect([...got]).toEqual([...bytes(498, 1), ...bytes(4, 2)]);
    // END answers END (tor-spec §6.3), so the exit forgets its half-closed id.
    expect(f.sent.filter((x) => x.msg.type === 'END')).toEqual([
      { streamId: s.streamId, msg: { type: 'END', reason: EndReason.DONE } },
    ]);
    expect(f.violations).toEqual([]);
  });

  it('an END with an error reason in the same turn closes the stream quietly until a reader takes it', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.newStream();
    if (!s) throw new Error('no stream');
    // What origin-circuit.ts beginStream holds while it awaits CONNECTED.
    const errors: unknown[] = [];
    const beforeCaller = (e: unknown) => errors.push(e);
    s.on('error', beforeCaller);
    edge.handle(s.streamId, { type: 'CONNECTED' });
    edge.handle(s.streamId, { type: 'DATA', data: bytes(10, 4) });
    edge.handle(s.streamId, { type: 'END', reason: EndReason.CONNRESET });
    await new Promise((r) => setImmediate(r));
    s.off('error', beforeCaller);
    expect(s.destroyed).toBe(true);
    expect(errors).toHaveLength(1);
    expect(s.endReason).toBe(EndReason.CONNRESET);
    // Answered with END all the same: the stream was open.
    expect(f.sent.filter((x) => x.msg.type === 'END')).toHaveLength(1);
  });

  it('an END in place of CONNECTED still refuses the BEGIN: no answer, no stream', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.newStream();
    if (!s) throw new Error('no stream');
    edge.handle(s.streamId, { type: 'END', reason: EndReason.EXITPOLICY });
    await new Promise((r) => setImmediate(r));
    expect(s.destroyed).toBe(true);
    expect(f.sent.filter((x) => x.msg.type === 'END')).toEqual([]);
    expect(edge.streamCount).toBe(0);
  });

  it('a second CONNECTED for an open stream changes nothing', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(7);
    if (!s) throw new Error('no stream');
    edge.handle(7, { type: 'CONNECTED' });
    edge.handle(7, { type: 'DATA', data: bytes(10, 3) });
    edge.handle(7, { type: 'END', reason: EndReason.DONE });
    expect([...(await readToEnd(s))]).toEqual([...bytes(10, 3)]);
    expect(f.violations).toEqual([]);
  });
});
