// Relays as pivots, in-process on real wss links: EXTEND2 only to the
// identity, address and ORPort the consensus lists (a hostile listener
// behind an unlisted identity is never dialled), a relay listed after the
// extending relay's last consensus reached at once (the miss fetches),
// hostile EXTEND2s (a listed identity at a port that is no relay, or
// where another relay answers; a legacy id of another key; the all-zero
// identity) refused with DESTROY and the relay unharmed; no DNS query before the
// exit policy allows the port, at a non-exit and at an exit; exits refuse
// network re-entry (listed ORPorts, however spelled, and the extra list)
// with END CONNECTREFUSED, as C tor's connection_exit_connect().
import net from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { DestroyReason } from '../../services/core/cells.js';
import { randomBytes } from '../../services/core/crypto.js';
import type { Consensus } from '../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../services/core/dir/relay-entry.js';
import { type ExitPolicy, parseExitPolicy, REJECT_ALL } from '../../services/core/exit-policy.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import { EndReason } from '../../services/core/relay-cell.js';
import type { ExtendTarget } from '../../services/core/relay-pivot.js';
import { SocksReply } from '../../services/core/socks5.js';
import { metricsFor } from '../../services/metrics/metrics.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { CircuitError, StreamRefusedError } from '../../services/net/circuit-error.js';
import { OriginCircuit } from '../../services/net/origin-circuit.js';
import { ConsensusCache, type FetchedConsensus } from '../../services/relay/consensus-cache.js';
import { NetworkView } from '../../services/relay/network-view.js';
import { Relay } from '../../services/relay/relay.js';
import { silentLogger } from '../../services/runtime/log.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { viewOverCache } from '../helpers/cache-view.js';
import { flagsListed } from '../helpers/consensus.js';
import { hopTarget, linkPeer } from '../helpers/relays.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { SocksReplyError, socksConnect } from '../helpers/socks-client.js';

/** Every hostname any relay was asked to resolve; only `echo.test` exists. */
const queries: string[] = [];
const resolve = async (host: string) => {
  queries.push(host);
  if (host === 'echo.test') return '127.0.0.1';
  throw new Error('NXDOMAIN');
};

const source: { consensus: Consensus | null; refreshConsensus(): Promise<boolean> } = {
  consensus: null,
  refreshConsensus: async () => false,
};

let echo: TestServer;
let hostile: net.Server;
let hostileConnections = 0;
const registries = new Map<Relay, Registry>();
let guard: Relay;
let middle: Relay;
let exit: Relay;
let unlisted: Relay;
const pool = new ChannelPool({ keys: null, tls: true });

async function startRelay(
  nickname: string,
  exitPolicy: ExitPolicy,
  view: NetworkView | null,
): Promise<Relay> {
  const registry = new Registry();
  const r = new Relay(
    {
      logger: silentLogger,
      registry,
      resolve,
      ...(view
        ? {
            checkExtend: (t: ExtendTarget) => view.checkExtend(t),
            isReentry: (addr: string, port: number) => view.isReentry(addr, port),
          }
        : {}),
    },
    { nickname, host: '127.0.0.1', port: 0, tls: true, keys: generateNodeKeys(), exitPolicy },
  );
  await r.start();
  registries.set(r, registry);
  return r;
}

function listed(r: Relay): ConsensusRelay {
  return {
    nickname: r.nickname,
    identity: r.identity,
    ntorOnionKey: r.ntorKey,
    address: '127.0.0.1',
    orPort: r.port,
    publishedMs: Date.now(),
    flags: ['Running', 'Valid'],
    exitPolicy: r.opts.exitPolicy,
    family: [],
    descriptorDigest: new Uint8Array(32),
    bandwidth: 1_000_000,
  };
}

async function counter(r: Relay, name: 'extendRefused' | 'streams', labels: Record<string, string>) {
  const reg = registries.get(r) as Registry;
  const values: { labels: Record<string, string | number | undefined>; value: number }[] = (
    await metricsFor(reg).relay[name].get()
  ).values;
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((n, v) => n + v.value, 0);
}

