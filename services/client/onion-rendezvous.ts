/**
 * The onion client's introduction and rendezvous (rend-spec-v3 §3.2-3.4):
 * from a service's descriptor to an open rendezvous circuit with the
 * service's virtual hop on it (hs-ntor, rend-spec-v3 §4).
 *
 * Overview: a fresh rendezvous point (weighted draw among Stable relays), a
 * circuit to it and ESTABLISH_RENDEZVOUS with a random cookie; meanwhile a
 * circuit to an introduction point from the descriptor. INTRODUCE1 carries
 * the cookie and the rendezvous point's ntor key and link specifiers,
 * encrypted to the service. A NACK moves on to the next intro point; all
 * fail: `intro_failed` (`intro_timeout` when every failure was a timeout).
 * No RENDEZVOUS2 in time, or a bad one: `rend_failed`.
 *
 * Design notes:
 * - The rendezvous circuit is established before INTRODUCE1 leaves, so the
 *   service's RENDEZVOUS1 always finds the cookie; the RENDEZVOUS2 waiter
 *   is in place before INTRODUCE1 too, so a fast service is never missed.
 * - Each intro failure (circuit, NACK, ACK timeout) is remembered for 2 min,
 *   so later connects try it last (C tor's client intro state cache);
 *   relays the CircuitManager saw stop answering are tried last as intro
 *   points and skipped as rendezvous points.
 */

import { toHex } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import type { Rng } from '../core/crypto.js';
import {
  buildIntroduce1,
  decodeIntroduceAck,
  IntroduceAckStatus,
  REND_COOKIE_LEN,
} from '../core/hs-cells.js';
import type { HsDescriptorContents, IntroPointInfo } from '../core/hs-descriptor.js';
import { hsNtorClientRendezvous, hsRendHopKeys } from '../core/hs-ntor.js';
import { decodeRendezvous2, encodeEstablishRendezvous, splitHandshakeInfo } from '../core/hs-rend-cells.js';
import { relayLinkSpecifiers } from '../core/link-specifiers.js';
import { shuffled } from '../core/random.js';
import type { RelayMessage } from '../core/relay-cell.js';
import { hsVirtualHop } from '../core/relay-crypto.js';
import type { Metrics } from '../metrics/metrics.js';
import { CircuitError } from '../net/circuit-error.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import type { Logger } from '../runtime/log.js';
import type { CircuitManager } from './circuit-manager.js';
import { ConnectError } from './connect.js';
import { type NetDir, type NetRelay, relayLegacyId } from './netdir.js';
import { chooseRendezvousPoint, findIntroRelay, type OnionPeriodKeys } from './onion-params.js';

/**
 * A rendezvous attempt that failed where a new attempt, on new circuits
 * through other relays, may not: a circuit that could not be built, no
 * RENDEZVOUS_ESTABLISHED or no RENDEZVOUS2 in time, every intro point
 * failing. C tor keeps the stream waiting and launches new intro and
 * rendezvous circuits for it (hs_client.c hs_client_circuit_cleanup_on_free,
 * circuituse.c circuit_build_failed: "Alice will pick a new rend point when
 * this one dies, if the stream in question still cares"). A RENDEZVOUS2 that
 * does not verify, or no usable rendezvous or intro point at all, is final.
 */
export class RetriableConnectError extends ConnectError {}

/** What introduction and rendezvous use of the onion client. */
export interface OnionRendezvousContext {
  circuits: Pick<CircuitManager, 'build' | 'isUnresponsive' | 'unresponsiveIds'>;
  logger: Logger;
  rng: Rng;
  now: () => number;
  m: Pick<Metrics['client'], 'rendezvousChosen'>;
  /** Observes a phase of shallot_onion_connect_phase_seconds. */
  phase(phase: 'introduction' | 'rendezvous', since: number): void;
}

