// The pure parts of the onion-service client: address errors become SOCKS 0xF6,
// the time period / SRV a client fetches with, the HSDirs it asks, the
// rendezvous point draw (spread, weights, Stable only) and intro-point lookup.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnectError } from '../../../services/client/connect.js';
import { connectReply } from '../../../services/client/connect-reply.js';
import { relayLegacyId } from '../../../services/client/netdir.js';
import {
  chooseRendezvousPoint,
  clientFetchSrv,
  findIntroRelay,
  hsDirsToFetch,
  onionIdentityFor,
  onionLabel,
  onionPeriodKeys,
  rendezvousCandidates,
} from '../../../services/client/onion-params.js';
import { fromHex, toHex } from '../../../services/core/bytes.js';
import { ed25519Generate, legacyIdFromEd25519 } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import { blindIdentity, hsSubcredential } from '../../../services/core/hs-keys.js';
import { timePeriodNum, timePeriodParams, timePeriodStart } from '../../../services/core/hs-time.js';
import { disasterSrv, fetchHsDirs, responsibleHsDirs } from '../../../services/core/hsdir-ring.js';
import { encodeOnionAddress } from '../../../services/core/onion-address.js';
import type { PathRelay } from '../../../services/core/path.js';
import { SocksReply } from '../../../services/core/socks5.js';
import { clientFetchPeriod, serviceDescriptorPeriods } from '../../../services/onion-service/periods.js';
import { seededRng } from '../../helpers/seeded-rng.js';

// C tor test_hs_common.c test_build_address: RFC 8032 test 1's public key as an onion address.
const VECTOR_KEY = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const VECTOR_ADDR = '25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion';
/** A point of order 8: valid encoding, but with a torsion component. */
const ORDER_8_POINT = 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a';

function replyOf(fn: () => unknown): number | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof ConnectError) return connectReply(e).socks5;
    throw e;
  }
}

interface TestRelay extends PathRelay {
  nickname: string;
}

function relay(i: number, flags: string[], bandwidth = 1000): TestRelay {
  const id = new Uint8Array(32);
  id[0] = i;
  id[31] = 0x5a;
  return { nickname: `r${i}`, identity: id, address: `10.0.${i}.1`, flags, bandwidth, family: [] };
}

const ALL_FLAGS = ['Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid'];

function consensus(over: Partial<Consensus>): Consensus {
  return {
    validAfterMs: 0,
    freshUntilMs: 0,
    validUntilMs: 0,
    votingIntervalSec: 5,
    knownFlags: [],
    params: {},
    relays: [],
    bandwidthWeights: {},
    authorities: [],
    ...over,
  };
}

describe('onion address -> SOCKS 0xF6', () => {
  it('decodes the C tor address vector, in any case and under subdomains', () => {
    expect(toHex(onionIdentityFor(VECTOR_ADDR))).toBe(VECTOR_KEY);
    expect(toHex(onionIdentityFor(VECTOR_ADDR.toUpperCase()))).toBe(VECTOR_KEY);
    expect(toHex(onionIdentityFor(`www.${VECTOR_ADDR}`))).toBe(VECTOR_KEY);
  });

  it('maps every kind of bad address to 0xF6', () => {
    const label = VECTOR_ADDR.slice(0, 56);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1);
    const cases = {
      checksum: `${flip(label, 53)}.onion`,
      keyBit: `${flip(label, 0)}.onion`,
      short: `${label.slice(1)}.onion`,
      long: `${label}a.onion`,
      notBase32: `${label.slice(0, 55)}1.onion`,
      empty: '.onion',
      torsion: encodeOnionAddress(fromHex(ORDER_8_POINT)),
      version: `${label.slice(0, 55)}${label[55] === 'd' ? 'c' : 'd'}.onion`,
    };
    for (const [name, host] of Object.entries(cases)) {
      expect({ name, reply: replyOf(() => onionIdentityFor(host)) }).toEqual({
        name,
        reply: SocksReply.ONION_BAD_ADDRESS,
      });
    }
  });

  it('never throws anything but a bad_address ConnectError (SOCKS 0xF6) for arbitrary hosts', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const r = replyOf(() => onionIdentityFor(`${s}.onion`));
        expect(r === 'ok' || r === SocksReply.ONION_BAD_ADDRESS).toBe(true);
      }),
    );
  });

  it('round-trips generated keys', () => {
    for (let i = 0; i < 20; i++) {
      const { public: pub } = ed25519Generate();
      expect(toHex(onionIdentityFor(encodeOnionAddress(pub)))).toBe(toHex(pub));
    }
  });

  it('canonical labels drop case, subdomains and a trailing dot', () => {
    expect(onionLabel(`WWW.${VECTOR_ADDR.toUpperCase()}.`)).toBe(VECTOR_ADDR);
    expect(onionLabel(VECTOR_ADDR)).toBe(VECTOR_ADDR);
  });
});

