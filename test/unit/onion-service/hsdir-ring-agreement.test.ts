// The onion service and the client must put the same relays on the HSDir
// ring (rend-spec-v3 §2.2.3), or a client asks HSDirs the service never
// uploaded to. Both sides read one consensus through the client's NetDir, as
// the running processes do; some HSDirs lack Valid (the service once left
// those out while the client kept them).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NetDir } from '../../../services/client/netdir.js';
import { hsDirsToFetch, onionPeriodKeys } from '../../../services/client/onion-params.js';
import { toHex } from '../../../services/core/bytes.js';
import { ed25519PublicFromSeed } from '../../../services/core/crypto.js';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { blindIdentity } from '../../../services/core/hs-keys.js';
import { timePeriodParams } from '../../../services/core/hs-time.js';
import { hsDirRingMembers } from '../../../services/core/hsdir-ring.js';
import {
  clientFetchPeriod,
  serviceDescriptorPeriods,
  uploadHsDirs,
} from '../../../services/onion-service/periods.js';
import { FAKE_SHARED_RAND, fakeConsensus, fakeRelay } from '../../helpers/fake-consensus.js';

const HSDIR_ALL = ['Fast', 'HSDir', 'Running', 'Stable', 'Valid'];
const HSDIR_NOT_VALID = ['Fast', 'HSDir', 'Running', 'Stable'];

/** Identities that differ in bytes 0, 1 and 31, so the ring orders them apart. */
function relay(i: number, flags: string[]): ConsensusRelay {
  const identity = new Uint8Array(32);
  identity[0] = i;
  identity[1] = (i * 37) & 0xff;
  identity[31] = 0xa5;
  return fakeRelay(i, flags, identity);
}

function consensusWith(relays: ConsensusRelay[], validAfterMs: number): Consensus {
  return fakeConsensus(relays, {
    validAfterMs,
    knownFlags: ['Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid'],
    ...FAKE_SHARED_RAND,
  });
}

/** What each side computes for one service identity A and one consensus. */
function bothSides(identity: Uint8Array, c: Consensus): { fetch: string[]; upload: string[] } {
  const dir = new NetDir(c);
  const keys = onionPeriodKeys(identity, c);
  const fetch = hsDirsToFetch(dir.relays, keys).map((r) => r.id);
  const p = timePeriodParams({ testnet: true, votingIntervalSec: c.votingIntervalSec });
  const client = clientFetchPeriod(c, p);
  // The one of the service's two descriptors that the client fetches.
  const period = serviceDescriptorPeriods(c, p).find(
    (d) => d.tp === client.tp && toHex(d.srv) === toHex(client.srv),
  );
  if (!period) throw new Error('no service descriptor for the fetch period');
  const blinded = blindIdentity(identity, BigInt(period.tp), BigInt(p.lengthMinutes));
  const upload = uploadHsDirs(dir.relays, blinded, period, p).map((r) => r.id);
  return { fetch, upload };
}

const notValid = (c: Consensus): Set<string> =>
  new Set(c.relays.filter((r) => !r.flags.includes('Valid')).map((r) => toHex(r.identity)));

describe('HSDir ring: the service uploads where the client fetches', () => {
  it('one ring member rule: HSDir, with or without Valid', () => {
    const relays = [relay(1, HSDIR_ALL), relay(2, HSDIR_NOT_VALID), relay(3, ['Fast', 'Running', 'Valid'])];
    expect(hsDirRingMembers(relays).map((m) => m.node.nickname)).toEqual(['r1', 'r2']);
  });

  it('a small ring is all of it on both sides, including the relay without Valid', () => {
    const c = consensusWith(
      [relay(1, HSDIR_ALL), relay(2, HSDIR_NOT_VALID), relay(3, HSDIR_ALL), relay(4, ['Running', 'Valid'])],
      Date.UTC(2026, 0, 1, 3),
    );
    const { fetch, upload } = bothSides(ed25519PublicFromSeed(new Uint8Array(32).fill(9)), c);
    const ring = c.relays.filter((r) => r.flags.includes('HSDir')).map((r) => toHex(r.identity));
    expect(new Set(fetch)).toEqual(new Set(ring));
    expect(new Set(upload)).toEqual(new Set(ring));
  });

  it('every HSDir a client may ask holds the descriptor (any service key, any time, 1 in 3 without Valid)', () => {
    const relays = Array.from({ length: 24 }, (_, i) =>
      relay(i + 1, i % 3 === 0 ? HSDIR_NOT_VALID : HSDIR_ALL),
    );
    let fetchedNotValid = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 5_000_000 }),
        (seed, sec) => {
          const c = consensusWith(relays, Date.UTC(2026, 0, 1) + sec * 1000);
          const { fetch, upload } = bothSides(ed25519PublicFromSeed(seed), c);
          expect(fetch).toHaveLength(6);
          expect(upload).toHaveLength(8);
          const stored = new Set(upload);
          for (const id of fetch) expect(stored.has(id)).toBe(true);
          const nv = notValid(c);
          fetchedNotValid += fetch.filter((id) => nv.has(id)).length;
        },
      ),
      { numRuns: 100 },
    );
    // A third of the ring lacks Valid: over 600 fetch choices some must land there.
    expect(fetchedNotValid).toBeGreaterThan(50);
  });
});
