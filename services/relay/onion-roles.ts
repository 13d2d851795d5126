/**
 * The onion-service roles of a relay (rend-spec-v3 §3.1-3.2, §4.1-4.2,
 * §2.2.6): introduction point, rendezvous point and HSDir.
 *
 * Overview:
 * - Intro point. ESTABLISH_INTRO is checked against the circuit's ntor KH
 *   and the auth key's signature; the circuit is then filed under its auth
 *   key (a newer circuit for the same key takes the entry over) and gets
 *   INTRO_ESTABLISHED. INTRODUCE1 on a client circuit is looked up by
 *   AUTH_KEY and relayed byte for byte as INTRODUCE2; the client gets
 *   INTRODUCE_ACK 0 (relayed), 1 (unknown service), 2 (bad format) or
 *   3 (over the service's DoS limit).
 * - Rendezvous point. ESTABLISH_RENDEZVOUS files the circuit under its
 *   20-byte cookie and answers RENDEZVOUS_ESTABLISHED; RENDEZVOUS1 from the
 *   service finds it, sends RENDEZVOUS2 with the handshake info and splices
 *   the two circuits. Unjoined cookies expire (default 120 s) and their
 *   circuit is closed.
 * - HSDir. `HsDirStore` (hsdir-store.ts) behind BEGIN_DIR.
 *
 * Checks follow C tor (hs_intropoint.c, rendmid.c): a circuit takes one
 * role only and must end here (no next hop); one ESTABLISH_INTRO and one
 * INTRODUCE1 per circuit; INTRODUCE1 and ESTABLISH_RENDEZVOUS are refused
 * from single-hop client circuits; legacy (v2) auth keys and failed
 * verifications close the circuit with PROTOCOL.
 *
 * DoS extension (rend-spec-v3 §3.1.1.1, prop 305): a token bucket per intro
 * circuit, full at `burst` and refilled at `rate`/s; with no extension, a 0
 * in either value, or burst < rate the defence is off, as in C tor
 * (`handle_establish_intro_cell_dos_extension`, consensus default off).
 * Deliberate deviation: C tor NACKs a rate-limited INTRODUCE1 with status 1;
 * Shallot uses the spec's 3 (can't relay) so clients and metrics can tell.
 *
 * Metrics (label relay = nickname):
 * - `shallot_relay_intro_total{event}`: established, rejected, replaced,
 *   introduce1, introduce2_sent, nack, rate_limited.
 * - `shallot_relay_rendezvous_total{event}`: established, joined, expired,
 *   rejected.
 * - `shallot_relay_hsdir_total{op,outcome}`: see hsdir-store.ts.
 *
 * Not in this module: the service and client sides; cell splicing itself
 * (OrCircuit.spliceWith); cell body codecs (core/hs-cells.ts).
 */
import type { Registry } from 'prom-client';
import { toHex } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import {
  type CellExtension,
  decodeDosExtension,
  decodeIntroduce1,
  EXT_DOS_PARAMS,
  encodeIntroduceAck,
  encodeIntroEstablished,
  IntroduceAckStatus,
  verifyEstablishIntro,
} from '../core/hs-cells.js';
import { decodeEstablishRendezvous, decodeRendezvous1, encodeRendezvous2 } from '../core/hs-rend-cells.js';
import type { RelayMessage } from '../core/relay-cell.js';
import { TokenBucket } from '../core/token-bucket.js';
import { type Metrics, metricsFor } from '../metrics/metrics.js';
import type { DirRequest, DirResponse } from '../net/dir-http.js';
import { type Logger, silentLogger } from '../runtime/log.js';
import { type HsDirLimits, HsDirStore } from './hsdir-store.js';
import type { RelayNode } from './node.js';

export interface OnionRolesLimits {
  /** How long a rendezvous cookie waits for RENDEZVOUS1 before its circuit is closed (default 120 s). */
  rendezvousTimeoutMs: number;
  /** Intro circuits filed at once (default 10000). */
  maxIntroPoints: number;
  /** Rendezvous cookies waiting at once (default 10000). */
  maxRendezvousWaiting: number;
  /** Refuse INTRODUCE1 / ESTABLISH_RENDEZVOUS from a client directly attached (default true, as C tor). */
  rejectSingleHopClients: boolean;
  /** How often expired descriptors are swept (default 60 s; lookups also check expiry). */
  hsdirSweepMs: number;
  hsdir: Partial<HsDirLimits>;
}

