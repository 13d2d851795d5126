// A stream that arrives before any path can be chosen (a consensus whose
// relays are listed but not yet Running, as a fresh testnet's first one is)
// or whose circuits fail to build (a relay refusing EXTEND2, DESTROY
// CONNECTFAILED) waits for a circuit, as C tor's AP_CONN_STATE_CIRCUIT_WAIT
// does, and is closed with TIMEOUT only at its SOCKS deadline; a
// destination no listed exit allows is still refused at once
// (router_exit_policy_all_nodes_reject). Path selection is the real one;
// only the circuit it would build is faked.
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chooseBuildPath } from '../../../services/client/build-path.js';
import { ShallotClient } from '../../../services/client/client.js';
import { ConnectError, type ConnectRequest } from '../../../services/client/connect.js';
import { connectReply } from '../../../services/client/connect-reply.js';
import { NetDir } from '../../../services/client/netdir.js';
import { DestroyReason } from '../../../services/core/cells.js';
import { ed25519Generate, randomBytes, x25519Generate } from '../../../services/core/crypto.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { DEFAULT_TESTNET_EXIT_POLICY, REJECT_ALL } from '../../../services/core/exit-policy.js';
import { SocksReply } from '../../../services/core/socks5.js';
import { CircuitError } from '../../../services/net/circuit-error.js';
import type { OriginCircuit } from '../../../services/net/origin-circuit.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { testConsensus, testRelay } from '../../helpers/fake-consensus.js';

const RUNNING = ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'];

function relay(i: number, flags: string[], exit = true): ConsensusRelay {
  return testRelay({
    nickname: `r${i}`,
    identity: ed25519Generate().public,
    ntorOnionKey: x25519Generate().public,
    address: `10.${i + 1}.0.1`,
    orPort: 9000 + i,
    flags: exit ? flags : flags.filter((f) => f !== 'Exit'),
    exitPolicy: exit ? DEFAULT_TESTNET_EXIT_POLICY : REJECT_ALL,
  });
}

function dirOf(relays: ConsensusRelay[]): NetDir {
  const now = Date.now();
  return new NetDir(
    testConsensus(relays, {
      validAfterMs: now,
      freshUntilMs: now + 60_000,
      validUntilMs: now + 180_000,
      knownFlags: RUNNING,
    }),
  );
}

/** Four relays listed, none Running yet: the first consensus of a fresh testnet. */
const notRunning = () => dirOf(Array.from({ length: 4 }, (_, i) => relay(i, ['Valid'])));
const running = () => dirOf(Array.from({ length: 4 }, (_, i) => relay(i, RUNNING)));

const clients: ShallotClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.stop();
});

/** A client that is never started (no SOCKS, no fetches): the test hands it its consensus. */
function client(): ShallotClient {
  const c = new ShallotClient(
    { logger: silentLogger, registry: new Registry() },
    { authorities: [{ url: 'http://127.0.0.1:1' }] as never, socksHost: '127.0.0.1', socksPort: null },
  );
  clients.push(c);
  return c;
}

/**
 * The SOCKS deadline of the tests that must not wait for it. "At once" is checked as
 * well under half of it: a stream that waited would take all of it, and a busy
 * machine's scheduling delay (which a bound of a second could not absorb) is far less.
 */
const LONG_MS = 20_000;

const request = (deadlineMs: number, port = 80): ConnectRequest => ({
  command: 1,
  host: '127.0.0.1',
  port,
  addressType: 'ipv4',
  isolationKey: 'k',
  deadline: performance.now() + deadlineMs,
});

