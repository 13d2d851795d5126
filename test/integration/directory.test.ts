// Three directory authorities on 127.0.0.1 with a 4 s voting interval over
// real HTTP: relays upload signed descriptors, the authorities vote, agree
// on a consensus, sign it and serve it; clients verify it with
// fetchConsensus. Then one authority stops and the other two keep the
// network going with 2 of 3 signatures.
import * as http from 'node:http';
import * as net from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { ed25519PublicFromSeed, randomBytes } from '../../services/core/crypto.js';
import {
  type Consensus,
  decodeSignedConsensus,
  encodeSignedConsensus,
  signConsensus,
} from '../../services/core/dir/consensus.js';
import { type RelayDescriptor, signRelayDescriptor } from '../../services/core/dir/descriptor.js';
import { MAX_DESCRIPTOR_BYTES } from '../../services/core/dir/fields.js';
import { encodeVote, type Vote } from '../../services/core/dir/vote.js';
import { parseExitPolicy } from '../../services/core/exit-policy.js';
import { generateNodeKeys, type NodeKeys } from '../../services/core/node-keys.js';
import { DirectoryAuthority } from '../../services/directory/authority.js';
import { type AuthorityOptions, resolveTiming } from '../../services/directory/config.js';
import { ADMISSION_TESTS } from '../../services/directory/descriptor-options.js';
import { SIGNATURE_PATH, VOTE_PATH } from '../../services/directory/http.js';
import {
  type AuthorityEndpoint,
  CONSENSUS_PATH,
  DirClientError,
  fetchConsensus,
  httpRequest,
  publishDescriptor,
} from '../../services/net/dir-client.js';
import { Relay } from '../../services/relay/relay.js';
import { silentLogger } from '../../services/runtime/log.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { LOCAL_EXIT_POLICY } from '../helpers/relays.js';

const INTERVAL = 4;

interface TestRelay {
  keys: NodeKeys;
  desc: RelayDescriptor;
  signed: Uint8Array;
}

function makeRelay(i: number, opts: { exit: boolean; hsdir: boolean }): TestRelay {
  const keys = generateNodeKeys();
  const desc: RelayDescriptor = {
    nickname: `relay${i}`,
    identity: keys.identity,
    ntorOnionKey: keys.onionKeys[0]!.public,
    address: '127.0.0.1',
    orPort: 9000 + i,
    linkUrl: `wss://127.0.0.1:${9000 + i}/link`,
    bandwidth: 1_000_000 + i,
    family: [],
    exitPolicy: parseExitPolicy(opts.exit ? ['accept 127.0.0.0/8:*', 'reject *:*'] : ['reject *:*']),
    platform: 'Shallot test',
    publishedMs: Date.now(),
    uptimeSec: 10,
    protocols: { Link: '4-5', Relay: '2-4' },
    hsdir: opts.hsdir,
  };
  return { keys, desc, signed: signRelayDescriptor(desc, keys.identitySeed) };
}

const seeds = [randomBytes(32), randomBytes(32), randomBytes(32)];
const registries = seeds.map(() => new Registry());
let auths: AuthorityEndpoint[];
let authorities: DirectoryAuthority[];
const relays = [
  makeRelay(0, { exit: true, hsdir: true }),
  makeRelay(1, { exit: false, hsdir: true }),
  makeRelay(2, { exit: false, hsdir: false }),
  makeRelay(3, { exit: true, hsdir: false }),
];

async function metricValue(reg: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return Number(v?.value ?? 0);
}

