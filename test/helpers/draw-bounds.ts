// Chance bounds for tests that check how weighted random draws spread
// (rendezvous points, path positions): instead of a guessed threshold, the
// least number of distinct picks and the most any one relay may take that
// honest draws with the given probabilities break with chance at most
// `alpha`. Exact for the distinct count (dynamic programming over the set of
// relays drawn so far); a union bound of binomial tails for the maximum.

/** P(exactly d distinct of `p.length` outcomes after `draws` independent draws), d = 0..p.length. */
export function distinctCountDistribution(p: readonly number[], draws: number): number[] {
  const k = p.length;
  if (k > 20) throw new RangeError(`distinctCountDistribution: ${k} outcomes (at most 20)`);
  let state = new Float64Array(1 << k);
  state[0] = 1;
  for (let n = 0; n < draws; n++) {
    const next = new Float64Array(1 << k);
    for (let mask = 0; mask < state.length; mask++) {
      const pm = state[mask]!;
      if (pm === 0) continue;
      for (let i = 0; i < k; i++) next[mask | (1 << i)]! += pm * p[i]!;
    }
    state = next;
  }
  const out = new Array<number>(k + 1).fill(0);
  for (let mask = 0; mask < state.length; mask++) out[popcount(mask)]! += state[mask]!;
  return out;
}

/** The largest k with P(fewer than k distinct outcomes) <= alpha. */
export function leastDistinct(p: readonly number[], draws: number, alpha: number): number {
  const dist = distinctCountDistribution(normalised(p), draws);
  let below = 0;
  let k = 0;
  while (k < dist.length && below + dist[k]! <= alpha) below += dist[k++]!;
  return k;
}

/** The smallest m with P(some outcome drawn more than m times) <= alpha (union bound). */
export function mostOfOne(p: readonly number[], draws: number, alpha: number): number {
  const q = normalised(p);
  for (let m = 0; m < draws; m++) {
    const tail = q.reduce((a, pi) => a + binomialTail(draws, pi, m + 1), 0);
    if (tail <= alpha) return m;
  }
  return draws;
}

/** P(Binomial(n, p) >= j). */
export function binomialTail(n: number, p: number, j: number): number {
  let sum = 0;
  let c = 1; // C(n, i), built up as i grows
  for (let i = 0; i <= n; i++) {
    if (i > 0) c = (c * (n - i + 1)) / i;
    if (i >= j) sum += c * p ** i * (1 - p) ** (n - i);
  }
  return sum;
}

function normalised(w: readonly number[]): number[] {
  const total = w.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('draw bounds: weights must sum to more than 0');
  return w.map((x) => x / total);
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x; v; v &= v - 1) n++;
  return n;
}
