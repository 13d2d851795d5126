/**
 * The onion service's descriptor publisher (rend-spec-v3 §2.2.6, §2.4-2.5;
 * C tor hs_service.c run_upload_descriptor_event).
 *
 * Overview: one descriptor per time period the coordinator names (two at a
 * time, periods.ts), each with its own blinded key and subcredential
 * (handed in: the identity stays with the coordinator) and a
 * descriptor-signing key of its own. A descriptor lists the intro points
 * it is given (own and peers', intro-points.ts) and goes to the HSDirs
 * responsible for its period (periods.ts uploadHsDirs: 2 replicas x spread
 * 4) by POST /tor/hs/3/publish over BEGIN_DIR on a 3-hop 'hsdir' circuit.
 *
 * When: on any change of the intro set or of the ring, on a new period,
 * 5 s after an upload some HSDir missed, and otherwise at a random time
 * 60-120 min after the last upload (C tor HS_SERVICE_NEXT_UPLOAD_TIME_MIN /
 * _MAX). Never before an intro point is established (C tor waits for them
 * too), and not while a new one is still being established (up to 5 s), so
 * one upload covers it.
 *
 * Fetchable (what `shallot up` waits for, service.ts whenPublished): each
 * kept period's descriptor accepted by an HSDir of its fetch set
 * (spread_fetch per replica), which a client with the same consensus asks,
 * for either period.
 *
 * Revision counter (§2.4): the clock in ms, monotone here, and, within clock
 * skew, across instances sharing the identity, so the latest upload of the
 * same merged set wins at an HSDir (instances.ts).
 *
 * Not in this module: which periods and SRVs (periods.ts), the identity and
 * blinded keys (service.ts), the descriptor format (core/hs-descriptor.ts).
 */

import type { CircuitManager } from '../client/circuit-manager.js';
import type { NetRelay } from '../client/netdir.js';
import { toHex, utf8 } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import { type ExpandedKey, type Rng, randomBytes } from '../core/crypto.js';
import { buildHsDescriptor, type IntroPointInfo } from '../core/hs-descriptor.js';
import type { TimePeriodParams } from '../core/hs-time.js';
import { uniformFraction } from '../core/random.js';
import type { Metrics } from '../metrics/metrics.js';
import { dirRequest } from '../net/dir-http.js';
import type { OriginCircuit } from '../net/origin-circuit.js';
import { TypedEmitter } from '../net/typed-emitter.js';
import type { Logger } from '../runtime/log.js';
import { fetchHsDirsFor, type PeriodSrv, uploadHsDirs } from './periods.js';

/** A time period's keys, derived from the identity (rend-spec-v3 §2.1-2.2). */
export interface PeriodKeys {
  blindedPub: Uint8Array;
  blindedKey: ExpandedKey;
  subcredential: Uint8Array;
}

export interface PublishedEvent {
  tp: number;
  uploaded: number;
  failed: number;
  introPoints: number;
}

export interface PublisherComponents {
  circuits: Pick<CircuitManager, 'build'>;
  logger: Logger;
  metrics: Metrics['service'];
  now: () => number;
  rng: Rng;
}

export interface PublisherOptions {
  /** `service` metric label. */
  name: string;
  instance: string;
  /** For logs. */
  onion: string;
  identityPub: Uint8Array;
  /** Republish at a random time in [min, max] ms after an upload (default 60-120 min). */
  republishMs?: [number, number];
  /** x25519 public keys of the only clients that may read the descriptor (default: anyone). */
  authorizedClients?: readonly Uint8Array[];
}

/** What decides whether an upload is due. */
export interface PublishInput {
  relays: readonly NetRelay[];
  params: TimePeriodParams;
  introPoints: IntroPointInfo[];
  /** An intro point is still being established: wait for it. */
  settling: boolean;
}

interface DescState {
  period: PeriodSrv;
  keys: PeriodKeys;
  signingSeed: Uint8Array;
  /** Intro set + HSDir set of the last upload. */
  uploadedSig: string | null;
  nextUploadAt: number;
  uploading: boolean;
  /** HSDirs (hex ids) that accepted a descriptor listing `held.intro`; rounds with the same intro set add to it. */
  held: { intro: string; introPoints: number; by: Set<string> } | null;
}