/** Polls fetchConsensus until `pred` holds, returning that consensus. */
async function waitForConsensus(
  pred: (c: Consensus, raw: Uint8Array) => boolean,
  endpoints: AuthorityEndpoint[],
  timeoutMs: number,
): Promise<{ consensus: Consensus; raw: Uint8Array }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const r = await fetchConsensus(endpoints, { nowMs: Date.now(), timeoutMs: 2000 });
      if (pred(r.consensus, r.raw)) return r;
      last = `consensus at ${r.consensus.validAfterMs} did not match`;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no matching consensus in ${timeoutMs} ms: ${String(last)}`);
}

beforeAll(async () => {
  const ports = [await ephemeralPort(), await ephemeralPort(), await ephemeralPort()];
  auths = seeds.map((s, i) => ({
    identity: toHex(ed25519PublicFromSeed(s)),
    url: `http://127.0.0.1:${ports[i]}`,
  }));
  authorities = seeds.map(
    (s, i) =>
      new DirectoryAuthority(
        { logger: silentLogger, registry: registries[i]! },
        {
          identitySeed: s,
          host: '127.0.0.1',
          port: ports[i]!,
          peers: auths,
          votingIntervalSec: INTERVAL,
          testnet: true,
          params: { circwindow: 1000 },
          // These made-up relays all say 127.0.0.1; the cap has its own tests.
          maxServersPerAddr: 0,
          name: `auth${i}`,
        },
      ),
  );
  await Promise.all(authorities.map((a) => a.start()));
  for (const r of relays) {
    const res = await publishDescriptor(auths, r.signed, { timeoutMs: 2000 });
    expect(res.accepted).toBe(3);
  }
});

afterAll(async () => {
  await Promise.all(authorities.map((a) => a.stop()));
});

