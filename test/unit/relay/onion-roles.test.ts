// Onion-service roles against fake relay circuits: every check of the intro point and the
// rendezvous point (C tor hs_intropoint.c / rendmid.c behaviour), the DoS bucket on a fake
// clock, cookie expiry on fake timers, metrics, and hostile cell bodies.
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import { DestroyReason } from '../../../services/core/cells.js';
import { ed25519Generate, randomBytes } from '../../../services/core/crypto.js';
import {
  buildEstablishIntro,
  type DosParams,
  decodeIntroduceAck,
  decodeIntroEstablished,
  EXT_DOS_PARAMS,
  encodeDosExtension,
  encodeIntroduce1,
  IntroduceAckStatus,
} from '../../../services/core/hs-cells.js';
import { encodeEstablishRendezvous, encodeRendezvous1 } from '../../../services/core/hs-rend-cells.js';
import type { HS_RELAY_TYPES, RelayMessage } from '../../../services/core/relay-cell.js';
import {
  dosBucketParams,
  OnionRoles,
  type OnionRolesLimits,
  type RoleCircuit,
} from '../../../services/relay/onion-roles.js';

class FakeCircuit implements RoleCircuit {
  kh: Uint8Array | null = randomBytes(20);
  isOpen = true;
  hasNext = false;
  prevChannel: { peerIdentity: Uint8Array | null } = { peerIdentity: randomBytes(32) };
  readonly sent: RelayMessage[] = [];
  spliced: RoleCircuit | null = null;
  closedWith: number | null = null;
  private listeners: ((e: { reason: number }) => void)[] = [];

  sendBackward(_streamId: number, msg: RelayMessage): void {
    if (this.isOpen) this.sent.push(msg);
  }
  spliceWith(other: RoleCircuit): void {
    this.spliced = other;
    (other as FakeCircuit).spliced = this;
  }
  close(reason: number): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.closedWith = reason;
    for (const l of this.listeners.splice(0)) l({ reason });
  }
  once(_event: 'closed', fn: (e: { reason: number }) => void): this {
    this.listeners.push(fn);
    return this;
  }
  /** Bodies of the messages of `type` sent toward this circuit's origin. */
  bodies(type: RelayMessage['type']): Uint8Array[] {
    return this.sent.flatMap((m) => (m.type === type && 'body' in m ? [m.body] : []));
  }
}

let clock = 0;
let registry: Registry;
let roles: OnionRoles;

function make(limits: Partial<OnionRolesLimits> = {}): OnionRoles {
  registry = new Registry();
  roles = new OnionRoles({ registry, now: () => clock }, 'r1', limits);
  return roles;
}

async function metric(name: string, event: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  const v = (await m?.get())?.values.find((x) => x.labels.event === event);
  return v?.value ?? 0;
}

const send = (circ: FakeCircuit, type: (typeof HS_RELAY_TYPES)[number], body: Uint8Array) =>
  roles.handleRelayMessage(circ, 0, { type, body });

function serviceKey() {
  return ed25519Generate();
}

function establish(
  key = serviceKey(),
  dos?: DosParams,
): { circ: FakeCircuit; key: ReturnType<typeof serviceKey> } {
  const circ = new FakeCircuit();
  const body = buildEstablishIntro(
    { authKeyPub: key.public, authKeySeed: key.seed, ...(dos ? { dos } : {}) },
    circ.kh!,
  );
  expect(send(circ, 'ESTABLISH_INTRO', body)).toBe(true);
  return { circ, key };
}

function introduce1Body(authKey: Uint8Array): Uint8Array {
  return encodeIntroduce1({
    authKey,
    extensions: [],
    X: randomBytes(32),
    encrypted: randomBytes(200),
    mac: randomBytes(32),
  });
}

/** Sends INTRODUCE1 on a fresh client circuit; returns the circuit and the ACK status (or null). */
function introduce(body: Uint8Array): { client: FakeCircuit; status: number | null } {
  const client = new FakeCircuit();
  send(client, 'INTRODUCE1', body);
  const ack = client.bodies('INTRODUCE_ACK')[0];
  return { client, status: ack ? decodeIntroduceAck(ack).status : null };
}

