// HSDir hash ring (rend-spec-v3 §2.2.3): the index vectors shared by arti
// hsdir_ring.rs and C tor test_hs_indexes, and the ring walk (start at the
// first index >= hs_index, wrap, skip relays already used).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes, concat, int8, toHex, utf8 } from '../../../services/core/bytes.js';
import { sha3_256 } from '../../../services/core/crypto.js';
import { InvalidError } from '../../../services/core/errors.js';
import {
  buildHsDirRing,
  disasterSrv,
  fetchHsDirs,
  hsdirIndex,
  hsIndex,
  responsibleHsDirs,
  walkHsDirRing,
} from '../../../services/core/hsdir-ring.js';

const fill = (b: number) => new Uint8Array(32).fill(b);

describe('index vectors (tp=42, len=1440)', () => {
  it("hs_index(A'=42x32, replica 1)", () => {
    expect(toHex(hsIndex(fill(0x42), 1, 42n, 1440n))).toBe(
      '37e5cbbd56a22823714f18f1623ece5983a0d64c78495a8cfab854245e5f9a8a',
    );
  });

  it('hsdir_index(node 42x32, SRV 43x32)', () => {
    expect(toHex(hsdirIndex(fill(0x42), fill(0x43), 42n, 1440n))).toBe(
      'db475361014a09965e7e5e4d4a25b8f8d4b8f16cb1d8a7e95eed50249cc1a2d5',
    );
  });

  it('disaster SRV puts len before tp', () => {
    expect(disasterSrv(42n, 1440n)).toEqual(sha3_256(utf8('shared-random-disaster'), int8(1440), int8(42)));
    expect(disasterSrv(42n, 1440n)).not.toEqual(disasterSrv(1440n, 42n));
  });

  it('rejects wrong-length inputs', () => {
    expect(() => hsIndex(new Uint8Array(31), 1, 1n, 1n)).toThrow(InvalidError);
    expect(() => hsdirIndex(fill(1), new Uint8Array(3), 1n, 1n)).toThrow(InvalidError);
  });
});

/** A reference walk written independently: linear scan, explicit wrap. */
function referenceWalk(
  ids: Uint8Array[],
  blinded: Uint8Array,
  srv: Uint8Array,
  tp: bigint,
  len: bigint,
  replicas: number,
  spread: number,
): string[] {
  const ring = [...new Map(ids.map((id) => [toHex(id), id])).values()]
    .map((id) => ({ id: toHex(id), idx: hsdirIndex(id, srv, tp, len) }))
    .sort((a, b) => compareBytes(a.idx, b.idx));
  const out: string[] = [];
  for (let r = 1; r <= replicas; r++) {
    const target = hsIndex(blinded, r, tp, len);
    let start = ring.findIndex((e) => compareBytes(e.idx, target) >= 0);
    if (start < 0) start = 0;
    let added = 0;
    for (let k = 0; k < ring.length && added < spread; k++) {
      const e = ring[(start + k) % ring.length]!;
      if (!out.includes(e.id)) {
        out.push(e.id);
        added++;
      }
    }
  }
  return out;
}

describe('ring walk', () => {
  const srv = fill(0x43);
  const nodes = Array.from({ length: 12 }, (_, i) => ({ id: sha3_256(new Uint8Array([i])), name: `n${i}` }));

  it('returns replicas x spread distinct relays, in walk order', () => {
    const got = responsibleHsDirs(nodes, fill(0x42), srv, 42n, 1440n);
    expect(got).toHaveLength(8);
    expect(new Set(got.map((n) => n.name)).size).toBe(8);
    expect(got.map((n) => toHex(n.id))).toEqual(
      referenceWalk(
        nodes.map((n) => n.id),
        fill(0x42),
        srv,
        42n,
        1440n,
        2,
        4,
      ),
    );
  });

  it('each replica starts at the first relay at or after its hs_index, wrapping', () => {
    const ring = buildHsDirRing(nodes, srv, 42n, 1440n);
    const got = walkHsDirRing(ring, fill(0x42), 42n, 1440n, { replicas: 1, spread: 1 });
    const target = hsIndex(fill(0x42), 1, 42n, 1440n);
    const expected = ring.find((e) => compareBytes(e.index, target) >= 0) ?? ring[0]!;
    expect(got).toEqual([expected.node]);
  });

  it('wraps past the end of the ring to the start', () => {
    // A hand-made ring: every index is below the replica's hs_index, so the walk starts at 0.
    const target = hsIndex(fill(0x42), 1, 42n, 1440n);
    const ring = [1, 2, 3].map((k) => ({ index: concat(new Uint8Array([0]), fill(k).subarray(1)), node: k }));
    expect(compareBytes(ring[2]!.index, target)).toBeLessThan(0);
    expect(walkHsDirRing(ring, fill(0x42), 42n, 1440n, { replicas: 1, spread: 2 })).toEqual([1, 2]);
  });

  it('skips relays chosen by an earlier replica (and never loops forever)', () => {
    // With only 5 relays, two replicas of spread 4 must overlap: the second takes just the one left.
    const few = nodes.slice(0, 5);
    const got = responsibleHsDirs(few, fill(0x42), srv, 42n, 1440n);
    expect(got).toHaveLength(5);
    expect(new Set(got).size).toBe(5);
    // A ring smaller than the spread gives each relay once.
    expect(responsibleHsDirs(few.slice(0, 2), fill(0x42), srv, 42n, 1440n)).toHaveLength(2);
    expect(responsibleHsDirs([], fill(0x42), srv, 42n, 1440n)).toEqual([]);
  });

  it('duplicate identities in the input count once', () => {
    const doubled = [...nodes.slice(0, 3), ...nodes.slice(0, 3).map((n) => ({ ...n, name: `${n.name}'` }))];
    const got = responsibleHsDirs(doubled, fill(0x42), srv, 42n, 1440n);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((n) => toHex(n.id))).size).toBe(3);
  });

  it('fetch set is the first 3 per replica; the store set extends it', () => {
    const fetch = fetchHsDirs(nodes, fill(0x42), srv, 42n, 1440n);
    expect(fetch).toHaveLength(6);
    const store = responsibleHsDirs(nodes, fill(0x42), srv, 42n, 1440n);
    for (const n of fetch) expect(store).toContain(n);
  });

  it('matches the reference walk for random rings', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 20 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 5 }),
        (ids, blinded, replicas, spread) => {
          const withDup = ids.length > 0 ? [...ids, ids[0]!] : ids;
          const got = responsibleHsDirs(
            withDup.map((id) => ({ id })),
            blinded,
            srv,
            7n,
            120n,
            { replicas, spread },
          );
          expect(got.map((n) => toHex(n.id))).toEqual(
            referenceWalk(withDup, blinded, srv, 7n, 120n, replicas, spread),
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});
