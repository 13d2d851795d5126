// A consensus without authorities or signatures for unit tests that only read
// it (the onion service's intro-point choice, HSDir ring, publisher,
// INTRODUCE2 handling): relay i at 10.0.i.1:5000+i, with the flags asked for;
// and a circuit manager over it that records what it is asked to build and
// builds nothing.
import type { CircuitManager } from '../../services/client/circuit-manager.js';
import type { BuildRequest } from '../../services/client/circuit-options.js';
import type { NetDir } from '../../services/client/netdir.js';
import { ed25519PublicFromSeed } from '../../services/core/crypto.js';
import type { Consensus } from '../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../services/core/dir/relay-entry.js';
import { REJECT_ALL } from '../../services/core/exit-policy.js';
import type { OriginCircuit } from '../../services/net/origin-circuit.js';

/**
 * A consensus entry with the fields a test does not care about filled in:
 * nickname from the identity's first byte, 127.0.0.1:9000, Running and
 * Valid, exits nowhere, bandwidth 1000, zero keys and digest.
 */
export function testRelay(
  fields: Pick<ConsensusRelay, 'identity'> & Partial<ConsensusRelay>,
): ConsensusRelay {
  return {
    nickname: `r${fields.identity[0]}`,
    ntorOnionKey: new Uint8Array(32),
    address: '127.0.0.1',
    orPort: 9000,
    publishedMs: 0,
    flags: ['Running', 'Valid'],
    exitPolicy: REJECT_ALL,
    family: [],
    descriptorDigest: new Uint8Array(32),
    bandwidth: 1000,
    ...fields,
  };
}

/** Relay `i`: identity from the seed of i's bytes unless given, ntor key of i's bytes. */
export function fakeRelay(
  i: number,
  flags: string[],
  identity = ed25519PublicFromSeed(new Uint8Array(32).fill(i)),
): ConsensusRelay {
  return testRelay({
    nickname: `r${i}`,
    identity,
    ntorOnionKey: new Uint8Array(32).fill(i),
    address: `10.0.${i}.1`,
    orPort: 5000 + i,
    flags,
    exitPolicy: { rules: [] },
  });
}

/**
 * These relays in a consensus with the fields a test does not care about
 * filled in: valid from 0 for 2 ms, 5 s voting, Running and Valid known,
 * no params, weights, authorities or signatures.
 */
export function testConsensus(relays: ConsensusRelay[], fields: Partial<Consensus> = {}): Consensus {
  return {
    validAfterMs: 0,
    freshUntilMs: 1,
    validUntilMs: 2,
    votingIntervalSec: 5,
    knownFlags: ['Running', 'Valid'],
    params: {},
    relays,
    bandwidthWeights: {},
    authorities: [],
    ...fields,
  };
}

/** These relays in a consensus valid from `validAfterMs` (default 0): fresh 10 s, valid 30 s, 10 s voting. */
export function fakeConsensus(
  relays: ConsensusRelay[],
  o: Partial<Pick<Consensus, 'knownFlags' | 'params' | 'sharedRandCurrent' | 'sharedRandPrevious'>> & {
    validAfterMs?: number;
  } = {},
): Consensus {
  const validAfterMs = o.validAfterMs ?? 0;
  return testConsensus(relays, {
    knownFlags: ['Fast', 'Running', 'Stable', 'Valid'],
    ...o,
    validAfterMs,
    freshUntilMs: validAfterMs + 10_000,
    validUntilMs: validAfterMs + 30_000,
    votingIntervalSec: 10,
  });
}

/** Shared random values for a consensus the HSDir ring is computed from (rend-spec-v3 §2.2.3). */
export const FAKE_SHARED_RAND: Pick<Consensus, 'sharedRandCurrent' | 'sharedRandPrevious'> = {
  sharedRandCurrent: { reveals: 3, value: new Uint8Array(32).fill(0xc1) },
  sharedRandPrevious: { reveals: 3, value: new Uint8Array(32).fill(0xb2) },
};

/** A circuit manager that records every build request (`builds`) and fails each one: no network here. */
export function recordingCircuits(dir: NetDir): {
  circuits: Pick<CircuitManager, 'build' | 'dir'>;
  builds: BuildRequest[];
} {
  const builds: BuildRequest[] = [];
  const circuits: Pick<CircuitManager, 'build' | 'dir'> = {
    dir,
    build: (req: BuildRequest): Promise<OriginCircuit> => {
      builds.push(req);
      return Promise.reject(new Error('no network here'));
    },
  };
  return { circuits, builds };
}
