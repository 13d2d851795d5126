// Faults on a relay that shares the process (services/testnet/relay-slot.ts
// through thread-targets.ts and the FaultInjector, as `shallot up` applies
// them in its one-process and worker modes), seen by a real client circuit
// on loopback: stop and kill end the circuit and free the relay (kill by
// dropping its links at once: the circuit dies with its channel); the
// relay comes back with the same identity and port when the fault heals
// and takes circuits again; pause holds the circuit's cells (a build
// waits) and lets them through when it heals.
import net from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DestroyReason } from '../../services/core/cells.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import { createRegistry } from '../../services/metrics/metrics.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { applyLinkFaults, EMPTY_LINK_FAULTS } from '../../services/net/link-faults.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import { DescriptorPublisher } from '../../services/relay/publisher.js';
import { namedShaping } from '../../services/runtime/shaping-options.js';
import { FaultInjector } from '../../services/testnet/fault.js';
import { RelaySlot } from '../../services/testnet/relay-slot.js';
import { slotTarget } from '../../services/testnet/thread-targets.js';
import { testLogger } from '../helpers/log.js';
import { buildCircuit, LOCAL_EXIT_POLICY } from '../helpers/relays.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  applyLinkFaults(EMPTY_LINK_FAULTS);
});

async function setup() {
  const slot = new RelaySlot(
    { logger: testLogger('relay7'), registry: new Registry() },
    {
      nickname: 'relay7',
      host: '127.0.0.1',
      port: 0,
      tls: true,
      keys: generateNodeKeys(),
      exitPolicy: LOCAL_EXIT_POLICY,
      // No authorities: no descriptor to publish, no consensus to check extends against.
      authorities: [],
      shaping: namedShaping('relay7'),
    },
    false,
  );
  await slot.start();
  cleanups.push(() => slot.stop());
  const pool = new ChannelPool({ keys: null, tls: true, shaping: namedShaping('client') });
  cleanups.push(() => pool.closeAll());
  const injector = new FaultInjector(
    { registry: createRegistry(), links: applyLinkFaults, linkNodes: ['relay7', 'client'] },
    new Map([['relay7', slotTarget(slot)]]),
  );
  cleanups.push(() => injector.close());
  const relay = () => slot.node?.relay as NonNullable<typeof slot.node>['relay'];
  const circuit = async () => buildCircuit(pool, [relay()]);
  return { slot, injector, circuit };
}

const destroyedBy = (c: OriginCircuit) =>
  new Promise<{ reason: number; remote: boolean }>((r) => c.once('destroyed', r));

describe('faults on a relay sharing the process', () => {
  it('stop ends the circuit and frees the relay; healed, it is back with the same identity and port', {
    timeout: 20_000,
  }, async () => {
    const { slot, injector, circuit } = await setup();
    const before = slot.node?.relay;
    const port = before?.port;
    const c = await circuit();
    const destroyed = destroyedBy(c);
    const f = await injector.inject({ kind: 'stop', target: 'relay7', durationSec: 60 });
    await destroyed;
    expect(c.isOpen).toBe(false);
    expect(slot.node).toBeNull();
    await injector.heal(f.id);
    const after = slot.node?.relay;
    expect(after).not.toBe(before);
    expect(after?.port).toBe(port);
    expect(Buffer.from(after?.identity ?? [])).toEqual(Buffer.from(before?.identity ?? []));
    (await circuit()).destroy();
  });

  it("kill drops the relay's links at once (the circuit dies with its channel) and frees it", {
    timeout: 20_000,
  }, async () => {
    const { slot, injector, circuit } = await setup();
    const c = await circuit();
    const destroyed = destroyedBy(c);
    await injector.inject({ kind: 'kill', target: 'relay7', durationSec: 60 });
    expect((await destroyed).reason).toBe(DestroyReason.CHANNEL_CLOSED);
    expect(slot.node).toBeNull();
    injector.close();
    await slot.start();
    (await circuit()).destroy();
  });

  it("pause holds the relay's links (a circuit build waits) and releases them in order on heal", {
    timeout: 20_000,
  }, async () => {
    const { injector, circuit } = await setup();
    // Open the channel first, so only the circuit's cells cross the paused link.
    (await circuit()).destroy();
    const f = await injector.inject({ kind: 'pause', target: 'relay7', durationSec: 60 });
    let built = false;
    const pending = circuit().then((c) => {
      built = true;
      return c;
    });
    await new Promise((r) => setTimeout(r, 700));
    expect(built).toBe(false);
    await injector.heal(f.id);
    (await pending).destroy();
    expect(built).toBe(true);
  });

  it('a start that fails after the relay listens is undone: its ORPort is free again; the next start takes it', {
    timeout: 20_000,
  }, async () => {
    const { slot, circuit } = await setup();
    const port = slot.node!.relay.port;
    await slot.stop();
    // The listener opens first (relay.start), then the descriptor publisher starts: fail that.
    const publish = vi
      .spyOn(DescriptorPublisher.prototype, 'start')
      .mockRejectedValueOnce(new Error('publisher failed'));
    await expect(slot.start()).rejects.toThrow('publisher failed');
    publish.mockRestore();
    expect(slot.node).toBeNull();
    // Nothing holds the port: the failed start's listener was closed.
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise((r) => probe.close(r));
    await slot.start();
    expect(slot.node!.relay.port).toBe(port);
    const c = await circuit();
    expect(c.isOpen).toBe(true);
    c.destroy();
  });
});