export interface OnionRendezvousOptions {
  /** RENDEZVOUS_ESTABLISHED after ESTABLISH_RENDEZVOUS. */
  rendEstablishTimeoutMs: number;
  /** INTRODUCE_ACK after INTRODUCE1. */
  introAckTimeoutMs: number;
  /** RENDEZVOUS2 after a positive INTRODUCE_ACK. */
  rendezvousTimeoutMs: number;
  /** Intro points tried per rendezvous. */
  maxIntroAttempts: number;
  /** Rendezvous points tried when the circuit to one cannot be built. */
  maxRendAttempts: number;
  /** Failed intro points remembered at once. */
  maxCachedDescriptors: number;
}

/**
 * Upper bound on building one intro circuit, for sizing the RENDEZVOUS2
 * waiter (the CircuitManager's learned timeout applies first); the waiter is
 * cleared as soon as the rendezvous finishes or fails.
 */
const INTRO_CIRCUIT_BUDGET_MS = 60_000;

interface PendingRendezvous {
  circ: OriginCircuit;
  cookie: Uint8Array;
  rp: NetRelay;
}

/** An INTRODUCE1 we sent: what finishing hs-ntor on RENDEZVOUS2 needs. */
interface SentIntro {
  ip: IntroPointInfo;
  x: Uint8Array;
  X: Uint8Array;
}

export class OnionRendezvous {
  /**
   * Intro points (auth key, hex) that failed lately, as C tor's client intro
   * state cache keeps them (hs_cache.c, 2 minutes): one that NACKed
   * (INTRODUCE_ACK other than success: an INTRO_POINT_FAILURE_GENERIC) is
   * not used again meanwhile; one that timed out or could not be reached is
   * tried last. C tor also stops using a timed-out one; here a frozen
   * relay's intro point stays a last resort, since the testnet pauses relays
   * on purpose and they come back.
   */
  private readonly introFailures = new Map<string, { until: number; refused: boolean }>();

  constructor(
    private readonly c: OnionRendezvousContext,
    private readonly o: OnionRendezvousOptions,
  ) {}

  /**
   * Introduces to the service of `desc` and joins it at a rendezvous point:
   * the rendezvous circuit with the service's virtual hop, named `label`.
   */

