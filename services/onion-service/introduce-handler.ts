/**
 * The onion service's answer to an introduction (rend-spec-v3 §3.3, §3.4,
 * §4.2): INTRODUCE2 in, a rendezvous circuit joined to the client out, its
 * streams served by the backend.
 *
 * Overview, in the order applied (why this order: introduce.ts):
 * 1. parse and MAC (openIntroduce2 with every live subcredential), so junk
 *    (`invalid`, `bad_mac`) never reaches a cache;
 * 2. the intro point's replay cache (`replay`);
 * 3. the intro point's introduction budget: once spent, the intro point is
 *    retired (the cell itself still goes on);
 * 4. the service-wide rendezvous-cookie cache (`rend_cookie_replay`; C tor
 *    hs_circ_handle_introduce2: one rendezvous per cookie);
 * 5. a token bucket (the service's own INTRODUCE2 budget) and a cap on
 *    rendezvous circuits being built at once (`rate_limited`);
 * 6. a 3-hop 'onion-rend' circuit to the rendezvous point the client's link
 *    specifiers name (NetDir.targetFromLinkSpecifiers: listed or not, with
 *    the client-given onion key), relaunched when it fails to build
 *    (rendezvous-retry.ts), then RENDEZVOUS1 with hs-ntor's Y|AUTH and the
 *    hs-ntor virtual hop; BEGINs from it go to backend.ts.
 *
 * Outcomes are counted in shallot_hs_intro_requests_total{outcome} and
 * shallot_hs_rend_total / shallot_hs_rend_retries_total.
 *
 * Not in this module: the intro points and their circuits
 * (intro-points.ts), the cell codecs and hs-ntor (core/hs-cells.ts,
 * core/hs-ntor.ts).
 */

import type { CircuitManager } from '../client/circuit-manager.js';
import { toHex } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import { randomBytes } from '../core/crypto.js';
import { CryptoError, ShallotError } from '../core/errors.js';
import { openIntroduce2 } from '../core/hs-cells.js';
import { hsNtorServiceRendezvous, hsRendHopKeys } from '../core/hs-ntor.js';
import { encodeRendezvous1, joinHandshakeInfo, padRendezvous1 } from '../core/hs-rend-cells.js';
import { hsVirtualHop } from '../core/relay-crypto.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { Metrics } from '../metrics/metrics.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { TypedEmitter } from '../net/typed-emitter.js';
import type { Logger } from '../runtime/log.js';
import { type Backend, serveBegin } from './backend.js';
import type { IntroPoint } from './intro-points.js';
import { introReplayKey, REND_REPLAY_TIME_INTERVAL_MS, ReplayCache } from './introduce.js';
import { rendRetryPolicy, withRendezvousRetries } from './rendezvous-retry.js';

export interface IntroduceHandlerComponents {
  circuits: Pick<CircuitManager, 'build' | 'dir'>;
  logger: Logger;
  metrics: Metrics['service'];
  now: () => number;
  /** The subcredentials an INTRODUCE2 may be MACed with (the coordinator's live periods). */
  subcredentials: () => Uint8Array[];
  /** An intro point's budget is spent: the intro-point set replaces it. */
  retire: (intro: IntroPoint) => void;
}

export interface IntroduceHandlerOptions {
  /** `service` metric label. */
  name: string;
  instance: string;
  backend: Backend;
  /** The port clients BEGIN to (":port"). */
  virtualPort: number;
  /** The service's own INTRODUCE2 budget. */
  rate: { rate: number; burst: number };
  /** Rendezvous circuits being built at once before INTRODUCE2s are dropped. */
  maxPending: number;
}

export class RendezvousPointError extends ShallotError {
  constructor() {
    super('ERR_REND_POINT', 'rendezvous point has no Ed25519 id or IPv4 address');
  }
}

type Opened = ReturnType<typeof openIntroduce2>;

export class IntroduceHandler extends TypedEmitter<{ rendezvous: { relay: string } }> {
  /** Rendezvous cookies already answered (C tor replay_cache_rend_cookie). */
  private readonly rendCookies = new ReplayCache(REND_REPLAY_TIME_INTERVAL_MS);
  private readonly rendCircuits = new Set<OriginCircuit>();
  private readonly bucket: TokenBucket;
  private readonly label: { service: string; service_instance: string };
  private pending = 0;
  private active = false;

  constructor(
    private readonly c: IntroduceHandlerComponents,
    private readonly o: IntroduceHandlerOptions,
  ) {
    super();
    this.bucket = new TokenBucket(o.rate.rate, o.rate.burst, c.now());
    this.label = { service: o.name, service_instance: o.instance };
  }

  start(): void {
    this.active = true;
  }

  /** Closes every rendezvous circuit; INTRODUCE2s after this are ignored. */
  stop(): void {
    this.active = false;
    for (const circ of this.rendCircuits) circ.destroy(DestroyReason.FINISHED);
    this.rendCircuits.clear();
  }

