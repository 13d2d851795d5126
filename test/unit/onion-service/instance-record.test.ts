// Sealed instance records (instance-record.ts): what one onion-service instance sends
// its peers. Round trip and layout, then every refusal: wrong identity, tampering,
// truncation, trailing bytes, oversized, stale, future-dated, wrong version, a signed
// envelope around garbage, and random junk (typed errors only).
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, concat, toHex, utf8 } from '../../../services/core/bytes.js';
import { aesCtr, ed25519Sign, randomBytes } from '../../../services/core/crypto.js';
import type { IntroPointInfo } from '../../../services/core/hs-descriptor.js';
import { relayLinkSpecifiers } from '../../../services/core/link-specifiers.js';
import {
  InstanceRecordError,
  type InstanceRecordKeys,
  instanceRecordKeys,
  MAX_SEALED_RECORD,
  openInstanceRecord,
  sealInstanceRecord,
} from '../../../services/onion-service/instance-record.js';
import type { InstanceRecord } from '../../../services/onion-service/instances.js';
import { seededRng } from '../../helpers/seeded-rng.js';

const rng = seededRng(14);
const seed = rng(32);
const keys = instanceRecordKeys(seed);
const NOW = 1_780_000_000_000;
const limits = { nowMs: NOW, staleMs: 20_000 };

function introPoint(i: number): IntroPointInfo {
  return {
    linkSpecifiers: relayLinkSpecifiers({
      address: `127.0.0.${i + 1}`,
      port: 9000 + i,
      legacyId: rng(20),
      ed25519Id: rng(32),
    }),
    onionKey: rng(32),
    authKey: rng(32),
    encKey: rng(32),
  };
}

const record: InstanceRecord = {
  instance: 'web-7d9f-abc',
  updatedMs: NOW - 1000,
  introPoints: [introPoint(0), introPoint(1), introPoint(2)],
};

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof InstanceRecordError) return e.reason;
    throw e;
  }
  return 'accepted';
}

/** An envelope signed with the right key around any plaintext (the checks after the signature). */
function signedEnvelope(k: InstanceRecordKeys, signedAt: number, plaintext: Uint8Array): Uint8Array {
  const iv = rng(16);
  const ct = aesCtr(k.encKey, iv, plaintext);
  const body = new ByteWriter().u8(1).u64(BigInt(signedAt)).bytes(iv).u16(ct.length).bytes(ct).finish();
  return concat(body, ed25519Sign(k.signSeed, concat(utf8('shallot-onion-instance-record-v1\0'), body)));
}

