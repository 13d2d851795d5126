// Stream, file-descriptor, directory-body and SOCKS exhaustion (issue 12
// item 4, the stream parts), replayed against a real process network (3
// authorities, 6 relays with 3 exits, an onion service and a client, each
// its own process):
// - one attacker opens 20 circuits x 512 streams through one exit: the
//   DoSStreamCreation bucket (burst 250, rate 1/s per circuit, from the
//   consensus params the authorities vote) and the exit
//   socket cap refuse the excess with END RESOURCELIMIT, counted; the
//   attacker never holds more than the cap less most of the reserve kept
//   for light circuits;
// - an 8 MiB BEGIN_DIR POST is answered 413 and the relay keeps serving;
// - 4,096 idle SOCKS connections: the client closes the least recently
//   active ones (the rest at its handshake timeout), counted, and honest
//   SOCKS fetches keep working.
// Each attack is bounded in count and time; afterwards every node process
// must be alive and healthy and honest fetches must succeed >= 19/20.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consensus } from '../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../services/core/dir/relay-entry.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { StreamRefusedError } from '../../services/net/circuit-error.js';
import { CONSENSUS_PATH, fetchConsensus } from '../../services/net/dir-client.js';
import { dirRequest } from '../../services/net/dir-http.js';
import { hopTargetOf } from '../../services/net/hop-target.js';
import { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { RelayStream } from '../../services/net/stream.js';
import { LIGHT_CIRCUIT_STREAMS } from '../../services/relay/exit-sockets.js';
import {
  type AdversarialNet,
  honestFetches,
  metricSum,
  startAdversarialNet,
  unhealthyNodes,
} from '../helpers/adversarial.js';

/**
 * The exit socket cap for the relay processes. Derived from this machine's
 * descriptor limit it would be far above the 10,240 streams of the attack,
 * so the test sets it the way an operator would (SHALLOT_MAX_EXIT_SOCKETS,
 * read by relay/exit-sockets.ts): heavy circuits stop at 2048 - 2048/8.
 */
const EXIT_SOCKETS = 2048;
/**
 * The most the attacker's 20 circuits can hold: the cap less the reserve,
 * plus what each circuit takes of the reserve while it is still light.
 */
const ATTACKER_BOUND = EXIT_SOCKETS - EXIT_SOCKETS / 8 + 20 * (LIGHT_CIRCUIT_STREAMS - 1);
/**
 * Consensus params the authorities vote (SHALLOT_PARAMS, their --params):
 * the relays must take the stream bucket from the consensus. Burst 250 and
 * rate 1/s per circuit leave honest circuits (tens of streams) untouched.
 */
const BURST = 250;
const RATE = 1;
/** The flood's streams all settle within their 30 s timeout: the most a circuit's bucket can refill. */
const FLOOD_SECONDS = 31;

let a: AdversarialNet;
let consensus: Consensus;
const pool = new ChannelPool({ keys: null, tls: true, dialTimeoutMs: 10_000 });

beforeAll(async () => {
  process.env.SHALLOT_MAX_EXIT_SOCKETS = String(EXIT_SOCKETS);
  process.env.SHALLOT_PARAMS = `DoSStreamCreationRate=${RATE},DoSStreamCreationBurst=${BURST}`;
  try {
    a = await startAdversarialNet({ relays: 6, exits: 3, onionServices: 1 });
  } finally {
    delete process.env.SHALLOT_MAX_EXIT_SOCKETS;
    delete process.env.SHALLOT_PARAMS;
  }
  consensus = (await fetchConsensus(a.net.state.authorities, { nowMs: Date.now(), skewMs: 5_000 })).consensus;
}, 300_000);

afterAll(async () => {
  pool.closeAll();
  await a?.stop();
}, 60_000);

const hop = hopTargetOf;

async function circuitThrough(path: ConsensusRelay[], maxStreams = 16): Promise<OriginCircuit> {
  const [first, ...rest] = path as [ConsensusRelay, ...ConsensusRelay[]];
  const ch = await pool.get({ identity: first.identity, address: first.address, port: first.orPort });
  const circ = await OriginCircuit.create(ch, hop(first), { maxStreams });
  for (const r of rest) await circ.extend(hop(r));
  return circ;
}

const isExit = (r: ConsensusRelay) => r.flags.includes('Exit');

async function expectHealthyAndServing(what: string): Promise<void> {
  expect(await unhealthyNodes(a), `${what}: dead or unhealthy nodes`).toEqual([]);
  const after = await honestFetches(a, 20);
  expect(after.ok, `${what}, honest fetches after: ${after.failures.join('; ')}`).toBeGreaterThanOrEqual(19);
}

describe('stream and descriptor exhaustion at an exit', () => {
  it('20 circuits x 512 streams: refused past the bucket and the socket cap, counted; honest traffic unharmed', async () => {
    const exit = consensus.relays.find(isExit);
    const others = consensus.relays.filter((r) => !isExit(r));
    expect(exit, 'an exit in the consensus').toBeDefined();
    expect(others.length).toBeGreaterThanOrEqual(2);
    // One stream through the exit first: it answers only once it holds a
    // consensus (its re-entry check fetches one), so the flood meets the
    // consensus params, not the built-in defaults.
    const warmup = await circuitThrough([others[0], others[1], exit] as ConsensusRelay[]);
    (await warmup.openStream({ host: a.web.host, port: a.web.port }, 30_000)).destroy();
    warmup.destroy();
    const circuits = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        circuitThrough(
          [others[i % others.length], others[(i + 1) % others.length], exit] as ConsensusRelay[],
          600,
        ),
      ),
    );
    const held: RelayStream[] = [];
    let refused = 0;
    const flood = Promise.all(
      circuits.flatMap((circ) =>
        Array.from({ length: 512 }, () =>
          circ.openStream({ host: a.web.host, port: a.web.port }, 30_000).then(
            (s) => {
              s.on('error', () => {});
              held.push(s);
            },
            (e: unknown) => {
              if (e instanceof StreamRefusedError) refused++;
            },
          ),
        ),
      ),
    );
    const during = await honestFetches(a, 20);
    await flood;
    expect(during.ok, `honest fetches during: ${during.failures.join('; ')}`).toBeGreaterThanOrEqual(19);
    // The attacker holds no more than its bound, below the cap; the rest was refused.
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThanOrEqual(ATTACKER_BOUND);
    expect(refused).toBeGreaterThanOrEqual(20 * 512 - ATTACKER_BOUND);
    const where = { type: 'BEGIN' };
    // Each circuit got at most BURST + RATE * FLOOD_SECONDS streams past its
    // bucket; with C tor's defaults (burst 300, rate 100/s) fewer would be refused.
    const byRate = await metricSum(
      a,
      'shallot_relay_stream_refusals_total',
      { ...where, reason: 'rate' },
      'relay',
    );
    expect(byRate).toBeGreaterThanOrEqual(20 * (512 - BURST - RATE * FLOOD_SECONDS));
    expect(
      await metricSum(
        a,
        'shallot_relay_stream_refusals_total',
        { ...where, reason: 'exit_sockets' },
        'relay',
      ),
    ).toBeGreaterThan(0);
    for (const c of circuits) c.destroy();
    await expectHealthyAndServing('after the stream flood');
  }, 150_000);

  it('an 8 MiB BEGIN_DIR POST is answered 413, counted, and the relay keeps serving the consensus', async () => {
    const relay = consensus.relays.find((r) => !isExit(r)) as ConsensusRelay;
    const circ = await circuitThrough([relay]);
    const big = await dirRequest(await circ.openDirStream(10_000), {
      method: 'POST',
      path: '/tor/hs/3/publish',
      body: Buffer.alloc(8 << 20, 0x41),
    });
    expect(big.status).toBe(413);
    const cons = await dirRequest(await circ.openDirStream(10_000), {
      method: 'GET',
      path: CONSENSUS_PATH,
      body: new Uint8Array(0),
    });
    expect(cons.status).toBe(200);
    circ.destroy();
    expect(
      await metricSum(a, 'shallot_relay_dir_refusals_total', { reason: 'body_too_large' }, 'relay'),
    ).toBeGreaterThanOrEqual(1);
    await expectHealthyAndServing('after the 8 MiB POST');
  }, 90_000);
});

