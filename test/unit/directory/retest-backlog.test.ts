// A re-test that never got a slot before the round's deadline is no test
// (issue 17): at 2,000 relays on a loaded host, relays' idle-channel
// timeouts closed the authorities' held probe channels by the thousand,
// each round queued hundreds of re-dials behind 16 slots, and the relays
// still waiting at the deadline were counted as timeouts, two rounds
// running, and lost Running. C tor records only tests that ran
// (dirserv_orconn_tls_done moves last_reachable forward, nothing moves it
// back). A test that did start and has not finished still counts as a
// timeout, and a waiting re-test is shared, never queued twice.
// A relay's test of a new descriptor and its re-test overlap (issue 17):
// one test per relay and address, shared by both kinds; whether a re-test
// started is its own test's, never changed by a test of the relay at
// another address (reachability.ts header); and a relay that moves while
// its re-test runs is not judged by the address it left (descriptors.ts
// reprobe; C tor dirserv_orconn_tls_done credits only the address its
// descriptor names).
import net from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import { signRelayDescriptor } from '../../../services/core/dir/descriptor.js';
import { DescriptorStore } from '../../../services/directory/descriptors.js';
import {
  type ProbeResult,
  type ProbeTarget,
  ReachabilityTester,
} from '../../../services/directory/reachability.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { descriptor, hexOf, NOW, seedOf } from '../../helpers/dir-documents.js';

type Mode = 'up' | 'queued' | 'running';

/** Our own scheduling logic under test: each relay's re-test is up, waits for a slot forever, or runs forever. */
class ScriptedTester extends ReachabilityTester {
  readonly mode = new Map<string, Mode>();
  override async probe(t: ProbeTarget, listed = false): Promise<ProbeResult> {
    const m = listed ? (this.mode.get(toHex(t.identity)) ?? 'up') : 'up';
    return m === 'up' ? 'up' : new Promise<ProbeResult>(() => {});
  }
  override isQueued(t: ProbeTarget): boolean {
    return this.mode.get(toHex(t.identity)) === 'queued';
  }
}

describe('re-tests still waiting for a slot at the deadline', () => {
  it('are not failures; re-tests that started and did not finish are', async () => {
    const store = new DescriptorStore({
      log: silentLogger,
      metrics: metricsFor(new Registry()).directory,
      name: 'a1',
      now: () => NOW,
      opts: { votingIntervalSec: 5, testnet: true, measureBandwidth: false },
      intervalMs: 5_000,
      authorityAddresses: new Set(),
    });
    const tester = new ScriptedTester({ timeoutMs: 1_000, concurrency: 4 });
    store.open(tester);
    for (const n of [1, 2, 3, 4, 5]) {
      store.accept(signRelayDescriptor(descriptor(n, { address: `127.0.0.${n}` }), seedOf(n)));
    }
    const running = async () => {
      const vote = await store.voteRelays(30);
      return new Set(
        (vote?.relays ?? []).filter((r) => r.flags.includes('Running')).map((r) => toHex(r.identity)),
      );
    };
    // Admission tests run in the background; wait (bounded) until all five are voted Running.
    const deadline = Date.now() + 10_000;
    let first = await running();
    while (first.size < 5 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      first = await running();
    }
    expect(first.size).toBe(5);
    tester.mode.set(hexOf(4), 'queued');
    tester.mode.set(hexOf(5), 'running');
    // Two rounds: FAILED_ROUNDS_TO_DROP trusted failures (1 of 4 tested each round).
    await running();
    const after = await running();
    expect(after.has(hexOf(4))).toBe(true);
    expect(after.has(hexOf(5))).toBe(false);
    for (const n of [1, 2, 3]) expect(after.has(hexOf(n))).toBe(true);
    store.close();
  });
});

/** Probes of gated addresses wait until the test settles them (by kind and address); others are up at once. */
class GatedTester extends ReachabilityTester {
  readonly gated = new Set<string>();
  readonly gates = new Map<string, (r: ProbeResult) => void>();
  override async probe(t: ProbeTarget, listed = false): Promise<ProbeResult> {
    if (!this.gated.has(t.address)) return 'up';
    return new Promise((r) => this.gates.set(`${listed ? 'retest' : 'new'}@${t.address}`, r));
  }
  override isQueued(): boolean {
    return false;
  }
}