describe('directory authorities', () => {
  it('refuses tampered, oversized, garbage and badly timed descriptors with 400, and counts them', async () => {
    const before = await metricValue(registries[0]!, 'shallot_dir_descriptors_total', {
      authority: 'auth0',
      outcome: 'rejected',
    });
    const tampered = new Uint8Array(relays[0]!.signed);
    // Flip a digit of the ORPort inside the signed body.
    const text = Buffer.from(tampered).toString('utf8').replace('"orPort":9000', '"orPort":9001');
    const future = makeRelay(7, { exit: false, hsdir: false });
    future.desc.publishedMs = Date.now() + 13 * 3600_000;
    const stale = makeRelay(8, { exit: false, hsdir: false });
    stale.desc.publishedMs = Date.now() - 25 * 3600_000;
    const bodies = [
      new TextEncoder().encode(text),
      new Uint8Array(MAX_DESCRIPTOR_BYTES + 1).fill(0x20),
      randomBytes(300),
      new Uint8Array(0),
      signRelayDescriptor(future.desc, future.keys.identitySeed),
      signRelayDescriptor(stale.desc, stale.keys.identitySeed),
    ];
    for (const body of bodies) {
      const r = await httpRequest(auths[0]!.url, 'POST', '/tor/', { body, timeoutMs: 2000 });
      expect(r.status).toBe(400);
    }
    const after = await metricValue(registries[0]!, 'shallot_dir_descriptors_total', {
      authority: 'auth0',
      outcome: 'rejected',
    });
    expect(after - before).toBe(bodies.length);
    // publishDescriptor reports the refusals per authority.
    const res = await publishDescriptor(auths, bodies[0]!, { timeoutMs: 2000 });
    expect(res.accepted).toBe(0);
    expect(res.results.every((x) => !x.ok && x.error?.startsWith('HTTP 400'))).toBe(true);
    // Re-uploading the stored descriptor is fine (relays retry).
    expect((await publishDescriptor(auths, relays[0]!.signed)).accepted).toBe(3);
  });

  it('refuses votes from unknown keys and garbage votes', async () => {
    const stranger = randomBytes(32);
    const va = Math.ceil(Date.now() / (INTERVAL * 1000)) * INTERVAL * 1000;
    const vote: Vote = {
      authority: toHex(ed25519PublicFromSeed(stranger)),
      publishedMs: Date.now(),
      validAfterMs: va,
      freshUntilMs: va + INTERVAL * 1000,
      validUntilMs: va + 3 * INTERVAL * 1000,
      votingIntervalSec: INTERVAL,
      knownFlags: ['Running', 'Valid'],
      params: {},
      srCommits: [],
      relays: [],
    };
    for (const body of [encodeVote(vote, stranger), randomBytes(500), new TextEncoder().encode('{}')]) {
      const r = await httpRequest(auths[1]!.url, 'POST', VOTE_PATH, { body, timeoutMs: 2000 });
      expect(r.status).toBe(400);
    }
  });

  it('publishes a consensus listing every relay with testnet flags, signed by all three', async () => {
    const { consensus, raw } = await waitForConsensus(
      // All signatures are pushed a distribution delay before valid-after;
      // waiting for 3 keeps a loaded machine from failing the count below.
      (c, raw) =>
        c.relays.length === relays.length && decodeSignedConsensus(raw, 1 << 20).signatures.length === 3,
      auths,
      (4 * INTERVAL + 2) * 1000,
    );
    const byNick = new Map(consensus.relays.map((r) => [r.nickname, r]));
    const base = ['Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid'];
    expect(byNick.get('relay0')!.flags).toEqual([...base, 'Exit', 'HSDir'].sort());
    expect(byNick.get('relay1')!.flags).toEqual([...base, 'HSDir'].sort());
    expect(byNick.get('relay2')!.flags).toEqual(base);
    expect(byNick.get('relay3')!.flags).toEqual([...base, 'Exit'].sort());
    expect(byNick.get('relay0')!.linkUrl).toBe('wss://127.0.0.1:9000/link');
    expect(toHex(byNick.get('relay2')!.ntorOnionKey)).toBe(toHex(relays[2]!.keys.onionKeys[0]!.public));
    expect(consensus.params.circwindow).toBe(1000);
    expect(consensus.authorities).toEqual(auths.map((a) => a.identity).sort());
    expect(consensus.freshUntilMs - consensus.validAfterMs).toBe(INTERVAL * 1000);
    expect(consensus.validUntilMs - consensus.validAfterMs).toBe(3 * INTERVAL * 1000);
    expect(consensus.validAfterMs % (INTERVAL * 1000)).toBe(0);
    // Every authority serves the same document once the signatures are in.
    const signed = decodeSignedConsensus(raw, 1 << 20);
    expect(signed.signatures.length).toBe(3);
    expect(new Set(signed.signatures.map((s) => toHex(s.identity)))).toEqual(
      new Set(auths.map((a) => a.identity)),
    );
    expect(authorities.every((a) => a.latestConsensus !== null)).toBe(true);
    // Metrics and readiness.
    expect(
      await metricValue(registries[1]!, 'shallot_consensus_relays', { authority: 'auth1', flag: 'all' }),
    ).toBe(relays.length);
    expect(
      await metricValue(registries[1]!, 'shallot_consensus_relays', { authority: 'auth1', flag: 'Exit' }),
    ).toBe(2);
    expect(await metricValue(registries[0]!, 'shallot_consensus_signatures', { authority: 'auth0' })).toBe(3);
    expect(authorities[2]!.health().ready).toBe(true);
    // Served deflated at the .z URL and to a client that accepts deflate (dir-spec §6.1), plain otherwise.
    const served = authorities[2]!.latestConsensus!;
    const opts = { maxBytes: 8 << 20, maxInflatedBytes: 8 << 20 };
    for (const path of ['/tor/status-vote/current/consensus.z', '/tor/status-vote/current/consensus']) {
      const z = await httpRequest(auths[2]!.url, 'GET', path, opts);
      expect(Buffer.compare(z.body, served)).toBe(0);
      expect(z.wireBytes).toBeLessThan(served.length / 2);
    }
    const plain = await httpRequest(auths[2]!.url, 'GET', '/tor/status-vote/current/consensus', {
      maxBytes: opts.maxBytes,
    });
    expect(plain.wireBytes).toBe(served.length);
    // Ops endpoints live on the ops port only, never on the DirPort (issue 12 item 7).
    for (const ops of ['/metrics', '/healthz', '/readyz']) {
      expect((await httpRequest(auths[2]!.url, 'GET', ops)).status).toBe(404);
    }
  });

  it('refuses forged consensus signatures before queueing or "already have it", and counts them', async () => {
    const refused = () =>
      metricValue(registries[0]!, 'shallot_dir_peer_documents_refused_total', {
        authority: 'auth0',
        kind: 'signature',
        reason: 'bad-signature',
      });
    const before = await refused();
    const va = Math.ceil(Date.now() / (INTERVAL * 1000)) * INTERVAL * 1000;
    // In the name of auth1 (whose signature auth0 may already hold) and of auth2, for the
    // current and the coming round: every one is refused, none queued or answered 200.
    for (const validAfterMs of [va - INTERVAL * 1000, va, va + INTERVAL * 1000]) {
      for (const who of [auths[1]!, auths[2]!]) {
        const body = new TextEncoder().encode(
          JSON.stringify({
            digest: toHex(randomBytes(32)),
            identity: who.identity,
            signature: Buffer.from(randomBytes(64)).toString('base64'),
            validAfterMs,
          }),
        );
        const r = await httpRequest(auths[0]!.url, 'POST', SIGNATURE_PATH, { body, timeoutMs: 2000 });
        expect(r.status).toBe(400);
        expect(Buffer.from(r.body).toString()).toMatch(/bad signature/);
      }
    }
    expect((await refused()) - before).toBe(6);
  });

  it('refuses a consensus signed by only one of three authorities', async () => {
    const { consensus } = await fetchConsensus(auths, { nowMs: Date.now() });
    const lone = encodeSignedConsensus(consensus, [signConsensus(consensus, seeds[0]!)]);
    const fake = http.createServer((_req, res) => res.writeHead(200).end(Buffer.from(lone)));
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(fake.address() as net.AddressInfo).port}`;
    try {
      const liars = auths.map((a) => ({ identity: a.identity, url }));
      const err = await fetchConsensus(liars, { nowMs: Date.now(), timeoutMs: 2000 }).catch((e) => e);
      expect(err).toBeInstanceOf(DirClientError);
      expect((err as DirClientError).failures).toHaveLength(3);
      expect((err as Error).message).toMatch(/not enough valid authority signatures/);
      // One honest authority in the list is enough to get a good consensus.
      const mixed = [auths[0]!, { identity: auths[1]!.identity, url }, { identity: auths[2]!.identity, url }];
      const ok = await fetchConsensus(mixed, { nowMs: Date.now() });
      expect(ok.from).toBe(auths[0]!.url);
    } finally {
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });

  it('keeps publishing with two of three authorities, signed by those two', async () => {
    await authorities[2]!.stop();
    const stoppedAt = Date.now();
    const { raw } = await waitForConsensus(
      // A round whose vote came after the stop.
      (c) => c.validAfterMs - 2 * (INTERVAL / 5) * 1000 > stoppedAt && c.relays.length === relays.length,
      auths,
      (3 * INTERVAL + 2) * 1000,
    );
    const signed = decodeSignedConsensus(raw, 1 << 20);
    expect(signed.signatures.map((s) => toHex(s.identity)).sort()).toEqual(
      [auths[0]!.identity, auths[1]!.identity].sort(),
    );
    // The dead authority is just skipped by clients.
    const dead = await httpRequest(auths[2]!.url, 'GET', CONSENSUS_PATH, { timeoutMs: 1000 }).catch((e) => e);
    expect(dead).toBeInstanceOf(Error);
  });
});

/** A testnet authority on a free port that is its own only peer (2 s voting unless given), started; the caller stops it. */
async function startLoneAuthority(name: string, o: Partial<AuthorityOptions> = {}) {
  const seed = randomBytes(32);
  const port = await ephemeralPort();
  const registry = new Registry();
  const self = { identity: toHex(ed25519PublicFromSeed(seed)), url: `http://127.0.0.1:${port}` };
  const auth = new DirectoryAuthority(
    { logger: silentLogger, registry },
    {
      identitySeed: seed,
      host: '127.0.0.1',
      port,
      peers: [self],
      votingIntervalSec: 2,
      testnet: true,
      name,
      ...o,
    },
  );
  await auth.start();
  return { auth, self, registry };
}

describe('a lone authority capping relays per address (AuthDirMaxServersPerAddr)', () => {
  it('lists the best two per address, more on an authority’s address, and counts the rest', async () => {
    const { auth, self, registry } = await startLoneAuthority('cap');
    try {
      // Four on one address (the best two by bandwidth stay), one alone, four on the authority's.
      const posted = [
        ...[0, 1, 2, 3].map((i) => ({ i, address: '10.9.9.9', bw: 1000 * (i + 1) })),
        { i: 4, address: '10.9.9.8', bw: 10 },
        ...[5, 6, 7, 8].map((i) => ({ i, address: '127.0.0.1', bw: 100 })),
      ];
      for (const p of posted) {
        const r = makeRelay(40 + p.i, { exit: false, hsdir: false });
        r.desc.address = p.address;
        r.desc.bandwidth = p.bw;
        delete r.desc.linkUrl;
        const res = await publishDescriptor([self], signRelayDescriptor(r.desc, r.keys.identitySeed));
        expect(res.accepted).toBe(1);
      }
      const { consensus } = await waitForConsensus((c) => c.relays.length > 0, [self], 8000);
      expect(consensus.relays.map((r) => r.nickname).sort()).toEqual(
        ['relay42', 'relay43', 'relay44', 'relay45', 'relay46', 'relay47', 'relay48'].sort(),
      );
      expect(
        await metricValue(registry, 'shallot_dir_vote_relays_not_running', {
          authority: 'cap',
          reason: 'sybil',
        }),
      ).toBe(2);
    } finally {
      await auth.stop();
    }
  });
});

describe('a lone authority testing reachability by link handshake', () => {
  it('lists only relays that prove their identity at their address; refusals are counted', async () => {
    // A real relay, a bare TCP listener that accepts and closes, a port nobody listens on.
    const keys = generateNodeKeys();
    const relay = new Relay(
      { logger: silentLogger, registry: new Registry() },
      { nickname: 'real', host: '127.0.0.1', port: 0, tls: true, keys, exitPolicy: LOCAL_EXIT_POLICY },
    );
    await relay.start();
    const bare = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
    const barePort = (bare.address() as net.AddressInfo).port;
    const deadPort = await ephemeralPort();
    const { auth, self, registry } = await startLoneAuthority('lone', {
      probeReachability: true,
      maxServersPerAddr: 0,
      // Stable at once; Guard and HSDir only after an hour this authority saw the relay up.
      minUptimeSec: { stable: 0, guard: 3600, hsdir: 3600 },
    });
    const refused = (reason: string) =>
      metricValue(registry, 'shallot_dir_descriptors_refused_total', { authority: 'lone', reason });
    try {
      const real = makeRelay(20, { exit: false, hsdir: true });
      real.keys = keys;
      real.desc = {
        ...real.desc,
        // A claimed month of uptime earns nothing: the authority counts what it saw.
        uptimeSec: 30 * 86_400,
        identity: keys.identity,
        ntorOnionKey: keys.onionKeys[0]!.public,
        orPort: relay.port,
        linkUrl: relay.linkUrl,
      };
      // Someone else's identity at the real relay's port: the handshake shows the real identity.
      const squatter = makeRelay(21, { exit: false, hsdir: false });
      squatter.desc.orPort = relay.port;
      squatter.desc.linkUrl = relay.linkUrl;
      const bareRelay = makeRelay(22, { exit: false, hsdir: false });
      bareRelay.desc.orPort = barePort;
      bareRelay.desc.linkUrl = `wss://127.0.0.1:${barePort}/link`;
      const dead = makeRelay(23, { exit: false, hsdir: false });
      dead.desc.orPort = deadPort;
      dead.desc.linkUrl = `wss://127.0.0.1:${deadPort}/link`;
      for (const r of [squatter, real, bareRelay, dead]) {
        const res = await publishDescriptor([self], signRelayDescriptor(r.desc, r.keys.identitySeed));
        expect(res.accepted).toBe(1);
      }
      const { consensus, raw } = await waitForConsensus((c) => c.relays.length >= 1, [self], 8000);
      expect(consensus.relays.map((r) => r.nickname)).toEqual(['relay20']);
      expect(consensus.relays[0]!.flags).toEqual(['Fast', 'Running', 'Stable', 'V2Dir', 'Valid']);
      expect(decodeSignedConsensus(raw, 1 << 20).signatures).toHaveLength(1);
      expect(await refused('wrong-identity')).toBe(1);
      expect(await refused('unreachable')).toBe(2);
      // Once the real relay is verified there, its port is refused to other identities outright.
      const again = makeRelay(24, { exit: false, hsdir: false });
      again.desc.orPort = relay.port;
      const res = await publishDescriptor([self], signRelayDescriptor(again.desc, again.keys.identitySeed));
      expect(res.accepted).toBe(0);
      expect(await refused('address-taken')).toBe(1);
      expect(auth.health().descriptors).toBe(1);
    } finally {
      await auth.stop();
      await relay.stop();
      await new Promise<void>((r) => bare.close(() => r()));
    }
  });

  it('caps descriptors awaiting their test (503), and tests a bounded number at once', {
    timeout: 90_000,
  }, async () => {
    // A listener that accepts and never answers: each test waits for its timeout. It keeps
    // every connection (one per test) and the most it had open at once.
    const held: net.Socket[] = [];
    let open = 0;
    let peakOpen = 0;
    const silent = net.createServer((s) => {
      held.push(s);
      peakOpen = Math.max(peakOpen, ++open);
      s.on('close', () => open--);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const { auth, self, registry } = await startLoneAuthority('capped', {
      votingIntervalSec: 10,
      probeReachability: true,
      maxUnverifiedDescriptors: 5,
      probeConcurrency: 2,
    });
    // Each test of a descriptor at the silent listener lasts its whole timeout.
    const { probeTimeoutMs } = resolveTiming({ votingIntervalSec: 10 });
    try {
      const statuses: number[] = [];
      const uploadsFrom = performance.now();
      let firstReuploadAt = Number.POSITIVE_INFINITY;
      const first = makeRelay(30, { exit: false, hsdir: false });
      for (let i = 0; i < 8; i++) {
        const f = i === 0 ? first : makeRelay(30 + i, { exit: false, hsdir: false });
        f.desc.orPort = silentPort;
        f.desc.linkUrl = `wss://127.0.0.1:${silentPort}/link`;
        const r = await httpRequest(self.url, 'POST', '/tor/', {
          body: signRelayDescriptor(f.desc, f.keys.identitySeed),
          timeoutMs: 10_000,
        });
        statuses.push(r.status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 503, 503, 503]);
      expect(auth.health().unverifiedDescriptors).toBe(5);
      // Re-uploads of one identity (each newer) do not queue more tests: one runs, the newest is next.
      for (let i = 1; i <= 20; i++) {
        first.desc.publishedMs += 1000;
        const r = await httpRequest(self.url, 'POST', '/tor/', {
          body: signRelayDescriptor(first.desc, first.keys.identitySeed),
          timeoutMs: 10_000,
        });
        expect(r.status).toBe(200);
        if (i === 1) firstReuploadAt = performance.now();
      }
      const uploadsMs = performance.now() - uploadsFrom;
      // Two tests in flight: two connections reach the silent listener, the rest wait. Waited
      // for, then a moment for a third that should not come (on a busy machine the uploads
      // may outlast a test or two, so how many came in all is no measure; how many were open
      // at once is).
      const until = performance.now() + 10_000;
      while (held.length < 2 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      expect(held.length).toBeGreaterThanOrEqual(2);
      expect(peakOpen).toBe(2);
      expect(
        await metricValue(registry, 'shallot_dir_descriptors_refused_total', {
          authority: 'capped',
          reason: 'unverified-full',
        }),
      ).toBe(3);
      // Every test times out; after ADMISSION_TESTS tests half an interval apart (a
      // timeout may be the authority's own overload) the forged descriptors are
      // dropped and the slots freed.
      const deadline = Date.now() + 45_000;
      while (Number(auth.health().unverifiedDescriptors) > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(auth.health().unverifiedDescriptors).toBe(0);
      expect(auth.health().descriptors).toBe(0);
      // Five identities tested ADMISSION_TESTS times each, the re-uploaded one once more for
      // each of its tests a re-upload overtook — not once per re-upload (25 more). Each test
      // lasts a whole probe timeout and the next starts after it, so the uploads (however
      // slow the machine) overtook at most ceil(uploadsMs / probeTimeoutMs) of them, and at
      // least the first if the first re-upload was answered within the first test's timeout.
      const overtakenMax = Math.ceil(uploadsMs / probeTimeoutMs);
      const overtakenMin = firstReuploadAt - uploadsFrom < probeTimeoutMs ? 1 : 0;
      expect(held.length).toBeGreaterThanOrEqual(5 * ADMISSION_TESTS + overtakenMin);
      expect(held.length).toBeLessThanOrEqual(5 * ADMISSION_TESTS + overtakenMax);
      expect(overtakenMax).toBeLessThan(20);
    } finally {
      await auth.stop();
      for (const s of held) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});