describe('SOCKS exhaustion at the client', () => {
  it('4,096 idle SOCKS connections: the least recently active are closed, counted, and honest fetches succeed', async () => {
    const idle: net.Socket[] = [];
    let closedByClient = 0;
    const open = () =>
      new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: a.socksPort });
        idle.push(s);
        s.on('error', () => {});
        // Reading (nothing ever arrives) lets the client's close surface as 'close'.
        s.resume();
        s.once('connect', () => resolve());
        s.once('close', () => {
          closedByClient++;
          resolve();
        });
      });
    try {
      // 4,096 connections, 128 at a time; none sends a byte. Honest fetches
      // run while they are being opened, and again once all are open.
      const opening = (async () => {
        for (let i = 0; i < 4096; i += 128) await Promise.all(Array.from({ length: 128 }, open));
      })();
      const whileOpening = await honestFetches(a, 20);
      await opening;
      const whileOpen = await honestFetches(a, 20);
      for (const [what, t] of [
        ['while idle connections are being opened', whileOpening],
        ['while idle connections are open', whileOpen],
      ] as const)
        expect(t.ok, `honest fetches ${what}: ${t.failures.join('; ')}`).toBeGreaterThanOrEqual(19);
      // The client closes every one of them: the least recently active when
      // too many are in handshake (512), the rest at the 10 s handshake timeout.
      const closed = async () =>
        metricSum(a, 'shallot_client_socks_closed_total', {}, 'client').then((n) => n >= 4096);
      const deadline = Date.now() + 30_000;
      while (closedByClient < 4096 || !(await closed())) {
        if (Date.now() > deadline) throw new Error(`only ${closedByClient} of 4096 idle connections closed`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const evicted = await metricSum(
        a,
        'shallot_client_socks_closed_total',
        { reason: 'evicted' },
        'client',
      );
      expect(evicted).toBeGreaterThanOrEqual(1);
    } finally {
      for (const s of idle) s.destroy();
    }
    await expectHealthyAndServing('after the idle SOCKS connections');
  }, 120_000);
});
