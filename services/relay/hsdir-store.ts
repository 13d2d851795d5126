/**
 * The HSDir role (rend-spec-v3 §2.2.3, §2.2.6): stores v3 onion-service
 * descriptors that services POST to `/tor/hs/3/publish` over BEGIN_DIR and
 * serves them back on `GET /tor/hs/3/<base64 blinded key>`.
 *
 * Overview: a descriptor is accepted when its outer document parses and
 * its descriptor-signing-key cert (type 08, signed by the blinded key A')
 * and signature verify at the current time (`parseHsDescriptorOuter`). It
 * is filed under A', replaces a stored one only with a higher
 * revision-counter, and expires `descriptor-lifetime` minutes after it was
 * stored. The number of stored descriptors is capped; when full, expired
 * ones go first, then the one stored longest ago (C tor's cache OOM
 * handler also drops oldest first).
 *
 * Not in this module: which HSDirs a service picks (hsdir-ring.ts); the
 * encrypted layers, which an HSDir cannot read; the HTTP framing
 * (net/dir-http.ts).
 *
 * Design notes: like C tor (`handle_post_hs_descriptor`,
 * `hs_cache_lookup_as_dir`) every refused upload is a 400 and every failed
 * lookup, malformed key included, is a 404; the metric outcome tells them
 * apart. Time comes from `now()`, so tests can move the clock.
 */
import { fromBase64, fromUtf8, toBase64, toHex, utf8 } from '../core/bytes.js';
import { HS_DESC_MAX_LEN, parseHsDescriptorOuter } from '../core/hs-descriptor.js';
import type { DirRequest, DirResponse } from '../net/dir-http.js';

export const HSDIR_PUBLISH_PATH = '/tor/hs/3/publish';
export const HSDIR_FETCH_PREFIX = '/tor/hs/3/';

export interface HsDirLimits {
  /** Descriptors kept at once (default 10000). */
  maxDescriptors: number;
  /** Largest accepted upload, bytes (rend-spec-v3 §2.5: 50000). */
  maxDescriptorBytes: number;
}

export const DEFAULT_HSDIR_LIMITS: HsDirLimits = {
  maxDescriptors: 10_000,
  maxDescriptorBytes: HS_DESC_MAX_LEN,
};

export type HsDirOp = 'store' | 'fetch' | 'expire';
export type HsDirStoreOutcome = 'stored' | 'replaced' | 'stale' | 'invalid' | 'too_large';
export type HsDirFetchOutcome = 'found' | 'not_found' | 'malformed';
export type HsDirExpireOutcome = 'expired' | 'evicted';

export interface HsDirComponents {
  now?: () => number;
  /** Called once per operation (for `shallot_relay_hsdir_total{op,outcome}`). */
  onEvent?: (op: HsDirOp, outcome: string) => void;
}

interface Entry {
  text: string;
  revisionCounter: bigint;
  storedAt: number;
  expiresAt: number;
}

export interface PublishResult {
  outcome: HsDirStoreOutcome;
  /** A' when the outer document parsed. */
  blindedKey?: Uint8Array;
  /** Why an upload was refused (safe to send back: no keys, no addresses). */
  error?: string;
}

export class HsDirStore {
  /** hex(A') -> entry; Map order is storage order, so the first entry is the oldest. */
  private readonly entries = new Map<string, Entry>();
  private readonly limits: HsDirLimits;
  private readonly now: () => number;
  private readonly onEvent: (op: HsDirOp, outcome: string) => void;

  constructor(c: HsDirComponents = {}, limits: Partial<HsDirLimits> = {}) {
    this.limits = { ...DEFAULT_HSDIR_LIMITS, ...limits };
    this.now = c.now ?? Date.now;
    this.onEvent = c.onEvent ?? (() => {});
  }

  get size(): number {
    return this.entries.size;
  }

  /** Verifies and stores an uploaded descriptor (rend-spec-v3 §2.2.1-2.2.2). */
  publish(body: Uint8Array | string): PublishResult {
    const res = this.store(body);
    this.onEvent('store', res.outcome);
    return res;
  }

