// Onion-service roles on four relays in one process over real wss links. Services and
// clients are played by origin circuits sending the real cells (core/hs-cells.ts):
// intro point (ESTABLISH_INTRO with the last hop's KH, INTRODUCE1 -> INTRODUCE2, ACKs,
// DoS bucket), rendezvous point (cookies, RENDEZVOUS1 -> RENDEZVOUS2, splice, then a
// stream end to end through hs-ntor virtual hops; expiry) and HSDir over BEGIN_DIR.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromUtf8, toHex } from '../../services/core/bytes.js';
import { ed25519Expand } from '../../services/core/crypto/ed25519-math.js';
import {
  ed25519Generate,
  legacyIdFromEd25519,
  randomBytes,
  x25519Generate,
} from '../../services/core/crypto.js';
import { parseExitPolicy } from '../../services/core/exit-policy.js';
import {
  buildEstablishIntro,
  buildIntroduce1,
  type DosParams,
  decodeIntroduceAck,
  IntroduceAckStatus,
  openIntroduce2,
} from '../../services/core/hs-cells.js';
import { buildHsDescriptor } from '../../services/core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity, hsSubcredential } from '../../services/core/hs-keys.js';
import {
  hsNtorClientRendezvous,
  hsNtorServiceRendezvous,
  hsRendHopKeys,
} from '../../services/core/hs-ntor.js';
import {
  encodeEstablishRendezvous,
  encodeRendezvous1,
  joinHandshakeInfo,
  splitHandshakeInfo,
} from '../../services/core/hs-rend-cells.js';
import { relayLinkSpecifiers } from '../../services/core/link-specifiers.js';
import { generateNodeKeys } from '../../services/core/node-keys.js';
import type { RelayMessage } from '../../services/core/relay-cell.js';
import { hsVirtualHop } from '../../services/core/relay-crypto.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { dirRequest } from '../../services/net/dir-http.js';
import type { HopTarget } from '../../services/net/hop-target.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';
import { HSDIR_PUBLISH_PATH, hsDescriptorPath } from '../../services/relay/hsdir-store.js';
import { RelayNode } from '../../services/relay/node.js';
import { attachOnionRoles, type OnionRoles } from '../../services/relay/onion-roles.js';
import { silentLogger } from '../../services/runtime/log.js';
import { buildCircuit, hopTarget } from '../helpers/relays.js';

interface TestRelay {
  node: RelayNode;
  roles: OnionRoles;
  registry: Registry;
}

const relays: TestRelay[] = [];
const pool = new ChannelPool({ keys: null, tls: true });
/** r3 is the rendezvous point whose cookies expire quickly. */
const SHORT_REND_TIMEOUT_MS = 400;

const target = (t: TestRelay): HopTarget => hopTarget(t.node.relay);
const build = (...path: TestRelay[]) =>
  buildCircuit(
    pool,
    path.map((t) => t.node.relay),
  );

function r(i: number): TestRelay {
  const t = relays[i];
  if (!t) throw new Error(`no relay ${i}`);
  return t;
}

/** Next message of `type` from the last hop (bounded by the circuit's own timeout). */
async function next(circ: OriginCircuit, type: RelayMessage['type'], timeoutMs = 5_000): Promise<Uint8Array> {
  const { msg } = await circ.waitFor((_hop, m) => m.type === type, timeoutMs);
  return 'body' in msg ? msg.body : new Uint8Array(0);
}

