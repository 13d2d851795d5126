/** Key planning: generation, scheduled and forced rotation, grace period, next event times. */
import { describe, expect, it } from 'vitest';
import { introRotationDue, planAuthorityKeys, planRelayKeys, readNodeKeys } from '../../../operator/keys.js';
import { encodeNodeKeys } from '../../../services/core/node-keys.js';
import { seededRng } from '../../helpers/seeded-rng.js';

const MIN = 60_000;
const T0 = 1_750_000_000_000;
const policy = { intervalMs: 60 * MIN, graceMs: 10 * MIN };

describe('planRelayKeys', () => {
  it('generates keys when none are stored, next event at the first rotation', () => {
    const p = planRelayKeys(null, policy, T0, false, seededRng(1));
    expect(p).toMatchObject({ generated: true, rotated: false, changed: true, nextAt: T0 + 60 * MIN });
    expect(p.keys.onionKeys).toHaveLength(1);
  });

  it('leaves keys alone before the interval, rotates at it keeping the old key, prunes after the grace period', () => {
    const rng = seededRng(2);
    const k = planRelayKeys(null, policy, T0, false, rng).keys;
    const early = planRelayKeys(k, policy, T0 + 59 * MIN, false, rng);
    expect(early).toMatchObject({ rotated: false, changed: false });
    const rot = planRelayKeys(k, policy, T0 + 60 * MIN, false, rng);
    expect(rot).toMatchObject({ rotated: true, changed: true, nextAt: T0 + 70 * MIN });
    expect(rot.keys.identitySeed).toEqual(k.identitySeed);
    expect(rot.keys.onionKeys.map((o) => o.createdAt)).toEqual([T0 + 60 * MIN, T0]);
    const inGrace = planRelayKeys(rot.keys, policy, T0 + 69 * MIN, false, rng);
    expect(inGrace.keys.onionKeys).toHaveLength(2);
    expect(inGrace.changed).toBe(false);
    const after = planRelayKeys(rot.keys, policy, T0 + 70 * MIN, false, rng);
    expect(after).toMatchObject({ changed: true, rotated: false, nextAt: T0 + 120 * MIN });
    expect(after.keys.onionKeys).toHaveLength(1);
  });

  it('forced rotation happens even with no schedule; no schedule means no next event but the prune', () => {
    const none = { intervalMs: 0, graceMs: 10 * MIN };
    const k = planRelayKeys(null, none, T0, false, seededRng(3));
    expect(k.nextAt).toBeNull();
    expect(planRelayKeys(k.keys, none, T0 + 1000 * MIN, false).rotated).toBe(false);
    const f = planRelayKeys(k.keys, none, T0 + 5 * MIN, true, seededRng(4));
    expect(f.rotated).toBe(true);
    expect(f.nextAt).toBe(T0 + 15 * MIN);
  });

  it('unreadable stored bytes read as no keys', () => {
    expect(readNodeKeys(new TextEncoder().encode('{"version":2}'))).toBeNull();
    expect(readNodeKeys(null)).toBeNull();
    const k = planRelayKeys(null, policy, T0, false, seededRng(5)).keys;
    expect(readNodeKeys(encodeNodeKeys(k))?.identity).toEqual(k.identity);
  });
});

describe('planAuthorityKeys', () => {
  it('rotates the identity on schedule and keeps the previous one for the grace period', () => {
    const rng = seededRng(6);
    const a = planAuthorityKeys(null, null, policy, T0, false, rng);
    const r = planAuthorityKeys(a.current, null, policy, T0 + 60 * MIN, false, rng);
    expect(r.rotated).toBe(true);
    expect(r.previous?.identity).toEqual(a.current.identity);
    expect(r.current.identity).not.toEqual(a.current.identity);
    expect(r.nextAt).toBe(T0 + 70 * MIN);
    const keep = planAuthorityKeys(r.current, r.previous, policy, T0 + 65 * MIN, false, rng);
    expect(keep).toMatchObject({ changed: false });
    expect(keep.previous).not.toBeNull();
    const drop = planAuthorityKeys(r.current, r.previous, policy, T0 + 70 * MIN, false, rng);
    expect(drop).toMatchObject({ changed: true, previous: null, nextAt: T0 + 120 * MIN });
  });
});

describe('introRotationDue', () => {
  it('is due at the interval, never with interval 0', () => {
    expect(introRotationDue(T0, 10 * MIN, T0 + 9 * MIN)).toBe(false);
    expect(introRotationDue(T0, 10 * MIN, T0 + 10 * MIN)).toBe(true);
    expect(introRotationDue(T0, 0, T0 + 1e12)).toBe(false);
  });
});