beforeEach(() => {
  clock = 1_000_000;
  make();
});

afterEach(() => {
  roles.close();
  vi.useRealTimers();
});

describe('introduction point: ESTABLISH_INTRO', () => {
  it('accepts a cell MACed with the circuit KH and answers INTRO_ESTABLISHED', async () => {
    const { circ } = establish();
    expect(circ.isOpen).toBe(true);
    const [ack] = circ.bodies('INTRO_ESTABLISHED');
    expect(decodeIntroEstablished(ack!)).toEqual({ extensions: [] });
    expect(roles.introPoints).toBe(1);
    expect(await metric('shallot_relay_intro_total', 'established')).toBe(1);
  });

  it('closes the circuit on a wrong KH, bad signature, legacy or unknown key type, or no KH', async () => {
    const key = serviceKey();
    const good = (kh: Uint8Array) =>
      buildEstablishIntro({ authKeyPub: key.public, authKeySeed: key.seed }, kh);
    const cases: [string, (c: FakeCircuit) => Uint8Array][] = [
      ['wrong KH', () => good(randomBytes(20))],
      [
        'bad signature',
        (c) => {
          const b = good(c.kh!);
          b[b.length - 1]! ^= 1;
          return b;
        },
      ],
      [
        'legacy key type 0',
        (c) => {
          const b = good(c.kh!);
          b[0] = 0;
          return b;
        },
      ],
      [
        'legacy key type 1',
        (c) => {
          const b = good(c.kh!);
          b[0] = 1;
          return b;
        },
      ],
      [
        'unknown key type',
        (c) => {
          const b = good(c.kh!);
          b[0] = 9;
          return b;
        },
      ],
      ['empty', () => new Uint8Array(0)],
    ];
    for (const [what, body] of cases) {
      const c = new FakeCircuit();
      send(c, 'ESTABLISH_INTRO', body(c));
      expect(c.closedWith, what).toBe(DestroyReason.PROTOCOL);
      expect(c.sent, what).toEqual([]);
    }
    const noKh = new FakeCircuit();
    const body = good(randomBytes(20));
    noKh.kh = null;
    send(noKh, 'ESTABLISH_INTRO', body);
    expect(noKh.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(roles.introPoints).toBe(0);
    expect(await metric('shallot_relay_intro_total', 'rejected')).toBe(cases.length + 1);
  });

  it('refuses a second ESTABLISH_INTRO on the circuit and a circuit that goes on', () => {
    const { circ, key } = establish();
    send(
      circ,
      'ESTABLISH_INTRO',
      buildEstablishIntro({ authKeyPub: key.public, authKeySeed: key.seed }, circ.kh!),
    );
    expect(circ.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(roles.introPoints).toBe(0);

    const middle = new FakeCircuit();
    middle.hasNext = true;
    send(
      middle,
      'ESTABLISH_INTRO',
      buildEstablishIntro({ authKeyPub: key.public, authKeySeed: key.seed }, middle.kh!),
    );
    expect(middle.closedWith).toBe(DestroyReason.PROTOCOL);
  });

  it('a newer circuit for the same auth key takes the entry; closing the old one does not remove it', async () => {
    const { circ: old, key } = establish();
    const { circ: fresh } = establish(key);
    expect(roles.introPoints).toBe(1);
    expect(await metric('shallot_relay_intro_total', 'replaced')).toBe(1);
    const body = introduce1Body(key.public);
    expect(introduce(body).status).toBe(IntroduceAckStatus.SUCCESS);
    expect(fresh.bodies('INTRODUCE2')).toHaveLength(1);
    expect(old.bodies('INTRODUCE2')).toHaveLength(0);
    old.close(DestroyReason.FINISHED);
    expect(roles.introPoints).toBe(1);
    fresh.close(DestroyReason.FINISHED);
    expect(roles.introPoints).toBe(0);
    expect(introduce(body).status).toBe(IntroduceAckStatus.UNKNOWN_SERVICE);
  });

  it('caps the number of intro circuits', () => {
    make({ maxIntroPoints: 2 });
    establish();
    const { key } = establish();
    const c = new FakeCircuit();
    send(
      c,
      'ESTABLISH_INTRO',
      buildEstablishIntro({ authKeyPub: serviceKey().public, authKeySeed: serviceKey().seed }, c.kh!),
    );
    expect(c.closedWith).not.toBeNull();
    // Replacing an existing key is still allowed when full.
    const { circ } = establish(key);
    expect(circ.isOpen).toBe(true);
    expect(roles.introPoints).toBe(2);
  });
});

describe('introduction point: INTRODUCE1', () => {
  it('relays the body unchanged as INTRODUCE2 and ACKs 0', async () => {
    const { circ, key } = establish();
    const body = introduce1Body(key.public);
    const { client, status } = introduce(body);
    expect(status).toBe(IntroduceAckStatus.SUCCESS);
    expect(circ.bodies('INTRODUCE2').map(toHex)).toEqual([toHex(body)]);
    expect(client.isOpen).toBe(true);
    expect(await metric('shallot_relay_intro_total', 'introduce1')).toBe(1);
    expect(await metric('shallot_relay_intro_total', 'introduce2_sent')).toBe(1);
  });

  it('ACKs 1 for an unknown auth key and 2 for a malformed cell', async () => {
    establish();
    expect(introduce(introduce1Body(serviceKey().public)).status).toBe(IntroduceAckStatus.UNKNOWN_SERVICE);
    // Non-zero LEGACY_KEY_ID (v2), truncated, and an empty encrypted section.
    const legacy = introduce1Body(serviceKey().public);
    legacy[0] = 1;
    expect(introduce(legacy).status).toBe(IntroduceAckStatus.BAD_FORMAT);
    expect(introduce(new Uint8Array(40)).status).toBe(IntroduceAckStatus.BAD_FORMAT);
    const empty = encodeIntroduce1({
      authKey: serviceKey().public,
      extensions: [],
      X: randomBytes(32),
      encrypted: new Uint8Array(0),
      mac: randomBytes(32),
    });
    expect(introduce(empty).status).toBe(IntroduceAckStatus.BAD_FORMAT);
    expect(await metric('shallot_relay_intro_total', 'nack')).toBe(4);
  });

  it('closes without an ACK: short body, second INTRODUCE1, single-hop client, intro circuit, non-edge', () => {
    const { circ: svc, key } = establish();
    const body = introduce1Body(key.public);
    expect(introduce(new Uint8Array(19)).client.closedWith).toBe(DestroyReason.PROTOCOL);

    const { client } = introduce(body);
    send(client, 'INTRODUCE1', body);
    expect(client.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(client.bodies('INTRODUCE_ACK')).toHaveLength(1);

    const oneHop = new FakeCircuit();
    oneHop.prevChannel.peerIdentity = null;
    send(oneHop, 'INTRODUCE1', body);
    expect(oneHop.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(oneHop.sent).toEqual([]);

    send(svc, 'INTRODUCE1', body);
    expect(svc.closedWith).toBe(DestroyReason.PROTOCOL);

    const middle = new FakeCircuit();
    middle.hasNext = true;
    send(middle, 'INTRODUCE1', body);
    expect(middle.closedWith).toBe(DestroyReason.PROTOCOL);
  });

  it('lets single-hop clients introduce when configured to', () => {
    make({ rejectSingleHopClients: false });
    const { key } = establish();
    const client = new FakeCircuit();
    client.prevChannel.peerIdentity = null;
    send(client, 'INTRODUCE1', introduce1Body(key.public));
    expect(decodeIntroduceAck(client.bodies('INTRODUCE_ACK')[0]!).status).toBe(IntroduceAckStatus.SUCCESS);
  });

  it('DoS extension: burst, then ACK 3 until the bucket refills at rate/s', async () => {
    const { circ, key } = establish(undefined, { rate: 2, burst: 3 });
    const body = introduce1Body(key.public);
    const statuses = () => [0, 1, 2, 3].map(() => introduce(body).status);
    expect(statuses()).toEqual([0, 0, 0, 3]);
    clock += 499;
    expect(introduce(body).status).toBe(IntroduceAckStatus.CANT_RELAY);
    clock += 1;
    expect(introduce(body).status).toBe(IntroduceAckStatus.SUCCESS);
    clock += 60_000;
    expect(statuses()).toEqual([0, 0, 0, 3]);
    expect(circ.bodies('INTRODUCE2')).toHaveLength(7);
    expect(await metric('shallot_relay_intro_total', 'rate_limited')).toBe(3);
  });

  it('DoS extension off: no extension, zeros, a missing value, burst < rate, malformed (as C tor)', () => {
    const ext = (data: number[]) => [{ type: EXT_DOS_PARAMS, data: new Uint8Array(data) }];
    expect(dosBucketParams([])).toBeNull();
    expect(dosBucketParams([encodeDosExtension({ rate: 0, burst: 0 })])).toBeNull();
    expect(dosBucketParams([encodeDosExtension({ rate: 5 })])).toBeNull();
    expect(dosBucketParams([encodeDosExtension({ burst: 5 })])).toBeNull();
    expect(dosBucketParams([encodeDosExtension({ rate: 10, burst: 5 })])).toBeNull();
    expect(dosBucketParams(ext([1, 1, 0, 0]))).toBeNull();
    expect(dosBucketParams(ext([1, 1, 0, 0, 0, 0x80, 0, 0, 0, 0]))).toBeNull();
    expect(dosBucketParams([{ type: 7, data: new Uint8Array(3) }])).toBeNull();
    expect(dosBucketParams([encodeDosExtension({ rate: 25, burst: 200 })])).toEqual({ rate: 25, burst: 200 });
    expect(dosBucketParams([encodeDosExtension({ rate: 7, burst: 7 })])).toEqual({ rate: 7, burst: 7 });

    // With the defence off, nothing is rate limited.
    const { key } = establish(undefined, { rate: 10, burst: 5 });
    const body = introduce1Body(key.public);
    for (let i = 0; i < 20; i++) expect(introduce(body).status).toBe(IntroduceAckStatus.SUCCESS);
  });
});

describe('rendezvous point', () => {
  function waitAt(cookie = randomBytes(20)): FakeCircuit {
    const c = new FakeCircuit();
    // The body is the bare cookie, so wrong lengths can be sent as they are.
    send(c, 'ESTABLISH_RENDEZVOUS', cookie.length === 20 ? encodeEstablishRendezvous({ cookie }) : cookie);
    return c;
  }

  it('ESTABLISH_RENDEZVOUS, then RENDEZVOUS1: RENDEZVOUS2 to the client and a splice', async () => {
    const cookie = randomBytes(20);
    const client = waitAt(cookie);
    expect(client.bodies('RENDEZVOUS_ESTABLISHED')).toEqual([new Uint8Array(0)]);
    expect(roles.rendezvousWaiting).toBe(1);
    const service = new FakeCircuit();
    const info = randomBytes(64);
    send(service, 'RENDEZVOUS1', encodeRendezvous1({ cookie, handshakeInfo: info }));
    expect(client.bodies('RENDEZVOUS2').map(toHex)).toEqual([toHex(info)]);
    expect(client.spliced).toBe(service);
    expect(service.spliced).toBe(client);
    expect(service.isOpen && client.isOpen).toBe(true);
    expect(roles.rendezvousWaiting).toBe(0);
    expect(roles.rendezvousJoined).toBe(1);
    expect(await metric('shallot_relay_rendezvous_total', 'established')).toBe(1);
    expect(await metric('shallot_relay_rendezvous_total', 'joined')).toBe(1);
    // A joined circuit takes no new role; the cookie is free again.
    send(client, 'ESTABLISH_RENDEZVOUS', encodeEstablishRendezvous({ cookie }));
    expect(client.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(waitAt(cookie).isOpen).toBe(true);
  });

  it('closes on a bad cookie length, a duplicate cookie, a single-hop client, a reused circuit', async () => {
    expect(waitAt(randomBytes(19)).closedWith).toBe(DestroyReason.PROTOCOL);
    expect(waitAt(randomBytes(21)).closedWith).toBe(DestroyReason.PROTOCOL);
    const cookie = randomBytes(20);
    const first = waitAt(cookie);
    expect(waitAt(cookie).closedWith).toBe(DestroyReason.PROTOCOL);
    expect(first.isOpen).toBe(true);
    const oneHop = new FakeCircuit();
    oneHop.prevChannel.peerIdentity = null;
    send(oneHop, 'ESTABLISH_RENDEZVOUS', encodeEstablishRendezvous({ cookie: randomBytes(20) }));
    expect(oneHop.closedWith).toBe(DestroyReason.PROTOCOL);
    send(first, 'ESTABLISH_RENDEZVOUS', encodeEstablishRendezvous({ cookie: randomBytes(20) }));
    expect(first.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(roles.rendezvousWaiting).toBe(0);
    expect(await metric('shallot_relay_rendezvous_total', 'rejected')).toBe(5);
  });

  it('closes a RENDEZVOUS1 with an unknown cookie, a short body, or from the waiting circuit itself', () => {
    const cookie = randomBytes(20);
    const client = waitAt(cookie);
    const svc = new FakeCircuit();
    send(svc, 'RENDEZVOUS1', encodeRendezvous1({ cookie: randomBytes(20), handshakeInfo: randomBytes(64) }));
    expect(svc.closedWith).toBe(DestroyReason.PROTOCOL);
    const short = new FakeCircuit();
    send(short, 'RENDEZVOUS1', cookie.subarray(0, 10));
    expect(short.closedWith).toBe(DestroyReason.PROTOCOL);
    send(client, 'RENDEZVOUS1', encodeRendezvous1({ cookie, handshakeInfo: randomBytes(64) }));
    expect(client.closedWith).toBe(DestroyReason.PROTOCOL);
    expect(client.bodies('RENDEZVOUS2')).toEqual([]);
  });

  it('expires unjoined cookies after the timeout; joined or closed ones are not counted', async () => {
    vi.useFakeTimers();
    make({ rendezvousTimeoutMs: 1_000 });
    const lonely = waitAt();
    const joinedCookie = randomBytes(20);
    const joined = waitAt(joinedCookie);
    send(
      new FakeCircuit(),
      'RENDEZVOUS1',
      encodeRendezvous1({ cookie: joinedCookie, handshakeInfo: randomBytes(64) }),
    );
    const gone = waitAt();
    gone.close(DestroyReason.FINISHED);
    expect(roles.rendezvousWaiting).toBe(1);
    vi.advanceTimersByTime(999);
    expect(lonely.isOpen).toBe(true);
    vi.advanceTimersByTime(1);
    expect(lonely.closedWith).toBe(DestroyReason.FINISHED);
    expect(joined.isOpen).toBe(true);
    expect(roles.rendezvousWaiting).toBe(0);
    expect(await metric('shallot_relay_rendezvous_total', 'expired')).toBe(1);
  });

  it('caps waiting cookies; close() closes the waiting circuits', () => {
    make({ maxRendezvousWaiting: 2 });
    const a = waitAt();
    const b = waitAt();
    expect(waitAt().closedWith).toBe(DestroyReason.RESOURCELIMIT);
    roles.close();
    expect(a.closedWith).toBe(DestroyReason.HIBERNATING);
    expect(b.closedWith).toBe(DestroyReason.HIBERNATING);
  });
});

describe('dispatch and hostile input', () => {
  it('leaves origin-bound onion-service messages and other relay messages to the relay', () => {
    const c = new FakeCircuit();
    for (const type of [
      'INTRODUCE2',
      'RENDEZVOUS2',
      'INTRO_ESTABLISHED',
      'RENDEZVOUS_ESTABLISHED',
      'INTRODUCE_ACK',
    ] as const) {
      expect(send(c, type, randomBytes(10))).toBe(false);
    }
    expect(roles.handleRelayMessage(c, 0, { type: 'DROP' })).toBe(false);
    expect(c.isOpen).toBe(true);
    expect(c.sent).toEqual([]);
  });

  it('random bodies never throw: each circuit is answered or closed', () => {
    const handled = ['ESTABLISH_INTRO', 'INTRODUCE1', 'ESTABLISH_RENDEZVOUS', 'RENDEZVOUS1'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...handled), fc.uint8Array({ maxLength: 600 }), (type, body) => {
        const c = new FakeCircuit();
        expect(send(c, type, body)).toBe(true);
        expect(c.sent.length > 0 || !c.isOpen).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