/** Resolves true when the circuit is torn down, false after `ms`. */
function destroyed(circ: OriginCircuit, ms = 5_000): Promise<boolean> {
  if (!circ.isOpen) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    circ.once('destroyed', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Polls `cond` every 10 ms, at most `ms`. */
async function until(cond: () => boolean, ms = 3_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 10) {
    if (cond()) return true;
    await new Promise((res) => setTimeout(res, 10));
  }
  return cond();
}

async function metric(t: TestRelay, name: string, labels: Record<string, string>): Promise<number> {
  const m = t.registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}

/** An onion service's per-intro-point keys. */
function serviceKeys() {
  const auth = ed25519Generate();
  const enc = x25519Generate();
  return { auth, enc, subcredential: randomBytes(32) };
}
type ServiceKeys = ReturnType<typeof serviceKeys>;

async function establishIntro(path: TestRelay[], keys: ServiceKeys, dos?: DosParams): Promise<OriginCircuit> {
  const circ = await build(...path);
  const kh = circ.lastHopKh;
  if (!kh) throw new Error('no KH for the last hop');
  const body = buildEstablishIntro(
    { authKeyPub: keys.auth.public, authKeySeed: keys.auth.seed, ...(dos ? { dos } : {}) },
    kh,
  );
  const established = next(circ, 'INTRO_ESTABLISHED');
  circ.sendControl({ type: 'ESTABLISH_INTRO', body });
  await established;
  return circ;
}

function introduce1For(keys: ServiceKeys, rp: TestRelay, cookie = randomBytes(20)) {
  return buildIntroduce1(
    {
      authKey: keys.auth.public,
      B: keys.enc.public,
      subcredential: keys.subcredential,
      plaintext: {
        cookie,
        extensions: [],
        onionKey: rp.node.relay.ntorKey,
        linkSpecifiers: relayLinkSpecifiers({
          address: '127.0.0.1',
          port: rp.node.relay.port,
          legacyId: legacyIdFromEd25519(rp.node.relay.identity),
          ed25519Id: rp.node.relay.identity,
        }),
      },
    },
    randomBytes,
  );
}

/** Sends INTRODUCE1 on a fresh client circuit and returns the ACK status. */
async function introduce(path: TestRelay[], body: Uint8Array): Promise<number> {
  const circ = await build(...path);
  const ack = next(circ, 'INTRODUCE_ACK');
  circ.sendControl({ type: 'INTRODUCE1', body });
  const status = decodeIntroduceAck(await ack).status;
  circ.destroy();
  return status;
}

beforeAll(async () => {
  for (let i = 0; i < 4; i++) {
    const registry = new Registry();
    const node = new RelayNode(
      { logger: silentLogger, registry },
      {
        nickname: `hs${i}`,
        host: '127.0.0.1',
        port: 0,
        tls: true,
        keys: generateNodeKeys(),
        exitPolicy: parseExitPolicy(['reject *:*']),
        authorities: [],
      },
    );
    const roles = attachOnionRoles(node, {
      limits: { rendezvousTimeoutMs: i === 3 ? SHORT_REND_TIMEOUT_MS : 30_000 },
    });
    await node.start();
    relays.push({ node, roles, registry });
  }
});

afterAll(async () => {
  pool.closeAll();
  for (const t of relays) t.roles.close();
  await Promise.all(relays.map((t) => t.node.stop()));
});

describe('introduction point', () => {
  it('relays INTRODUCE1 as an identical INTRODUCE2 and ACKs 0; unknown auth key ACKs 1', async () => {
    const keys = serviceKeys();
    const svc = await establishIntro([r(0), r(1)], keys);
    expect(r(1).roles.introPoints).toBeGreaterThanOrEqual(1);

    const { cell } = introduce1For(keys, r(2));
    const intro2 = next(svc, 'INTRODUCE2');
    expect(await introduce([r(2), r(1)], cell)).toBe(IntroduceAckStatus.SUCCESS);
    expect(toHex(await intro2)).toBe(toHex(cell));

    const stranger = introduce1For(serviceKeys(), r(2)).cell;
    expect(await introduce([r(2), r(1)], stranger)).toBe(IntroduceAckStatus.UNKNOWN_SERVICE);
    expect(await introduce([r(3), r(1)], new Uint8Array(40).fill(7))).toBe(IntroduceAckStatus.BAD_FORMAT);

    expect(
      await metric(r(1), 'shallot_relay_intro_total', { event: 'introduce2_sent' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await metric(r(1), 'shallot_relay_intro_total', { event: 'nack' })).toBeGreaterThanOrEqual(2);
    svc.destroy();
  });

  it('refuses ESTABLISH_INTRO made with another circuit’s KH', async () => {
    const keys = serviceKeys();
    const circ = await build(r(0), r(1));
    const before = await metric(r(1), 'shallot_relay_intro_total', { event: 'rejected' });
    const body = buildEstablishIntro(
      { authKeyPub: keys.auth.public, authKeySeed: keys.auth.seed },
      randomBytes(20),
    );
    circ.sendControl({ type: 'ESTABLISH_INTRO', body });
    expect(await destroyed(circ)).toBe(true);
    expect(await metric(r(1), 'shallot_relay_intro_total', { event: 'rejected' })).toBe(before + 1);
  });

  it('allows one ESTABLISH_INTRO per circuit', async () => {
    const keys = serviceKeys();
    const svc = await establishIntro([r(0), r(1)], keys);
    const kh = svc.lastHopKh!;
    svc.sendControl({
      type: 'ESTABLISH_INTRO',
      body: buildEstablishIntro({ authKeyPub: keys.auth.public, authKeySeed: keys.auth.seed }, kh),
    });
    expect(await destroyed(svc)).toBe(true);
  });

  it('a newer intro circuit for the same key takes over; a closed one is forgotten', async () => {
    const keys = serviceKeys();
    const old = await establishIntro([r(0), r(1)], keys);
    const fresh = await establishIntro([r(2), r(1)], keys);
    const onOld = new Promise<boolean>((resolve) => {
      old.on('message', ({ msg }) => msg.type === 'INTRODUCE2' && resolve(true));
      setTimeout(() => resolve(false), 500);
    });
    const got = next(fresh, 'INTRODUCE2');
    expect(await introduce([r(3), r(1)], introduce1For(keys, r(2)).cell)).toBe(IntroduceAckStatus.SUCCESS);
    await got;
    expect(await onOld).toBe(false);

    const count = r(1).roles.introPoints;
    fresh.destroy();
    expect(await until(() => r(1).roles.introPoints === count - 1)).toBe(true);
    expect(await introduce([r(3), r(1)], introduce1For(keys, r(2)).cell)).toBe(
      IntroduceAckStatus.UNKNOWN_SERVICE,
    );
    old.destroy();
  });

  it('closes a circuit that sends a second INTRODUCE1, and single-hop clients', async () => {
    const keys = serviceKeys();
    const svc = await establishIntro([r(0), r(1)], keys);
    const circ = await build(r(2), r(1));
    const ack = next(circ, 'INTRODUCE_ACK');
    circ.sendControl({ type: 'INTRODUCE1', body: introduce1For(keys, r(2)).cell });
    expect(decodeIntroduceAck(await ack).status).toBe(IntroduceAckStatus.SUCCESS);
    circ.sendControl({ type: 'INTRODUCE1', body: introduce1For(keys, r(2)).cell });
    expect(await destroyed(circ)).toBe(true);

    const oneHop = await build(r(1));
    oneHop.sendControl({ type: 'INTRODUCE1', body: introduce1For(keys, r(2)).cell });
    expect(await destroyed(oneHop)).toBe(true);
    svc.destroy();
  });

  it('enforces the DoS extension: over the burst, INTRODUCE_ACK 3 and counted', async () => {
    const keys = serviceKeys();
    const svc = await establishIntro([r(0), r(1)], keys, { rate: 1, burst: 2 });
    const clients = await Promise.all([0, 1, 2].map(() => build(r(2), r(1))));
    const before = await metric(r(1), 'shallot_relay_intro_total', { event: 'rate_limited' });
    const statuses: number[] = [];
    for (const c of clients) {
      const ack = next(c, 'INTRODUCE_ACK');
      c.sendControl({ type: 'INTRODUCE1', body: introduce1For(keys, r(2)).cell });
      statuses.push(decodeIntroduceAck(await ack).status);
      c.destroy();
    }
    expect(statuses).toEqual([0, 0, IntroduceAckStatus.CANT_RELAY]);
    expect(await metric(r(1), 'shallot_relay_intro_total', { event: 'rate_limited' })).toBe(before + 1);
    svc.destroy();
  });
});

describe('rendezvous point', () => {
  it('joins client and service: RENDEZVOUS2, then a stream end to end through hs-ntor hops', async () => {
    const keys = serviceKeys();
    const rp = r(2);
    const joinedBefore = await metric(rp, 'shallot_relay_rendezvous_total', { event: 'joined' });
    const svcIntro = await establishIntro([r(0), r(1)], keys);

    // Client: rendezvous circuit with a cookie, then INTRODUCE1 through the intro point.
    const cookie = randomBytes(20);
    const clientRend = await build(r(0), rp);
    const rendEstablished = next(clientRend, 'RENDEZVOUS_ESTABLISHED');
    clientRend.sendControl({ type: 'ESTABLISH_RENDEZVOUS', body: encodeEstablishRendezvous({ cookie }) });
    expect((await rendEstablished).length).toBe(0);
    const intro = introduce1For(keys, rp, cookie);
    const intro2 = next(svcIntro, 'INTRODUCE2');
    expect(await introduce([r(3), r(1)], intro.cell)).toBe(IntroduceAckStatus.SUCCESS);

    // Service: opens INTRODUCE2, answers with RENDEZVOUS1 from its own circuit to the RP.
    const opened = openIntroduce2(await intro2, {
      b: keys.enc.secret,
      B: keys.enc.public,
      subcredentials: [keys.subcredential],
      authKey: keys.auth.public,
    });
    expect(toHex(opened.plaintext.cookie)).toBe(toHex(cookie));
    const svcSide = hsNtorServiceRendezvous(
      { b: keys.enc.secret, B: keys.enc.public, authKey: keys.auth.public, X: opened.X },
      randomBytes,
    );
    const svcRend = await build(r(3), rp);
    const rend2 = next(clientRend, 'RENDEZVOUS2');
    svcRend.sendControl({
      type: 'RENDEZVOUS1',
      body: encodeRendezvous1({ cookie, handshakeInfo: joinHandshakeInfo(svcSide.Y, svcSide.auth) }),
    });
    const { Y, auth } = splitHandshakeInfo(await rend2);
    const clientSeed = hsNtorClientRendezvous({
      x: intro.x,
      X: intro.X,
      B: keys.enc.public,
      authKey: keys.auth.public,
      Y,
      auth,
    });
    expect(toHex(clientSeed)).toBe(toHex(svcSide.keySeed));
    expect(await metric(rp, 'shallot_relay_rendezvous_total', { event: 'joined' })).toBe(joinedBefore + 1);

    // Both ends add the virtual hop; the service echoes a stream the client opens.
    const label: HopTarget = { ...target(rp), nickname: 'onion-service' };
    clientRend.addVirtualHop(hsVirtualHop(hsRendHopKeys(clientSeed), 'client'), label);
    svcRend.addVirtualHop(hsVirtualHop(hsRendHopKeys(svcSide.keySeed), 'service'), label);
    svcRend.on('message', ({ streamId, msg }) => {
      if (msg.type !== 'BEGIN') return;
      const s = svcRend.acceptStream(streamId);
      s?.on('error', () => {});
      s?.pipe(s);
    });
    const stream = await clientRend.openStream({ host: '', port: 80 }, 5_000);
    // The teardown below ends the stream with an error; that is expected here.
    stream.on('error', () => {});
    const payload = randomBytes(20_000);
    const echoed = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let n = 0;
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= payload.length) resolve(Buffer.concat(chunks));
      });
    });
    stream.write(payload);
    expect(Buffer.compare(await echoed, Buffer.from(payload))).toBe(0);

    // Tearing down one side closes the other through the splice.
    const clientGone = destroyed(clientRend);
    svcRend.destroy();
    expect(await clientGone).toBe(true);
    svcIntro.destroy();
  });

  it('refuses a duplicate cookie and an unknown RENDEZVOUS1 cookie by closing the circuit', async () => {
    const cookie = randomBytes(20);
    const first = await build(r(0), r(2));
    const ok = next(first, 'RENDEZVOUS_ESTABLISHED');
    first.sendControl({ type: 'ESTABLISH_RENDEZVOUS', body: encodeEstablishRendezvous({ cookie }) });
    await ok;
    const dup = await build(r(1), r(2));
    dup.sendControl({ type: 'ESTABLISH_RENDEZVOUS', body: encodeEstablishRendezvous({ cookie }) });
    expect(await destroyed(dup)).toBe(true);
    expect(first.isOpen).toBe(true);

    const svc = await build(r(3), r(2));
    svc.sendControl({
      type: 'RENDEZVOUS1',
      body: encodeRendezvous1({ cookie: randomBytes(20), handshakeInfo: randomBytes(64) }),
    });
    expect(await destroyed(svc)).toBe(true);
    first.destroy();
  });

  it('expires an unjoined cookie: circuit closed, event=expired', async () => {
    const rp = r(3);
    const before = await metric(rp, 'shallot_relay_rendezvous_total', { event: 'expired' });
    const circ = await build(r(0), rp);
    const ok = next(circ, 'RENDEZVOUS_ESTABLISHED');
    circ.sendControl({
      type: 'ESTABLISH_RENDEZVOUS',
      body: encodeEstablishRendezvous({ cookie: randomBytes(20) }),
    });
    await ok;
    expect(rp.roles.rendezvousWaiting).toBeGreaterThanOrEqual(1);
    expect(await destroyed(circ, SHORT_REND_TIMEOUT_MS + 3_000)).toBe(true);
    expect(await metric(rp, 'shallot_relay_rendezvous_total', { event: 'expired' })).toBe(before + 1);
  });
});