describe('a relay that moves while its re-test runs', () => {
  it('is not judged by the address it left (C tor credits only the descriptor address)', async () => {
    let clock = NOW;
    const store = new DescriptorStore({
      log: silentLogger,
      metrics: metricsFor(new Registry()).directory,
      name: 'a1',
      now: () => clock,
      opts: { votingIntervalSec: 5, testnet: true, measureBandwidth: false },
      intervalMs: 5_000,
      authorityAddresses: new Set(),
    });
    const tester = new GatedTester({ timeoutMs: 1_000, concurrency: 4 });
    store.open(tester);
    for (const n of [1, 2, 3, 4, 5]) {
      store.accept(signRelayDescriptor(descriptor(n, { address: `127.0.0.${n}` }), seedOf(n)));
    }
    const flagsOf = async (round = store.voteRelays(10_000)) => {
      const vote = await round;
      return new Map((vote?.relays ?? []).map((r) => [toHex(r.identity), r.flags]));
    };
    const until = async (what: string, ok: () => boolean) => {
      const end = Date.now() + 10_000;
      while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const settle = async (gate: string, result: ProbeResult) => {
      await until(gate, () => tester.gates.has(gate));
      tester.gates.get(gate)!(result);
      tester.gates.delete(gate);
    };
    let first = await flagsOf();
    for (let i = 0; i < 100 && first.size < 5; i++) first = await flagsOf();
    expect([...first.values()].every((f) => f.includes('Running'))).toBe(true);

    // Relay 5's re-tests are refused from now on: one failed round leaves it Running.
    clock += 60_000;
    tester.gated.add('127.0.0.5');
    const round1 = flagsOf();
    await settle('retest@127.0.0.5', 'refused');
    expect((await round1).get(hexOf(5))).toContain('Running');

    // In the next round it moves: while its re-test at the old address runs, it
    // uploads a descriptor at 127.0.0.55 (whose test waits); then the old address refuses.
    const round2 = flagsOf();
    await until('round 2 re-test', () => tester.gates.has('retest@127.0.0.5'));
    tester.gated.add('127.0.0.55');
    store.accept(
      signRelayDescriptor(descriptor(5, { address: '127.0.0.55', publishedMs: clock - 1_000 }), seedOf(5)),
    );
    await settle('retest@127.0.0.5', 'refused');
    await round2;

    // Its new address passes: the run it had goes on (the refusal at the address it
    // left was no second failed round), so its uptime, and the Guard flag, are kept.
    clock += 60_000;
    tester.gated.delete('127.0.0.55');
    await settle('new@127.0.0.55', 'up');
    let after = await flagsOf();
    for (let i = 0; i < 100 && !after.has(hexOf(5)); i++) after = await flagsOf();
    expect(after.get(hexOf(5))).toContain('Running');
    expect(after.get(hexOf(1)), 'relay1, there all along').toContain('Guard');
    expect(after.get(hexOf(5)), 'relay5, moved').toContain('Guard');
    store.close();
  });
});

describe('ReachabilityTester re-test queue (real sockets)', () => {
  const servers: net.Server[] = [];
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    servers.length = 0;
  });

  /** A listener that accepts and never answers (a hung relay), counting connections. */
  async function silent(): Promise<{ port: number; accepted: () => number; settled: () => Promise<number> }> {
    let n = 0;
    const peers = new Set<number>();
    const server = net.createServer((s) => {
      n++;
      if (s.remotePort !== undefined) peers.add(s.remotePort);
      sockets.push(s);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    /**
     * The connections accepted before now: a marker connection is accepted
     * after every earlier one (the listen backlog is FIFO), so once it is
     * seen (bounded wait) the count before it is final.
     */
    const settled = async () => {
      const marker = net.connect(port, '127.0.0.1');
      sockets.push(marker);
      await new Promise<void>((r, j) => marker.once('connect', r).once('error', j));
      const until = Date.now() + 10_000;
      while (!peers.has(marker.localPort!) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(peers.has(marker.localPort!)).toBe(true);
      return n - 1;
    };
    return { port, accepted: () => n, settled };
  }

  const target = (n: number, port: number): ProbeTarget => {
    const d = descriptor(n, { address: '127.0.0.1' });
    return { ...d, orPort: port, linkUrl: `ws://127.0.0.1:${port}` };
  };

  it('shares a waiting re-test and tells waiting from running', async () => {
    const a = await silent();
    const b = await silent();
    const tester = new ReachabilityTester({ timeoutMs: 400, concurrency: 1, tls: false });
    const ta = target(1, a.port);
    const tb = target(2, b.port);
    const pa = tester.probe(ta, true);
    const pb1 = tester.probe(tb, true);
    const pb2 = tester.probe(tb, true);
    // One slot: a's dial holds it, b waits (once).
    expect(tester.isQueued(ta)).toBe(false);
    expect(tester.isQueued(tb)).toBe(true);
    expect(await pa).toBe('timeout');
    expect(await pb1).toBe('timeout');
    expect(await pb2).toBe('timeout');
    expect(tester.isQueued(tb)).toBe(false);
    // A second dial of b would have connected before its promise resolved; wait (bounded) for the accept events.
    const until = Date.now() + 10_000;
    while ((a.accepted() < 1 || b.accepted() < 1) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(b.accepted()).toBe(1);
    expect(a.accepted()).toBe(1);
    tester.close();
  });

  /** A port nothing listens on (a relay that moved away): the dial is refused at once. */
  async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((r) => server.close(r));
    return port;
  }

  /** Relay n at another port (a new descriptor of the same identity). */
  const moved = (n: number, port: number): ProbeTarget => target(n, port);

  const acceptedAtLeast = async (l: { accepted: () => number }, n: number) => {
    const until = Date.now() + 10_000;
    while (l.accepted() < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  };

  it("a re-test waiting for a slot stays waiting while the relay's new descriptor is tested elsewhere", async () => {
    const other = await silent();
    const a = await silent();
    const b = await silent();
    const tester = new ReachabilityTester({ timeoutMs: 400, concurrency: 1, tls: false });
    // Another relay's re-test holds the one re-test slot; relay 1's re-test at a waits.
    const pOther = tester.probe(target(2, other.port), true);
    const retest = target(1, a.port);
    const pRetest = tester.probe(retest, true);
    // Relay 1 uploaded a descriptor at b: its test runs in the new-descriptor slot.
    const pNew = tester.probe(moved(1, b.port));
    await acceptedAtLeast(b, 1);
    expect(b.accepted()).toBe(1);
    // The round must still see the re-test as never started (no test), not as a hung one.
    expect(tester.isQueued(retest)).toBe(true);
    expect(tester.isQueued(moved(1, b.port))).toBe(false);
    expect(await pNew).toBe('timeout');
    expect(await pOther).toBe('timeout');
    expect(await pRetest).toBe('timeout');
    tester.close();
  });

  it("a running re-test stays started after the relay's other test ended", async () => {
    const a = await silent();
    const gone = await closedPort();
    const tester = new ReachabilityTester({ timeoutMs: 400, concurrency: 1, tls: false });
    const retest = target(1, a.port);
    const pRetest = tester.probe(retest, true);
    await acceptedAtLeast(a, 1);
    expect(tester.isQueued(retest)).toBe(false);
    // A test of the same identity elsewhere ends (refused) while the re-test still runs.
    expect(await tester.probe(moved(1, gone))).toBe('refused');
    // Started and not finished: the round counts it as a failure if it outlives the deadline.
    expect(tester.isQueued(retest)).toBe(false);
    expect(await pRetest).toBe('timeout');
    expect(await a.settled()).toBe(1);
    tester.close();
  });

  it('one dial per relay and address, shared by a re-test and a new-descriptor test, either first', async () => {
    for (const listedFirst of [true, false]) {
      const a = await silent();
      const tester = new ReachabilityTester({ timeoutMs: 400, concurrency: 1, tls: false });
      const t = target(1, a.port);
      const first = tester.probe(t, listedFirst);
      const second = tester.probe(t, !listedFirst);
      expect(tester.isQueued(t)).toBe(false);
      expect(await first).toBe('timeout');
      expect(await second).toBe('timeout');
      // A second dial would have connected before its promise resolved.
      expect(await a.settled(), `listed first: ${listedFirst}`).toBe(1);
      tester.close();
    }
  });
});