/** Writes `text` and resolves with what the echo server sent back (the stream stays open: END would cut the reply). */
function echoed(s: NodeJS.ReadWriteStream, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) resolve(got);
    });
    s.write(text);
  });
}

async function oneHop(r: Relay): Promise<OriginCircuit> {
  return OriginCircuit.create(await pool.get(linkPeer(r)), hopTarget(r));
}

async function refusedWith(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof StreamRefusedError || e instanceof CircuitError) return e.reason;
    throw e;
  }
  throw new Error('not refused');
}

beforeAll(async () => {
  echo = await startEchoServer();
  hostile = net.createServer((s) => {
    hostileConnections++;
    s.destroy();
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
  const view = new NetworkView(source, { reentryReject: [{ host: '127.0.0.1', port: 7 }] });
  // No DNS at all for 443; loopback elsewhere (so re-entry, not the policy, refuses relays' ports).
  const exitPolicy = parseExitPolicy(['reject *:443', 'accept 127.0.0.1:*', 'reject *:*']);
  guard = await startRelay('pguard', REJECT_ALL, view);
  middle = await startRelay('pmiddle', REJECT_ALL, view);
  exit = await startRelay('pexit', exitPolicy, view);
  unlisted = await startRelay('punlisted', REJECT_ALL, null);
  source.consensus = {
    validAfterMs: Date.now(),
    freshUntilMs: Date.now() + 60_000,
    validUntilMs: Date.now() + 180_000,
    votingIntervalSec: 60,
    knownFlags: ['Running', 'Valid'],
    params: {},
    relays: [guard, middle, exit].map(listed),
    bandwidthWeights: {},
    authorities: [],
  };
});

afterAll(async () => {
  pool.closeAll();
  await Promise.all([guard, middle, exit, unlisted].map((r) => r?.stop()));
  await new Promise((r) => hostile.close(r));
  await echo.close();
});

describe('EXTEND2 only to what the consensus lists', () => {
  it('extends to a listed relay at its listed address and ORPort', async () => {
    const circ = await oneHop(guard);
    await circ.extend(hopTarget(middle));
    await circ.extend(hopTarget(exit));
    const s = await circ.openStream({ host: '127.0.0.1', port: echo.port });
    expect(await echoed(s, 'through three hops')).toBe('through three hops');
    s.destroy();
    circ.destroy();
  });

  it('refuses an unlisted identity (DESTROY CONNECTFAILED) without dialling its address', async () => {
    const before = await counter(guard, 'extendRefused', { reason: 'unlisted' });
    const circ = await oneHop(guard);
    const target = { ...hopTarget(unlisted), port: (hostile.address() as net.AddressInfo).port };
    expect(await refusedWith(circ.extend(target))).toBe(DestroyReason.CONNECTFAILED);
    expect(hostileConnections).toBe(0);
    expect(await refusedWith(oneHop(guard).then((c) => c.extend(hopTarget(unlisted))))).toBe(
      DestroyReason.CONNECTFAILED,
    );
    expect((await counter(guard, 'extendRefused', { reason: 'unlisted' })) - before).toBe(2);
  });

  it('refuses a listed identity at an address or port the consensus does not list', async () => {
    const before = await counter(guard, 'extendRefused', { reason: 'address' });
    const hostilePort = (hostile.address() as net.AddressInfo).port;
    for (const target of [
      { ...hopTarget(middle), port: hostilePort },
      { ...hopTarget(middle), port: exit.port },
      { ...hopTarget(middle), address: '127.0.0.2' },
    ]) {
      const circ = await oneHop(guard);
      expect(await refusedWith(circ.extend(target))).toBe(DestroyReason.CONNECTFAILED);
    }
    expect(hostileConnections).toBe(0);
    expect((await counter(guard, 'extendRefused', { reason: 'address' })) - before).toBe(3);
  });
});

describe('EXTEND2 to a relay listed after the extending relay fetched its consensus', () => {
  it('succeeds at once, right after bootstrap: the miss fetches the newer consensus (nothing refused)', async () => {
    const base = source.consensus as Consensus;
    let serving: FetchedConsensus = { consensus: base, raw: new Uint8Array([1]) };
    const cache = new ConsensusCache(async () => serving, { minRefreshMs: 5_000 });
    cache.start();
    await cache.ready();
    const view = viewOverCache(cache);
    const fresh = await startRelay('pfresh', REJECT_ALL, view);
    const late = await startRelay('plate', REJECT_ALL, null);
    try {
      // The authorities now list the newcomers; a client holding that consensus extends through
      // `fresh` to `late` within the cache's minRefreshMs of its bootstrap fetch.
      serving = {
        consensus: {
          ...base,
          validAfterMs: base.validAfterMs + 1,
          relays: [...base.relays, listed(fresh), listed(late)],
        },
        raw: new Uint8Array([2]),
      };
      const circ = await oneHop(fresh);
      await circ.extend(hopTarget(late));
      expect(await counter(fresh, 'extendRefused', {})).toBe(0);
      circ.destroy();
    } finally {
      cache.stop();
      await Promise.all([fresh.stop(), late.stop()]);
    }
  });
});

describe('hostile EXTEND2s: DESTROY CONNECTFAILED, the relay unharmed', () => {
  it('a listed identity at a port where no relay answers, or another relay does: dialled, refused in the link handshake', async () => {
    const garbage = net.createServer((s) => {
      // Read (and drop) what the relay sends, so its hang-up is seen and close() can finish.
      s.resume();
      s.on('error', () => {});
      s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno');
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    const base = source.consensus as Consensus;
    const hostilePort = (hostile.address() as net.AddressInfo).port;
    const garbagePort = (garbage.address() as net.AddressInfo).port;
    const liar = (identity: Uint8Array, port: number): ConsensusRelay => ({
      ...listed(unlisted),
      identity,
      orPort: port,
    });
    const ids = [randomBytes(32), randomBytes(32)];
    // The consensus says: ids[0] at the closing listener, ids[1] at a web server, `unlisted` at middle's ORPort.
    source.consensus = {
      ...base,
      relays: [
        ...base.relays,
        liar(ids[0] as Uint8Array, hostilePort),
        liar(ids[1] as Uint8Array, garbagePort),
        liar(unlisted.identity, middle.port),
      ],
    };
    const before = hostileConnections;
    try {
      for (const target of [
        { ...hopTarget(unlisted), identity: ids[0] as Uint8Array, port: hostilePort },
        { ...hopTarget(unlisted), identity: ids[1] as Uint8Array, port: garbagePort },
        { ...hopTarget(unlisted), port: middle.port },
      ]) {
        const circ = await oneHop(guard);
        expect(await refusedWith(circ.extend(target))).toBe(DestroyReason.CONNECTFAILED);
      }
      expect(hostileConnections - before).toBe(1);
      // The channel to middle proved middle's identity, not the one asked for; extends to middle still work.
      const circ = await oneHop(guard);
      await circ.extend(hopTarget(middle));
      circ.destroy();
    } finally {
      source.consensus = base;
      await new Promise((r) => garbage.close(r));
    }
  });

  it('a legacy id of another key, the all-zero identity, our own identity: refused before any dial, counted by reason', async () => {
    const counts = async () => ({
      identity: await counter(guard, 'extendRefused', { reason: 'identity' }),
      self: await counter(guard, 'extendRefused', { reason: 'self' }),
    });
    const before = await counts();
    const hostilePort = (hostile.address() as net.AddressInfo).port;
    const connections = hostileConnections;
    for (const target of [
      { ...hopTarget(middle), legacyId: randomBytes(20) },
      { ...hopTarget(middle), identity: new Uint8Array(32), port: hostilePort },
      { ...hopTarget(guard), port: hostilePort },
    ]) {
      const circ = await oneHop(guard);
      expect(await refusedWith(circ.extend(target))).toBe(DestroyReason.CONNECTFAILED);
    }
    const after = await counts();
    expect(after.identity - before.identity).toBe(1);
    expect(after.self - before.self).toBe(2);
    expect(hostileConnections).toBe(connections);
  });
});

describe('no DNS before the exit policy allows the stream', () => {
  it('a non-exit refuses BEGIN to a hostname with END EXITPOLICY and no query', async () => {
    const circ = await oneHop(middle);
    expect(await refusedWith(circ.openStream({ host: 'dns.test', port: echo.port }))).toBe(
      EndReason.EXITPOLICY,
    );
    expect(await refusedWith(circ.openStream({ host: 'dns.test', port: 80 }))).toBe(EndReason.EXITPOLICY);
    expect(queries).toEqual([]);
    circ.destroy();
  });

  it('an exit whose policy rejects the port for every address refuses with no query', async () => {
    const circ = await oneHop(exit);
    expect(await refusedWith(circ.openStream({ host: 'dns.test', port: 443 }))).toBe(EndReason.EXITPOLICY);
    expect(queries).toEqual([]);
    circ.destroy();
  });

  it('an exit whose policy may accept the port resolves, then checks the address', async () => {
    const circ = await oneHop(exit);
    const s = await circ.openStream({ host: 'echo.test', port: echo.port });
    expect(await echoed(s, 'resolved')).toBe('resolved');
    s.destroy();
    expect(await refusedWith(circ.openStream({ host: 'nx.test', port: echo.port }))).toBe(
      EndReason.RESOLVEFAILED,
    );
    expect(queries).toEqual(['echo.test', 'nx.test']);
    circ.destroy();
  });
});

describe('network re-entry', () => {
  it('refuses listed ORPorts however spelled, and the extra list, with END CONNECTREFUSED; counted', async () => {
    const before = await counter(exit, 'streams', { type: 'BEGIN', outcome: 'reentry' });
    const circ = await oneHop(exit);
    const targets = [
      { host: '127.0.0.1', port: guard.port },
      { host: '127.0.0.1', port: exit.port },
      { host: '::ffff:127.0.0.1', port: middle.port },
      { host: 'echo.test', port: middle.port },
      { host: '127.0.0.1', port: 7 },
    ];
    for (const t of targets) {
      expect(await refusedWith(circ.openStream(t)), `${t.host}:${t.port}`).toBe(EndReason.CONNECTREFUSED);
    }
    expect((await counter(exit, 'streams', { type: 'BEGIN', outcome: 'reentry' })) - before).toBe(
      targets.length,
    );
    // The unlisted relay is not part of the network: its port is an ordinary target.
    const s = await circ.openStream({ host: '127.0.0.1', port: unlisted.port });
    s.destroy();
    circ.destroy();
  });
});

describe('a LocalNetwork (the in-process `shallot up`)', () => {
  it("exits refuse listed ORPorts from their own consensus, and ports added after start (the launcher's SOCKS and ops ports)", async () => {
    const network = await LocalNetwork.start(
      { logger: silentLogger, registry: new Registry() },
      {
        authorities: 3,
        relays: 4,
        exits: 2,
        votingIntervalSec: 5,
        tls: true,
        host: '127.0.0.1',
        basePort: 0,
      },
    );
    const client = new ShallotClient(
      { logger: silentLogger, registry: new Registry() },
      { authorities: network.endpoints, socksHost: '127.0.0.1', socksPort: 0 },
    );
    try {
      await network.waitForConsensus(4, 40_000);
      await client.start();
      await client.ready(30_000);
      // The first consensus can predate the authorities' uptime thresholds (no Guard yet): a stream
      // would wait for one, and the replies compared below must not include that wait.
      await flagsListed(client, ['Guard'], 2);
      const reply = async (port: number) => {
        try {
          (await socksConnect(client.socksPort, '127.0.0.1', port, { timeoutMs: 20_000 })).destroy();
          return 'connected';
        } catch (e) {
          if (e instanceof SocksReplyError) return e.reply;
          throw e;
        }
      };
      const orPort = network.relays[3]?.relay.port as number;
      expect(await reply(orPort)).toBe(SocksReply.CONNECTION_REFUSED);
      expect(await reply(echo.port)).toBe('connected');
      network.rejectReentry([{ host: '127.0.0.1', port: echo.port }]);
      expect(await reply(echo.port)).toBe(SocksReply.CONNECTION_REFUSED);
    } finally {
      await client.stop();
      await network.stop();
    }
  }, 90_000);
});