/** C tor HS_SERVICE_NEXT_UPLOAD_TIME_MIN / _MAX: 60 and 120 min. */
const DEFAULT_REPUBLISH: [number, number] = [60 * 60_000, 120 * 60_000];
const UPLOAD_TIMEOUT_MS = 30_000;
const UPLOAD_RETRY_MS = 5_000;
/** An HSDir's answer body is only logged, so little of it is read. */
const MAX_ANSWER_BYTES = 4096;

export class DescriptorPublisher extends TypedEmitter<{ published: PublishedEvent }> {
  private readonly descs = new Map<number, DescState>();
  private lastRevision = 0n;
  private rounds = 0;
  private best: number | null = null;
  /** The relays and period parameters of the last `maintain`: the ring clients fetch from. */
  private ring: { relays: readonly NetRelay[]; params: TimePeriodParams } | null = null;

  constructor(
    private readonly c: PublisherComponents,
    private readonly o: PublisherOptions,
  ) {
    super();
  }

  /** Upload rounds completed with at least one HSDir accepting. */
  get published(): number {
    return this.rounds;
  }

  /** Most intro points an accepted descriptor has listed (null: none accepted yet). */
  get bestPublished(): number | null {
    return this.best;
  }

  /**
   * Whether a client holding the consensus of the last `maintain` can fetch
   * every descriptor kept now, whichever period it asks for first
   * (client/onion-descriptors.ts tries the current period, then the other):
   * for each period, an HSDir of its fetch set (periods.ts fetchHsDirsFor)
   * accepted the descriptor of the latest intro set uploaded, listing at
   * least `minIntroPoints` (HSDirs that hold only an older set do not count:
   * its intro points may be gone). A client asks every HSDir of the fetch set
   * before it gives up, as C tor does, so one is enough, and a dead or paused
   * HSDir does not keep a service from ready; but an HSDir beyond
   * spread_fetch (spread_store is 4, spread_fetch 3 per replica) is one no
   * client asks, and a round's event for one period says nothing of the other's.
   */
  fetchable(minIntroPoints: number): boolean {
    const ring = this.ring;
    if (!ring || this.descs.size === 0) return false;
    for (const d of this.descs.values()) {
      if (!d.held || d.held.introPoints < minIntroPoints) return false;
      const asked = fetchHsDirsFor(ring.relays, d.keys.blindedPub, d.period, ring.params);
      const by = d.held.by;
      if (!asked.some((r) => by.has(r.id))) return false;
    }
    return true;
  }

  /** The periods descriptors are kept for. */
  get periods(): number[] {
    return [...this.descs.keys()];
  }

  /**
   * Keeps one descriptor per period in `periods`: new ones start unpublished,
   * gone ones are forgotten, and a period whose SRV changed is re-placed on
   * the ring (the next `maintain` sees the new HSDirs).
   */
  setPeriods(periods: readonly PeriodSrv[], keysFor: (tp: number) => PeriodKeys): void {
    const keep = new Set(periods.map((p) => p.tp));
    for (const tp of this.descs.keys()) if (!keep.has(tp)) this.descs.delete(tp);
    for (const p of periods) {
      const d = this.descs.get(p.tp);
      if (!d) {
        this.descs.set(p.tp, {
          period: p,
          keys: keysFor(p.tp),
          signingSeed: randomBytes(32),
          uploadedSig: null,
          nextUploadAt: 0,
          uploading: false,
          held: null,
        });
      } else if (toHex(d.period.srv) !== toHex(p.srv)) d.period = p;
    }
  }

  /** Starts the uploads that are due (see the header for when). */
  maintain(input: PublishInput): void {
    const ips = input.introPoints;
    // At least one intro point (C tor waits for its intro points before the first upload).
    if (ips.length === 0 || input.settling) return;
    this.ring = { relays: input.relays, params: input.params };
    const now = this.c.now();
    // An intro point's relay that rotated its onion key changes the descriptor too.
    const introSig = ips
      .map((ip) => `${toHex(ip.authKey)}:${toHex(ip.onionKey)}`)
      .sort()
      .join(',');
    for (const d of this.descs.values()) {
      if (d.uploading) continue;
      const targets = uploadHsDirs(input.relays, d.keys.blindedPub, d.period, input.params);
      if (targets.length === 0) continue;
      const sig = `${introSig}|${targets.map((t) => t.id).join(',')}`;
      if (sig === d.uploadedSig && now < d.nextUploadAt) continue;
      void this.upload(d, ips, targets, sig, introSig);
    }
  }

