// Circuit and stream SENDME windows at an edge (tor-spec §7.3-7.4), driven
// through a fake EdgeIo: no sockets, every cell the edge sends is recorded.
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import { randomBytes } from '../../../services/core/crypto.js';
import { InvalidError } from '../../../services/core/errors.js';
import {
  CIRCWINDOW_INCREMENT,
  CIRCWINDOW_START,
  EndReason,
  type RelayMessage,
  STREAMWINDOW_INCREMENT,
  STREAMWINDOW_START,
} from '../../../services/core/relay-cell.js';
import {
  CircuitEdge,
  type EdgeIo,
  encodeRelayCell,
  encodeRelayCellInto,
  SENDME_ACCEPT_MIN_VERSION_DEFAULT,
  sendmeAcceptMinVersion,
} from '../../../services/net/edge.js';

/** A fake circuit: the "digest" after n cells is n encoded in 20 bytes. */
function fakeIo() {
  const sent: { streamId: number; msg: RelayMessage }[] = [];
  const violations: string[] = [];
  let received = 0;
  const digestOf = (n: number) => {
    const d = new Uint8Array(20);
    new DataView(d.buffer).setUint32(0, n);
    return d;
  };
  const io: EdgeIo = {
    send: (streamId, msg) => {
      sent.push({ streamId, msg });
    },
    lastSentDigest: () => digestOf(sent.length),
    lastReceivedDigest: () => digestOf(1_000_000 + received),
    linkWritable: () => true,
    protocolViolation: (why) => {
      violations.push(why);
    },
  };
  return {
    io,
    sent,
    violations,
    receive: () => {
      received += 1;
    },
    digestOf,
  };
}

const data = (n: number) => new Uint8Array(n).fill(0x61);
const dataCells = (sent: { msg: RelayMessage }[]) => sent.filter((s) => s.msg.type === 'DATA').length;

describe('circuit package window', () => {
  it('stops at 1000 DATA cells and resumes by exactly 100 per authenticated SENDME', () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 16);
    // Three streams, each with a 500-cell window: only the circuit window can stop them at 1000.
    const streams = [1, 2, 3].map(() => edge.newStream());
    for (const s of streams) {
      expect(s).not.toBeNull();
      s?.write(data(498 * 600));
    }
    expect(dataCells(f.sent)).toBe(CIRCWINDOW_START);
    // The digest recorded when the 100th cell went out is the one the SENDME must carry.
    const hundredth = f.sent.filter((s) => s.msg.type === 'DATA')[CIRCWINDOW_INCREMENT - 1];
    const idx = f.sent.indexOf(hundredth as (typeof f.sent)[number]);
    expect(edge.handle(0, { type: 'SENDME', version: 1, digest: f.digestOf(idx + 1) })).toBe(true);
    expect(f.violations).toEqual([]);
    expect(dataCells(f.sent)).toBe(CIRCWINDOW_START + CIRCWINDOW_INCREMENT);
  });

  it('closes the circuit on a SENDME with the wrong digest or none expected', () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    edge.handle(0, { type: 'SENDME', version: 1, digest: new Uint8Array(20) });
    expect(f.violations).toHaveLength(1);
    const s = edge.newStream();
    s?.write(data(498 * 150));
    edge.handle(0, { type: 'SENDME', version: 1, digest: new Uint8Array(20).fill(9) });
    expect(f.violations).toHaveLength(2);
  });
});

describe('SENDME versions (prop 289, sendme_accept_min_version)', () => {
  /** An edge that sent 100 DATA cells, so exactly one circuit SENDME is due. */
  function oneSendmeDue(minVersion?: number) {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4, minVersion);
    edge.newStream()?.write(data(498 * CIRCWINDOW_INCREMENT));
    expect(dataCells(f.sent)).toBe(CIRCWINDOW_INCREMENT);
    return { f, edge };
  }

  it('closes the circuit on a v0 circuit SENDME even when one is due (default min version 1)', () => {
    expect(sendmeAcceptMinVersion(undefined)).toBe(SENDME_ACCEPT_MIN_VERSION_DEFAULT);
    expect(SENDME_ACCEPT_MIN_VERSION_DEFAULT).toBe(1);
    const { f, edge } = oneSendmeDue();
    expect(edge.handle(0, { type: 'SENDME', version: 0 })).toBe(true);
    expect(f.violations).toEqual(['circuit SENDME version 0 not accepted']);
  });

  it('takes the same v0 SENDME when the consensus lowers the minimum to 0 (the check is the version)', () => {
    const { f, edge } = oneSendmeDue(sendmeAcceptMinVersion({ sendme_accept_min_version: 0 }));
    edge.handle(0, { type: 'SENDME', version: 0 });
    expect(f.violations).toEqual([]);
    // It settled the one SENDME that was due: another finds none due.
    edge.handle(0, { type: 'SENDME', version: 0 });
    expect(f.violations).toEqual(['unexpected or unauthenticated circuit SENDME']);
  });

  it('refuses a version newer than it can check, and clamps the param to [0, 255]', () => {
    const { f, edge } = oneSendmeDue();
    edge.handle(0, { type: 'SENDME', version: 2, digest: new Uint8Array(20) });
    expect(f.violations).toEqual(['circuit SENDME version 2 not accepted']);
    expect(sendmeAcceptMinVersion({ sendme_accept_min_version: 300 })).toBe(255);
    expect(sendmeAcceptMinVersion({ sendme_accept_min_version: -1 })).toBe(0);
  });

  it('a v1 SENDME with the right digest is still taken, and stream SENDMEs stay v0', () => {
    const { f, edge } = oneSendmeDue();
    const hundredth = f.sent.filter((x) => x.msg.type === 'DATA')[CIRCWINDOW_INCREMENT - 1];
    const idx = f.sent.indexOf(hundredth as (typeof f.sent)[number]);
    edge.handle(0, { type: 'SENDME', version: 1, digest: f.digestOf(idx + 1) });
    // Stream-level SENDMEs are unauthenticated in Tor too: a v0 on stream 1 is flow control, not a violation.
    edge.handle(1, { type: 'SENDME', version: 0 });
    expect(f.violations).toEqual([]);
  });
});

