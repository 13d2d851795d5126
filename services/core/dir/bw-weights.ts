/**
 * Bandwidth weights (dir-spec §3.8.3): the Wxy weights a consensus
 * publishes so clients balance Guard, Middle and Exit positions by
 * bandwidth.
 *
 * Overview: C tor's consensus-method-10 case analysis (dirvote.c
 * networkstatus_compute_bw_weights_v10), in exact integer arithmetic, over
 * the listed Running relays: G = Guard-only, E = Exit-only (Exit without
 * BadExit), D = both, M = neither.
 *
 * Design notes: each class total starts at 1 KB/s, as C tor's
 * networkstatus_compute_consensus starts G = M = E = D = 1 ("so that later
 * on, we can't accidentally divide by zero"); so a class with no relay is
 * still weighed, and a small testnet where every relay is Guard+Exit gets
 * the weights C tor publishes for it (case 2b) rather than none. When the
 * checks fail, no weights are published, as C tor; clients then use 10000
 * for every weight (dir-spec §3.8.3).
 *
 * Not in this module: which relays are listed and with what bandwidth
 * (voting.ts), how clients apply the weights (path.ts).
 */

/** dir-spec §3.8.3 `bwweightscale` default. */
export const BW_WEIGHT_SCALE = 10_000;

/** C tor's initial class total, 1 KB/s, in Shallot's bytes/s (its bandwidths are KB/s). */
const INITIAL_CLASS_TOTAL = 1000n;

/**
 * C tor's networkstatus_compute_bw_weights_v10 over the listed Running
 * relays: G = Guard-only, E = Exit-only (Exit without BadExit), D = both,
 * M = neither, each starting at 1 KB/s. Returns {} when it cannot compute
 * balanced weights.
 */
export function computeBandwidthWeights(
  relays: readonly { flags: string[]; bandwidth: number }[],
  weightScale = BW_WEIGHT_SCALE,
): Record<string, number> {
  let G = INITIAL_CLASS_TOTAL;
  let M = INITIAL_CLASS_TOTAL;
  let E = INITIAL_CLASS_TOTAL;
  let D = INITIAL_CLASS_TOTAL;
  for (const r of relays) {
    if (!r.flags.includes('Running')) continue;
    const bw = BigInt(r.bandwidth);
    const exit = r.flags.includes('Exit') && !r.flags.includes('BadExit');
    const guard = r.flags.includes('Guard');
    if (exit && guard) D += bw;
    else if (exit) E += bw;
    else if (guard) G += bw;
    else M += bw;
  }
  const w = bwWeightsV10(G, M, E, D, BigInt(weightScale));
  if (!w) return {};
  const s = weightScale;
  const { Wgg, Wgd, Wmg, Wme, Wmd, Wee, Wed } = w;
  // Same list C tor writes: Wgm=Wgg, Wmm=1, Wem=Wee, Weg=Wed, bridges/dir = 1 or the middle weights.
  return {
    Wbd: Wmd,
    Wbe: Wme,
    Wbg: Wmg,
    Wbm: s,
    Wdb: s,
    Web: s,
    Wed,
    Wee,
    Weg: Wed,
    Wem: Wee,
    Wgb: s,
    Wgd,
    Wgg,
    Wgm: Wgg,
    Wmb: s,
    Wmd,
    Wme,
    Wmg,
    Wmm: s,
  };
}

type Weights = { Wgg: number; Wgd: number; Wmg: number; Wme: number; Wmd: number; Wee: number; Wed: number };

function checkWeights(
  w: Record<keyof Weights, bigint>,
  s: bigint,
  G: bigint,
  M: bigint,
  E: bigint,
  D: bigint,
) {
  const T = G + M + E + D;
  const margin = 10n;
  const near = (a: bigint, b: bigint, m: bigint) => (a >= b ? a - b <= m : b - a <= m);
  const { Wgg, Wgd, Wmg, Wme, Wmd, Wee, Wed } = w;
  if (!near(Wed + Wmd + Wgd, s, margin)) return 'sumd';
  if (!near(Wmg + Wgg, s, margin)) return 'sumg';
  if (!near(Wme + Wee, s, margin)) return 'sume';
  if ([Wgg, Wgd, Wmg, Wme, Wmd, Wed, Wee].some((x) => x < 0n || x > s)) return 'range';
  if (!near(Wgg * G + Wgd * D, Wee * E + Wed * D, (margin * T) / 3n)) return 'balance-eg';
  if (!near(Wgg * G + Wgd * D, M * s + Wmd * D + Wme * E + Wmg * G, (margin * T) / 3n)) return 'balance-mid';
  return null;
}