  private nextRevision(): bigint {
    const t = BigInt(this.c.now());
    this.lastRevision = t > this.lastRevision ? t : this.lastRevision + 1n;
    return this.lastRevision;
  }

  private republishDelay(): number {
    const [lo, hi] = this.o.republishMs ?? DEFAULT_REPUBLISH;
    return lo + uniformFraction(this.c.rng) * (hi - lo);
  }

  private async upload(
    d: DescState,
    ips: IntroPointInfo[],
    targets: NetRelay[],
    sig: string,
    introSig: string,
  ): Promise<void> {
    d.uploading = true;
    let text: string;
    try {
      text = buildHsDescriptor(
        {
          identityPub: this.o.identityPub,
          blindedKey: d.keys.blindedKey,
          blindedPub: d.keys.blindedPub,
          descSigningSeed: d.signingSeed,
          revisionCounter: this.nextRevision(),
          introPoints: ips,
          subcredential: d.keys.subcredential,
          nowMs: this.c.now(),
          ...(this.o.authorizedClients ? { authorizedClients: this.o.authorizedClients } : {}),
        },
        randomBytes,
      );
    } catch (e) {
      d.uploading = false;
      this.c.logger.error('could not build the descriptor', { error: (e as Error).message });
      return;
    }
    const results = await Promise.all(targets.map((t) => this.uploadOne(t, text)));
    d.uploading = false;
    const ok = results.filter((r) => r === 'success').length;
    const failed = results.length - ok;
    // An HSDir that took an earlier round of the same intro set still serves one as good.
    if (d.held?.intro !== introSig) d.held = { intro: introSig, introPoints: ips.length, by: new Set() };
    targets.forEach((t, i) => {
      if (results[i] === 'success') d.held?.by.add(t.id);
    });
    if (ok > 0) this.rounds++;
    // Any HSDir that missed it gets a retry soon (all of them: the revision counter makes that harmless).
    d.uploadedSig = sig;
    d.nextUploadAt = this.c.now() + (failed > 0 ? UPLOAD_RETRY_MS : this.republishDelay());
    this.c.logger.info('descriptor published', {
      onion: this.o.onion,
      instance: this.o.instance,
      tp: d.period.tp,
      srv: d.period.source,
      introPoints: ips.length,
      uploaded: ok,
      failed,
    });
    if (ok > 0) {
      // Own and peers' intro points: above shallot_hs_intro_points once instances share.
      this.c.metrics.descriptorIntroPoints
        .labels({ service: this.o.name, service_instance: this.o.instance })
        .set(ips.length);
      if (ips.length >= (this.best ?? 0)) this.best = ips.length;
    }
    this.emit('published', { tp: d.period.tp, uploaded: ok, failed, introPoints: ips.length });
  }

  private async uploadOne(hsdir: NetRelay, text: string): Promise<'success' | 'rejected' | 'failure'> {
    let circ: OriginCircuit | null = null;
    let outcome: 'success' | 'rejected' | 'failure' = 'failure';
    const timer = setTimeout(() => circ?.destroy(DestroyReason.TIMEOUT), UPLOAD_TIMEOUT_MS);
    try {
      circ = await this.c.circuits.build({ purpose: 'hsdir', lastHop: hsdir });
      const stream = await circ.openDirStream(UPLOAD_TIMEOUT_MS);
      const res = await dirRequest(
        stream,
        { method: 'POST', path: '/tor/hs/3/publish', body: utf8(text) },
        MAX_ANSWER_BYTES,
      );
      outcome = res.status === 200 ? 'success' : 'rejected';
      if (outcome === 'rejected') {
        this.c.logger.warn('HSDir refused the descriptor', {
          hsdir: hsdir.nickname,
          status: res.status,
          body: Buffer.from(res.body).toString('utf8').slice(0, 200),
        });
      }
    } catch (e) {
      this.c.logger.debug('descriptor upload failed', { hsdir: hsdir.nickname, error: (e as Error).message });
    } finally {
      clearTimeout(timer);
      circ?.destroy(DestroyReason.FINISHED);
    }
    this.c.metrics.descriptorUploads.labels({ service: this.o.name, outcome }).inc();
    return outcome;
  }
}