  /** Streams on the rendezvous circuits: open, and half-closed (END sent, the client's due). */
  get streams(): { open: number; halfClosed: number } {
    let open = 0;
    let halfClosed = 0;
    for (const c of this.rendCircuits) {
      open += c.streamCount;
      halfClosed += c.halfClosedStreams;
    }
    return { open, halfClosed };
  }

  /** One INTRODUCE2 from `intro`'s circuit (steps 1-5 of the header, then the rendezvous). */
  handle(intro: IntroPoint, body: Uint8Array): void {
    if (!this.active || intro.closed) return;
    let opened: Opened;
    try {
      opened = openIntroduce2(body, {
        b: intro.encSecret,
        B: intro.encPub,
        subcredentials: this.c.subcredentials(),
        authKey: intro.authPub,
      });
    } catch (e) {
      this.outcome(e instanceof CryptoError ? 'bad_mac' : 'invalid');
      this.c.logger.debug('INTRODUCE2 refused', { error: (e as Error).message });
      return;
    }
    const now = this.c.now();
    // rend-spec-v3 §3.3 / C tor hs_cell_parse_introduce2: a replayed INTRODUCE2 is dropped.
    if (intro.replay.addTestAndElapsed(introReplayKey(opened.cell), now) !== null) {
      this.outcome('replay');
      return;
    }
    if (intro.budget.spend()) this.c.retire(intro);
    if (this.rendCookies.addTestAndElapsed(toHex(opened.plaintext.cookie), now) !== null) {
      this.outcome('rend_cookie_replay');
      return;
    }
    if (!this.bucket.take(now) || this.pending >= this.o.maxPending) {
      this.outcome('rate_limited');
      return;
    }
    this.outcome('accepted');
    this.pending++;
    this.rendezvous(intro, opened)
      .catch((e: unknown) => {
        this.c.metrics.rend.labels({ ...this.label, outcome: 'failure' }).inc();
        this.c.logger.info('rendezvous failed', { error: (e as Error).message });
      })
      .finally(() => {
        this.pending--;
      });
  }

  private outcome(outcome: string): void {
    this.c.metrics.introRequests.labels({ ...this.label, outcome }).inc();
  }

  private async rendezvous(intro: IntroPoint, opened: Opened): Promise<void> {
    const pt = opened.plaintext;
    const dir = this.c.circuits.dir;
    const rp = dir?.targetFromLinkSpecifiers(pt.linkSpecifiers, pt.onionKey, 'unlisted-rp');
    if (!rp) throw new RendezvousPointError();
    // C tor hs_circ_retry_service_rendezvous_point: a circuit that fails to build is relaunched.
    const circ = await withRendezvousRetries(
      () => this.c.circuits.build({ purpose: 'onion-rend', lastHop: rp }),
      rendRetryPolicy(dir?.consensus.params),
      {
        now: this.c.now,
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        discard: (late) => late.destroy(DestroyReason.FINISHED),
        onRetry: (attempt, e) => {
          this.c.metrics.rendRetries.labels(this.label).inc();
          this.c.logger.info('rendezvous circuit failed; retrying', {
            rp: rp.nickname,
            attempt,
            error: (e as Error).message,
          });
        },
      },
    );
    if (!this.active) {
      circ.destroy(DestroyReason.FINISHED);
      return;
    }
    const hs = hsNtorServiceRendezvous(
      { b: intro.encSecret, B: intro.encPub, authKey: intro.authPub, X: opened.X },
      randomBytes,
    );
    circ.sendControl({
      type: 'RENDEZVOUS1',
      // Padded to C tor's legacy size, as C tor's services pad it (hs-cells.ts).
      body: padRendezvous1(
        encodeRendezvous1({ cookie: pt.cookie, handshakeInfo: joinHandshakeInfo(hs.Y, hs.auth) }),
        randomBytes,
      ),
    });
    // rend-spec-v3 §4.2: from now on the client is one virtual hop beyond the rendezvous point.
    const keys = hsRendHopKeys(hs.keySeed);
    hs.keySeed.fill(0);
    circ.addVirtualHop(hsVirtualHop(keys, 'service'), {
      nickname: 'onion-client',
      identity: new Uint8Array(32),
      ntorKey: new Uint8Array(32),
      address: '0.0.0.0',
      port: 0,
    });
    const edge = circ.length - 1;
    this.rendCircuits.add(circ);
    circ.on('destroyed', () => this.rendCircuits.delete(circ));
    circ.on('message', ({ hop, streamId, msg }) => {
      if (hop === edge && msg.type === 'BEGIN')
        serveBegin(circ, streamId, msg, this.o.backend, this.o.virtualPort);
    });
    this.c.metrics.rend.labels({ ...this.label, outcome: 'success' }).inc();
    this.emit('rendezvous', { relay: rp.nickname });
    this.c.logger.debug('rendezvous circuit open', { rp: rp.nickname });
  }
}