export const DEFAULT_ONION_ROLES_LIMITS: OnionRolesLimits = {
  rendezvousTimeoutMs: 120_000,
  maxIntroPoints: 10_000,
  maxRendezvousWaiting: 10_000,
  rejectSingleHopClients: true,
  hsdirSweepMs: 60_000,
  hsdir: {},
};

export interface OnionRolesComponents {
  registry: Registry;
  logger?: Logger;
  /** Clock for DoS buckets and the HSDir (ms). */
  now?: () => number;
}

/** What the roles need of a relay circuit; `OrCircuit` is one (unit tests use fakes). */
export interface RoleCircuit {
  readonly kh: Uint8Array | null;
  readonly isOpen: boolean;
  readonly hasNext: boolean;
  readonly prevChannel: { readonly peerIdentity: Uint8Array | null };
  sendBackward(streamId: number, msg: RelayMessage): void;
  spliceWith(other: RoleCircuit): void;
  close(reason: number): void;
  once(event: 'closed', fn: (e: { reason: number }) => void): unknown;
}

type Role =
  | { kind: 'intro'; key: string; bucket: TokenBucket | null }
  | { kind: 'introduce' }
  | { kind: 'rend-waiting'; cookie: string; timer: NodeJS.Timeout }
  | { kind: 'rend-joined' };

/** The DoS bucket a service asked for, or null when the defence is off. */
export function dosBucketParams(
  extensions: readonly CellExtension[],
): { rate: number; burst: number } | null {
  const ext = extensions.find((e) => e.type === EXT_DOS_PARAMS);
  if (!ext) return null;
  let p: ReturnType<typeof decodeDosExtension>;
  try {
    p = decodeDosExtension(ext);
  } catch {
    // C tor: a malformed or out-of-range extension disables the defence.
    return null;
  }
  const rate = p.rate ?? 0;
  const burst = p.burst ?? 0;
  if (rate === 0 || burst === 0 || burst < rate) return null;
  return { rate, burst };
}