  private store(body: Uint8Array | string): PublishResult {
    if (body.length > this.limits.maxDescriptorBytes) {
      return {
        outcome: 'too_large',
        error: `descriptor larger than ${this.limits.maxDescriptorBytes} bytes`,
      };
    }
    const nowMs = this.now();
    let text: string;
    let outer: ReturnType<typeof parseHsDescriptorOuter>;
    try {
      text = typeof body === 'string' ? body : fromUtf8(body, 'hs descriptor');
      outer = parseHsDescriptorOuter(text, { nowMs });
    } catch (e) {
      return { outcome: 'invalid', error: (e as Error).message };
    }
    const key = toHex(outer.blindedPub);
    const old = this.entries.get(key);
    if (old && old.expiresAt <= nowMs) {
      this.entries.delete(key);
      this.onEvent('expire', 'expired');
    } else if (old && old.revisionCounter >= outer.revisionCounter) {
      // rend-spec-v3 §2.2.2: only a higher revision-counter replaces what we have.
      return {
        outcome: 'stale',
        blindedKey: outer.blindedPub,
        error: 'revision-counter not above the stored descriptor',
      };
    }
    const replaced = this.entries.delete(key);
    if (!replaced) this.makeRoom(nowMs);
    this.entries.set(key, {
      text,
      revisionCounter: outer.revisionCounter,
      storedAt: nowMs,
      expiresAt: nowMs + outer.lifetime * 60_000,
    });
    return { outcome: replaced ? 'replaced' : 'stored', blindedKey: outer.blindedPub };
  }

  private makeRoom(nowMs: number): void {
    if (this.entries.size < this.limits.maxDescriptors) return;
    this.sweep(nowMs);
    // Still full: drop the oldest stored (bounded: at most size - max + 1 iterations).
    for (const key of this.entries.keys()) {
      if (this.entries.size < this.limits.maxDescriptors) break;
      this.entries.delete(key);
      this.onEvent('expire', 'evicted');
    }
  }

  /** The descriptor text stored for A', or null if none is live. */
  fetch(blindedKey: Uint8Array): string | null {
    const key = toHex(blindedKey);
    const e = this.entries.get(key);
    if (e && e.expiresAt <= this.now()) {
      this.entries.delete(key);
      this.onEvent('expire', 'expired');
      return null;
    }
    return e?.text ?? null;
  }

  /** Revision counter of the live descriptor for A' (for tests and status pages). */
  revisionOf(blindedKey: Uint8Array): bigint | null {
    if (this.fetch(blindedKey) === null) return null;
    return this.entries.get(toHex(blindedKey))?.revisionCounter ?? null;
  }

  /** Drops expired descriptors; returns how many went. */
  sweep(nowMs = this.now()): number {
    let n = 0;
    for (const [key, e] of this.entries) {
      if (e.expiresAt > nowMs) continue;
      this.entries.delete(key);
      this.onEvent('expire', 'expired');
      n += 1;
    }
    return n;
  }

  /**
   * BEGIN_DIR route (plug into `RelayNode.addDirRoute`): answers the two
   * HSDir paths and returns null for anything else.
   */
  handleDirRequest(req: DirRequest): DirResponse | null {
    if (req.method === 'POST' && req.path === HSDIR_PUBLISH_PATH) {
      const res = this.publish(req.body);
      if (res.outcome === 'stored' || res.outcome === 'replaced') return { status: 200, body: utf8('OK\n') };
      return { status: 400, body: utf8(`Invalid HS descriptor. Rejected: ${res.error ?? res.outcome}\n`) };
    }
    if (req.method === 'GET' && req.path.startsWith(HSDIR_FETCH_PREFIX) && req.path !== HSDIR_PUBLISH_PATH) {
      const key = parseBlindedKey(req.path.slice(HSDIR_FETCH_PREFIX.length));
      if (!key) {
        this.onEvent('fetch', 'malformed');
        return { status: 404, body: utf8('Not found\n') };
      }
      const text = this.fetch(key);
      this.onEvent('fetch', text === null ? 'not_found' : 'found');
      return text === null ? { status: 404, body: utf8('Not found\n') } : { status: 200, body: utf8(text) };
    }
    return null;
  }
}

/** Base64 of a 32-byte key, with or without padding (C tor writes it without). */
function parseBlindedKey(s: string): Uint8Array | null {
  if (s.length !== 43 && s.length !== 44) return null;
  try {
    const k = fromBase64(s, 'blinded key');
    return k.length === 32 ? k : null;
  } catch {
    return null;
  }
}

/** The path a client GETs for A' (unpadded base64, as C tor's `ed25519_public_to_base64`). */
export function hsDescriptorPath(blindedKey: Uint8Array): string {
  return `${HSDIR_FETCH_PREFIX}${toBase64(blindedKey, false)}`;
}