describe('a stream waits for a path (C tor AP_CONN_STATE_CIRCUIT_WAIT)', () => {
  it('waits while no relay is Running and builds once a consensus lists Running relays', async () => {
    const c = client();
    c.circuits.setNetDir(notRunning());
    const paths: string[] = [];
    // The real path selection (core/path.ts) decides; once it finds a path, a
    // fake open circuit stands in for the build (10.x addresses are never dialled).
    vi.spyOn(c.circuits, 'exitCircuit').mockImplementation(async (host, port) => {
      const dir = c.circuits.dir as NetDir;
      try {
        chooseBuildPath({
          dir,
          req: { purpose: 'exit', exitHost: host, exitPort: port },
          guard: undefined,
          layer2: undefined,
          silent: new Set(),
          enforceSubnets: false,
          rng: randomBytes,
        });
      } catch (e) {
        paths.push('no path');
        throw e;
      }
      paths.push('path');
      return { openStream: async () => new PassThrough(), channel: {} } as unknown as OriginCircuit;
    });
    vi.spyOn(c.circuits, 'watchStream').mockImplementation((_circ, s) => s);
    const started = performance.now();
    const stream = c.connect(request(20_000));
    setTimeout(() => c.circuits.setNetDir(running()), 1_500);
    await expect(stream).resolves.toBeInstanceOf(PassThrough);
    // Tried, found no path, waited and tried again: not failed on the first try.
    expect(paths[0]).toBe('no path');
    expect(paths.at(-1)).toBe('path');
    expect(paths.length).toBeGreaterThanOrEqual(2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('closes the stream with TIMEOUT (SOCKS 0x06) at its deadline when no path ever appears', async () => {
    const c = client();
    c.circuits.setNetDir(notRunning());
    const started = performance.now();
    const e = await c.connect(request(2_500)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectError);
    expect((e as ConnectError).kind).toBe('timeout');
    expect((e as Error).message).toMatch(/no usable relay/);
    expect(connectReply(e).socks5).toBe(SocksReply.TTL_EXPIRED);
    // It waited for the deadline rather than giving up at once.
    expect(performance.now() - started).toBeGreaterThanOrEqual(2_000);
  });

  it('still refuses at once a port no listed exit allows (exit policy, SOCKS 0x02)', async () => {
    const c = client();
    c.circuits.setNetDir(dirOf(Array.from({ length: 4 }, (_, i) => relay(i, RUNNING, false))));
    const started = performance.now();
    const e = await c.connect(request(LONG_MS)).catch((x: unknown) => x);
    // A waiting stream would end in 'timeout' at its deadline, not in the exit policy's refusal.
    expect((e as ConnectError).kind).toBe('exit_policy');
    expect(connectReply(e).socks5).toBe(SocksReply.NOT_ALLOWED);
    expect(performance.now() - started).toBeLessThan(LONG_MS / 2);
  });

  // What a fresh testnet does for a few seconds: a relay still holding the
  // previous consensus refuses EXTEND2 to relays only the newest lists (relay
  // network-view.ts), so every build fails within milliseconds. C tor does
  // not fail the stream on a failed circuit: it stays in CIRCUIT_WAIT and
  // connection_ap_attach_pending launches another, until SocksTimeout.
  it('keeps launching circuits while builds fail, and opens the stream once one builds', async () => {
    const c = client();
    c.circuits.setNetDir(running());
    const failUntil = performance.now() + 1_500;
    let builds = 0;
    vi.spyOn(c.circuits, 'exitCircuit').mockImplementation(async () => {
      builds++;
      if (performance.now() < failUntil)
        throw new CircuitError(DestroyReason.CONNECTFAILED, 'refused EXTEND2');
      return { openStream: async () => new PassThrough(), channel: {} } as unknown as OriginCircuit;
    });
    vi.spyOn(c.circuits, 'watchStream').mockImplementation((_circ, s) => s);
    const started = performance.now();
    await expect(c.connect(request(20_000))).resolves.toBeInstanceOf(PassThrough);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_400);
    // Paced like connection_ap_attach_pending (once a second), not a tight loop of builds.
    expect(builds).toBeGreaterThanOrEqual(2);
    expect(builds).toBeLessThanOrEqual(4);
  });

  it('closes the stream with TIMEOUT (SOCKS 0x06) at its deadline when every build fails', async () => {
    const c = client();
    c.circuits.setNetDir(running());
    let builds = 0;
    vi.spyOn(c.circuits, 'exitCircuit').mockImplementation(async () => {
      builds++;
      throw new CircuitError(DestroyReason.CONNECTFAILED, 'refused EXTEND2');
    });
    const started = performance.now();
    const e = await c.connect(request(2_500)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectError);
    expect((e as ConnectError).kind).toBe('timeout');
    expect((e as Error).message).toMatch(/refused EXTEND2/);
    expect(connectReply(e).socks5).toBe(SocksReply.TTL_EXPIRED);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(builds).toBeGreaterThanOrEqual(2);
  });

  it('stops waiting at once when the client shuts down', async () => {
    const c = client();
    c.circuits.setNetDir(running());
    vi.spyOn(c.circuits, 'exitCircuit').mockRejectedValue(new CircuitError(DestroyReason.CONNECTFAILED, 'x'));
    const pending = c.connect(request(LONG_MS)).catch((x: unknown) => x);
    // Let it fail its first build and wait to launch the next; a stop at any point must end it.
    await new Promise((r) => setTimeout(r, 200));
    const stopped = performance.now();
    await c.stop();
    const e = await pending;
    expect(e).toBeInstanceOf(Error);
    expect(performance.now() - stopped).toBeLessThan(LONG_MS / 2);
  });
});

describe('a stream that arrives before the first consensus waits for it (C tor: no minimum dir info yet)', () => {
  /** The exit path finds a path in the real consensus, then a fake open circuit stands in for the build. */
  const fakeExitCircuits = (c: ShallotClient) => {
    vi.spyOn(c.circuits, 'exitCircuit').mockImplementation(
      async () => ({ openStream: async () => new PassThrough(), channel: {} }) as unknown as OriginCircuit,
    );
    vi.spyOn(c.circuits, 'watchStream').mockImplementation((_circ, s) => s);
  };

  it('an exit stream is served once the consensus arrives, not refused', async () => {
    const c = client();
    fakeExitCircuits(c);
    const started = performance.now();
    const stream = c.connect(request(20_000));
    setTimeout(() => c.circuits.setNetDir(running()), 1_500);
    await expect(stream).resolves.toBeInstanceOf(PassThrough);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('an onion stream reaches the onion connector only once there is a consensus', async () => {
    const c = client();
    let dirWhenCalled: NetDir | null = null;
    c.onion = async () => {
      dirWhenCalled = c.dir;
      return new PassThrough();
    };
    const stream = c.connect({ ...request(20_000), host: `${'a'.repeat(56)}.onion`, addressType: 'domain' });
    setTimeout(() => c.circuits.setNetDir(running()), 1_000);
    await expect(stream).resolves.toBeInstanceOf(PassThrough);
    expect(dirWhenCalled).not.toBeNull();
  });

  it('without a consensus by its deadline it is closed with TIMEOUT (SOCKS 0x06), not at once', async () => {
    const c = client();
    fakeExitCircuits(c);
    const started = performance.now();
    const e = await c.connect(request(2_000)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectError);
    expect((e as ConnectError).kind).toBe('timeout');
    expect((e as Error).message).toMatch(/bootstrapping/);
    expect(connectReply(e).socks5).toBe(SocksReply.TTL_EXPIRED);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
  });

  it('a client stopped while the stream waits fails it at once', async () => {
    const c = client();
    const pending = c.connect(request(LONG_MS)).catch((x: unknown) => x);
    const started = performance.now();
    await c.stop();
    const e = await pending;
    expect((e as ConnectError).kind).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(LONG_MS / 2);
  });
});
