// Relays as pivots (issue 12 item 5), replayed against a real process
// network (3 authorities, 6 relays with 3 exits, an onion service and a
// client, each its own process):
// - EXTEND2 from every relay to an identity the consensus does not list,
//   and to listed identities at an address:port it does not list (a hostile
//   TCP listener, an authority's DirPort): DESTROY CONNECTFAILED, counted in
//   shallot_relay_extend_refused_total, and the listener is never dialled;
// - exit streams through the SOCKS port to an authority's DirPort, a
//   relay's ORPort (also as 127.0.0.2: any loopback address reaches this
//   host), a node's ops port, the client's ops port and the SOCKS port
//   itself, the launcher's fault-control endpoint: refused (END CONNECTREFUSED, C tor's reason, so SOCKS reply
//   0x05), counted as shallot_relay_streams_total{outcome="reentry"} (an
//   ordinary refused connection would count as outcome="refused").
// The no-DNS-before-policy cases need an injected resolver and run
// in-process (test/integration/pivot.test.ts). Each attack is bounded in
// count; honest fetches run during each one and again afterwards (>= 19/20),
// and every node process must be alive and healthy.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestroyReason } from '../../services/core/cells.js';
import { randomBytes } from '../../services/core/crypto.js';
import type { Consensus } from '../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../services/core/dir/relay-entry.js';
import { SocksReply } from '../../services/core/socks5.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { CircuitError } from '../../services/net/circuit-error.js';
import { fetchConsensus } from '../../services/net/dir-client.js';
import { type HopTarget, hopTargetOf } from '../../services/net/hop-target.js';
import { OriginCircuit } from '../../services/net/origin-circuit.js';
import {
  type AdversarialNet,
  honestFetches,
  metricSum,
  nodesOf,
  startAdversarialNet,
  unhealthyNodes,
} from '../helpers/adversarial.js';
import { SocksReplyError, socksConnect } from '../helpers/socks-client.js';

let a: AdversarialNet;
let consensus: Consensus;
let hostile: net.Server;
let hostileConnections = 0;
const pool = new ChannelPool({ keys: null, tls: true, dialTimeoutMs: 10_000 });

beforeAll(async () => {
  a = await startAdversarialNet({ relays: 6, exits: 3, onionServices: 1 });
  consensus = (await fetchConsensus(a.net.state.authorities, { nowMs: Date.now(), skewMs: 5_000 })).consensus;
  hostile = net.createServer((s) => {
    hostileConnections++;
    s.destroy();
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
}, 300_000);

afterAll(async () => {
  pool.closeAll();
  // Without a server (beforeAll failed first) `hostile?.close(r)` never calls r: the hook would hang.
  if (hostile) await new Promise((r) => hostile.close(r));
  await a?.stop();
}, 60_000);

const hop = hopTargetOf;

/** host:port of a URL or "host:port" string. */
function hostPort(s: string): { host: string; port: number } {
  const u = new URL(s.includes('://') ? s : `tcp://${s}`);
  return { host: u.hostname, port: Number(u.port) };
}

async function extendFrom(from: ConsensusRelay, to: HopTarget): Promise<number | 'extended'> {
  const ch = await pool.get({ identity: from.identity, address: from.address, port: from.orPort });
  const circ = await OriginCircuit.create(ch, hop(from));
  try {
    await circ.extend(to);
    circ.destroy();
    return 'extended';
  } catch (e) {
    if (e instanceof CircuitError) return e.reason;
    throw e;
  }
}

async function socksReply(host: string, port: number): Promise<number | 'connected'> {
  try {
    const s = await socksConnect(a.socksPort, host, port, { timeoutMs: 30_000 });
    s.destroy();
    return 'connected';
  } catch (e) {
    if (e instanceof SocksReplyError) return e.reply;
    throw e;
  }
}

async function expectNetworkHealthy(what: string): Promise<void> {
  expect(await unhealthyNodes(a), `${what}: dead or unhealthy nodes`).toEqual([]);
  const after = await honestFetches(a, 20);
  expect(after.ok, `${what}: honest fetches after: ${after.failures.join('; ')}`).toBeGreaterThanOrEqual(19);
}

describe('relays refuse to be pivots', () => {
  it('EXTEND2 to what the consensus does not list: DESTROY CONNECTFAILED from every relay, counted, never dialled', async () => {
    const before = await metricSum(a, 'shallot_relay_extend_refused_total', {}, 'relay');
    const dirPort = hostPort(a.net.state.authorities[0]?.url ?? '');
    const hostilePort = (hostile.address() as net.AddressInfo).port;
    const during = honestFetches(a, 20);
    const outcomes: (number | 'extended')[] = [];
    for (const [i, from] of consensus.relays.entries()) {
      const other = consensus.relays[(i + 1) % consensus.relays.length] as ConsensusRelay;
      outcomes.push(
        await extendFrom(from, { ...hop(other), identity: randomBytes(32), port: hostilePort }),
        await extendFrom(from, { ...hop(other), port: hostilePort }),
        await extendFrom(from, { ...hop(other), port: dirPort.port }),
      );
    }
    expect(outcomes).toEqual(outcomes.map(() => DestroyReason.CONNECTFAILED));
    expect(hostileConnections).toBe(0);
    expect((await metricSum(a, 'shallot_relay_extend_refused_total', {}, 'relay')) - before).toBe(
      outcomes.length,
    );
    // The same relays still extend to what the consensus lists.
    const [r0, r1] = consensus.relays as [ConsensusRelay, ConsensusRelay];
    expect(await extendFrom(r0, hop(r1))).toBe('extended');
    const tally = await during;
    expect(tally.ok, `honest fetches during: ${tally.failures.join('; ')}`).toBeGreaterThanOrEqual(19);
    await expectNetworkHealthy('after the EXTEND2 attack');
  }, 120_000);

  it('exit streams to a DirPort, an ORPort, an ops port and the SOCKS port: refused, counted; honest traffic unharmed', async () => {
    const where = { type: 'BEGIN', outcome: 'reentry' };
    const before = await metricSum(a, 'shallot_relay_streams_total', where, 'relay');
    const relay = consensus.relays[0] as ConsensusRelay;
    const targets = [
      hostPort(a.net.state.authorities[0]?.url ?? ''),
      { host: relay.address, port: relay.orPort },
      { host: '127.0.0.2', port: relay.orPort },
      hostPort(nodesOf(a, 'relay')[0]?.metrics ?? ''),
      hostPort(nodesOf(a, 'client')[0]?.metrics ?? ''),
      { host: '127.0.0.1', port: a.socksPort },
      // The launcher's fault-control endpoint (token-guarded, still no circuit may reach it).
      hostPort(a.net.state.control ?? ''),
    ];
    const during = honestFetches(a, 20);
    const replies: (number | 'connected')[] = [];
    for (let round = 0; round < 3; round++) {
      for (const t of targets) replies.push(await socksReply(t.host, t.port));
    }
    expect(replies).toEqual(replies.map(() => SocksReply.CONNECTION_REFUSED));
    expect((await metricSum(a, 'shallot_relay_streams_total', where, 'relay')) - before).toBe(replies.length);
    const tally = await during;
    expect(tally.ok, `honest fetches during: ${tally.failures.join('; ')}`).toBeGreaterThanOrEqual(19);
    // The exit target web server on the same 127.0.0.1 stays reachable.
    expect(await socksReply(a.web.host, a.web.port)).toBe('connected');
    await expectNetworkHealthy('after the re-entry attack');
  }, 120_000);
});
