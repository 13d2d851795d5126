/**
 * The onion client's descriptors (rend-spec-v3 §2.2, §2.5): which HSDirs
 * to ask, the fetch over a 3-hop circuit and BEGIN_DIR
 * (`GET /tor/hs/3/<b64 A'>`), decryption with the subcredential and any
 * client-authorization key, and a cache per address for the descriptor's
 * time period and lifetime.
 *
 * Overview: `eitherPeriod` asks for the current time period's descriptor,
 * else the other period's (`otherPeriodKeys`). HSDirs are tried in random
 * order; none has it: `desc_not_found`; every copy found fails to verify or
 * decrypt: `desc_invalid`; a service that needs a key the client lacks,
 * or one ours does not open: `missing_client_auth` / `wrong_client_auth`
 * at once (every HSDir holds the same descriptor).
 *
 * Design notes: concurrent requests for one address share one fetch (C
 * tor's pending-fetch check); the cache holds `maxCachedDescriptors`,
 * dropping the oldest. The caller (onion.ts) drops an entry when every
 * intro point of a cached descriptor fails.
 */

import { toBase64 } from '../core/bytes.js';
import { DestroyReason } from '../core/cells.js';
import type { Rng } from '../core/crypto.js';
import { ClientAuthError } from '../core/hs-desc-crypto.js';
import { decryptHsDescriptor, HS_DESC_MAX_LEN, type HsDescriptorContents } from '../core/hs-descriptor.js';
import { shuffled } from '../core/random.js';
import { dirRequest } from '../net/dir-http.js';
import type { Logger } from '../runtime/log.js';
import type { CircuitManager } from './circuit-manager.js';
import { ConnectError } from './connect.js';
import type { NetDir, NetRelay } from './netdir.js';
import { hsDirsToFetch, type OnionPeriodKeys, onionPeriodKeys, otherPeriodKeys } from './onion-params.js';

/** What the descriptor side uses of the onion client. */
export interface OnionDescriptorsContext {
  circuits: Pick<CircuitManager, 'build'>;
  logger: Logger;
  rng: Rng;
  now: () => number;
  /** Observes the `descriptor` phase of shallot_onion_connect_phase_seconds. */
  phase(phase: 'descriptor', since: number): void;
}

export interface OnionDescriptorsOptions {
  /** One HSDir fetch: circuit, BEGIN_DIR and the answer. */
  descFetchTimeoutMs: number;
  /** HSDirs tried per fetch. */
  maxHsDirAttempts: number;
  /** Descriptors cached at once. */
  maxCachedDescriptors: number;
}

interface CachedDescriptor {
  tp: bigint;
  desc: HsDescriptorContents;
  expiresAt: number;
}

export class OnionDescriptors {
  private readonly descriptors = new Map<string, CachedDescriptor>();
  /** Fetches in flight per address, so concurrent requests share one (as C tor's pending-fetch check). */
  private readonly fetching = new Map<string, { tp: bigint; p: Promise<HsDescriptorContents> }>();

  constructor(
    private readonly c: OnionDescriptorsContext,
    private readonly o: OnionDescriptorsOptions,
  ) {}

  /** The cached descriptor of an address label, if any. */
  cached(label: string): HsDescriptorContents | null {
    return this.descriptors.get(label)?.desc ?? null;
  }

  /** Forgets an address's descriptor, so the next connect fetches it afresh. */
  drop(label: string): void {
    this.descriptors.delete(label);
  }

  clear(): void {
    this.descriptors.clear();
  }

  /**
   * The descriptor for the current time period, else for the other one
   * (`otherPeriodKeys`, rend-spec-v3 §2.2.1) when no HSDir has the current
   * one: around a time-period change a service may not have published for
   * the period this client's consensus names yet. A cached descriptor of the
   * other period is used first while it is valid.
   */
  async eitherPeriod(
    label: string,
    identity: Uint8Array,
    dir: NetDir,
    authSecret: Uint8Array | undefined,
  ): Promise<{ desc: HsDescriptorContents; cached: boolean; keys: OnionPeriodKeys }> {
    const current = onionPeriodKeys(identity, dir.consensus);
    const other = otherPeriodKeys(identity, dir.consensus);
    const order = this.descriptors.get(label)?.tp === other.tp ? [other, current] : [current, other];
    let notFound: unknown;
    for (const keys of order) {
      try {
        return { ...(await this.get(label, keys, dir, authSecret)), keys };
      } catch (e) {
        if (!(e instanceof ConnectError && e.kind === 'desc_not_found')) throw e;
        notFound ??= e;
      }
    }
    throw notFound;
  }