  async rendezvous(
    identity: Uint8Array,
    label: string,
    desc: HsDescriptorContents,
    keys: OnionPeriodKeys,
    dir: NetDir,
  ): Promise<OriginCircuit> {
    const started = this.c.now();
    const found = shuffled(desc.introPoints, this.c.rng)
      .filter((ip) => !this.introRefused(ip))
      .map((ip) => ({ ip, relay: findIntroRelay(dir.relays, ip.linkSpecifiers) }))
      .filter((x): x is { ip: IntroPointInfo; relay: NetRelay } => x.relay !== undefined);
    // Failover order: intro points that failed lately, or whose relay stopped answering, go last.
    const failed = (x: { ip: IntroPointInfo; relay: NetRelay }) =>
      this.introFailed(x.ip) || this.c.circuits.isUnresponsive(x.relay.id);
    const intros = [...found.filter((x) => !failed(x)), ...found.filter(failed)].slice(
      0,
      this.o.maxIntroAttempts,
    );
    if (intros.length === 0) {
      throw new ConnectError('intro_failed', 'no usable introduction point in the descriptor');
    }

    // The rendezvous circuit and the first intro circuit are built at the same time.
    const rendP = this.establishRendezvous(dir);
    rendP.catch(() => {});
    let nextIntro: Promise<OriginCircuit> | null = this.introCircuit(intros[0]!.relay);
    nextIntro.catch(() => {});

    let rend: PendingRendezvous;
    try {
      rend = await rendP;
    } catch (e) {
      void nextIntro.then((c) => c.destroy(DestroyReason.FINISHED)).catch(() => {});
      throw e instanceof ConnectError ? e : new RetriableConnectError('rend_failed', String(e));
    }
    const rendCirc = rend.circ;
    // In place before any INTRODUCE1, so a fast service's RENDEZVOUS2 is never missed.
    const rend2 = rendCirc.waitFor(
      (_hop, m) => m.type === 'RENDEZVOUS2',
      intros.length * (this.o.introAckTimeoutMs + INTRO_CIRCUIT_BUDGET_MS) + this.o.rendezvousTimeoutMs,
    );
    rend2.catch(() => {});

    const sent: SentIntro[] = [];
    let acked = false;
    let timeouts = 0;
    let lastError = '';
    for (let i = 0; i < intros.length && !acked; i++) {
      const { ip, relay } = intros[i]!;
      const introP = nextIntro ?? this.introCircuit(relay);
      nextIntro = null;
      let introCirc: OriginCircuit;
      try {
        introCirc = await introP;
      } catch (e) {
        if (isTimeout(e)) timeouts += 1;
        lastError = `intro circuit to ${relay.nickname}: ${String(e)}`;
        this.noteIntroFailure(ip);
        continue;
      }
      try {
        const built = buildIntroduce1(
          {
            authKey: ip.authKey,
            B: ip.encKey,
            subcredential: keys.subcredential,
            plaintext: {
              cookie: rend.cookie,
              extensions: [],
              onionKey: rend.rp.ntorKey,
              linkSpecifiers: relayLinkSpecifiers({
                address: rend.rp.address,
                port: rend.rp.port,
                legacyId: relayLegacyId(rend.rp),
                ed25519Id: rend.rp.identity,
              }),
            },
          },
          this.c.rng,
        );
        sent.push({ ip, x: built.x, X: built.X });
        const ackP = introCirc.waitFor((_h, m) => m.type === 'INTRODUCE_ACK', this.o.introAckTimeoutMs);
        introCirc.sendControl({ type: 'INTRODUCE1', body: built.cell });
        const { msg } = await ackP;
        const ack = decodeIntroduceAck(bodyOf(msg));
        if (ack.status === IntroduceAckStatus.SUCCESS) acked = true;
        else {
          lastError = `intro point ${relay.nickname} answered INTRODUCE_ACK ${ack.status}`;
          this.noteIntroFailure(ip, true);
        }
      } catch (e) {
        if (isTimeout(e)) timeouts += 1;
        lastError = `intro point ${relay.nickname}: ${String(e)}`;
        this.noteIntroFailure(ip);
      } finally {
        // rend-spec-v3 §3.2.2: the intro circuit has done its job either way.
        introCirc.destroy(DestroyReason.FINISHED);
      }
    }
    if (!acked) {
      rendCirc.destroy(DestroyReason.FINISHED);
      const allTimedOut = timeouts > 0 && timeouts === intros.length;
      throw new ConnectError(
        allTimedOut ? 'intro_timeout' : 'intro_failed',
        `introduction failed: ${lastError}`,
      );
    }
    this.c.phase('introduction', started);
    const ackedAt = this.c.now();

    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // The acked intro point's way to the service may be what is stuck (a frozen relay on the
          // service's intro circuit): the next attempt tries another intro point first.
          for (const s of sent) this.noteIntroFailure(s.ip);
          reject(new RetriableConnectError('rend_failed', 'no RENDEZVOUS2 in time'));
        }, this.o.rendezvousTimeoutMs);
      });
      const { msg } = await Promise.race([rend2, timeout]);
      const { Y, auth } = splitHandshakeInfo(decodeRendezvous2(bodyOf(msg)).handshakeInfo);
      // The service answers the INTRODUCE1 it got; normally the acked one, but try each we sent.
      let keySeed: Uint8Array | null = null;
      for (const s of sent) {
        try {
          keySeed = hsNtorClientRendezvous({
            x: s.x,
            X: s.X,
            B: s.ip.encKey,
            authKey: s.ip.authKey,
            Y,
            auth,
          });
          break;
        } catch {
          // Not this one.
        }
      }
      if (!keySeed) throw new ConnectError('rend_failed', 'RENDEZVOUS2 handshake does not verify');
      rendCirc.addVirtualHop(hsVirtualHop(hsRendHopKeys(keySeed), 'client'), {
        nickname: label,
        identity,
        ntorKey: new Uint8Array(32),
        address: '',
        port: 0,
      });
      keySeed.fill(0);
      this.c.phase('rendezvous', ackedAt);
      return rendCirc;
    } catch (e) {
      rendCirc.destroy(DestroyReason.FINISHED);
      if (e instanceof ConnectError) throw e;
      // The rendezvous circuit died while we waited: another attempt may fare better; a bad cell is final.
      throw e instanceof CircuitError
        ? new RetriableConnectError('rend_failed', String(e))
        : new ConnectError('rend_failed', String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  /** C tor `hs_cache_client_intro_state_note`: remembered for HS_CACHE_CLIENT_INTRO_STATE_MAX_AGE (2 min). */
  /** `refused`: the intro point NACKed the introduction (not used again for 2 minutes). */
  private noteIntroFailure(ip: IntroPointInfo, refused = false): void {
    const now = this.c.now();
    for (const [k, f] of this.introFailures) if (f.until <= now) this.introFailures.delete(k);
    const key = toHex(ip.authKey);
    const was = this.introFailures.get(key);
    if (was || this.introFailures.size < this.o.maxCachedDescriptors)
      this.introFailures.set(key, { until: now + 120_000, refused: refused || (was?.refused ?? false) });
  }

  private introFailed(ip: IntroPointInfo): boolean {
    return (this.introFailures.get(toHex(ip.authKey))?.until ?? 0) > this.c.now();
  }

  private introRefused(ip: IntroPointInfo): boolean {
    const f = this.introFailures.get(toHex(ip.authKey));
    return f?.refused === true && f.until > this.c.now();
  }

  /**
   * Whether `desc` lists an intro point that has not refused an
   * introduction lately (C tor hs_client_any_intro_points_usable).
   */
  hasUsableIntro(desc: HsDescriptorContents): boolean {
    return desc.introPoints.some((ip) => !this.introRefused(ip));
  }

  private introCircuit(relay: NetRelay): Promise<OriginCircuit> {
    return this.c.circuits.build({ purpose: 'onion-intro', lastHop: relay });
  }

  /** Picks a rendezvous point, builds to it and registers a fresh cookie. */
  private async establishRendezvous(dir: NetDir): Promise<PendingRendezvous> {
    const tried = new Set<string>();
    let last: unknown;
    for (let attempt = 0; attempt < this.o.maxRendAttempts; attempt++) {
      // Relays that stopped answering lately are skipped too, while any other is left.
      const skip = new Set([...tried, ...this.c.circuits.unresponsiveIds()]);
      const rp = chooseRendezvousPoint(dir.relays, dir.consensus.bandwidthWeights, this.c.rng, skip);
      if (!rp) throw new ConnectError('rend_failed', 'no relay can be a rendezvous point');
      tried.add(rp.id);
      this.c.m.rendezvousChosen.labels({ relay: rp.nickname }).inc();
      let circ: OriginCircuit | null = null;
      try {
        // Two chosen hops, vanguards or not: prop 333's client rend circuit is G-L2-R.
        circ = await this.c.circuits.build({ purpose: 'onion-rend', lastHop: rp, length: 2 });
        const cookie = this.c.rng(REND_COOKIE_LEN);
        const est = circ.waitFor(
          (_h, m) => m.type === 'RENDEZVOUS_ESTABLISHED',
          this.o.rendEstablishTimeoutMs,
        );
        circ.sendControl({ type: 'ESTABLISH_RENDEZVOUS', body: encodeEstablishRendezvous({ cookie }) });
        await est;
        return { circ, cookie, rp };
      } catch (e) {
        circ?.destroy(DestroyReason.FINISHED);
        last = e;
        this.c.logger.debug('rendezvous point failed', { relay: rp.nickname, error: String(e) });
      }
    }
    throw new RetriableConnectError('rend_failed', `could not establish a rendezvous: ${String(last)}`);
  }
}

function bodyOf(msg: RelayMessage): Uint8Array {
  return 'body' in msg ? msg.body : new Uint8Array(0);
}

function isTimeout(e: unknown): boolean {
  return e instanceof CircuitError && (e.kind === 'timeout' || e.reason === DestroyReason.TIMEOUT);
}
