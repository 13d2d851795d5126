import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import {
  type BandwidthWeights,
  canExit,
  choosePath,
  inSameFamily,
  PathError,
  type PathRelay,
  positionWeight,
  subnetKey,
} from '../../../services/core/path.js';
import { seededRng } from '../../helpers/seeded-rng.js';

interface R extends PathRelay {
  name: string;
}

const ALL = ['Running', 'Valid', 'Fast', 'Stable'];

function relay(i: number, flags: string[], o: Partial<R> = {}): R {
  const identity = new Uint8Array(32).fill(i);
  return { name: `r${i}`, identity, address: `10.${i}.0.1`, flags, bandwidth: 1000, family: [], ...o };
}

const id = (r: PathRelay) => toHex(r.identity);

describe('positionWeight (dir-spec §3.8.3)', () => {
  const w: BandwidthWeights = {
    Wgg: 6000,
    Wgm: 5000,
    Wgd: 1000,
    Wmg: 4000,
    Wmm: 10000,
    Wme: 2000,
    Wmd: 3000,
    Weg: 500,
    Wem: 700,
    Wee: 9000,
    Wed: 8000,
  };
  const g = relay(1, ['Guard']);
  const e = relay(2, ['Exit']);
  const d = relay(3, ['Guard', 'Exit']);
  const m = relay(4, []);
  const table: [PathRelay, 'guard' | 'middle' | 'exit', number][] = [
    [g, 'guard', 6000],
    [m, 'guard', 5000],
    [d, 'guard', 1000],
    [e, 'guard', 0], // there is no Wge
    [g, 'middle', 4000],
    [m, 'middle', 10000],
    [e, 'middle', 2000],
    [d, 'middle', 3000],
    [g, 'exit', 500],
    [m, 'exit', 700],
    [e, 'exit', 9000],
    [d, 'exit', 8000],
  ];
  it.each(table.map(([r, p, x], i) => ({ i, r, p, x })))('($i) $p position', ({ r, p, x }) => {
    expect(positionWeight(r, p, w)).toBe((1000 * x) / 10000);
  });

  it('defaults missing weights to the 10000 scale, clamps negatives', () => {
    expect(positionWeight(g, 'guard', {})).toBe(1000);
    expect(positionWeight(d, 'exit', { Wed: -5 })).toBe(0);
  });

  it('counts a BadExit as a non-exit', () => {
    const bad = relay(5, ['Exit', 'BadExit']);
    expect(positionWeight(bad, 'middle', w)).toBe(1000);
  });
});

describe('subnets and families', () => {
  it.each([
    ['1.2.3.4', '1.2.200.9', true],
    ['1.2.3.4', '1.3.3.4', false],
    ['127.0.0.1', '127.0.0.2', true],
    ['2001:db8::1', '[2001:db8:ffff::2]', true],
    ['2001:db8::1', '2001:db9::1', false],
    ['::1', '0:0::2', true],
    ['1.2.3.4', '::ffff:1.2.3.4', false],
  ])('%s vs %s same subnet: %s', (a, b, same) => {
    expect(subnetKey(a) === subnetKey(b)).toBe(same);
  });

  it('treats family as mutual only', () => {
    const a = relay(1, ALL);
    const b = relay(2, ALL, { family: [id(a)] });
    expect(inSameFamily(a, b)).toBe(false);
    const a2 = { ...a, family: [id(b).toUpperCase()] };
    expect(inSameFamily(a2, b)).toBe(true);
  });

  it('exits by policy when one is given, else by the Exit flag; never a BadExit', () => {
    const p = relay(1, ['Exit'], { allowsExitPort: (port) => port === 443 });
    expect(canExit(p, 443)).toBe(true);
    expect(canExit(p, 80)).toBe(false);
    expect(canExit(p)).toBe(true);
    expect(canExit(relay(2, []), 80)).toBe(false);
    expect(canExit({ ...p, flags: ['Exit', 'BadExit'] }, 443)).toBe(false);
  });
});

/** A small network: 4 guards, 4 middles, 3 exits (one BadExit), distinct /16s. */
function network(): R[] {
  const rs: R[] = [];
  for (let i = 1; i <= 4; i++) rs.push(relay(i, [...ALL, 'Guard']));
  for (let i = 5; i <= 8; i++) rs.push(relay(i, ALL));
  rs.push(relay(9, [...ALL, 'Exit'], { allowsExitPort: (p) => p === 80 || p === 443 }));
  rs.push(relay(10, [...ALL, 'Exit'], { allowsExitPort: (p) => p === 443 }));
  rs.push(relay(11, [...ALL, 'Exit', 'BadExit']));
  return rs;
}