describe('sealed instance records', () => {
  it('round-trips a record with three intro points', () => {
    const back = openInstanceRecord(keys, sealInstanceRecord(keys, record, rng), limits);
    expect(back.instance).toBe(record.instance);
    expect(back.updatedMs).toBe(record.updatedMs);
    expect(back.introPoints.map((ip) => toHex(ip.authKey))).toEqual(
      record.introPoints.map((ip) => toHex(ip.authKey)),
    );
    expect(back.introPoints[1]?.linkSpecifiers).toEqual(record.introPoints[1]?.linkSpecifiers);
    expect(toHex(back.introPoints[2]?.encKey ?? new Uint8Array())).toBe(
      toHex(record.introPoints[2]?.encKey ?? new Uint8Array()),
    );
  });

  it('lays out version, signed-at, iv, length, ciphertext, signature', () => {
    const ivRng = seededRng(99);
    const iv = seededRng(99)(16);
    const sealed = sealInstanceRecord(keys, record, ivRng);
    const r = new ByteReader(sealed);
    expect(r.u8()).toBe(1);
    expect(r.u64()).toBe(BigInt(record.updatedMs));
    expect(toHex(r.take(16))).toBe(toHex(iv));
    const len = r.u16();
    expect(r.remaining).toBe(len + 64);
  });

  it('carries no key but public ones, and nothing readable without the identity', () => {
    const sealed = toHex(sealInstanceRecord(keys, record, rng));
    for (const secret of [seed, keys.signSeed, keys.encKey]) expect(sealed).not.toContain(toHex(secret));
    // Encrypted: not even the (public) intro-point keys or the instance name show.
    for (const ip of record.introPoints) expect(sealed).not.toContain(toHex(ip.authKey));
    expect(sealed).not.toContain(toHex(utf8(record.instance)));
  });

  it('derives different keys for different identities, the same for the same one', () => {
    expect(toHex(instanceRecordKeys(seed).verifyKey)).toBe(toHex(keys.verifyKey));
    expect(toHex(instanceRecordKeys(rng(32)).verifyKey)).not.toBe(toHex(keys.verifyKey));
  });

  it("refuses another service's record (bad_signature)", () => {
    const other = instanceRecordKeys(rng(32));
    expect(refusal(() => openInstanceRecord(keys, sealInstanceRecord(other, record, rng), limits))).toBe(
      'bad_signature',
    );
  });

  it('refuses a record with any byte changed (bad_signature)', () => {
    const sealed = sealInstanceRecord(keys, record, rng);
    // version is checked before the signature; every other byte is covered by it.
    for (let i = 1; i < sealed.length; i += 7) {
      const t = sealed.slice();
      t[i] = (t[i] as number) ^ 0x01;
      const got = refusal(() => openInstanceRecord(keys, t, limits));
      // Changing the length field makes the layout itself wrong.
      expect(i === 25 || i === 26 ? ['malformed', 'bad_signature'] : ['bad_signature']).toContain(got);
    }
  });

  it('refuses every truncation and trailing bytes (malformed)', () => {
    const sealed = sealInstanceRecord(keys, record, rng);
    for (let n = 0; n < sealed.length; n++)
      expect(refusal(() => openInstanceRecord(keys, sealed.subarray(0, n), limits))).toBe('malformed');
    expect(refusal(() => openInstanceRecord(keys, concat(sealed, new Uint8Array([0])), limits))).toBe(
      'malformed',
    );
  });

  it('refuses an unknown version (malformed)', () => {
    const sealed = sealInstanceRecord(keys, record, rng);
    sealed[0] = 2;
    expect(refusal(() => openInstanceRecord(keys, sealed, limits))).toBe('malformed');
  });

  it('refuses a body over the limit before reading it (oversized)', () => {
    expect(refusal(() => openInstanceRecord(keys, new Uint8Array(MAX_SEALED_RECORD + 1), limits))).toBe(
      'oversized',
    );
  });

  it('accepts a record up to staleMs old, refuses it after (stale)', () => {
    const sealed = sealInstanceRecord(keys, record, rng);
    const at = (nowMs: number) => refusal(() => openInstanceRecord(keys, sealed, { ...limits, nowMs }));
    expect(at(record.updatedMs + 20_000)).toBe('accepted');
    expect(at(record.updatedMs + 20_001)).toBe('stale');
  });

  it('accepts a clock up to 30 s ahead, refuses more (future)', () => {
    const ahead = (ms: number) => sealInstanceRecord(keys, { ...record, updatedMs: NOW + ms }, rng);
    expect(refusal(() => openInstanceRecord(keys, ahead(30_000), limits))).toBe('accepted');
    expect(refusal(() => openInstanceRecord(keys, ahead(30_001), limits))).toBe('future');
    expect(refusal(() => openInstanceRecord(keys, ahead(3_600_000), limits))).toBe('future');
  });

  it('refuses a correctly signed envelope around garbage or a different time (malformed)', () => {
    expect(
      refusal(() => openInstanceRecord(keys, signedEnvelope(keys, NOW, utf8('{"kind":1')), limits)),
    ).toBe('malformed');
    expect(refusal(() => openInstanceRecord(keys, signedEnvelope(keys, NOW, rng(300)), limits))).toBe(
      'malformed',
    );
    const json = utf8(
      JSON.stringify({
        kind: 'shallot-onion-instance-v1',
        instance: 'a',
        updatedMs: NOW - 5,
        introPoints: [],
      }),
    );
    expect(refusal(() => openInstanceRecord(keys, signedEnvelope(keys, NOW, json), limits))).toBe(
      'malformed',
    );
    // The same plaintext with the matching time is fine: the refusals above are about content.
    expect(refusal(() => openInstanceRecord(keys, signedEnvelope(keys, NOW - 5, json), limits))).toBe(
      'accepted',
    );
    const tooMany = utf8(
      JSON.stringify({
        kind: 'shallot-onion-instance-v1',
        instance: 'a',
        updatedMs: NOW,
        introPoints: Array.from({ length: 21 }, () => ({})),
      }),
    );
    expect(refusal(() => openInstanceRecord(keys, signedEnvelope(keys, NOW, tooMany), limits))).toBe(
      'malformed',
    );
  });

  it('throws only InstanceRecordError on random junk', () => {
    for (let i = 0; i < 500; i++) {
      const junk = randomBytes(i % 3 === 0 ? 100 + (i % 200) : i);
      if (i % 5 === 0) junk[0] = 1;
      expect(() => openInstanceRecord(keys, junk, limits)).toThrow(InstanceRecordError);
    }
  });
});
