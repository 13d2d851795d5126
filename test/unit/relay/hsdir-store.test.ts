// HSDir store: verification, revision-counter replacement, lifetime expiry, the cap, the
// BEGIN_DIR route (paths, statuses, metrics outcomes) and hostile uploads, on a fake clock.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromUtf8, int8, toBase64, utf8 } from '../../../services/core/bytes.js';
import { ed25519Expand } from '../../../services/core/crypto/ed25519-math.js';
import { ed25519PublicFromSeed, shake256 } from '../../../services/core/crypto.js';
import { buildHsDescriptor, HS_DESC_MAX_LEN } from '../../../services/core/hs-descriptor.js';
import { blindExpandedKey, blindIdentity } from '../../../services/core/hs-keys.js';
import {
  HSDIR_FETCH_PREFIX,
  HSDIR_PUBLISH_PATH,
  HsDirStore,
  hsDescriptorPath,
} from '../../../services/relay/hsdir-store.js';

function testRng(seed: number) {
  let n = BigInt(seed) << 32n;
  return (len: number) => shake256(len, int8(n++));
}

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const MIN = 60_000;

/** A service whose descriptors for one time period share A'. */
function service(seed: number) {
  const rng = testRng(seed);
  const identitySeed = rng(32);
  const identityPub = ed25519PublicFromSeed(identitySeed);
  const blindedKey = blindExpandedKey(ed25519Expand(identitySeed), 20_454n, 1440n);
  const blindedPub = blindIdentity(identityPub, 20_454n, 1440n);
  const descSigningSeed = rng(32);
  return {
    blindedPub,
    desc: (revisionCounter: bigint, opts: { lifetimeMinutes?: number; nowMs?: number } = {}) =>
      buildHsDescriptor(
        {
          identityPub,
          blindedKey,
          blindedPub,
          descSigningSeed,
          revisionCounter,
          introPoints: [],
          nowMs: opts.nowMs ?? NOW,
          ...(opts.lifetimeMinutes ? { lifetimeMinutes: opts.lifetimeMinutes } : {}),
        },
        rng,
      ),
  };
}

const A = service(1);
const B = service(2);
const C = service(3);

function store(limits: { maxDescriptors?: number; maxDescriptorBytes?: number } = {}) {
  const clock = { now: NOW };
  const events: string[] = [];
  const s = new HsDirStore(
    { now: () => clock.now, onEvent: (op, outcome) => events.push(`${op}:${outcome}`) },
    limits,
  );
  return { s, clock, events };
}