function bwWeightsV10(G: bigint, M: bigint, E: bigint, D: bigint, s: bigint): Weights | null {
  if (G <= 0n || M <= 0n || E <= 0n || D <= 0n || s <= 0n) return null;
  const T = G + M + E + D;
  let w: Record<keyof Weights, bigint>;
  if (3n * E >= T && 3n * G >= T) {
    // Case 1: neither Guard nor Exit is scarce.
    const Wee = (s * (E + G + M)) / (3n * E);
    const Wmg = (s * (2n * G - E - M)) / (3n * G);
    w = { Wgd: s / 3n, Wed: s / 3n, Wmd: s / 3n, Wee, Wme: s - Wee, Wmg, Wgg: s - Wmg };
    if (checkWeights(w, s, G, M, E, D)) return null;
  } else if (3n * E < T && 3n * G < T) {
    // Case 2: both scarce.
    const R = E < G ? E : G;
    const S = E < G ? G : E;
    if (R + D < S) {
      // 2a: give D entirely to the scarcer position.
      w =
        E < G
          ? { Wgg: s, Wee: s, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: s, Wgd: 0n }
          : { Wgg: s, Wee: s, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: 0n, Wgd: s };
    } else {
      // 2b1: Wgg=1, Wmd=Wgd.
      const Wed = (s * (D - 2n * E + 4n * G - 2n * M)) / (3n * D);
      w = {
        Wee: (s * (E - G + M)) / E,
        Wed,
        Wme: (s * (G - M)) / E,
        Wmg: 0n,
        Wgg: s,
        Wmd: (s - Wed) / 2n,
        Wgd: (s - Wed) / 2n,
      };
      let err = checkWeights(w, s, G, M, E, D);
      if (err) {
        // 2b2: Wgg=Wee=1; 2b3 if M > T/3 makes Wmd negative.
        const Wed2 = (s * (D - 2n * E + G + M)) / (3n * D);
        let Wmd2 = (s * (D - 2n * M + G + E)) / (3n * D);
        if (Wmd2 < 0n) Wmd2 = 0n;
        w = { Wgg: s, Wee: s, Wed: Wed2, Wmd: Wmd2, Wme: 0n, Wmg: 0n, Wgd: s - Wed2 - Wmd2 };
        err = checkWeights(w, s, G, M, E, D);
      }
      // C tor accepts a middle-balance miss here.
      if (err && err !== 'balance-mid') return null;
    }
  } else {
    // Case 3: exactly one of Guard or Exit is scarce.
    const S = E < G ? E : G;
    if (3n * (S + D) < T) {
      if (G < E) {
        // 3a, G scarce.
        const Wme = E < M ? 0n : (s * (E - M)) / (2n * E);
        w = { Wgg: s, Wgd: s, Wmd: 0n, Wed: 0n, Wmg: 0n, Wme, Wee: s - Wme };
      } else {
        // 3a, E scarce.
        const Wmg = G < M ? 0n : (s * (G - M)) / (2n * G);
        w = { Wee: s, Wed: s, Wmd: 0n, Wgd: 0n, Wme: 0n, Wmg, Wgg: s - Wmg };
      }
    } else if (G < E) {
      // 3bg: G scarce, Wgg=1, Wmd=Wed.
      const Wgd = (s * (D - 2n * G + E + M)) / (3n * D);
      const Wee = (s * (E + M)) / (2n * E);
      w = { Wgg: s, Wgd, Wmg: 0n, Wee, Wme: s - Wee, Wmd: (s - Wgd) / 2n, Wed: (s - Wgd) / 2n };
      if (checkWeights(w, s, G, M, E, D)) return null;
    } else {
      // 3be: E scarce, Wee=1, Wmd=Wgd.
      const Wed = (s * (D - 2n * E + G + M)) / (3n * D);
      const Wgg = (s * (G + M)) / (2n * G);
      w = { Wee: s, Wed, Wme: 0n, Wgg, Wmg: s - Wgg, Wmd: (s - Wed) / 2n, Wgd: (s - Wed) / 2n };
      if (checkWeights(w, s, G, M, E, D)) return null;
    }
  }
  const out = {} as Weights;
  for (const [k, v] of Object.entries(w)) out[k as keyof Weights] = Number(v);
  return out;
}