describe('HSDir over BEGIN_DIR', () => {
  const identitySeed = randomBytes(32);
  const identity = ed25519Generate(() => identitySeed).public;
  const blindedKey = blindExpandedKey(ed25519Expand(identitySeed), 20_000n, 1440n);
  const blindedPub = blindIdentity(identity, 20_000n, 1440n);
  const descSigningSeed = randomBytes(32);
  const desc = (revisionCounter: bigint) =>
    buildHsDescriptor(
      {
        blindedKey,
        blindedPub,
        descSigningSeed,
        subcredential: hsSubcredential(identity, blindedPub),
        revisionCounter,
        introPoints: [],
        nowMs: Date.now(),
      },
      randomBytes,
    );

  async function dir(hsdir: TestRelay, method: 'GET' | 'POST', path: string, body = '') {
    const circ = await build(r(0), hsdir);
    const stream = await circ.openDirStream(5_000);
    const res = await dirRequest(stream, { method, path, body: new TextEncoder().encode(body) });
    circ.destroy();
    return { status: res.status, text: fromUtf8(res.body) };
  }

  it('stores a published descriptor, serves it back, refuses tampering and older revisions', async () => {
    const hsdir = r(3);
    const path = hsDescriptorPath(blindedPub);
    expect((await dir(hsdir, 'GET', path)).status).toBe(404);

    const v5 = desc(5n);
    expect((await dir(hsdir, 'POST', HSDIR_PUBLISH_PATH, v5)).status).toBe(200);
    const got = await dir(hsdir, 'GET', path);
    expect(got.status).toBe(200);
    expect(got.text).toBe(v5);

    const tampered = v5.replace('revision-counter 5', 'revision-counter 9');
    expect((await dir(hsdir, 'POST', HSDIR_PUBLISH_PATH, tampered)).status).toBe(400);
    expect((await dir(hsdir, 'POST', HSDIR_PUBLISH_PATH, desc(3n))).status).toBe(400);
    expect((await dir(hsdir, 'GET', path)).text).toBe(v5);

    const v6 = desc(6n);
    expect((await dir(hsdir, 'POST', HSDIR_PUBLISH_PATH, v6)).status).toBe(200);
    expect((await dir(hsdir, 'GET', path)).text).toBe(v6);

    expect(await metric(hsdir, 'shallot_relay_hsdir_total', { op: 'store', outcome: 'stored' })).toBe(1);
    expect(await metric(hsdir, 'shallot_relay_hsdir_total', { op: 'store', outcome: 'replaced' })).toBe(1);
    expect(await metric(hsdir, 'shallot_relay_hsdir_total', { op: 'store', outcome: 'invalid' })).toBe(1);
    expect(await metric(hsdir, 'shallot_relay_hsdir_total', { op: 'store', outcome: 'stale' })).toBe(1);
    expect(await metric(hsdir, 'shallot_relay_hsdir_total', { op: 'fetch', outcome: 'found' })).toBe(3);
    expect(await metric(hsdir, 'shallot_relay_hsdir_total', { op: 'fetch', outcome: 'not_found' })).toBe(1);
  });
});
