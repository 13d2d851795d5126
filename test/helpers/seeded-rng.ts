// Deterministic random sources for tests whose draws must replay exactly
// (path selection, guard sampling, circuit build time fits).
import type { Rng } from '../../services/core/crypto.js';

/** mulberry32: a 32-bit generator; each call gives the next u32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Deterministic byte source (one mulberry32 draw per byte) for replayable draws. */
export function seededRng(seed: number): Rng {
  const next = mulberry32(seed);
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = next() & 0xff;
    return out;
  };
}

/** Deterministic uniform numbers in [0, 1). */
export function seededUniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