const base = { enforceSubnets: true, enforceFamily: true } as const;

describe('choosePath', () => {
  it('builds guard, middle, exit with the port allowed', () => {
    const rng = seededRng(7);
    for (let i = 0; i < 200; i++) {
      const p = choosePath(network(), { ...base, purpose: 'exit', exitPort: 80 }, rng);
      expect(p).toHaveLength(3);
      expect(p[0]!.flags).toContain('Guard');
      expect(p[2]!.name).toBe('r9');
    }
  });

  it('appends lastHop after the chosen hops and avoids it elsewhere', () => {
    const rs = network();
    const target = rs[5]!;
    const rng = seededRng(3);
    for (let i = 0; i < 100; i++) {
      const p = choosePath(rs, { ...base, purpose: 'onion-rend', lastHop: target }, rng);
      expect(p).toHaveLength(4);
      expect(p[3]).toBe(target);
      expect(p.slice(0, 3)).not.toContain(target);
    }
  });

  it('uses a preselected guard and keeps its family off the rest of the path', () => {
    const rs = network();
    const guard = rs[0]!;
    // Exit r9 and the guard are a mutual family: only r10 remains for port 443.
    rs[8] = { ...rs[8]!, family: [id(guard)] };
    guard.family = [id(rs[8]!)];
    const rng = seededRng(9);
    for (let i = 0; i < 100; i++) {
      const p = choosePath(rs, { ...base, purpose: 'exit', exitPort: 443, guard }, rng);
      expect(p[0]).toBe(guard);
      expect(p[2]!.name).toBe('r10');
    }
  });

  it('asks a guard chooser after the exit: a first guard that is one of two exits does not force the other', () => {
    // Two exits, E1 also the client's first primary guard, G a plain guard: C tor picks the
    // exit first (onion_pick_cpath_exit), then the first primary guard that fits beside it.
    const e1 = relay(1, [...ALL, 'Guard', 'Exit']);
    const e2 = relay(2, [...ALL, 'Exit']);
    const g = relay(3, [...ALL, 'Guard']);
    const m = relay(4, ALL);
    const primaries = [e1, g];
    const rng = seededRng(19);
    const exits = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const p = choosePath(
        [e1, e2, g, m],
        { ...base, enforceSubnets: false, purpose: 'exit', guard: (fits) => primaries.find(fits) },
        rng,
      );
      const exit = p[2]!;
      exits.set(exit.name, (exits.get(exit.name) ?? 0) + 1);
      // The first primary guard whenever it fits, the next one when it is the exit.
      expect(p[0]!.name).toBe(exit === e1 ? 'r3' : 'r1');
    }
    // Both exits serve: with a guard fixed first, E1 could never exit and every circuit needed E2.
    expect(exits.get('r1')).toBeGreaterThan(20);
    expect(exits.get('r2')).toBeGreaterThan(20);
    // A chooser that finds nothing falls back to a weighted Guard pick; one that returns an
    // unfit relay is refused.
    const fallback = choosePath(
      [e1, e2, g, m],
      { ...base, enforceSubnets: false, purpose: 'exit', guard: () => undefined },
      rng,
    );
    expect(fallback[0]!.flags).toContain('Guard');
    expect(() =>
      choosePath(
        [e2, g],
        { ...base, enforceSubnets: false, purpose: 'exit', length: 2, guard: () => e2 },
        seededRng(1),
      ),
    ).toThrow(PathError);
  });

  it('requires Stable on every hop for intro and rendezvous circuits', () => {
    const rs = network().map((r, i) =>
      i % 2 === 0 ? { ...r, flags: r.flags.filter((f) => f !== 'Stable') } : r,
    );
    const rng = seededRng(11);
    for (let i = 0; i < 50; i++) {
      for (const h of choosePath(rs, { ...base, purpose: 'onion-intro' }, rng))
        expect(h.flags).toContain('Stable');
    }
  });

  it('throws PathError naming the hop when no exit allows the port', () => {
    try {
      choosePath(network(), { ...base, purpose: 'exit', exitPort: 22 }, seededRng(1));
      expect.fail('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(PathError);
      expect((e as PathError).code).toBe('ERR_NO_PATH');
      expect((e as PathError).context).toMatchObject({ position: 'exit', candidates: 0, purpose: 'exit' });
    }
  });

  it('loopback testnets need enforceSubnets off', () => {
    const rs = network().map((r, i) => ({ ...r, address: `127.0.0.${i + 1}` }));
    expect(() => choosePath(rs, { ...base, purpose: 'exit', exitPort: 80 }, seededRng(1))).toThrow(PathError);
    expect(
      choosePath(rs, { ...base, enforceSubnets: false, purpose: 'exit', exitPort: 80 }, seededRng(1)),
    ).toHaveLength(3);
  });

  it('honours length, including one-hop directory circuits', () => {
    const rng = seededRng(5);
    const one = choosePath(network(), { ...base, purpose: 'dir', length: 1 }, rng);
    expect(one).toHaveLength(1);
    expect(one[0]!.flags).toContain('Guard');
    expect(choosePath(network(), { ...base, purpose: 'internal', length: 4 }, rng)).toHaveLength(4);
    expect(() => choosePath(network(), { ...base, purpose: 'internal', length: 0 }, rng)).toThrow();
  });

  it('picks guards in proportion to guard-position weight (20k draws)', () => {
    const rs = network();
    rs[0]!.bandwidth = 4000; // r1 4000, r3 and r4 1000 each
    rs[1]!.flags = [...rs[1]!.flags, 'Exit']; // r2 is Guard+Exit: Wgd = 0 in guard position
    const weights = { Wgd: 0 };
    const rng = seededRng(42);
    const counts = new Map<string, number>();
    const N = 20_000;
    for (let i = 0; i < N; i++) {
      // One hop, so nothing else is excluded first and the shares are exact.
      const p = choosePath(rs, { ...base, purpose: 'dir', length: 1, weights }, rng);
      counts.set(p[0]!.name, (counts.get(p[0]!.name) ?? 0) + 1);
    }
    expect(counts.get('r2') ?? 0).toBe(0);
    // Expected 4/6, 1/6, 1/6; one standard deviation is about 0.0033.
    expect(Math.abs((counts.get('r1') ?? 0) / N - 4 / 6)).toBeLessThan(0.02);
    expect(Math.abs((counts.get('r3') ?? 0) / N - 1 / 6)).toBeLessThan(0.02);
    expect(Math.abs((counts.get('r4') ?? 0) / N - 1 / 6)).toBeLessThan(0.02);
  });

  // Mostly-usable relays, so most runs build a path rather than throw.
  const likely = fc.constantFrom(true, true, true, false);
  const arbRelay = fc.record({
    guard: likely,
    exit: fc.boolean(),
    badExit: fc.boolean(),
    running: likely,
    valid: likely,
    stable: likely,
    net: fc.integer({ min: 0, max: 5 }),
    bw: fc.integer({ min: 0, max: 5000 }),
    ports: fc.subarray([22, 80, 443]),
    fam: fc.subarray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  });

  it('property: no relay twice, flags respected, no mutual family, distinct /16s', () => {
    let built = 0;
    fc.assert(
      fc.property(
        fc.array(arbRelay, { minLength: 1, maxLength: 10 }),
        fc.constantFrom('exit', 'internal', 'onion-intro', 'onion-rend', 'hsdir', 'dir'),
        fc.constantFrom(undefined, 22, 80, 443),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.integer(),
        (specs, purpose, exitPort, length, useLast, seed) => {
          const rs: R[] = specs.map((s, i) =>
            relay(
              i + 1,
              [
                ...(s.guard ? ['Guard'] : []),
                ...(s.exit ? ['Exit'] : []),
                ...(s.badExit ? ['BadExit'] : []),
                ...(s.running ? ['Running'] : []),
                ...(s.valid ? ['Valid'] : []),
                ...(s.stable ? ['Stable'] : []),
              ],
              {
                address: `10.${s.net}.${i}.1`,
                bandwidth: s.bw,
                allowsExitPort: (p) => s.ports.includes(p),
              },
            ),
          );
          specs.forEach((s, i) => {
            rs[i]!.family = s.fam.filter((j) => j < rs.length).map((j) => id(rs[j]!));
          });
          const lastHop = useLast ? rs[0] : undefined;
          const opts = { ...base, purpose, exitPort, length, lastHop };
          let path: R[];
          try {
            path = choosePath(rs, opts, seededRng(seed));
          } catch (e) {
            expect(e).toBeInstanceOf(PathError);
            return;
          }
          built++;
          expect(path).toHaveLength(length + (lastHop ? 1 : 0));
          expect(new Set(path.map(id)).size).toBe(path.length);
          for (let i = 0; i < path.length; i++) {
            for (let j = i + 1; j < path.length; j++) {
              expect(inSameFamily(path[i]!, path[j]!)).toBe(false);
              expect(subnetKey(path[i]!.address)).not.toBe(subnetKey(path[j]!.address));
            }
          }
          const chosen = lastHop ? path.slice(0, -1) : path;
          for (const h of chosen) {
            expect(h.flags).toContain('Running');
            expect(h.flags).toContain('Valid');
            if (purpose === 'onion-intro' || purpose === 'onion-rend') expect(h.flags).toContain('Stable');
          }
          expect(path[0]!.flags).toContain('Guard');
          if (purpose === 'exit' && !lastHop) expect(canExit(path[path.length - 1]!, exitPort)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    // The property must be exercised on real paths, not only on PathErrors.
    expect(built).toBeGreaterThan(50);
  });

  it('is deterministic for a given seed', () => {
    const a = choosePath(network(), { ...base, purpose: 'exit', exitPort: 443 }, seededRng(123)).map(
      (r) => r.name,
    );
    const b = choosePath(network(), { ...base, purpose: 'exit', exitPort: 443 }, seededRng(123)).map(
      (r) => r.name,
    );
    expect(a).toEqual(b);
  });
});

describe('choosePath with vanguards-lite (prop 333)', () => {
  const net = network();
  const layer2 = [net[4]!, net[5]!, net[6]!, net[7]!];
  const target = net[8]!;

  it('the hop after the guard is always a layer-2 vanguard, each used; G-L2-M-target and G-L2-target', () => {
    const rng = seededRng(21);
    const seen = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const p = choosePath(
        net,
        { ...base, purpose: 'onion-intro', lastHop: target, length: 3, vanguards: layer2 },
        rng,
      );
      expect(p).toHaveLength(4);
      expect(layer2.map(id)).toContain(id(p[1]!));
      expect(p[3]).toBe(target);
      expect(new Set(p.map(id)).size).toBe(4);
      seen.set(id(p[1]!), (seen.get(id(p[1]!)) ?? 0) + 1);
      const rend = choosePath(
        net,
        { ...base, purpose: 'onion-rend', lastHop: target, length: 2, vanguards: layer2 },
        rng,
      );
      expect(rend).toHaveLength(3);
      expect(layer2.map(id)).toContain(id(rend[1]!));
    }
    // Uniform over the set: 400 draws over 4 give 100 each; 60 is far out in the tail.
    expect(seen.size).toBe(4);
    for (const n of seen.values()) expect(n).toBeGreaterThan(60);
  });

  it('skips a vanguard that is the target, and fails when none is left', () => {
    const rng = seededRng(22);
    for (let i = 0; i < 100; i++) {
      const p = choosePath(
        net,
        { ...base, purpose: 'hsdir', lastHop: layer2[0]!, length: 3, vanguards: layer2 },
        rng,
      );
      expect(id(p[1]!)).not.toBe(id(layer2[0]!));
    }
    expect(() =>
      choosePath(
        net,
        { ...base, purpose: 'hsdir', lastHop: layer2[0]!, length: 3, vanguards: [layer2[0]!] },
        rng,
      ),
    ).toThrow(PathError);
  });

  it('family and /16 rules do not apply to the layer-2 and middle hops (C tor), so a guard related to every vanguard still builds', () => {
    // Every vanguard in the guard's family and /16.
    const guard = relay(1, [...ALL, 'Guard'], {
      address: '10.1.0.1',
      family: [5, 6, 7, 8].map((i) => id(net[i - 1]!)),
    });
    const related = layer2.map((v) => ({ ...v, address: '10.1.9.9', family: [id(guard)] }));
    const rng = seededRng(23);
    const p = choosePath(
      [...net.slice(1), guard],
      { ...base, purpose: 'onion-intro', guard, lastHop: target, length: 3, vanguards: related },
      rng,
    );
    expect(p).toHaveLength(4);
    expect(related.map(id)).toContain(id(p[1]!));
    // Without vanguards the same guard keeps its family out of the path.
    const plain = choosePath(
      [...net.slice(1), guard, ...related],
      { ...base, purpose: 'onion-intro', guard, lastHop: target },
      rng,
    );
    for (const r of plain.slice(1, -1)) expect(related.map(id)).not.toContain(id(r));
  });
});
