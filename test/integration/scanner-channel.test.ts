// The authority's bandwidth scanner measures over a channel of its own,
// closed when the measurement ends, never over the held reachability
// channel (issue 17; directory/reachability.ts `measure`): a TLS socket
// keeps the buffers a 64 KiB burst made it allocate until it closes, so
// measuring over held channels left every one of them (three per relay,
// both ends in one process under `shallot up`) about 0.4 MiB heavier.
// Only a relay held reachable is measured at all.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReachabilityTester } from '../../services/directory/reachability.js';
import { Channel } from '../../services/net/channel.js';
import { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { Relay } from '../../services/relay/relay.js';
import { startLocalRelay } from '../helpers/relays.js';

const targetOf = (r: Relay) => ({
  nickname: r.nickname,
  identity: r.identity,
  ntorOnionKey: r.ntorKey,
  address: '127.0.0.1',
  orPort: r.port,
  linkUrl: r.linkUrl,
});

/** Resolves once `pred` holds, polled every 10 ms for at most 5 s. */
async function until(pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(pred()).toBe(true);
}

describe('the bandwidth scanner', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('measures over a channel of its own, closes it, and leaves the held channel carrying no circuit', async () => {
    const relay = await startLocalRelay('measured');
    cleanup.push(() => relay.stop());
    const tester = new ReachabilityTester({ timeoutMs: 3_000, concurrency: 2 });
    cleanup.push(() => tester.close());
    const opened: Channel[] = [];
    const initiate = Channel.initiate.bind(Channel);
    vi.spyOn(Channel, 'initiate').mockImplementation(async (...args) => {
      const ch = await initiate(...args);
      opened.push(ch);
      return ch;
    });
    const circuitsOn: Channel[] = [];
    const create = OriginCircuit.create.bind(OriginCircuit);
    vi.spyOn(OriginCircuit, 'create').mockImplementation((ch, ...rest) => {
      circuitsOn.push(ch);
      return create(ch, ...rest);
    });

    const t = targetOf(relay);
    expect(await tester.probe(t)).toBe('up');
    expect(opened).toHaveLength(1);
    const held = opened[0] as Channel;

    // The relay has no consensus to serve, so the rate is undefined; what is
    // checked here is where the circuit ran and what was left open.
    await tester.measure(t);
    expect(opened).toHaveLength(2);
    const scanner = opened[1] as Channel;
    expect(scanner).not.toBe(held);
    expect(circuitsOn).toEqual([scanner]);
    await until(() => !scanner.isOpen);
    expect(held.isOpen).toBe(true);
    expect(tester.isHeld(t)).toBe(true);
    // The re-test still rides the held channel: no new dial.
    expect(await tester.probe(t, true)).toBe('up');
    expect(opened).toHaveLength(2);
  });

  it('measures nothing, and dials nothing, for a relay it does not hold reachable', async () => {
    const relay = await startLocalRelay('unheld');
    cleanup.push(() => relay.stop());
    const tester = new ReachabilityTester({ timeoutMs: 3_000, concurrency: 2 });
    cleanup.push(() => tester.close());
    const initiate = vi.spyOn(Channel, 'initiate');
    expect(await tester.measure(targetOf(relay))).toBeUndefined();
    // Held at another address is not held at this one.
    expect(await tester.probe(targetOf(relay))).toBe('up');
    const moved = { ...targetOf(relay), orPort: relay.port + 1 };
    expect(await tester.measure(moved)).toBeUndefined();
    expect(initiate).toHaveBeenCalledTimes(1);
  });

  it('closes a scanner channel that opens only after the measurement timed out', async () => {
    const relay = await startLocalRelay('slow');
    cleanup.push(() => relay.stop());
    const tester = new ReachabilityTester({ timeoutMs: 300, concurrency: 2 });
    cleanup.push(() => tester.close());
    const t = targetOf(relay);
    expect(await tester.probe(t)).toBe('up');
    // The scanner's handshake is held back past the measurement's timeout.
    const late: Channel[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const initiate = Channel.initiate.bind(Channel);
    vi.spyOn(Channel, 'initiate').mockImplementation(async (...args) => {
      const ch = await initiate(...args);
      await gate;
      late.push(ch);
      return ch;
    });
    expect(await tester.measure(t)).toBeUndefined();
    release();
    await until(() => late.length === 1);
    await until(() => !(late[0] as Channel).isOpen);
    expect(tester.isHeld(t)).toBe(true);
  });
});