describe('publish and fetch', () => {
  it('stores a verified descriptor under A′ and serves the same text', () => {
    const { s, events } = store();
    const text = A.desc(5n);
    const res = s.publish(utf8(text));
    expect(res.outcome).toBe('stored');
    expect(res.blindedKey).toEqual(A.blindedPub);
    expect(s.fetch(A.blindedPub)).toBe(text);
    expect(s.revisionOf(A.blindedPub)).toBe(5n);
    expect(s.fetch(B.blindedPub)).toBeNull();
    expect(events).toEqual(['store:stored']);
  });

  it('replaces only with a higher revision-counter (rend-spec-v3 §2.2.2)', () => {
    const { s } = store();
    const v5 = A.desc(5n);
    s.publish(v5);
    expect(s.publish(A.desc(5n)).outcome).toBe('stale');
    expect(s.publish(A.desc(4n)).outcome).toBe('stale');
    expect(s.fetch(A.blindedPub)).toBe(v5);
    const v6 = A.desc(6n);
    expect(s.publish(v6).outcome).toBe('replaced');
    expect(s.fetch(A.blindedPub)).toBe(v6);
    expect(s.size).toBe(1);
  });

  it('refuses tampered, wrongly signed, expired-cert and oversized uploads', () => {
    const { s, clock } = store({ maxDescriptorBytes: 20_000 });
    const text = A.desc(7n);
    expect(s.publish(text.replace('revision-counter 7', 'revision-counter 8')).outcome).toBe('invalid');
    // Swap in another service's signature line.
    const other = B.desc(7n);
    const sigLine = (t: string) => t.slice(t.lastIndexOf('signature '));
    expect(s.publish(text.replace(sigLine(text), sigLine(other))).outcome).toBe('invalid');
    // The signing-key cert lives 54 h.
    clock.now = NOW + 55 * 60 * MIN;
    expect(s.publish(text).outcome).toBe('invalid');
    clock.now = NOW;
    expect(s.publish(`${text}${'#'.repeat(20_001)}`).outcome).toBe('too_large');
    expect(s.publish(new Uint8Array([0xff, 0xfe, 0x00])).outcome).toBe('invalid');
    expect(s.size).toBe(0);
  });

  it('never throws on hostile uploads', () => {
    const { s } = store();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => {
        expect(['invalid', 'too_large']).toContain(s.publish(b).outcome);
      }),
      { numRuns: 200 },
    );
    const text = A.desc(1n);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: text.lastIndexOf('signature ') - 1 }),
        fc.integer({ min: 32, max: 126 }),
        (i, c) => {
          const mutated = text.slice(0, i) + String.fromCharCode(c) + text.slice(i + 1);
          const { outcome } = s.publish(mutated);
          // Every byte before `signature` is signed: only a no-op mutation may still verify.
          if (mutated !== text) expect(outcome).not.toBe('stored');
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('expiry and the cap', () => {
  it('expires a descriptor descriptor-lifetime minutes after storing it', () => {
    const { s, clock, events } = store();
    const text = A.desc(3n, { lifetimeMinutes: 60 });
    s.publish(text);
    clock.now = NOW + 59 * MIN;
    expect(s.fetch(A.blindedPub)).toBe(text);
    clock.now = NOW + 60 * MIN;
    expect(s.fetch(A.blindedPub)).toBeNull();
    expect(events).toContain('expire:expired');
    // Once expired, even a lower revision is accepted again.
    expect(s.publish(A.desc(2n, { nowMs: clock.now })).outcome).toBe('stored');
  });

  it('sweep drops only expired descriptors', () => {
    const { s, clock } = store();
    s.publish(A.desc(1n, { lifetimeMinutes: 30 }));
    s.publish(B.desc(1n, { lifetimeMinutes: 180 }));
    clock.now = NOW + 31 * MIN;
    expect(s.sweep()).toBe(1);
    expect(s.size).toBe(1);
    expect(s.fetch(B.blindedPub)).not.toBeNull();
  });

  it('when full, drops the descriptor stored longest ago', () => {
    const { s, events } = store({ maxDescriptors: 2 });
    s.publish(A.desc(1n));
    s.publish(B.desc(1n));
    // Replacing A makes it the newest.
    s.publish(A.desc(2n));
    s.publish(C.desc(1n));
    expect(s.size).toBe(2);
    expect(s.fetch(B.blindedPub)).toBeNull();
    expect(s.fetch(A.blindedPub)).not.toBeNull();
    expect(s.fetch(C.blindedPub)).not.toBeNull();
    expect(events.filter((e) => e === 'expire:evicted')).toHaveLength(1);
  });
});

describe('BEGIN_DIR route', () => {
  it('answers POST /tor/hs/3/publish with 200 or 400, GET with 200 or 404', () => {
    const { s, events } = store();
    const text = A.desc(9n);
    const post = (body: string) =>
      s.handleDirRequest({ method: 'POST', path: HSDIR_PUBLISH_PATH, body: utf8(body) });
    const get = (path: string) => s.handleDirRequest({ method: 'GET', path, body: new Uint8Array(0) });

    expect(get(hsDescriptorPath(A.blindedPub))?.status).toBe(404);
    expect(post(text)?.status).toBe(200);
    expect(post(text)?.status).toBe(400);
    expect(post('hs-descriptor 3\n')?.status).toBe(400);

    const ok = get(hsDescriptorPath(A.blindedPub));
    expect(ok?.status).toBe(200);
    expect(fromUtf8(ok!.body)).toBe(text);
    // Padded base64 works too; C tor sends it unpadded.
    expect(hsDescriptorPath(A.blindedPub)).toHaveLength(HSDIR_FETCH_PREFIX.length + 43);
    expect(get(`${HSDIR_FETCH_PREFIX}${toBase64(A.blindedPub)}`)?.status).toBe(200);
    // Malformed keys are 404s, as in C tor.
    expect(get(`${HSDIR_FETCH_PREFIX}not-a-key`)?.status).toBe(404);
    expect(get(`${HSDIR_FETCH_PREFIX}${toBase64(new Uint8Array(31))}`)?.status).toBe(404);

    // Other paths are left to other routes.
    expect(get('/tor/status-vote/current/consensus')).toBeNull();
    expect(
      s.handleDirRequest({ method: 'GET', path: HSDIR_PUBLISH_PATH, body: new Uint8Array(0) }),
    ).toBeNull();
    expect(
      s.handleDirRequest({ method: 'POST', path: '/tor/hs/3/other', body: new Uint8Array(0) }),
    ).toBeNull();

    expect(events).toEqual([
      'fetch:not_found',
      'store:stored',
      'store:stale',
      'store:invalid',
      'fetch:found',
      'fetch:found',
      'fetch:malformed',
      'fetch:malformed',
    ]);
  });

  it('caps uploads at 50000 bytes by default', () => {
    const { s } = store();
    const res = s.handleDirRequest({
      method: 'POST',
      path: HSDIR_PUBLISH_PATH,
      body: new Uint8Array(HS_DESC_MAX_LEN + 1),
    });
    expect(res?.status).toBe(400);
    expect(fromUtf8(res!.body)).toContain('larger than 50000');
  });
});