describe('deliver windows', () => {
  it('answers every 100 DATA cells with a SENDME v1 carrying the running digest', () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(5);
    s?.on('data', () => {});
    for (let i = 0; i < 250; i++) {
      f.receive();
      edge.handle(5, { type: 'DATA', data: data(10) });
    }
    const circSendmes = f.sent.filter((x) => x.streamId === 0 && x.msg.type === 'SENDME');
    expect(circSendmes).toHaveLength(2);
    const first = circSendmes[0]?.msg;
    expect(first?.type === 'SENDME' && first.version).toBe(1);
    expect(first?.type === 'SENDME' && first.digest).toEqual(f.digestOf(1_000_000 + 100));
  });

  it('a peer that overruns an unread stream window closes the circuit', () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(7);
    s?.pause();
    for (let i = 0; i < STREAMWINDOW_START; i++) edge.handle(7, { type: 'DATA', data: data(498) });
    expect(f.violations).toEqual([]);
    // The reader took nothing: no stream SENDME went out.
    expect(f.sent.filter((x) => x.streamId === 7 && x.msg.type === 'SENDME')).toHaveLength(0);
    edge.handle(7, { type: 'DATA', data: data(498) });
    expect(f.violations).toHaveLength(1);
  });

  it('a reader resuming after a pause reopens the stream window', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(9);
    if (!s) throw new Error('no stream');
    s.pause();
    for (let i = 0; i < STREAMWINDOW_START; i++) edge.handle(9, { type: 'DATA', data: data(498) });
    let got = 0;
    s.on('data', (c: Buffer) => {
      got += c.length;
    });
    s.resume();
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(STREAMWINDOW_START * 498);
    const sendmes = f.sent.filter((x) => x.streamId === 9 && x.msg.type === 'SENDME').length;
    expect(sendmes).toBe(STREAMWINDOW_START / STREAMWINDOW_INCREMENT);
    // The window is open again: 500 more cells are accepted.
    for (let i = 0; i < STREAMWINDOW_START; i++) edge.handle(9, { type: 'DATA', data: data(1) });
    expect(f.violations).toEqual([]);
  });
});

describe('delivery to the reader', () => {
  it('hands the DATA cells of one turn to the reader as one chunk, in order', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(3);
    if (!s) throw new Error('no stream');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    for (let i = 0; i < 5; i++) edge.handle(3, { type: 'DATA', data: new Uint8Array(498).fill(i) });
    expect(chunks).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(chunks.map((c) => c.length)).toEqual([5 * 498]);
    expect([...new Set(chunks[0])]).toEqual([0, 1, 2, 3, 4]);
    expect(chunks[0]?.[498 * 3]).toBe(3);
  });

  it('data received before END reaches the reader before the end of the stream', async () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(4);
    if (!s) throw new Error('no stream');
    const events: string[] = [];
    s.on('data', (c: Buffer) => events.push(`data ${c.length}`));
    s.on('end', () => events.push('end'));
    edge.handle(4, { type: 'DATA', data: data(100) });
    edge.handle(4, { type: 'DATA', data: data(200) });
    edge.handle(4, { type: 'END', reason: 6 });
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['data 300', 'end']);
  });

  it('cells waiting for the turn to end count against the stream window like queued ones', () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 4);
    const s = edge.acceptStream(8);
    s?.on('data', () => {});
    // 60 cells in one turn: nothing has reached the reader, so no stream SENDME may go out yet.
    for (let i = 0; i < 60; i++) edge.handle(8, { type: 'DATA', data: data(498) });
    expect(f.sent.filter((x) => x.streamId === 8 && x.msg.type === 'SENDME')).toHaveLength(0);
  });
});