export class OnionRoles {
  readonly hsdir: HsDirStore;
  private readonly limits: OnionRolesLimits;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly m: Metrics['relay'];
  private readonly label: { relay: string };
  private readonly roles = new WeakMap<RoleCircuit, Role>();
  /** hex(AUTH_KEY) -> intro circuit. */
  private readonly intros = new Map<string, RoleCircuit>();
  /** hex(cookie) -> waiting rendezvous circuit. */
  private readonly cookies = new Map<string, RoleCircuit>();
  private joinedCount = 0;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    c: OnionRolesComponents,
    readonly nickname: string,
    limits: Partial<OnionRolesLimits> = {},
  ) {
    this.limits = { ...DEFAULT_ONION_ROLES_LIMITS, ...limits };
    this.logger = c.logger ?? silentLogger;
    this.now = c.now ?? Date.now;
    this.m = metricsFor(c.registry).relay;
    this.label = { relay: nickname };
    this.hsdir = new HsDirStore(
      {
        now: this.now,
        onEvent: (op, outcome) => this.m.hsdir.labels({ ...this.label, op, outcome }).inc(),
      },
      this.limits.hsdir,
    );
    this.sweeper = setInterval(() => this.hsdir.sweep(), this.limits.hsdirSweepMs);
    this.sweeper.unref();
  }

  /** Intro circuits currently filed. */
  get introPoints(): number {
    return this.intros.size;
  }

  /** Rendezvous cookies waiting for RENDEZVOUS1. */
  get rendezvousWaiting(): number {
    return this.cookies.size;
  }

  /** Rendezvous joins since start. */
  get rendezvousJoined(): number {
    return this.joinedCount;
  }

  /** Stops the sweeper and closes circuits waiting at the rendezvous point. */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const circ of [...this.cookies.values()]) circ.close(DestroyReason.HIBERNATING);
    this.cookies.clear();
    this.intros.clear();
  }

  /** Relay-component hook: true if `msg` was an onion-service cell for this hop. */
  handleRelayMessage(circ: RoleCircuit, _streamId: number, msg: RelayMessage): boolean {
    switch (msg.type) {
      case 'ESTABLISH_INTRO':
        this.establishIntro(circ, msg.body);
        return true;
      case 'INTRODUCE1':
        this.introduce1(circ, msg.body);
        return true;
      case 'ESTABLISH_RENDEZVOUS':
        this.establishRendezvous(circ, msg.body);
        return true;
      case 'RENDEZVOUS1':
        this.rendezvous1(circ, msg.body);
        return true;
      default:
        // INTRODUCE2, RENDEZVOUS2, *_ESTABLISHED, INTRODUCE_ACK go to origins; a relay ignores them.
        return false;
    }
  }

  /** BEGIN_DIR route for the HSDir paths. */
  handleDirRequest(req: DirRequest): DirResponse | null {
    return this.hsdir.handleDirRequest(req);
  }

  /* ------------------------------------------------------ intro point */

  private intro(event: string): void {
    this.m.intro.labels({ ...this.label, event }).inc();
  }

  private rend(event: string): void {
    this.m.rendezvous.labels({ ...this.label, event }).inc();
  }

  /** C tor `circuit_is_suitable_intro_point` / rendmid.c: a fresh circuit that ends here. */
  private fresh(circ: RoleCircuit): boolean {
    return circ.isOpen && !this.roles.has(circ) && !circ.hasNext;
  }

  private setRole(circ: RoleCircuit, role: Role): void {
    const first = !this.roles.has(circ);
    this.roles.set(circ, role);
    if (first) circ.once('closed', () => this.forget(circ));
  }

  private forget(circ: RoleCircuit): void {
    const role = this.roles.get(circ);
    if (!role) return;
    if (role.kind === 'intro' && this.intros.get(role.key) === circ) this.intros.delete(role.key);
    if (role.kind === 'rend-waiting') {
      clearTimeout(role.timer);
      if (this.cookies.get(role.cookie) === circ) this.cookies.delete(role.cookie);
    }
  }

  private establishIntro(circ: RoleCircuit, body: Uint8Array): void {
    if (!this.fresh(circ) || !circ.kh) {
      this.intro('rejected');
      circ.close(DestroyReason.PROTOCOL);
      return;
    }
    let authKey: Uint8Array;
    let extensions: CellExtension[];
    try {
      // Parses (refusing legacy and unknown AUTH_KEY_TYPEs), then checks HANDSHAKE_AUTH and SIG.
      ({ authKey, extensions } = verifyEstablishIntro(body, circ.kh));
    } catch (e) {
      this.logger.debug('ESTABLISH_INTRO refused', { error: (e as Error).message });
      this.intro('rejected');
      circ.close(DestroyReason.PROTOCOL);
      return;
    }
    const key = toHex(authKey);
    const old = this.intros.get(key);
    if (!old && this.intros.size >= this.limits.maxIntroPoints) {
      this.intro('rejected');
      circ.close(DestroyReason.RESOURCELIMIT);
      return;
    }
    const dos = dosBucketParams(extensions);
    this.setRole(circ, {
      kind: 'intro',
      key,
      bucket: dos ? new TokenBucket(dos.rate, dos.burst, this.now()) : null,
    });
    // hs_circuitmap: a newer circuit for the key takes the entry; the old one stays open, unreachable.
    if (old && old !== circ) this.intro('replaced');
    this.intros.set(key, circ);
    circ.sendBackward(0, { type: 'INTRO_ESTABLISHED', body: encodeIntroEstablished({ extensions: [] }) });
    this.intro('established');
  }

  private introduce1(circ: RoleCircuit, body: Uint8Array): void {
    // hs_intro_received_introduce1: too short, a reused or non-edge circuit, or a
    // single-hop client is a protocol violation, not something to NACK.
    const singleHop = this.limits.rejectSingleHopClients && circ.prevChannel.peerIdentity === null;
    if (body.length < 20 || !this.fresh(circ) || singleHop) {
      this.intro('rejected');
      circ.close(DestroyReason.PROTOCOL);
      return;
    }
    this.setRole(circ, { kind: 'introduce' });
    this.intro('introduce1');
    const ack = (status: number) =>
      circ.sendBackward(0, { type: 'INTRODUCE_ACK', body: encodeIntroduceAck({ status, extensions: [] }) });
    let authKey: Uint8Array;
    try {
      const cell = decodeIntroduce1(body);
      if (cell.encrypted.length === 0) throw new Error('empty encrypted section');
      authKey = cell.authKey;
    } catch {
      this.intro('nack');
      ack(IntroduceAckStatus.BAD_FORMAT);
      return;
    }
    const service = this.intros.get(toHex(authKey));
    const role = service ? this.roles.get(service) : undefined;
    if (!service?.isOpen || role?.kind !== 'intro') {
      this.intro('nack');
      ack(IntroduceAckStatus.UNKNOWN_SERVICE);
      return;
    }
    if (role.bucket && !role.bucket.take(this.now())) {
      this.intro('rate_limited');
      ack(IntroduceAckStatus.CANT_RELAY);
      return;
    }
    // rend-spec-v3 §3.2: INTRODUCE2 is the INTRODUCE1 body, unchanged.
    service.sendBackward(0, { type: 'INTRODUCE2', body });
    this.intro('introduce2_sent');
    ack(IntroduceAckStatus.SUCCESS);
  }

  /* ------------------------------------------------------ rendezvous point */

  private establishRendezvous(circ: RoleCircuit, body: Uint8Array): void {
    const singleHop = this.limits.rejectSingleHopClients && circ.prevChannel.peerIdentity === null;
    let cookie: string;
    try {
      cookie = toHex(decodeEstablishRendezvous(body).cookie);
    } catch {
      cookie = '';
    }
    // rend_mid_establish_rendezvous: wrong length, reused circuit or a cookie in use closes the circuit.
    if (!cookie || !this.fresh(circ) || singleHop || this.cookies.has(cookie)) {
      this.rend('rejected');
      circ.close(DestroyReason.PROTOCOL);
      return;
    }
    if (this.cookies.size >= this.limits.maxRendezvousWaiting) {
      this.rend('rejected');
      circ.close(DestroyReason.RESOURCELIMIT);
      return;
    }
    const timer = setTimeout(() => this.expire(circ, cookie), this.limits.rendezvousTimeoutMs);
    timer.unref();
    this.setRole(circ, { kind: 'rend-waiting', cookie, timer });
    this.cookies.set(cookie, circ);
    circ.sendBackward(0, { type: 'RENDEZVOUS_ESTABLISHED', body: new Uint8Array(0) });
    this.rend('established');
  }

  private expire(circ: RoleCircuit, cookie: string): void {
    if (this.cookies.get(cookie) !== circ) return;
    this.cookies.delete(cookie);
    this.rend('expired');
    circ.close(DestroyReason.FINISHED);
  }

  private rendezvous1(circ: RoleCircuit, body: Uint8Array): void {
    let cookie = '';
    let handshakeInfo: Uint8Array = new Uint8Array(0);
    try {
      const m = decodeRendezvous1(body);
      cookie = toHex(m.cookie);
      handshakeInfo = m.handshakeInfo;
    } catch {
      // Shorter than a cookie: falls through to the refusal below.
    }
    const waiting = cookie ? this.cookies.get(cookie) : undefined;
    // rend_mid_rendezvous: a reused circuit or an unknown cookie closes the service's circuit.
    if (!waiting || waiting === circ || !waiting.isOpen || !this.fresh(circ)) {
      this.rend('rejected');
      circ.close(DestroyReason.PROTOCOL);
      return;
    }
    const role = this.roles.get(waiting);
    if (role?.kind === 'rend-waiting') clearTimeout(role.timer);
    this.cookies.delete(cookie);
    this.setRole(waiting, { kind: 'rend-joined' });
    this.setRole(circ, { kind: 'rend-joined' });
    waiting.sendBackward(0, { type: 'RENDEZVOUS2', body: encodeRendezvous2({ handshakeInfo }) });
    // rend-spec-v3 §4.2: from here on, unrecognized cells on one leave on the other.
    circ.spliceWith(waiting);
    this.joinedCount += 1;
    this.rend('joined');
  }
}

/**
 * Gives a relay node the three roles: relay cells go through
 * `OnionRoles.handleRelayMessage`, BEGIN_DIR requests for `/tor/hs/3/…`
 * through the HSDir store. Call before `node.start()`; `roles.close()` on stop.
 */
export function attachOnionRoles(
  node: RelayNode,
  opts: { limits?: Partial<OnionRolesLimits>; now?: () => number } = {},
): OnionRoles {
  const roles = new OnionRoles(
    {
      registry: node.components.registry,
      logger: node.components.logger.child('onion-roles'),
      ...(opts.now ? { now: opts.now } : {}),
    },
    node.relay.nickname,
    opts.limits,
  );
  node.addRelayHandler((circ, streamId, msg) => roles.handleRelayMessage(circ, streamId, msg));
  node.addDirRoute((req) => roles.handleDirRequest(req));
  return roles;
}
