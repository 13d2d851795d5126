// The per-client DoS defences (C tor dos.c) with a fake clock: connection
// limits, the circuit-creation bucket and its mark, per-connection keys for
// the relay's own (shared loopback) address, consensus params and sweeping.
import { describe, expect, it } from 'vitest';
import {
  CLIENT_DOS_DEFAULTS,
  ClientDos,
  clientDosParams,
  IDLE_FORGET_MS,
} from '../../../services/relay/client-dos.js';

const P = CLIENT_DOS_DEFAULTS;

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('ClientDos', () => {
  it('closes the connection over DoSConnectionMaxConcurrentCount from one address', () => {
    const c = clock();
    const dos = new ClientDos('127.0.0.1', c.now, () => 0);
    const p = { ...P, connBurst: 1000 };
    const verdicts = Array.from({ length: 51 }, () => dos.onConnection('10.0.0.9', p).verdict);
    expect(verdicts.slice(0, 50).every((v) => v === 'allow')).toBe(true);
    expect(verdicts[50]).toBe('close-concurrent');
  });

  it('marks an address that empties the connect-rate bucket, for the defence period', () => {
    const c = clock();
    const dos = new ClientDos('127.0.0.1', c.now, () => 0);
    const seen: string[] = [];
    for (let i = 0; i < 41; i++) {
      const { verdict, conn } = dos.onConnection('10.0.0.9', P);
      seen.push(verdict);
      conn.release();
    }
    expect(seen.filter((v) => v === 'allow')).toHaveLength(40);
    expect(seen[40]).toBe('close-rate');
    c.advance(60_000);
    expect(dos.onConnection('10.0.0.9', P).verdict).toBe('close-rate');
    c.advance(P.connDefenseTimeMs);
    expect(dos.onConnection('10.0.0.9', P).verdict).toBe('allow');
    // Another address is not affected.
    expect(dos.onConnection('10.0.0.10', P).verdict).toBe('allow');
  });

  it('charges CREATE2 only with DoSCircuitCreationMinConnections open, then refuses once the burst is spent', () => {
    const c = clock();
    const dos = new ClientDos('127.0.0.1', c.now, () => 0);
    const conns = [dos.onConnection('10.0.0.9', P).conn, dos.onConnection('10.0.0.9', P).conn];
    for (let i = 0; i < 500; i++) expect(dos.onCreate('10.0.0.9', P)).toBe('allow');
    conns.push(dos.onConnection('10.0.0.9', P).conn);
    const verdicts = Array.from({ length: 91 }, () => dos.onCreate('10.0.0.9', P));
    expect(verdicts.slice(0, 90).every((v) => v === 'allow')).toBe(true);
    expect(verdicts[90]).toBe('refuse');
    // Marked: refused even after the bucket refilled, until the defence period ends.
    c.advance(60_000);
    expect(dos.onCreate('10.0.0.9', P)).toBe('refuse');
    c.advance(P.circuitDefenseTimeMs);
    expect(dos.onCreate('10.0.0.9', P)).toBe('allow');
  });

  it('keys each connection from its own address apart (every node of a loopback testnet shares it)', () => {
    const c = clock();
    const dos = new ClientDos('127.0.0.1', c.now, () => 0);
    const keys = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { verdict, conn } = dos.onConnection('127.0.0.1', P);
      expect(verdict).toBe('allow');
      keys.add(conn.key);
    }
    expect(keys.size).toBe(200);
    // Another loopback address is an address like any other.
    expect(dos.keyFor('127.0.0.66')).toBe('127.0.0.66');
    expect(dos.keyFor('::ffff:10.1.2.3')).toBe('10.1.2.3');
  });

  it('forgets idle addresses on sweep but keeps marked ones', () => {
    const c = clock();
    const dos = new ClientDos('127.0.0.1', c.now, () => 0);
    dos.onConnection('10.0.0.1', P).conn.release();
    for (let i = 0; i < 41; i++) dos.onConnection('10.0.0.2', P).conn.release();
    expect(dos.trackedClients).toBe(2);
    c.advance(IDLE_FORGET_MS + 1);
    dos.sweep();
    expect(dos.trackedClients).toBe(1);
  });

  it('reads Tor-named consensus params, clamping out-of-range values', () => {
    const p = clientDosParams({
      DoSCircuitCreationBurst: 5,
      DoSCircuitCreationEnabled: 0,
      DoSConnectionMaxConcurrentCount: 0,
      DoSConnectionConnectDefenseTimePeriod: 60,
    });
    expect(p.circuitBurst).toBe(5);
    expect(p.circuitEnabled).toBe(false);
    // Out of range is clamped to the bound, as C tor does.
    expect(p.connMaxConcurrent).toBe(1);
    expect(p.connDefenseTimeMs).toBe(60_000);
    const off = new ClientDos(
      '127.0.0.1',
      () => 0,
      () => 0,
    );
    const offP = { ...P, connEnabled: false, connMaxConcurrent: 1 };
    off.onConnection('10.0.0.1', offP);
    expect(off.onConnection('10.0.0.1', offP).verdict).toBe('allow');
  });
});