describe('stream limits', () => {
  it('refuses streams past the per-circuit limit, and a taken or zero id', () => {
    const f = fakeIo();
    const edge = new CircuitEdge(f.io, 2);
    expect(edge.acceptStream(0)).toBeNull();
    expect(edge.acceptStream(1)).not.toBeNull();
    expect(edge.acceptStream(1)).toBeNull();
    expect(edge.newStream()).not.toBeNull();
    expect(edge.newStream()).toBeNull();
    expect(edge.acceptStream(3)).toBeNull();
    edge.handle(1, { type: 'END', reason: 6 });
    expect(edge.acceptStream(3)).not.toBeNull();
  });
});

describe('streamsFull', () => {
  it('says a new stream would be refused exactly when the per-circuit cap is reached', () => {
    const edge = new CircuitEdge(fakeIo().io, 2);
    expect(edge.streamsFull).toBe(false);
    edge.acceptStream(1);
    expect(edge.streamsFull).toBe(false);
    edge.acceptStream(2);
    expect(edge.streamsFull).toBe(true);
    expect(edge.acceptStream(3)).toBeNull();
    edge.streamClosed(1);
    expect(edge.streamsFull).toBe(false);
  });
});

describe('send-blocked time (issue 16: does flow control idle the path?)', () => {
  it('reports each wait once, with what held the sender: stream window, circuit window, link', async () => {
    const f = fakeIo();
    let writable = true;
    f.io.linkWritable = () => writable;
    const waits: { reason: string; seconds: number }[] = [];
    const edge = new CircuitEdge(f.io, 4, undefined, (reason, seconds) => waits.push({ reason, seconds }));
    // One stream: its own 500-cell window stops it first.
    const a = edge.acceptStream(1);
    a?.write(data(498 * 520));
    expect(dataCells(f.sent)).toBe(STREAMWINDOW_START);
    await new Promise((r) => setTimeout(r, 20));
    expect(waits).toEqual([]);
    edge.handle(1, { type: 'SENDME', version: 0 });
    expect(waits).toHaveLength(1);
    expect(waits[0]?.reason).toBe('stream-window');
    expect(waits[0]?.seconds).toBeGreaterThanOrEqual(0.015);
    // A second stream fills the circuit window (1000 cells) and waits for the circuit.
    const b = edge.acceptStream(3);
    b?.write(data(498 * 500));
    expect(dataCells(f.sent)).toBe(CIRCWINDOW_START);
    const dataIdx = f.sent.flatMap((s, i) => (s.msg.type === 'DATA' ? [i] : []));
    edge.handle(0, {
      type: 'SENDME',
      version: 1,
      digest: f.digestOf((dataIdx[CIRCWINDOW_INCREMENT - 1] ?? 0) + 1),
    });
    expect(waits.map((w) => w.reason)).toEqual(['stream-window', 'circuit-window']);
    // A congested link: the next write waits for it, and destroying the stream ends the wait.
    writable = false;
    const c = edge.acceptStream(5);
    c?.write(data(10));
    c?.destroy();
    expect(waits.map((w) => w.reason)).toEqual(['stream-window', 'circuit-window', 'link']);
    expect(f.violations).toEqual([]);
  });
});

describe('encodeRelayCellInto (an exit encodes into the link batch)', () => {
  const rng = (n: number) => new Uint8Array(n).fill(0x5a);

  it('writes the bytes encodeRelayCell makes, into the body reserved', () => {
    for (const msg of [
      { type: 'DATA', data: randomBytes(498) },
      { type: 'DATA', data: randomBytes(17) },
      { type: 'END', reason: EndReason.DONE },
      { type: 'SENDME', version: 0 },
    ] as RelayMessage[]) {
      const slot = new Uint8Array(509).fill(0xee);
      const out = encodeRelayCellInto(9, msg, rng, () => slot);
      expect(out).toBe(slot);
      expect(toHex(slot)).toBe(toHex(encodeRelayCell(9, msg, rng)));
    }
  });

  it('checks the message before it reserves: a reserved body is always written whole', () => {
    let reserved = 0;
    const reserve = () => {
      reserved += 1;
      return new Uint8Array(509);
    };
    expect(() => encodeRelayCellInto(1, { type: 'DATA', data: new Uint8Array(499) }, rng, reserve)).toThrow(
      InvalidError,
    );
    expect(() =>
      encodeRelayCellInto(1, { type: 'BEGIN', target: 'x'.repeat(600), flags: 0 }, rng, reserve),
    ).toThrow(InvalidError);
    expect(reserved).toBe(0);
    expect(encodeRelayCellInto(1, { type: 'DATA', data: new Uint8Array(3) }, rng, () => null)).toBeNull();
  });
});
