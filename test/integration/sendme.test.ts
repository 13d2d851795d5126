// Circuit-level SENDME v1 enforced in both directions (prop 289, C tor's
// sendme_accept_min_version = 1 in today's consensus), over real wss links
// between in-process relays on 127.0.0.1:
// - at the exit: a client withholds its circuit SENDMEs until the exit's
//   window is spent; the real (v1) one reopens it, a v0 in its place closes
//   the circuit with PROTOCOL;
// - at the client: an exit that answers uploads with v0 circuit SENDMEs
//   gets its circuit closed by the client, while an honest exit's v1 ones
//   keep an upload of the same size flowing.
import * as net from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestroyReason, destroyReasonName } from '../../services/core/cells.js';
import { randomBytes } from '../../services/core/crypto.js';
import type { RelayMessage } from '../../services/core/relay-cell.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import type { OrCircuit } from '../../services/net/or-circuit.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { Relay } from '../../services/relay/relay.js';
import { countDataCells } from '../helpers/circuit-taps.js';
import { buildCircuit, startLocalRelay } from '../helpers/relays.js';
import { startBlobServer, type TestServer } from '../helpers/servers.js';

const relays: Relay[] = [];
const registry = new Registry();
const pool = new ChannelPool({ keys: null, tls: true, dialTimeoutMs: 5_000 });
let blob: TestServer;
let sink: net.Server;
let sinkPort = 0;
let sinkBytes = 0;

/** The exit's circuits, for the white-box "hostile exit" case only. */
const exitCircuits = (r: Relay) => (r as unknown as { circuits: Set<OrCircuit> }).circuits;

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Circuits the exit closed with PROTOCOL (shallot_relay_destroy_total): how the refusal is counted. */
async function exitProtocolCloses(): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'shallot_relay_destroy_total');
  const v = m?.values.find(
    (x) =>
      x.labels.relay === relays[relays.length - 1]?.nickname &&
      x.labels.reason === destroyReasonName(DestroyReason.PROTOCOL),
  );
  return Number(v?.value ?? 0);
}

const destroyedOf = (circ: OriginCircuit) =>
  new Promise<{ reason: number; remote: boolean }>((resolve) => circ.once('destroyed', resolve));

beforeAll(async () => {
  blob = await startBlobServer(randomBytes(2 * 1024 * 1024));
  sink = net.createServer((s) => {
    s.on('data', (c: Buffer) => {
      sinkBytes += c.length;
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  sinkPort = (sink.address() as net.AddressInfo).port;
  for (let i = 0; i < 2; i++) relays.push(await startLocalRelay(`s${i}`, { registry }));
});

afterAll(async () => {
  pool.closeAll();
  await Promise.all(relays.map((r) => r.stop()));
  await blob?.close();
  // Without a server (beforeAll failed first) `sink?.close(r)` never calls r: the hook would hang.
  if (sink) await new Promise((r) => sink.close(r));
});

describe('SENDME v1 enforced', () => {
  it('the exit takes the withheld v1 circuit SENDME and closes the circuit on a v0 one', async () => {
    const circ = await buildCircuit(pool, relays);
    const edgeHop = circ.length - 1;
    const withheld: RelayMessage[] = [];
    const send = circ.sendRelay.bind(circ);
    circ.sendRelay = (hop: number, sid: number, msg: RelayMessage, early?: boolean) => {
      if (msg.type === 'SENDME' && sid === 0) {
        withheld.push(msg);
        return;
      }
      send(hop, sid, msg, early);
    };
    const cells = countDataCells(circ);
    // Three streams, so only the circuit window (1000) can stop the exit.
    for (let i = 0; i < 3; i++) {
      const s = await circ.openStream({ host: '127.0.0.1', port: blob.port }, 5_000);
      s.on('data', () => {});
      s.on('error', () => {});
    }
    await until('the circuit window to be spent', () => cells() >= 1000);
    const first = withheld[0];
    expect(first?.type === 'SENDME' && first.version).toBe(1);
    // The real v1 SENDME (for the 100th cell) opens the window by 100.
    send(edgeHop, 0, first as RelayMessage);
    await until('100 more cells after the v1 SENDME', () => cells() >= 1100);
    expect(circ.isOpen).toBe(true);
    // The next one is due too, but comes as v0: the exit closes the circuit.
    const closesBefore = await exitProtocolCloses();
    const destroyed = destroyedOf(circ);
    send(edgeHop, 0, { type: 'SENDME', version: 0 });
    const d = await destroyed;
    expect(d.reason).toBe(DestroyReason.PROTOCOL);
    expect(d.remote).toBe(true);
    expect(await exitProtocolCloses()).toBe(closesBefore + 1);
  });

  it('a client closes the circuit on an exit’s v0 circuit SENDME, and uploads through an honest exit', async () => {
    const exit = relays[relays.length - 1] as Relay;
    const upload = async (hostile: boolean) => {
      const before = new Set(exitCircuits(exit));
      const circ = await buildCircuit(pool, relays);
      const atExit = [...exitCircuits(exit)].find((x) => !before.has(x));
      if (!atExit) throw new Error('the exit has no new circuit');
      if (hostile) {
        // A hostile exit: its circuit SENDMEs go out as v0.
        const orig = atExit.sendBackward.bind(atExit);
        atExit.sendBackward = (sid: number, msg: RelayMessage) =>
          orig(sid, msg.type === 'SENDME' && sid === 0 ? { type: 'SENDME', version: 0 } : msg);
      }
      const destroyed = destroyedOf(circ);
      const s = await circ.openStream({ host: '127.0.0.1', port: sinkPort }, 5_000);
      s.on('error', () => {});
      // 300 cells: the exit owes the client three circuit SENDMEs.
      const start = sinkBytes;
      s.write(randomBytes(498 * 300));
      return { circ, destroyed, start };
    };

    const honest = await upload(false);
    await until('the honest upload to arrive', () => sinkBytes - honest.start >= 498 * 300);
    expect(honest.circ.isOpen).toBe(true);
    honest.circ.destroy();

    const hostile = await upload(true);
    const d = await hostile.destroyed;
    expect(d.reason).toBe(DestroyReason.PROTOCOL);
    expect(d.remote).toBe(false);
  });
});
