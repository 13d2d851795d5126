// Issue 12 items 1, 2 and 4 against a real process network
// (`shallot up --process-per-node`): malformed WebSocket frames to every
// relay's ORPort, CREATE2 floods of replayed onionskins (10,000 on one
// channel; 8 channels x 2,000) answered by the relays' cpuworker threads,
// and idle handshaken channels. After each attack: no process died or
// stopped answering, honest fetches kept succeeding (>= 19/20) during and
// after, and the defence's metric counted what it refused.
// Needs `npm run build` (done by `npm run test:all`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkMessage } from '../../services/core/cells.js';
import { startClientHandshake } from '../../services/core/create-handshake.js';
import { randomBytes } from '../../services/core/crypto.js';
import type { Consensus } from '../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../services/core/dir/relay-entry.js';
import type { Channel } from '../../services/net/channel.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { fetchConsensus } from '../../services/net/dir-client.js';
import { hopTargetOf } from '../../services/net/hop-target.js';
import {
  type AdversarialNet,
  honestFetches,
  metricSum,
  startAdversarialNet,
  unhealthyNodes,
} from '../helpers/adversarial.js';
import { malformedFrames, sendRawFrames } from '../helpers/ws-frames.js';

let a: AdversarialNet;
let consensus: Consensus;
const pools: ChannelPool[] = [];
const newPool = () => {
  const p = new ChannelPool({ keys: null, tls: true, dialTimeoutMs: 10_000 });
  pools.push(p);
  return p;
};
const IDLE_S = 3;

beforeAll(async () => {
  // Every relay process inherits this: client channels idle for 3-4.5 s are closed.
  process.env.SHALLOT_IDLE_CHANNEL_TIMEOUT = String(IDLE_S);
  a = await startAdversarialNet({ relays: 6, exits: 3, onionServices: 1 });
  delete process.env.SHALLOT_IDLE_CHANNEL_TIMEOUT;
  consensus = (await fetchConsensus(a.net.state.authorities, { nowMs: Date.now(), skewMs: 5_000 })).consensus;
}, 300_000);

afterAll(async () => {
  for (const p of pools) p.closeAll();
  await a?.stop();
}, 60_000);

const relayNamed = (r: ConsensusRelay) => ({ relay: r.nickname });

/** Sends `n` replays of one valid onionskin for `r` on `ch`; resolves with how many got any answer. */
function flood(ch: Channel, r: ConsensusRelay, n: number): Promise<number> {
  const { htype, hdata } = startClientHandshake('ntor', randomBytes, hopTargetOf(r));
  let answered = 0;
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve(answered);
    };
    const timer = setTimeout(done, 60_000);
    ch.on('closed', done);
    for (let i = 0; i < n; i++) {
      const circId = ch.allocateCircId();
      ch.register(circId, {
        onCell: (_m: LinkMessage) => {
          ch.unregister(circId);
          if (++answered === n) done();
        },
        onChannelClosed: () => {},
      });
      ch.send(circId, { type: 'CREATE2', htype, hdata });
    }
  });
}

describe('the network survives hostile links', () => {
  it('every malformed WebSocket frame, to every relay process: links close, processes live', async () => {
    const during = honestFetches(a, 20);
    const frames = malformedFrames(true);
    for (const r of consensus.relays) {
      for (const f of frames)
        expect(await sendRawFrames(r.orPort, f.bytes), `${r.nickname}: ${f.name}`).toBe('closed');
    }
    const d = await during;
    expect(d.ok, d.failures.join('; ')).toBeGreaterThanOrEqual(19);
    expect(await unhealthyNodes(a)).toEqual([]);
    const after = await honestFetches(a, 20);
    expect(after.ok, after.failures.join('; ')).toBeGreaterThanOrEqual(19);
  }, 180_000);

  it('10,000 CREATE2 on one channel and 8 x 2,000 on eight: all answered, honest traffic goes on, shedding counted', async () => {
    const [one, eight] = [consensus.relays[0]!, consensus.relays[1]!];
    const before = {
      one: await metricSum(a, 'shallot_relay_onionskins_total', relayNamed(one), 'relay'),
      eight: await metricSum(a, 'shallot_relay_onionskins_total', relayNamed(eight), 'relay'),
    };
    const peer = (r: ConsensusRelay) => ({ identity: r.identity, address: r.address, port: r.orPort });
    const floodOne = newPool()
      .get(peer(one))
      .then((ch) => flood(ch, one, 10_000));
    const floodEight = Promise.all(
      Array.from({ length: 8 }, () =>
        newPool()
          .get(peer(eight))
          .then((ch) => flood(ch, eight, 2_000)),
      ),
    );
    const during = honestFetches(a, 20);
    const [answeredOne, answeredEight] = await Promise.all([floodOne, floodEight]);
    const d = await during;
    expect(answeredOne).toBe(10_000);
    expect(answeredEight).toEqual(Array(8).fill(2_000));
    expect(d.ok, d.failures.join('; ')).toBeGreaterThanOrEqual(19);
    // Every onionskin is counted once: processed, shed (queue delay), dropped (channel full) or refused (DoS).
    const after = {
      one: await metricSum(a, 'shallot_relay_onionskins_total', relayNamed(one), 'relay'),
      eight: await metricSum(a, 'shallot_relay_onionskins_total', relayNamed(eight), 'relay'),
    };
    expect(after.one - before.one).toBeGreaterThanOrEqual(10_000);
    expect(after.eight - before.eight).toBeGreaterThanOrEqual(16_000);
    expect(await unhealthyNodes(a)).toEqual([]);
    for (const p of pools.splice(0)) p.closeAll();
    const later = await honestFetches(a, 20);
    expect(later.ok, later.failures.join('; ')).toBeGreaterThanOrEqual(19);
  }, 240_000);

  it('200 idle handshaken channels are closed after the idle timeout and counted', async () => {
    const target = consensus.relays[2]!;
    const before = await metricSum(
      a,
      'shallot_relay_dos_refusals_total',
      { ...relayNamed(target), defense: 'idle_channel' },
      'relay',
    );
    const channels = await Promise.all(
      Array.from({ length: 200 }, () =>
        newPool().get({ identity: target.identity, address: target.address, port: target.orPort }),
      ),
    );
    const closed = await Promise.all(
      channels.map(
        (ch) =>
          new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), (IDLE_S * 1.5 + 15) * 1000);
            ch.on('closed', () => {
              clearTimeout(t);
              resolve(true);
            });
          }),
      ),
    );
    expect(closed.filter(Boolean)).toHaveLength(200);
    const after = await metricSum(
      a,
      'shallot_relay_dos_refusals_total',
      { ...relayNamed(target), defense: 'idle_channel' },
      'relay',
    );
    expect(after - before).toBeGreaterThanOrEqual(200);
    expect(await unhealthyNodes(a)).toEqual([]);
    const h = await honestFetches(a, 20);
    expect(h.ok, h.failures.join('; ')).toBeGreaterThanOrEqual(19);
  }, 120_000);
});