describe('time period and SRV', () => {
  const p = timePeriodParams({ testnet: true, votingIntervalSec: 5 }); // len 2 min, offset 1 min
  const cur = { reveals: 3, value: new Uint8Array(32).fill(0xcc) };
  const prev = { reveals: 3, value: new Uint8Array(32).fill(0xbb) };

  it('uses the previous SRV between an SRV run start and the next time period', () => {
    // 10:00 is an SRV run start (120 s runs); the period starting 11:00 is the next.
    const va = 10 * 60_000 + 30_000;
    const c = consensus({ validAfterMs: va, sharedRandCurrent: cur, sharedRandPrevious: prev });
    const tp = BigInt(timePeriodNum(va, p));
    expect(toHex(clientFetchSrv(c, tp, 2n))).toBe(toHex(prev.value));
  });

  it('uses the current SRV between a time period start and the next SRV run', () => {
    const va = 11 * 60_000 + 30_000;
    const c = consensus({ validAfterMs: va, sharedRandCurrent: cur, sharedRandPrevious: prev });
    const tp = BigInt(timePeriodNum(va, p));
    expect(toHex(clientFetchSrv(c, tp, 2n))).toBe(toHex(cur.value));
  });

  it('falls back to the disaster SRV of the fetch period', () => {
    for (const va of [10 * 60_000, 11 * 60_000]) {
      const c = consensus({ validAfterMs: va });
      const tp = BigInt(timePeriodNum(va, p));
      expect(toHex(clientFetchSrv(c, tp, 2n))).toBe(toHex(disasterSrv(tp, 2n)));
    }
    // Only the SRV in use matters: a current value does not help in the "previous" half.
    const c = consensus({ validAfterMs: 10 * 60_000, sharedRandCurrent: cur });
    const tp = BigInt(timePeriodNum(10 * 60_000, p));
    expect(toHex(clientFetchSrv(c, tp, 2n))).toBe(toHex(disasterSrv(tp, 2n)));
  });

  const SERVICE_KEY = ed25519Generate().public;

  it('agrees with the onion service on the fetch period and SRV, and the service stores under it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.constantFrom(5, 10, 20, 60),
        fc.boolean(),
        fc.boolean(),
        (sec, v, hasCur, hasPrev) => {
          const va = Date.UTC(2026, 0, 1) + sec * 1000;
          const c = consensus({
            validAfterMs: va,
            votingIntervalSec: v,
            ...(hasCur ? { sharedRandCurrent: cur } : {}),
            ...(hasPrev ? { sharedRandPrevious: prev } : {}),
          });
          const pv = timePeriodParams({ testnet: true, votingIntervalSec: v });
          const k = onionPeriodKeys(SERVICE_KEY, c);
          const svc = clientFetchPeriod(c, pv);
          expect(Number(k.tp)).toBe(svc.tp);
          expect(toHex(k.srv)).toBe(toHex(svc.srv));
          // One of the service's two descriptors is placed with exactly this (tp, SRV).
          const stored = serviceDescriptorPeriods(c, pv).filter(
            (d) => d.tp === svc.tp && toHex(d.srv) === toHex(svc.srv),
          );
          expect(stored).toHaveLength(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('derives A′, the subcredential and the period end from the consensus valid-after', () => {
    const { public: A } = ed25519Generate();
    const va = Date.UTC(2026, 0, 1, 12, 7, 30);
    const c = consensus({ validAfterMs: va, votingIntervalSec: 20 });
    const p20 = timePeriodParams({ testnet: true, votingIntervalSec: 20 });
    const n = timePeriodNum(va, p20);
    const k = onionPeriodKeys(A, c);
    expect(k.tp).toBe(BigInt(n));
    expect(k.len).toBe(8n);
    expect(toHex(k.blindedPub)).toBe(toHex(blindIdentity(A, BigInt(n), 8n)));
    expect(toHex(k.subcredential)).toBe(toHex(hsSubcredential(A, k.blindedPub)));
    expect(k.periodEndMs).toBe(timePeriodStart(n + 1, p20));
    expect(k.periodEndMs).toBeGreaterThan(va);
  });
});

describe('HSDirs to fetch from', () => {
  it('asks only HSDir relays, at most 3 per replica, all among the store set', () => {
    const relays = Array.from({ length: 20 }, (_, i) =>
      relay(i, i % 4 === 0 ? ['Fast', 'Running', 'Stable', 'Valid'] : ALL_FLAGS),
    );
    const { public: A } = ed25519Generate();
    const k = onionPeriodKeys(A, consensus({ validAfterMs: Date.UTC(2026, 0, 1) }));
    const got = hsDirsToFetch(relays, k);
    expect(got.length).toBe(6);
    for (const r of got) expect(r.flags).toContain('HSDir');
    const nodes = relays.filter((r) => r.flags.includes('HSDir')).map((r) => ({ id: r.identity }));
    const want = fetchHsDirs(nodes, k.blindedPub, k.srv, k.tp, k.len).map((n) => toHex(n.id));
    expect(got.map((r) => toHex(r.identity))).toEqual(want);
    const stored = new Set(
      responsibleHsDirs(nodes, k.blindedPub, k.srv, k.tp, k.len).map((n) => toHex(n.id)),
    );
    for (const id of want) expect(stored.has(id)).toBe(true);
  });

  it('is empty without HSDirs', () => {
    const { public: A } = ed25519Generate();
    const k = onionPeriodKeys(A, consensus({ validAfterMs: Date.UTC(2026, 0, 1) }));
    expect(hsDirsToFetch([relay(1, ['Running', 'Stable'])], k)).toEqual([]);
  });
});

describe('rendezvous point choice', () => {
  it('spreads over every Stable relay across many draws (no favourite)', () => {
    const relays = Array.from({ length: 20 }, (_, i) =>
      relay(i, i < 16 ? ALL_FLAGS : ['Fast', 'Running', 'Valid']),
    );
    const rng = seededRng(7);
    const counts = new Map<string, number>();
    const draws = 4000;
    for (let i = 0; i < draws; i++) {
      const rp = chooseRendezvousPoint(relays, {}, rng);
      counts.set(rp?.nickname ?? 'none', (counts.get(rp?.nickname ?? 'none') ?? 0) + 1);
    }
    expect(counts.size).toBe(16);
    for (let i = 16; i < 20; i++) expect(counts.has(`r${i}`)).toBe(false);
    // Uniform bandwidths: each of 16 gets 250 expected; 5 sigma is about ±75.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(175);
      expect(n).toBeLessThan(325);
    }
  });

  it('consecutive draws differ (a new point for each rendezvous)', () => {
    const relays = Array.from({ length: 8 }, (_, i) => relay(i, ALL_FLAGS));
    const rng = seededRng(11);
    const picks = Array.from({ length: 20 }, () => chooseRendezvousPoint(relays, {}, rng)?.nickname);
    expect(new Set(picks).size).toBeGreaterThanOrEqual(6);
  });

  it('weights by bandwidth as a middle', () => {
    const relays = [relay(1, ALL_FLAGS, 3000), relay(2, ALL_FLAGS, 1000)];
    const rng = seededRng(3);
    let heavy = 0;
    for (let i = 0; i < 4000; i++) if (chooseRendezvousPoint(relays, {}, rng)?.nickname === 'r1') heavy++;
    expect(heavy / 4000).toBeGreaterThan(0.7);
    expect(heavy / 4000).toBeLessThan(0.8);
    // Consensus middle weights apply: Wmg = 0 leaves no weight on guards, so the draw falls back to uniform.
    const mixed = [relay(1, ALL_FLAGS, 1000), relay(2, ['Running', 'Stable', 'Valid'], 1000)];
    let guard = 0;
    for (let i = 0; i < 1000; i++)
      if (chooseRendezvousPoint(mixed, { Wmg: 0, Wmm: 10000 }, rng)?.nickname === 'r1') guard++;
    expect(guard).toBe(0);
  });

  it('skips excluded relays unless nothing else is left, and needs a Stable relay', () => {
    const relays = [relay(1, ALL_FLAGS), relay(2, ALL_FLAGS)];
    const rng = seededRng(5);
    for (let i = 0; i < 50; i++) {
      expect(chooseRendezvousPoint(relays, {}, rng, new Set([toHex(relays[0]!.identity)]))?.nickname).toBe(
        'r2',
      );
    }
    const both = new Set(relays.map((r) => toHex(r.identity)));
    expect(chooseRendezvousPoint(relays, {}, rng, both)).toBeDefined();
    expect(chooseRendezvousPoint([relay(3, ['Running', 'Valid', 'Fast'])], {}, rng)).toBeUndefined();
    expect(rendezvousCandidates([relay(4, ['Stable', 'Valid'])])).toEqual([]);
  });
});

describe('intro point lookup', () => {
  const relays = Array.from({ length: 5 }, (_, i) => relay(i, ALL_FLAGS));

  it('finds a relay by Ed25519 id, else by legacy id', () => {
    const target = relays[3]!;
    expect(findIntroRelay(relays, [{ type: 'ed25519', id: target.identity }])).toBe(target);
    expect(
      findIntroRelay(relays, [
        { type: 'ipv4', addr: '10.0.0.1', port: 1 },
        { type: 'legacy-id', id: legacyIdFromEd25519(target.identity) },
      ]),
    ).toBe(target);
  });

  it('finds a C tor relay by its RSA legacy id, not the one derived from its Ed25519 id', () => {
    const rsa = new Uint8Array(20).fill(0x5a);
    const ctor = { ...relays[2]!, legacyId: rsa };
    const mixed = [...relays.slice(0, 2), ctor, ...relays.slice(3)];
    expect(findIntroRelay(mixed, [{ type: 'legacy-id', id: rsa }])).toBe(ctor);
    expect(
      findIntroRelay(mixed, [{ type: 'legacy-id', id: legacyIdFromEd25519(ctor.identity) }]),
    ).toBeUndefined();
    expect(relayLegacyId(ctor)).toEqual(rsa);
    expect(relayLegacyId(relays[1]!)).toEqual(legacyIdFromEd25519(relays[1]!.identity));
  });

  it('is undefined for a relay not in the consensus', () => {
    const other = new Uint8Array(32).fill(9);
    expect(findIntroRelay(relays, [{ type: 'ed25519', id: other }])).toBeUndefined();
    expect(findIntroRelay(relays, [{ type: 'ipv4', addr: '10.0.0.1', port: 1 }])).toBeUndefined();
  });
});
