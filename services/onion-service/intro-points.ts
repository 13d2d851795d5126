/**
 * The onion service's introduction points (rend-spec-v3 §3.1): which relays,
 * their circuits and keys, and the merge with the intro points of the
 * service's other instances.
 *
 * Overview:
 * - Choose: `count` Running, Valid, Stable relays, drawn uniformly from the
 *   injected rng, preferring relays no other instance uses (so one relay's
 *   loss takes out one instance's intro point only) and skipping for 30 s
 *   a relay that could not be established.
 * - Establish: a 3-hop 'onion-intro' circuit ending at the relay, with a
 *   fresh auth key (KP_hs_ipt_sid) and enc key (KP_hss_ntor) per intro
 *   point; ESTABLISH_INTRO (§3.1.1) is MACed with the circuit's last-hop
 *   KH, signed by the auth key and carries the DoS extension (§3.1.1.1);
 *   INTRO_ESTABLISHED (§3.1.3) confirms it. INTRODUCE2 cells arriving on
 *   the circuit are handed on as `introduce2` events.
 * - Follow rotated keys: an intro point whose relay rotated its onion key
 *   is listed with the new key (followRotatedKeys).
 * - Drop: a closed circuit, a relay that left the consensus, or (C tor
 *   intro_point_should_expire) a spent budget or an old intro point is
 *   dropped, and the next `maintain` replaces it with a new relay and new
 *   keys. Every change is announced as `changed` (the descriptors list the
 *   set, so the coordinator republishes).
 * - Merge: `sync` shares this instance's established intro points through an
 *   InstanceExchange (instances.ts) and reads the other instances'; `merged`
 *   is what the descriptors list: own first, then peers', at most
 *   HS_DESC_MAX_INTRO_POINTS, each auth key once.
 *
 * Not in this module: INTRODUCE2 itself (introduce-handler.ts), the
 * per-intro-point replay cache and budget (introduce.ts), descriptors
 * (publisher.ts).
 */

import type { CircuitManager } from '../client/circuit-manager.js';
import { type NetDir, type NetRelay, relayLegacyId } from '../client/netdir.js';
import { toHex } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import { ctEqual, ed25519PublicFromSeed, type Rng, randomBytes, x25519Generate } from '../core/crypto.js';
import { ShallotError } from '../core/errors.js';
import { buildEstablishIntro, type DosParams } from '../core/hs-cells.js';
import { HS_DESC_MAX_INTRO_POINTS, type IntroPointInfo } from '../core/hs-descriptor.js';
import { linkTarget, relayLinkSpecifiers } from '../core/link-specifiers.js';
import { uniformInt } from '../core/random.js';
import type { Metrics } from '../metrics/metrics.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { TypedEmitter } from '../net/typed-emitter.js';
import type { Logger } from '../runtime/log.js';
import type { InstanceExchange } from './instances.js';
import { IntroBudget, introLimitsFromParams, ReplayCache } from './introduce.js';

/** One introduction point of this instance. */
export interface IntroPoint {
  relay: NetRelay;
  authSeed: Uint8Array;
  authPub: Uint8Array;
  encSecret: Uint8Array;
  encPub: Uint8Array;
  circ: OriginCircuit | null;
  established: boolean;
  closed: boolean;
  launchedAt: number;
  /** Introductions left and retirement time, drawn from the consensus params at launch. */
  budget: IntroBudget;
  /** This intro point's INTRODUCE2 replay cache (C tor: one per intro point). */
  replay: ReplayCache;
}

export interface IntroPointSetEvents {
  /** An intro point was established or dropped: what the descriptors list may change. */
  changed: { established: number };
  established: { relay: string };
  /** An INTRODUCE2 arrived on an intro point's circuit (not yet parsed). */
  introduce2: { intro: IntroPoint; body: Uint8Array };
}

export interface IntroPointSetComponents {
  circuits: Pick<CircuitManager, 'build' | 'dir'>;
  logger: Logger;
  metrics: Metrics['service'];
  now: () => number;
  rng: Rng;
}

export interface IntroPointSetOptions {
  /** `service` metric label. */
  name: string;
  instance: string;
  count: number;
  /** Asked of the intro points in ESTABLISH_INTRO's DoS extension. */
  dos: DosParams;
  /** Instance heartbeat; a peer record older than 4 heartbeats is ignored. */
  heartbeatMs: number;
}

export class IntroPointError extends ShallotError {
  constructor(message: string) {
    super('ERR_INTRO_POINT', message);
  }
}

/** How long a relay that could not be established is skipped. */
const INTRO_FAIL_BACKOFF_MS = 30_000;
/** How long INTRO_ESTABLISHED is awaited before the intro point is given up. */
const ESTABLISH_TIMEOUT_MS = 30_000;
/** How long a new intro point may hold back a descriptor upload while it is being established. */
const INTRO_SETTLE_MS = 5_000;

