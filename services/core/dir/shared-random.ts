/**
 * Shared randomness (srv-spec, "Tor shared random subsystem"): the commit and
 * reveal values authorities exchange in votes, and the shared random value
 * (SRV) they all compute from the reveals, which places onion-service
 * descriptors on the HSDir hash ring (rend-spec-v3 §2.2.3).
 *
 * Overview (srv-spec §2-3, C tor shared_random.c):
 *   RN     = SHA3-256(32 random bytes)        (hashed so RNG output never leaks)
 *   REVEAL = base64(INT_8(TIMESTAMP) | RN)                  56 characters
 *   COMMIT = base64(INT_8(TIMESTAMP) | SHA3-256(REVEAL))    56 characters,
 *            the hash taken over REVEAL's base64 text
 *   HASHED_REVEALS = SHA3-256(ID_a | R_a | ID_b | R_b | ...)   sorted by ID
 *   SRV    = SHA3-256("shared-random" | INT_8(REVEAL_NUM) | INT_4(VERSION=1)
 *                     | HASHED_REVEALS | PREVIOUS_SRV)
 * with PREVIOUS_SRV = 32 zero bytes when there is none.
 *
 * A protocol run is 24 voting rounds: 12 commit rounds then 12 reveal rounds;
 * at the first round of the next run each authority computes the new SRV
 * from the reveals it holds (srv-spec §2.1, §3.3).
 *
 * Deviation: Tor's ID is the authority's RSA fingerprint in upper-case hex;
 * Shallot has no RSA, so ID is the Ed25519 identity in upper-case hex.
 * (Passing a 20-byte id reproduces C tor's test vector byte for byte.)
 *
 * Not in this module: the disaster SRV (hsdir-ring.ts), votes carrying the
 * values (vote.ts), and the authority state machine (services/directory).
 */
import { compareBytes, concat, fromBase64, int4, int8, toBase64, toHex, utf8 } from '../bytes.js';
import { ctEqual, type Rng, sha3_256 } from '../crypto.js';
import { InvalidError } from '../errors.js';

export const SR_PROTO_VERSION = 1;
/** Commit rounds, then as many reveal rounds, per protocol run (SHARED_RANDOM_N_ROUNDS). */
export const SR_N_ROUNDS = 12;
const ENCODED_LEN = 56; // base64 of 40 bytes

/** Shaped like vote.ts's SrVoteCommit, so it can go into a vote as is. */
export interface SrCommitment {
  /** Lowercase hex Ed25519 id of the committing authority. */
  authorityId: string;
  /** base64(INT_8(ts) | H(reveal)), published in the commit phase. */
  commit: string;
  /** base64(INT_8(ts) | RN), kept secret until the reveal phase. */
  reveal: string;
}

function tsBytes(tsSec: number): Uint8Array {
  if (!Number.isSafeInteger(tsSec) || tsSec < 0)
    throw new InvalidError('sr timestamp', 'not a non-negative integer');
  return int8(tsSec);
}

/** A fresh commitment for the protocol run starting at `tsSec` (its first valid-after, seconds). */
export function makeCommit(rng: Rng, authorityId: Uint8Array, tsSec: number): SrCommitment {
  const ts = tsBytes(tsSec);
  const rn = sha3_256(rng(32));
  const reveal = toBase64(concat(ts, rn));
  const commit = toBase64(concat(ts, sha3_256(utf8(reveal))));
  return { authorityId: toHex(authorityId), commit, reveal };
}

function decode40(s: string, what: string): { tsSec: number; value: Uint8Array } {
  if (typeof s !== 'string' || s.length !== ENCODED_LEN) throw new InvalidError(what, 'wrong length');
  const b = fromBase64(s, what);
  if (b.length !== 40) throw new InvalidError(what, 'wrong length');
  // Non-canonical base64 (stray low bits) would give two texts for one value; the
  // commit hashes the text, so insist on the canonical one.
  if (toBase64(b) !== s) throw new InvalidError(what, 'non-canonical base64');
  const ts = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidError(what, 'timestamp out of range');
  return { tsSec: Number(ts), value: b.subarray(8) };
}

export function decodeCommit(commit: string): { tsSec: number; hashedReveal: Uint8Array } {
  const { tsSec, value } = decode40(commit, 'sr commit');
  return { tsSec, hashedReveal: value };
}

export function decodeReveal(reveal: string): { tsSec: number; random: Uint8Array } {
  const { tsSec, value } = decode40(reveal, 'sr reveal');
  return { tsSec, random: value };
}

/**
 * Whether `reveal` opens `commit` (srv-spec §3.1.2: same timestamp, and the
 * commit's hash is SHA3-256 of the reveal text). Never throws.
 */
export function verifyReveal(commit: string, reveal: string): boolean {
  try {
    const c = decodeCommit(commit);
    const r = decodeReveal(reveal);
    return c.tsSec === r.tsSec && ctEqual(c.hashedReveal, sha3_256(utf8(reveal)));
  } catch {
    return false;
  }
}

/**
 * srv-spec §3.3: the SRV from the reveals of one protocol run. Callers pass
 * only reveals already checked with `verifyReveal` against their commits.
 */
export function computeSrv(
  reveals: readonly { authorityId: Uint8Array; reveal: string }[],
  previousSrv: Uint8Array | null,
): Uint8Array {
  if (previousSrv !== null && previousSrv.length !== 32)
    throw new InvalidError('previous srv', 'not 32 bytes');
  const seen = new Set<string>();
  for (const r of reveals) {
    const id = toHex(r.authorityId);
    if (seen.has(id)) throw new InvalidError('sr reveals', 'duplicate authority');
    seen.add(id);
  }
  const sorted = [...reveals].sort((a, b) => compareBytes(a.authorityId, b.authorityId));
  const hashedReveals = sha3_256(
    ...sorted.map((r) => concat(utf8(toHex(r.authorityId).toUpperCase()), utf8(r.reveal))),
  );
  return sha3_256(
    utf8('shared-random'),
    int8(reveals.length),
    int4(SR_PROTO_VERSION),
    hashedReveals,
    previousSrv ?? new Uint8Array(32),
  );
}

export interface SrPhase {
  phase: 'commit' | 'reveal';
  /** 0..11 within the phase. */
  round: number;
  /** valid-after of the first round of this protocol run. */
  runStartMs: number;
}

/**
 * Which phase the round with this valid-after is in (C tor
 * get_sr_protocol_phase): rounds are counted from the epoch in voting
 * intervals, 24 to a run. With the live 1-hour interval a run starts at 00:00 UTC.
 */
export function srPhase(validAfterMs: number, votingIntervalSec: number): SrPhase {
  if (!Number.isSafeInteger(votingIntervalSec) || votingIntervalSec <= 0) {
    throw new InvalidError('voting interval', 'not a positive integer');
  }
  const intervalMs = votingIntervalSec * 1000;
  const slot = Math.floor(validAfterMs / intervalMs);
  const inRun = ((slot % (2 * SR_N_ROUNDS)) + 2 * SR_N_ROUNDS) % (2 * SR_N_ROUNDS);
  return {
    phase: inRun < SR_N_ROUNDS ? 'commit' : 'reveal',
    round: inRun % SR_N_ROUNDS,
    runStartMs: (slot - inRun) * intervalMs,
  };
}
