// Issue 12 item 4, the channel and circuit defences, on in-process relays
// over real wss links: a CREATE2 flood of replayed onionskins on one channel
// does not starve another channel's circuit (fair onionskin queue, shedding
// counted), a channel that stays idle or stalls mid-cell is closed and
// counted, MaxMemInQueues counts idle circuits (a peer opening them past
// the cap loses its newest ones), and the relay serves on.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestroyReason, type LinkMessage } from '../../services/core/cells.js';
import { startClientHandshake } from '../../services/core/create-handshake.js';
import { randomBytes } from '../../services/core/crypto.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { CIRCUIT_STATE_BYTES, QueueMemory } from '../../services/relay/queue-memory.js';
import type { Relay } from '../../services/relay/relay.js';
import { buildCircuit, hopTarget, linkPeer, startLocalRelay } from '../helpers/relays.js';

let relays: Relay[] = [];
const registry = new Registry();
const pools: ChannelPool[] = [];
const newPool = () => {
  const p = new ChannelPool({ keys: null, tls: true });
  pools.push(p);
  return p;
};

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((a, v) => a + Number(v.value), 0);
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  relays = await Promise.all(
    ['dos1', 'dos2', 'dos3'].map((n) =>
      startLocalRelay(n, { registry, limits: { idleClientChannelMs: 300, partialCellMs: 300 } }),
    ),
  );
});

afterAll(async () => {
  for (const p of pools) p.closeAll();
  await Promise.all(relays.map((r) => r.stop()));
});

describe('channel and circuit defences', () => {
  it('10,000 replayed CREATE2 on one channel: every one answered, another channel still builds circuits', async () => {
    const target = relays[0]!;
    const ch = await newPool().get(linkPeer(target));
    const { htype, hdata } = startClientHandshake('ntor', randomBytes, hopTarget(target));
    const answers = new Map<string, number>();
    let answered = 0;
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const circId = ch.allocateCircId();
      ch.register(circId, {
        onCell: (m: LinkMessage) => {
          const k = m.type === 'DESTROY' ? `DESTROY ${m.reason}` : m.type;
          answers.set(k, (answers.get(k) ?? 0) + 1);
          answered++;
          ch.unregister(circId);
        },
        onChannelClosed: () => {},
      });
      ch.send(circId, { type: 'CREATE2', htype, hdata });
    }
    // An honest client on its own channel while the flood is queued.
    const honest = await buildCircuit(newPool(), relays);
    honest.destroy();
    await until('every flooded CREATE2 answered', () => answered === N, 60_000);
    // Replays of one onionskin are answered (CREATED2) or shed/refused with RESOURCELIMIT; none is lost.
    const resource = answers.get(`DESTROY ${DestroyReason.RESOURCELIMIT}`) ?? 0;
    expect((answers.get('CREATED2') ?? 0) + resource).toBe(N);
    const processed = await metric('shallot_relay_onionskins_total', { relay: 'dos1', action: 'processed' });
    expect(processed).toBeGreaterThan(0);
    const shedOrDropped =
      (await metric('shallot_relay_onionskins_total', { relay: 'dos1', action: 'shed' })) +
      (await metric('shallot_relay_onionskins_total', { relay: 'dos1', action: 'dropped' }));
    expect(shedOrDropped).toBe(resource);
    ch.close('done');
  }, 90_000);

  it('closes a client channel that carries no circuit past the idle timeout, and counts it', async () => {
    const target = relays[1]!;
    const ch = await newPool().get(linkPeer(target));
    const closed = new Promise<void>((r) => ch.on('closed', () => r()));
    await closed;
    await until(
      'idle close counted',
      async () =>
        (await metric('shallot_relay_dos_refusals_total', { relay: 'dos2', defense: 'idle_channel' })) >= 1,
    );
    // The relay serves new channels as before.
    (await buildCircuit(newPool(), [target])).destroy();
  }, 30_000);

  it('closes a channel stalled in the middle of a cell, and counts it', async () => {
    const target = relays[2]!;
    const ch = await newPool().get(linkPeer(target));
    // Keep the channel busy (a circuit) so only the stalled cell can close it.
    const circId = ch.allocateCircId();
    const { htype, hdata } = startClientHandshake('ntor', randomBytes, hopTarget(target));
    ch.register(circId, { onCell: () => {}, onChannelClosed: () => {} });
    ch.send(circId, { type: 'CREATE2', htype, hdata });
    const closed = new Promise<void>((r) => ch.on('closed', () => r()));
    setTimeout(() => ch.link.send(new Uint8Array([0x80, 0, 0, 1, 3])), 200);
    await closed;
    expect(await metric('shallot_relay_dos_refusals_total', { relay: 'dos3', defense: 'partial_cell' })).toBe(
      1,
    );
    (await buildCircuit(newPool(), [target])).destroy();
  }, 30_000);

  it('MaxMemInQueues counts idle circuits: a peer opening them past the cap loses its newest with RESOURCELIMIT, another peer is served', async () => {
    // Room for 64 idle circuits (and little else) in this relay's own handler.
    const qm = new QueueMemory(64 * CIRCUIT_STATE_BYTES);
    const relay = await startLocalRelay('dos4', { registry, queueMemory: qm });
    try {
      const honestPool = newPool();
      const honest = await buildCircuit(honestPool, [relay]);
      // The hostile peer: one channel, 100 circuits opened one after another, then left idle.
      const ch = await newPool().get(linkPeer(relay));
      const N = 100;
      const destroyed = new Map<number, number>();
      for (let i = 0; i < N; i++) {
        const circId = ch.allocateCircId();
        const { htype, hdata } = startClientHandshake('ntor', randomBytes, hopTarget(relay));
        await new Promise<void>((created, refused) => {
          ch.register(circId, {
            onCell: (m: LinkMessage) => {
              if (m.type === 'CREATED2') created();
              else if (m.type === 'DESTROY') {
                destroyed.set(i, m.reason);
                refused(new Error(`circuit ${i} refused: DESTROY ${m.reason}`));
              }
            },
            onChannelClosed: () => refused(new Error('channel closed')),
          });
          ch.send(circId, { type: 'CREATE2', htype, hdata });
        });
      }
      const closedByOom = () =>
        metric('shallot_relay_oom_closed_total', { relay: 'dos4', reason: 'circuit_count' });
      await until(
        'the relay back under its cap, every circuit it closed destroyed at the peer',
        async () =>
          destroyed.size > 0 && qm.total() <= qm.maxBytes && (await closedByOom()) === destroyed.size,
      );
      expect([...destroyed.values()].every((r) => r === DestroyReason.RESOURCELIMIT)).toBe(true);
      // Newest first: the peer keeps exactly its oldest circuits.
      const kept = N - destroyed.size;
      expect([...destroyed.keys()].sort((a, b) => a - b)).toEqual(
        Array.from({ length: destroyed.size }, (_, i) => kept + i),
      );
      expect(kept).toBeGreaterThan(0);
      expect((kept + 1) * CIRCUIT_STATE_BYTES).toBeLessThanOrEqual(qm.maxBytes);
      expect(await metric('shallot_relay_dos_refusals_total', { relay: 'dos4', defense: 'oom' })).toBe(
        destroyed.size,
      );
      // The other peer's circuit was not touched, and it builds new ones.
      expect(honest.isOpen).toBe(true);
      (await buildCircuit(honestPool, [relay])).destroy();
      honest.destroy();
      ch.close('done');
    } finally {
      await relay.stop();
    }
  }, 60_000);
});