export class IntroPointSet extends TypedEmitter<IntroPointSetEvents> {
  private readonly intros = new Set<IntroPoint>();
  private readonly failedRelays = new Map<string, number>();
  private peerIntroPoints: IntroPointInfo[] = [];
  private peerRelayIds = new Set<string>();
  private lastHeartbeat = 0;
  private lastOwnSig = '';
  private active = false;
  private readonly label: { service: string; service_instance: string };

  constructor(
    private readonly c: IntroPointSetComponents,
    private readonly o: IntroPointSetOptions,
  ) {
    super();
    this.label = { service: o.name, service_instance: o.instance };
  }

  start(): void {
    this.active = true;
    this.c.metrics.introPoints.labels(this.label).set(0);
  }

  /** Drops every intro point (their circuits close). */
  stop(): void {
    this.active = false;
    for (const i of this.intros) this.drop(i);
    this.intros.clear();
    this.c.metrics.introPoints.labels(this.label).set(0);
  }

  get established(): number {
    let n = 0;
    for (const i of this.intros) if (i.established) n++;
    return n;
  }

  /** Nicknames of the established intro points. */
  get relays(): string[] {
    return [...this.intros].filter((i) => i.established).map((i) => i.relay.nickname);
  }

  /** Entries in the per-intro-point replay caches. */
  get replayEntries(): number {
    let n = 0;
    for (const i of this.intros) n += i.replay.size;
    return n;
  }

  /** Whether an intro point launched less than INTRO_SETTLE_MS ago is still being established. */
  settling(now: number): boolean {
    for (const i of this.intros) if (!i.established && now - i.launchedAt < INTRO_SETTLE_MS) return true;
    return false;
  }

  /** Retires spent-by-age intro points and launches new ones up to `count`. */
  maintain(dir: NetDir): void {
    if (!this.active) return;
    const now = this.c.now();
    for (const [id, until] of this.failedRelays) if (until <= now) this.failedRelays.delete(id);
    for (const i of this.intros) if (i.established && i.budget.expired(now)) this.retire(i, 'lifetime');
    const used = new Set([...this.intros].map((i) => i.relay.id));
    const base = dir.relays.filter(
      (r) =>
        r.flags.includes('Running') &&
        r.flags.includes('Valid') &&
        r.flags.includes('Stable') &&
        !used.has(r.id) &&
        !this.failedRelays.has(r.id),
    );
    const fresh = base.filter((r) => !this.peerRelayIds.has(r.id));
    const pool = fresh.length > 0 ? fresh : base;
    while (this.intros.size < this.o.count && pool.length > 0) {
      const [relay] = pool.splice(uniformInt(pool.length, this.c.rng), 1);
      if (relay) this.launch(relay, dir);
    }
  }

  /** Drops the intro points on relays `dir` no longer lists. */
  dropUnlisted(dir: NetDir): void {
    for (const i of this.intros) {
      if (dir.get(i.relay.id)) continue;
      this.c.logger.info('intro point left the consensus; replacing it', { relay: i.relay.nickname });
      this.drop(i);
    }
  }

  /**
   * Takes a listed intro relay's new onion key: descriptors name it
   * ("onion-key ntor", rend-spec-v3 §2.5.2.2) and clients extend to the
   * intro point with it. Deviation: C tor copies the key once
   * (service_intro_point_new), as its 7-day onion-key grace period outlives
   * any intro point (24 h at most); Shallot networks rotate onion keys
   * hourly with minutes of grace, and a relay takes a rotated key without
   * restarting (relay/key-watch.ts), so the intro circuit survives the
   * rotation and only the key moves.
   */
  followRotatedKeys(dir: NetDir): void {
    let rekeyed = false;
    for (const i of this.intros) {
      const listed = dir.get(i.relay.id);
      if (!listed || ctEqual(listed.ntorKey, i.relay.ntorKey)) continue;
      i.relay = listed;
      rekeyed = true;
    }
    // The descriptors list the keys: the coordinator republishes.
    if (rekeyed) this.emit('changed', { established: this.established });
  }

  /** C tor intro_point_should_expire: a spent or old intro point is replaced (new relay, new keys). */
  retire(intro: IntroPoint, reason: 'budget' | 'lifetime'): void {
    this.c.metrics.introRotations.labels({ service: this.o.name, reason }).inc();
    this.c.logger.info('rotating an intro point', {
      relay: intro.relay.nickname,
      reason,
      introductions: intro.budget.introductions,
    });
    this.drop(intro);
  }

  /** The established intro points as a descriptor lists them. */
  own(): IntroPointInfo[] {
    const out: IntroPointInfo[] = [];
    for (const i of this.intros) {
      if (!i.established) continue;
      out.push({
        linkSpecifiers: relayLinkSpecifiers({
          address: i.relay.address,
          port: i.relay.port,
          legacyId: relayLegacyId(i.relay),
          ed25519Id: i.relay.identity,
        }),
        onionKey: i.relay.ntorKey,
        authKey: i.authPub,
        encKey: i.encPub,
      });
    }
    return out;
  }

