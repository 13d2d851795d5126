import { describe, expect, it } from 'vitest';
import { toHex } from '../../../../services/core/bytes.js';
import { sha256 } from '../../../../services/core/crypto.js';
import { signRelayDescriptor } from '../../../../services/core/dir/descriptor.js';
import { assignFlags, FLAGS, voteRelayFromDescriptor } from '../../../../services/core/dir/flags.js';
import { computeConsensus } from '../../../../services/core/dir/voting.js';
import { parseExitPolicy, REJECT_ALL } from '../../../../services/core/exit-policy.js';
import { AUTH, descriptor, hexOf, NOW, seedOf, vote } from '../../../helpers/dir-documents.js';

/** Every flag an authority votes on but BadExit (only for the relays it is told to mark): what a long-lived exit earns. */
const ALL_BUT_BAD_EXIT = FLAGS.filter((f) => f !== 'BadExit');

describe('assignFlags', () => {
  it('testnet: reachable relays get Running/Valid, thresholds are zero', () => {
    const descs = [
      descriptor(10),
      descriptor(11, { exitPolicy: REJECT_ALL, hsdir: false }),
      descriptor(12, { bandwidth: 0 }),
      descriptor(13),
      descriptor(14, { exitPolicy: parseExitPolicy('accept *:443, reject *:*'), uptimeSec: 0 }),
      descriptor(15, { publishedMs: NOW - 25 * 3600_000 }),
    ];
    const flags = assignFlags(descs, {
      nowMs: NOW,
      testnet: true,
      reachable: (id) => id !== hexOf(13),
      badExits: [hexOf(14)],
    });
    const all = ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid'];
    expect(flags.get(hexOf(10))).toEqual(all);
    expect(flags.get(hexOf(11))).toEqual(['Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid']);
    expect(flags.get(hexOf(12))).toEqual(['Exit', 'Running', 'Stable', 'V2Dir', 'Valid']);
    expect(flags.get(hexOf(13))).toEqual(['Valid']);
    expect(flags.get(hexOf(14))).toEqual(['BadExit', ...all].sort());
    expect(flags.get(hexOf(15))).toEqual(['Valid']);
  });

  it('testnet: Stable, Guard and HSDir wait for the configured uptime as the authority saw it', () => {
    // Relay 10 claims 200 h of uptime but the authority has seen it for 3 s; relay 11 for 60 s.
    const descs = [descriptor(10, { uptimeSec: 200 * 3600 }), descriptor(11, { uptimeSec: 0 })];
    const seen = new Map([
      [hexOf(10), 3],
      [hexOf(11), 60],
    ]);
    const flags = assignFlags(descs, {
      nowMs: NOW,
      testnet: true,
      uptimeSec: (id) => seen.get(id) ?? 0,
      testnetMinUptimeSec: { stable: 5, guard: 10, hsdir: 30 },
    });
    expect(flags.get(hexOf(10))).toEqual(['Exit', 'Fast', 'Running', 'V2Dir', 'Valid']);
    expect(flags.get(hexOf(11))).toEqual(ALL_BUT_BAD_EXIT);
    seen.set(hexOf(10), 12);
    const later = assignFlags(descs, {
      nowMs: NOW,
      testnet: true,
      uptimeSec: (id) => seen.get(id) ?? 0,
      testnetMinUptimeSec: { stable: 5, guard: 10, hsdir: 30 },
    });
    expect(later.get(hexOf(10))).toEqual(['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'V2Dir', 'Valid']);
  });

  it('live thresholds: a claimed bandwidth above 10 MB/s does not move the Guard cut', () => {
    // Three honest 3 MB/s relays and one claiming 1 TB/s: the top-quarter cut is the capped
    // claim (10 MB/s) and min(2 MiB, cut) = 2 MiB, so honest relays stay Guard-eligible.
    const descs = [10, 11, 12].map((n) => descriptor(n, { bandwidth: 3_000_000, uptimeSec: 100 }));
    descs.push(descriptor(13, { bandwidth: 1e12, uptimeSec: 100 }));
    const flags = assignFlags(descs, { nowMs: NOW, testnet: false });
    for (const n of [10, 11, 12, 13]) expect(flags.get(hexOf(n))).toContain('Guard');
    // A measurement replaces the claim: measured at 1 kB/s, the liar is below the Guard cut.
    const measured = assignFlags(descs, {
      nowMs: NOW,
      testnet: false,
      measuredBandwidth: (id) => (id === hexOf(13) ? 1000 : undefined),
    });
    expect(measured.get(hexOf(13))).not.toContain('Guard');
    expect(measured.get(hexOf(10))).toContain('Guard');
  });

  it('live thresholds: Fast, Stable, Guard, Exit and HSDir', () => {
    const pub = parseExitPolicy('reject private:*, accept *:80, accept *:443, reject *:*');
    const descs = [
      descriptor(10, { bandwidth: 10 * 1024 * 1024, uptimeSec: 200 * 3600, exitPolicy: pub }),
      descriptor(11, { bandwidth: 200 * 1024, uptimeSec: 100 * 3600 }),
      descriptor(12, { bandwidth: 50 * 1024, uptimeSec: 10 }),
      descriptor(13, {
        bandwidth: 1024,
        uptimeSec: 5,
        exitPolicy: parseExitPolicy('accept *:80, reject *:*'),
      }),
    ];
    const flags = assignFlags(descs, { nowMs: NOW, testnet: false });
    // Median uptime (low) = 10 s; Fast cut = min(100 KiB, top 7/8) = 50 KiB; Guard cut = top quarter (10 MiB).
    expect(flags.get(hexOf(10))).toEqual(ALL_BUT_BAD_EXIT);
    expect(flags.get(hexOf(11))).toEqual(['Fast', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid']);
    expect(flags.get(hexOf(12))).toEqual(['Fast', 'Running', 'Stable', 'V2Dir', 'Valid']);
    // Fast: 4 relays, so the 1/8 quantile is the slowest one. Not Stable (uptime < median).
    // Loopback-only policy and 80 without 443 are not Exit on the live rules.
    expect(flags.get(hexOf(13))).toEqual(['Fast', 'Running', 'V2Dir', 'Valid']);
  });

  it('feeds votes that produce a consensus clients can use', () => {
    const descs = [10, 11, 12].map((n) => descriptor(n));
    const signed = descs.map((d, i) => signRelayDescriptor(d, seedOf(10 + i)));
    const votes = [1, 2, 3].map((a) => {
      const flags = assignFlags(descs, { nowMs: NOW, testnet: true });
      return vote(
        a,
        descs.map((d, i) => voteRelayFromDescriptor(d, signed[i]!, flags.get(toHex(d.identity))!)),
      );
    });
    const c = computeConsensus(votes, { authorityIds: AUTH });
    expect(c.relays).toHaveLength(3);
    expect(c.relays.every((r) => r.flags.includes('Guard') && r.flags.includes('Exit'))).toBe(true);
    for (const r of c.relays) {
      const i = descs.findIndex((d) => toHex(d.identity) === toHex(r.identity));
      expect(r.descriptorDigest).toEqual(sha256(signed[i]!));
    }
    // All Guard+Exit: G, M and E hold only C tor's initial 1 KB/s, so case 2b1 as C tor
    // publishes it (test/vectors/ctor/consensus-microdesc.txt): D split in thirds.
    expect(c.bandwidthWeights).toMatchObject({ Wgg: 10000, Wee: 10000, Wgd: 3333, Wed: 3333, Wmd: 3333 });
  });
});
