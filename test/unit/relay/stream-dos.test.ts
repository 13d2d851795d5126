// The exit's stream-creation defences, without sockets: the DoSStreamCreation
// token bucket per circuit (relay/stream-dos.ts) and the process-wide exit
// socket cap with its reserve for light circuits (relay/exit-sockets.ts).
import { describe, expect, it } from 'vitest';
import {
  ExitSockets,
  exitSocketLimit,
  fdLimit,
  LIGHT_CIRCUIT_STREAMS,
} from '../../../services/relay/exit-sockets.js';
import { STREAM_DOS_DEFAULTS, StreamDos, streamDosParams } from '../../../services/relay/stream-dos.js';

describe('DoSStreamCreation parameters', () => {
  it("defaults to C tor's rate 100, burst 300, refuse; enabled unless the consensus says 0", () => {
    expect(streamDosParams({})).toEqual({ enabled: true, rate: 100, burst: 300, defenseType: 2 });
    expect(streamDosParams({ DoSStreamCreationEnabled: 0 }).enabled).toBe(false);
  });

  it('takes consensus values within range and clamps them outside it (C tor networkstatus_get_param)', () => {
    const p = streamDosParams({
      DoSStreamCreationRate: 5,
      DoSStreamCreationBurst: 10,
      DoSStreamCreationDefenseType: 3,
    });
    expect(p).toMatchObject({ rate: 5, burst: 10, defenseType: 3 });
    const bad = streamDosParams({ DoSStreamCreationRate: 0, DoSStreamCreationDefenseType: 4 });
    expect(bad).toMatchObject({ rate: 1, defenseType: 3 });
    expect(streamDosParams({ DoSStreamCreationRate: 1.5 }).rate).toBe(STREAM_DOS_DEFAULTS.rate);
  });
});

describe('StreamDos: one token bucket per circuit', () => {
  const p = streamDosParams({ DoSStreamCreationRate: 2, DoSStreamCreationBurst: 3 });

  it('allows the burst, refuses the next, and refills at the rate', () => {
    let now = 1_000_000;
    const dos = new StreamDos(() => now);
    const circ = {};
    expect([1, 2, 3, 4].map(() => dos.onBegin(circ, p))).toEqual(['allow', 'allow', 'allow', 'refuse']);
    now += 500; // 2/s: one token back
    expect(dos.onBegin(circ, p)).toBe('allow');
    expect(dos.onBegin(circ, p)).toBe('refuse');
  });

  it('keeps circuits apart: one circuit out of tokens does not touch another', () => {
    const dos = new StreamDos(() => 0);
    const greedy = {};
    for (let i = 0; i < 3; i++) dos.onBegin(greedy, p);
    expect(dos.onBegin(greedy, p)).toBe('refuse');
    expect(dos.onBegin({}, p)).toBe('allow');
  });

  it('applies the defence type: 1 lets it through, 3 closes the circuit; disabled allows all', () => {
    const dos = new StreamDos(() => 0);
    const none = { ...p, burst: 1, defenseType: 1 as const };
    const close = { ...p, burst: 1, defenseType: 3 as const };
    const a = {};
    const b = {};
    dos.onBegin(a, none);
    expect(dos.onBegin(a, none)).toBe('allow');
    dos.onBegin(b, close);
    expect(dos.onBegin(b, close)).toBe('close');
    const off = { ...p, enabled: false, burst: 1 };
    const c = {};
    expect([1, 2, 3].map(() => dos.onBegin(c, off))).toEqual(['allow', 'allow', 'allow']);
  });
});

describe('ExitSockets: the process-wide cap', () => {
  it("is 3/4 of C tor's ConnLimit_ (descriptors less 32) and reads this process's limit", () => {
    expect(exitSocketLimit(1024)).toBe(744);
    expect(exitSocketLimit(20_000)).toBe(14_976);
    expect(exitSocketLimit(10)).toBe(1);
    expect(fdLimit()).toBeGreaterThan(0);
  });

  it('refuses heavy circuits at the cap less the reserve, light circuits only at the cap', () => {
    const s = new ExitSockets(80); // reserve 10
    const heavy = {};
    let taken = 0;
    while (s.tryTake(heavy)) taken++;
    expect(taken).toBe(70);
    // A circuit with fewer than LIGHT_CIRCUIT_STREAMS sockets still gets one of the reserve.
    const lights = Array.from({ length: 3 }, () => ({}));
    for (const l of lights) for (let i = 0; i < LIGHT_CIRCUIT_STREAMS - 1; i++) s.tryTake(l);
    expect(s.inUse).toBe(80);
    expect(s.tryTake({})).toBe(false);
    s.release(heavy);
    expect(s.tryTake(heavy)).toBe(false); // the freed slot is in the reserve now
    expect(s.tryTake({})).toBe(true);
  });

  it('releases only what a circuit holds', () => {
    const s = new ExitSockets(4);
    const a = {};
    expect(s.tryTake(a)).toBe(true);
    s.release(a);
    s.release(a);
    s.release({});
    expect(s.inUse).toBe(0);
  });
});