  /** Own intro points, then peers' (each auth key once), at most HS_DESC_MAX_INTRO_POINTS. */
  merged(): IntroPointInfo[] {
    const out = this.own();
    const seen = new Set(out.map((ip) => toHex(ip.authKey)));
    for (const ip of this.peerIntroPoints) {
      if (out.length >= HS_DESC_MAX_INTRO_POINTS) break;
      const k = toHex(ip.authKey);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(ip);
    }
    return out;
  }

  /**
   * Publishes this instance's record when its intro points changed or a
   * heartbeat is due (not once stopped), then reads the other instances'.
   */
  async sync(exchange: InstanceExchange): Promise<void> {
    const now = this.c.now();
    const heartbeat = this.o.heartbeatMs;
    const own = this.own();
    // Onion keys too: a relay's rotated key must reach the other instances' descriptors.
    const ownSig = own.map((ip) => `${toHex(ip.authKey)}:${toHex(ip.onionKey)}`).join(',');
    if (this.active && (ownSig !== this.lastOwnSig || now - this.lastHeartbeat >= heartbeat)) {
      await exchange.publish({ instance: this.o.instance, updatedMs: now, introPoints: own });
      this.lastOwnSig = ownSig;
      this.lastHeartbeat = now;
    }
    const peers = await exchange.peers(this.o.instance, now, 4 * heartbeat);
    this.c.metrics.instancePeers.labels(this.label).set(peers.length);
    this.peerIntroPoints = peers.flatMap((p) => p.introPoints);
    this.peerRelayIds = new Set(
      this.peerIntroPoints.flatMap((ip) => {
        const ed = linkTarget(ip.linkSpecifiers).ed25519;
        return ed ? [toHex(ed)] : [];
      }),
    );
  }

  private launch(relay: NetRelay, dir: NetDir): void {
    const authSeed = randomBytes(32);
    const enc = x25519Generate(randomBytes);
    const now = this.c.now();
    const intro: IntroPoint = {
      relay,
      authSeed,
      authPub: ed25519PublicFromSeed(authSeed),
      encSecret: enc.secret,
      encPub: enc.public,
      circ: null,
      established: false,
      closed: false,
      launchedAt: now,
      budget: new IntroBudget(introLimitsFromParams(dir.consensus.params), now),
      // Entries live as long as the intro point (C tor replaycache_new(0, 0)); its budget bounds their number.
      replay: new ReplayCache(),
    };
    this.intros.add(intro);
    this.establish(intro).catch((e: unknown) => {
      this.c.logger.info('could not establish an intro point', {
        relay: relay.nickname,
        error: (e as Error).message,
      });
      this.failedRelays.set(relay.id, this.c.now() + INTRO_FAIL_BACKOFF_MS);
      this.drop(intro);
    });
  }

  private async establish(intro: IntroPoint): Promise<void> {
    const circ = await this.c.circuits.build({ purpose: 'onion-intro', lastHop: intro.relay });
    if (intro.closed || !this.active) {
      circ.destroy(DestroyReason.FINISHED);
      return;
    }
    intro.circ = circ;
    circ.on('destroyed', () => {
      if (intro.closed) return;
      if (intro.established)
        this.c.logger.info('intro circuit closed; replacing the intro point', {
          relay: intro.relay.nickname,
        });
      this.drop(intro);
    });
    const kh = circ.lastHopKh;
    if (!kh) throw new IntroPointError('intro circuit has no KH for its last hop');
    const hop = circ.length - 1;
    const reply = circ.waitFor((h, m) => h === hop && m.type === 'INTRO_ESTABLISHED', ESTABLISH_TIMEOUT_MS);
    circ.on('message', ({ hop: h, msg }) => {
      if (h === hop && msg.type === 'INTRODUCE2') this.emit('introduce2', { intro, body: msg.body });
    });
    const body = buildEstablishIntro(
      { authKeyPub: intro.authPub, authKeySeed: intro.authSeed, dos: this.o.dos },
      kh,
    );
    circ.sendControl({ type: 'ESTABLISH_INTRO', body });
    await reply;
    if (intro.closed) return;
    intro.established = true;
    this.updateGauge();
    this.c.logger.info('intro point established', { relay: intro.relay.nickname, instance: this.o.instance });
    this.emit('established', { relay: intro.relay.nickname });
    this.emit('changed', { established: this.established });
  }

  private drop(intro: IntroPoint): void {
    if (intro.closed) return;
    intro.closed = true;
    this.intros.delete(intro);
    intro.circ?.destroy(DestroyReason.FINISHED);
    this.updateGauge();
    this.emit('changed', { established: this.established });
  }

  private updateGauge(): void {
    this.c.metrics.introPoints.labels(this.label).set(this.established);
  }
}