  async get(
    label: string,
    keys: OnionPeriodKeys,
    dir: NetDir,
    authSecret: Uint8Array | undefined,
  ): Promise<{ desc: HsDescriptorContents; cached: boolean }> {
    const hit = this.descriptors.get(label);
    if (hit && hit.tp === keys.tp && hit.expiresAt > this.c.now()) return { desc: hit.desc, cached: true };
    if (hit) this.descriptors.delete(label);
    const inFlight = this.fetching.get(label);
    if (inFlight && inFlight.tp === keys.tp) return { desc: await inFlight.p, cached: false };
    const fetchStarted = this.c.now();
    const p = this.fetch(keys, dir, authSecret);
    const entry = { tp: keys.tp, p };
    this.fetching.set(label, entry);
    let desc: HsDescriptorContents;
    try {
      desc = await p;
    } finally {
      if (this.fetching.get(label) === entry) this.fetching.delete(label);
    }
    // Once per fetch: requests that shared it (above) are not observed again.
    this.c.phase('descriptor', fetchStarted);
    if (this.descriptors.size >= this.o.maxCachedDescriptors) {
      const oldest = this.descriptors.keys().next();
      if (!oldest.done) this.descriptors.delete(oldest.value);
    }
    this.descriptors.set(label, {
      tp: keys.tp,
      desc,
      expiresAt: this.c.now() + desc.lifetime * 60_000,
    });
    this.c.logger.debug('onion descriptor fetched', {
      address: label,
      introPoints: desc.introPoints.length,
      revision: desc.revisionCounter.toString(),
    });
    return { desc, cached: false };
  }

  /** Tries the responsible HSDirs in random order; see the module notes for the failure codes. */
  private async fetch(
    keys: OnionPeriodKeys,
    dir: NetDir,
    authSecret: Uint8Array | undefined,
  ): Promise<HsDescriptorContents> {
    const hsdirs = shuffled(hsDirsToFetch(dir.relays, keys), this.c.rng).slice(0, this.o.maxHsDirAttempts);
    if (hsdirs.length === 0) throw new ConnectError('desc_not_found', 'no HSDirs in consensus');
    let invalid = 0;
    let unreachable = 0;
    let lastInvalid = '';
    for (const hsdir of hsdirs) {
      let body: Uint8Array | null;
      try {
        body = await this.fetchFrom(hsdir, keys.blindedPub);
      } catch (e) {
        unreachable += 1;
        this.c.logger.debug('HSDir fetch failed', { hsdir: hsdir.nickname, error: String(e) });
        continue;
      }
      if (body === null) continue;
      try {
        return decryptHsDescriptor(body, {
          blindedPub: keys.blindedPub,
          subcredential: keys.subcredential,
          nowMs: this.c.now(),
          ...(authSecret ? { clientAuthSecret: authSecret } : {}),
        });
      } catch (e) {
        if (e instanceof ClientAuthError)
          throw new ConnectError(
            e.kind === 'missing' ? 'missing_client_auth' : 'wrong_client_auth',
            e.message,
          );
        invalid += 1;
        lastInvalid = (e as Error).message;
        this.c.logger.warn('HSDir returned an invalid onion descriptor', {
          hsdir: hsdir.nickname,
          error: lastInvalid,
        });
      }
    }
    if (invalid > 0) throw new ConnectError('desc_invalid', `descriptor invalid: ${lastInvalid}`);
    throw new ConnectError(
      'desc_not_found',
      `descriptor not found on ${hsdirs.length} HSDirs (${unreachable} unreachable)`,
    );
  }

  /** One GET over BEGIN_DIR; null on 404. */
  private async fetchFrom(hsdir: NetRelay, blindedPub: Uint8Array): Promise<Uint8Array | null> {
    const deadline = this.c.now() + this.o.descFetchTimeoutMs;
    const circ = await this.c.circuits.build({ purpose: 'hsdir', lastHop: hsdir });
    const timer = setTimeout(() => circ.destroy(DestroyReason.TIMEOUT), Math.max(1, deadline - this.c.now()));
    try {
      const stream = await circ.openDirStream(this.o.descFetchTimeoutMs);
      const res = await dirRequest(
        stream,
        { method: 'GET', path: `/tor/hs/3/${toBase64(blindedPub, false)}`, body: new Uint8Array(0) },
        HS_DESC_MAX_LEN,
      );
      if (res.status === 404) return null;
      if (res.status !== 200) throw new Error(`HSDir answered ${res.status}`);
      return res.body;
    } finally {
      clearTimeout(timer);
      circ.destroy(DestroyReason.FINISHED);
    }
  }
}
