// Directory documents: descriptor and vote signatures, consensus computation
// (dir-spec §3.8 majority rules, C tor bandwidth-weight cases), consensus
// signatures with the majority rule, flag assignment, hostile input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from '../../../services/core/bytes.js';
import { canonicalJsonBytes } from '../../../services/core/canonical-json.js';
import { ed25519PublicFromSeed, sha256 } from '../../../services/core/crypto.js';
import {
  assignFlags,
  BW_WEIGHT_SCALE,
  type Consensus,
  type ConsensusSignature,
  computeBandwidthWeights,
  computeConsensus,
  consensusDigest,
  credibleBandwidth,
  DEFAULT_MAX_UNMEASURED_BW_KB,
  decodeSignedConsensus,
  decodeVote,
  descriptorDigest,
  encodeSignedConsensus,
  encodeVote,
  MAX_BELIEVABLE_BANDWIDTH,
  type RelayDescriptor,
  revealsFromVotes,
  signConsensus,
  signRelayDescriptor,
  type Vote,
  type VoteRelay,
  verifyConsensus,
  verifyRelayDescriptor,
  voteRelayFromDescriptor,
} from '../../../services/core/dirdoc.js';
import { CryptoError, InvalidError } from '../../../services/core/errors.js';
import {
  DEFAULT_TESTNET_EXIT_POLICY,
  parseExitPolicy,
  REJECT_ALL,
} from '../../../services/core/exit-policy.js';
import { makeCommit } from '../../../services/core/shared-random.js';
import { expectOnlyTypedErrors } from '../../helpers/typed-errors.js';

const NOW = Date.UTC(2025, 0, 1, 12);
const seedOf = (n: number) => new Uint8Array(32).fill(n);
const idOf = (n: number) => ed25519PublicFromSeed(seedOf(n));
const hexOf = (n: number) => toHex(idOf(n));

function descriptor(n: number, over: Partial<RelayDescriptor> = {}): RelayDescriptor {
  return {
    nickname: `relay${n}`,
    identity: idOf(n),
    ntorOnionKey: new Uint8Array(32).fill(n + 100),
    address: '127.0.0.1',
    orPort: 5000 + n,
    linkUrl: `wss://127.0.0.1:${5000 + n}/link`,
    bandwidth: 1_000_000,
    family: [],
    exitPolicy: DEFAULT_TESTNET_EXIT_POLICY,
    platform: 'Shallot 0.1.0 on Node 20',
    publishedMs: NOW - 60_000,
    uptimeSec: 3600,
    protocols: { Link: '4-5', Relay: '2-4', HSDir: '2' },
    hsdir: true,
    ...over,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests mutate parsed JSON documents freely.
type Doc = Record<string, any>;

/** Re-serialises a signed envelope after `mutate` edits its parsed JSON, keeping the old signature. */
function tamper(bytes: Uint8Array, mutate: (doc: Doc) => void): Uint8Array {
  const doc = JSON.parse(new TextDecoder().decode(bytes));
  mutate(doc);
  return canonicalJsonBytes(doc);
}

const checkOpts = { nowMs: NOW, maxSkewMs: 12 * 3600_000 };

describe('relay descriptors', () => {
  it('sign / verify round-trip (property)', () => {
    const nick = fc.stringMatching(/^[A-Za-z0-9]{1,19}$/);
    const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(
        bytes32,
        bytes32,
        nick,
        fc.record({
          orPort: fc.integer({ min: 1, max: 65535 }),
          dirPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
          bandwidth: fc.integer({ min: 0, max: 2 ** 40 }),
          uptimeSec: fc.nat(),
          hsdir: fc.boolean(),
          publishedMs: fc.integer({ min: NOW - 3600_000, max: NOW + 3600_000 }),
          platform: fc.string({ maxLength: 50 }),
          family: fc.uniqueArray(bytes32.map(toHex), { maxLength: 4 }),
          tls: fc.option(bytes32, { nil: undefined }),
          address: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
        }),
        (seed, ntor, nickname, f) => {
          const d: RelayDescriptor = {
            ...descriptor(1),
            nickname,
            identity: ed25519PublicFromSeed(seed),
            ntorOnionKey: ntor,
            orPort: f.orPort,
            bandwidth: f.bandwidth,
            uptimeSec: f.uptimeSec,
            hsdir: f.hsdir,
            publishedMs: f.publishedMs,
            platform: f.platform,
            family: f.family,
            address: f.address,
          };
          if (f.dirPort !== undefined) d.dirPort = f.dirPort;
          if (f.tls !== undefined) d.tlsCertSha256 = f.tls;
          const signed = signRelayDescriptor(d, seed);
          expect(verifyRelayDescriptor(signed, checkOpts)).toEqual(d);
          expect(descriptorDigest(signed)).toEqual(sha256(signed));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('signature covers "Shallot relay descriptor v1\\0" | canonical body', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    const doc = JSON.parse(new TextDecoder().decode(signed));
    const msg = new Uint8Array([...utf8('Shallot relay descriptor v1\0'), ...canonicalJsonBytes(doc.body)]);
    const sig = Uint8Array.from(Buffer.from(doc.signature, 'base64'));
    expect(ed25519.verify(sig, msg, idOf(1))).toBe(true);
    expect(Object.keys(doc)).toEqual(['body', 'signature']);
  });

  it('tampering → CryptoError', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    const bad = [
      tamper(signed, (d) => {
        d.body.bandwidth += 1;
      }),
      tamper(signed, (d) => {
        d.body.exitPolicy = ['accept *:*'];
      }),
      tamper(signed, (d) => {
        d.body.orPort = 1;
      }),
      // Someone else's identity on this body.
      tamper(signed, (d) => {
        d.body.identity = Buffer.from(idOf(2)).toString('base64').replace(/=+$/, '');
      }),
      tamper(signed, (d) => {
        const s = Buffer.from(d.signature, 'base64');
        s[0]! ^= 1;
        d.signature = s.toString('base64').replace(/=+$/, '');
      }),
    ];
    for (const b of bad) expect(() => verifyRelayDescriptor(b, checkOpts)).toThrow(CryptoError);
  });

  it('refuses non-canonical, unknown and malformed fields with InvalidError', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    const cases: ((d: Doc) => void)[] = [
      (d) => {
        d.body.identity += '=';
      },
      (d) => {
        d.body.extra = 1;
      },
      (d) => {
        d.body.exitPolicy = ['accept 127.0.0.1/8:*', 'reject *:*'];
      },
      (d) => {
        d.body.nickname = 'has space';
      },
      (d) => {
        d.body.family = ['AB'.repeat(32)];
      },
      (d) => {
        d.body.linkUrl = 'http://x/';
      },
      (d) => {
        d.body.orPort = 0;
      },
      (d) => {
        d.body.bandwidth = -1;
      },
      (d) => {
        delete d.body.hsdir;
      },
      (d) => {
        d.body.ntorOnionKey = 'AAAA';
      },
    ];
    for (const [i, mutate] of cases.entries()) {
      expect(() => verifyRelayDescriptor(tamper(signed, mutate), checkOpts), `case ${i}`).toThrow(
        InvalidError,
      );
    }
  });

  it('checks publication time', () => {
    const future = signRelayDescriptor(descriptor(1, { publishedMs: NOW + 13 * 3600_000 }), seedOf(1));
    expect(() => verifyRelayDescriptor(future, checkOpts)).toThrow(/future/);
    const old = signRelayDescriptor(descriptor(1, { publishedMs: NOW - 25 * 3600_000 }), seedOf(1));
    expect(() => verifyRelayDescriptor(old, checkOpts)).toThrow(/too old/);
    expect(verifyRelayDescriptor(old, { ...checkOpts, maxAgeMs: 48 * 3600_000 }).nickname).toBe('relay1');
  });

  it('refuses to sign with the wrong seed or an invalid descriptor', () => {
    expect(() => signRelayDescriptor(descriptor(1), seedOf(2))).toThrow(InvalidError);
    expect(() => signRelayDescriptor(descriptor(1, { nickname: 'x'.repeat(20) }), seedOf(1))).toThrow(
      InvalidError,
    );
    expect(() => signRelayDescriptor(descriptor(1, { bandwidth: Number.NaN }), seedOf(1))).toThrow(
      InvalidError,
    );
  });

  it('enforces the size limit', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    expect(() => verifyRelayDescriptor(signed, { ...checkOpts, maxBytes: signed.length - 1 })).toThrow(
      /too large/,
    );
  });

  it('hostile input: only typed errors', () => {
    const signed = signRelayDescriptor(descriptor(1), seedOf(1));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(signed.length - 1),
        fc.nat(255),
        (junk, at, v) => {
          expectOnlyTypedErrors(() => verifyRelayDescriptor(junk, checkOpts));
          const m = new Uint8Array(signed);
          m[at] = v;
          expectOnlyTypedErrors(() => verifyRelayDescriptor(m, checkOpts));
          expectOnlyTypedErrors(() => verifyRelayDescriptor(m.subarray(0, at), checkOpts));
        },
      ),
      { numRuns: 300 },
    );
    for (const doc of ['null', '[]', '{"body":[],"signature":""}', '{"body":{},"signature":1}']) {
      expectOnlyTypedErrors(() => verifyRelayDescriptor(utf8(doc), checkOpts));
    }
  });
});

// ---------------------------------------------------------------------------

const AUTH = [1, 2, 3].map(hexOf);
const AUTH_SEEDS = [1, 2, 3].map(seedOf);

function voteRelay(n: number, over: Partial<VoteRelay> = {}): VoteRelay {
  const signed = signRelayDescriptor(descriptor(n), seedOf(n));
  return {
    ...voteRelayFromDescriptor(descriptor(n), signed, ['Fast', 'Guard', 'Running', 'Stable', 'Valid']),
    ...over,
  };
}

function vote(author: number, relays: VoteRelay[], over: Partial<Vote> = {}): Vote {
  return {
    authority: hexOf(author),
    publishedMs: NOW,
    validAfterMs: NOW,
    freshUntilMs: NOW + 300_000,
    validUntilMs: NOW + 900_000,
    votingIntervalSec: 300,
    knownFlags: ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid'],
    params: {},
    srCommits: [],
    relays: [...relays].sort((a, b) => Buffer.compare(a.identity, b.identity)),
    ...over,
  };
}

describe('votes', () => {
  it('encode / decode round-trip, signed by the author', () => {
    const c = makeCommit(() => new Uint8Array(32).fill(9), idOf(1), NOW / 1000);
    const v = vote(1, [voteRelay(10), voteRelay(11, { measuredBandwidth: 5 })], {
      params: { bwweightscale: 10000, circwindow: 1000, neg: -5, 'allow-network-reentry': 1 },
      srCommits: [c],
      sharedRandCurrent: { reveals: 3, value: new Uint8Array(32).fill(7) },
    });
    const bytes = encodeVote(v, seedOf(1));
    expect(decodeVote(bytes, { maxBytes: 1 << 20, authorityIds: AUTH })).toEqual(v);
    expect(() => decodeVote(bytes, { maxBytes: 1 << 20, authorityIds: [hexOf(2)] })).toThrow(CryptoError);
    expect(() => decodeVote(bytes, { maxBytes: 100 })).toThrow(InvalidError);
    const forged = tamper(bytes, (d) => {
      d.body.relays[0].flags = ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'Valid'];
    });
    expect(() => decodeVote(forged, { maxBytes: 1 << 20 })).toThrow(CryptoError);
    const impersonated = tamper(bytes, (d) => {
      d.body.authority = hexOf(2);
    });
    expect(() => decodeVote(impersonated, { maxBytes: 1 << 20 })).toThrow(CryptoError);
  });

  it('refuses bad votes', () => {
    expect(() => encodeVote(vote(1, []), seedOf(2))).toThrow(InvalidError);
    // Relays must be sorted and unique.
    const r = voteRelay(10);
    expect(() => encodeVote({ ...vote(1, []), relays: [r, r] }, seedOf(1))).toThrow(InvalidError);
    // Flags must be known.
    expect(() => encodeVote(vote(1, [voteRelay(10, { flags: ['Bogus'] })]), seedOf(1))).toThrow(InvalidError);
    expect(() => encodeVote(vote(1, [], { freshUntilMs: NOW }), seedOf(1))).toThrow(InvalidError);
    expect(() => encodeVote(vote(1, [], { params: { 'bad key': 1 } }), seedOf(1))).toThrow(InvalidError);
    expect(() => encodeVote(vote(1, [], { params: { big: 2 ** 31 } }), seedOf(1))).toThrow(InvalidError);
    // A key that would set the prototype instead of being a key (found by the consensus property test).
    const proto = JSON.parse('{"__proto__": 1}') as Record<string, number>;
    expect(() => encodeVote(vote(1, [], { params: proto }), seedOf(1))).toThrow(/reserved key/);
    const bad = { authorityId: hexOf(1), commit: 'x' };
    expect(() => encodeVote(vote(1, [], { srCommits: [bad] }), seedOf(1))).toThrow(InvalidError);
  });

  it('hostile input: only typed errors', () => {
    const bytes = encodeVote(vote(1, [voteRelay(10)]), seedOf(1));
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.nat(255), (at, v) => {
        const m = new Uint8Array(bytes);
        m[at] = v;
        expectOnlyTypedErrors(() => decodeVote(m, { maxBytes: 1 << 20 }));
      }),
      { numRuns: 300 },
    );
  });

  it('revealsFromVotes keeps only authors’ own reveals that open their commits', () => {
    const ts = NOW / 1000;
    const mk = (n: number) => makeCommit(() => new Uint8Array(32).fill(n), idOf(n), ts);
    const [c1, c2, c3] = [mk(1), mk(2), mk(3)];
    const votes = [
      vote(1, [], { srCommits: [c1] }),
      // Reveal that does not open the commit.
      vote(2, [], { srCommits: [{ authorityId: hexOf(2), commit: c2.commit, reveal: c3.reveal }] }),
      // Commit phase: no reveal yet.
      vote(3, [], { srCommits: [{ authorityId: hexOf(3), commit: c3.commit }] }),
      // Unknown author.
      vote(4, [], { srCommits: [mk(4)] }),
    ];
    expect(revealsFromVotes(votes, AUTH)).toEqual([{ authorityId: idOf(1), reveal: c1.reveal }]);
  });
});

// ---------------------------------------------------------------------------

describe('computeConsensus', () => {
  const opts = { authorityIds: AUTH };

  it('lists a relay only if more than half of ALL authorities list it', () => {
    const votes = [
      vote(1, [voteRelay(10), voteRelay(11)]),
      vote(2, [voteRelay(10), voteRelay(12)]),
      vote(3, [voteRelay(10), voteRelay(11)]),
    ];
    const c = computeConsensus(votes, opts);
    expect(c.relays.map((r) => r.nickname).sort()).toEqual(['relay10', 'relay11']);
    // With 4 configured authorities, 2 listings are not a majority; missing votes count against.
    const four = computeConsensus(votes.slice(0, 2), { authorityIds: [...AUTH, hexOf(4)] });
    expect(four.relays).toEqual([]);
    const fourAll = computeConsensus(votes, { authorityIds: [...AUTH, hexOf(4)] });
    expect(fourAll.relays.map((r) => r.nickname)).toEqual(['relay10']);
    expect(c.authorities).toEqual([...AUTH].sort());
    expect(c.relays.map((r) => toHex(r.identity))).toEqual(c.relays.map((r) => toHex(r.identity)).sort());
  });

  it('sets a flag when more than half of the voters that list the relay and know the flag agree', () => {
    const f = (flags: string[]) => voteRelay(10, { flags: flags.sort() });
    const votes = [
      vote(1, [f(['Running', 'Valid', 'Exit', 'HSDir'])]),
      vote(2, [f(['Running', 'Valid', 'Exit'])]),
      // Does not know HSDir: not counted for it.
      vote(3, [f(['Running', 'Valid'])], { knownFlags: ['Exit', 'Running', 'Valid'] }),
    ];
    const c = computeConsensus(votes, opts);
    // Exit: 2 of 3; HSDir: 1 of 2 knowing voters is not a majority.
    expect(c.relays[0]!.flags).toEqual(['Exit', 'Running', 'Valid']);
    const votes2 = [
      votes[0]!,
      vote(2, [f(['Running', 'Valid'])], { knownFlags: ['Running', 'Valid'] }),
      votes[2]!,
    ];
    // Exit: 1 of 2 knowing voters; HSDir: 1 of 1 knowing voter.
    expect(computeConsensus(votes2, opts).relays[0]!.flags).toEqual(['HSDir', 'Running', 'Valid']);
    expect(c.knownFlags).toEqual(['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'V2Dir', 'Valid']);
  });

  it('bandwidth: low-median of measured if >= 3 measured, else of claimed and Unmeasured', () => {
    const claimed = [
      vote(1, [voteRelay(10, { bandwidth: 300 })]),
      vote(2, [voteRelay(10, { bandwidth: 100 })]),
      vote(3, [voteRelay(10, { bandwidth: 200 })]),
    ];
    const a = computeConsensus(claimed, opts).relays[0]!;
    expect(a.bandwidth).toBe(200);
    expect(a.unmeasured).toBe(true);
    // Two votes: the low median is the smaller.
    expect(computeConsensus(claimed.slice(0, 2), opts).relays[0]!.bandwidth).toBe(100);
    const measured = claimed.map((v, i) => ({
      ...v,
      relays: [{ ...v.relays[0]!, measuredBandwidth: [50, 70, 60][i]! }],
    }));
    const b = computeConsensus(measured, opts).relays[0]!;
    expect(b.bandwidth).toBe(60);
    expect(b.unmeasured).toBeUndefined();
  });

  it('clips unmeasured relays to maxunmeasuredbw once 3 votes carry measurements (C tor method 17)', () => {
    // Relay 10 is measured by all three; relay 11 (a liar claiming 1 TB/s) by none.
    const votes = [1, 2, 3].map((a) =>
      vote(a, [
        voteRelay(10, { bandwidth: 500_000, measuredBandwidth: 400_000 }),
        voteRelay(11, { bandwidth: 1e12 }),
      ]),
    );
    const c = computeConsensus(votes, opts);
    const [m, liar] = c.relays;
    expect(m!.bandwidth).toBe(400_000);
    // DEFAULT_MAX_UNMEASURED_BW_KB = 20 KB/s.
    expect(liar!.bandwidth).toBe(DEFAULT_MAX_UNMEASURED_BW_KB * 1000);
    expect(liar!.unmeasured).toBe(true);
    // The param overrides the default (Tor's name and unit, KB/s).
    const p = computeConsensus(votes, { ...opts, params: { maxunmeasuredbw: 5 } });
    expect(p.relays[1]!.bandwidth).toBe(5000);
    // Two measuring votes are not enough to clip (a network without scanners keeps claims).
    const two = votes.map((v, i) =>
      i < 2 ? v : { ...v, relays: v.relays.map((r) => ({ ...r, measuredBandwidth: undefined })) },
    );
    expect(computeConsensus(two, opts).relays[1]!.bandwidth).toBe(1e12);
    // A one-authority testnet: its own measurement counts (all of the authorities measured).
    const lone = computeConsensus([votes[0]!], { authorityIds: [AUTH[0]!] });
    expect(lone.relays[0]!.bandwidth).toBe(400_000);
    expect(lone.relays[0]!.unmeasured).toBeUndefined();
    expect(lone.relays[1]!.bandwidth).toBe(DEFAULT_MAX_UNMEASURED_BW_KB * 1000);
  });

  it('an honest vote caps the claimed bandwidth at MAX_BELIEVABLE_BANDWIDTH', () => {
    const d = descriptor(10, { bandwidth: 1e12 });
    const r = voteRelayFromDescriptor(d, signRelayDescriptor(d, seedOf(10)), ['Running', 'Valid']);
    expect(r.bandwidth).toBe(MAX_BELIEVABLE_BANDWIDTH);
    expect(credibleBandwidth(1e12)).toBe(MAX_BELIEVABLE_BANDWIDTH);
    expect(credibleBandwidth(1e12, 1234)).toBe(1234);
    expect(credibleBandwidth(5)).toBe(5);
  });

  it('times are low-medians; params need a majority of all authorities or 3 votes', () => {
    const votes = [
      vote(1, [], {
        validAfterMs: NOW,
        freshUntilMs: NOW + 10,
        validUntilMs: NOW + 30,
        params: { a: 5, b: 1, c: 9 },
      }),
      vote(2, [], {
        validAfterMs: NOW + 2,
        freshUntilMs: NOW + 12,
        validUntilMs: NOW + 32,
        params: { a: 3, b: 2 },
      }),
      vote(3, [], {
        validAfterMs: NOW + 1,
        freshUntilMs: NOW + 11,
        validUntilMs: NOW + 31,
        params: { a: 4 },
      }),
    ];
    const c = computeConsensus(votes, { authorityIds: AUTH, params: { bwweightscale: 10000, c: 1 } });
    expect([c.validAfterMs, c.freshUntilMs, c.validUntilMs]).toEqual([NOW + 1, NOW + 11, NOW + 31]);
    // a: 3 votes -> median 4; b: 2 of 3 -> low median 1; c: 1 vote -> not set, default kept.
    expect(c.params).toEqual({ a: 4, b: 1, bwweightscale: 10000, c: 1 });
    // With 5 authorities, 2 votes are neither a majority nor 3.
    const five = computeConsensus(votes, { authorityIds: [...AUTH, hexOf(4), hexOf(5)] });
    expect(five.params).toEqual({ a: 4 });
  });

  it('shared random values need more than half of all authorities', () => {
    const srv = (n: number) => ({ reveals: 3, value: new Uint8Array(32).fill(n) });
    const votes = [
      vote(1, [], { sharedRandCurrent: srv(1), sharedRandPrevious: srv(5) }),
      vote(2, [], { sharedRandCurrent: srv(1), sharedRandPrevious: srv(6) }),
      vote(3, [], { sharedRandCurrent: srv(2) }),
    ];
    const c = computeConsensus(votes, opts);
    expect(c.sharedRandCurrent).toEqual(srv(1));
    expect(c.sharedRandPrevious).toBeUndefined();
  });

  it('takes descriptor fields from the newest entry; ignores unknown authorities; refuses duplicate votes', () => {
    const old = voteRelay(10);
    const newer = {
      ...voteRelay(10),
      orPort: 7777,
      publishedMs: old.publishedMs + 1000,
      descriptorDigest: new Uint8Array(32).fill(1),
    };
    const c = computeConsensus([vote(1, [old]), vote(2, [newer]), vote(3, [old])], opts);
    expect(c.relays[0]!.orPort).toBe(7777);
    expect(c.relays[0]!.descriptorDigest).toEqual(newer.descriptorDigest);
    // An outsider's vote neither lists relays nor shifts medians.
    const outsider = vote(9, [voteRelay(20)], { validAfterMs: NOW + 999 });
    const d = computeConsensus([vote(1, [old]), vote(2, [old]), outsider], opts);
    expect(d.relays.map((r) => r.nickname)).toEqual(['relay10']);
    expect(d.validAfterMs).toBe(NOW);
    expect(() => computeConsensus([vote(1, []), vote(1, [])], opts)).toThrow(InvalidError);
    expect(() => computeConsensus([outsider], opts)).toThrow(InvalidError);
    expect(() => computeConsensus([vote(1, [])], { authorityIds: [] })).toThrow(InvalidError);
  });

  it('is deterministic regardless of vote order', () => {
    const votes = [
      vote(1, [voteRelay(10), voteRelay(11)]),
      vote(2, [voteRelay(11), voteRelay(12)]),
      vote(3, [voteRelay(12), voteRelay(10)]),
    ];
    const a = computeConsensus(votes, opts);
    const b = computeConsensus([...votes].reverse(), { authorityIds: [...AUTH].reverse() });
    expect(consensusDigest(a)).toEqual(consensusDigest(b));
  });
});

describe('bandwidth weights (dir-spec §3.8.3, C tor v10)', () => {
  const relays = (G: number, M: number, E: number, D: number) => [
    { flags: ['Guard', 'Running'], bandwidth: G },
    { flags: ['Running'], bandwidth: M },
    { flags: ['Exit', 'Running'], bandwidth: E },
    { flags: ['Exit', 'Guard', 'Running'], bandwidth: D },
  ];
  const pick = (w: Record<string, number>) => [w.Wgg, w.Wgd, w.Wmg, w.Wme, w.Wmd, w.Wee, w.Wed];

  const cases: { comment: string; gmed: [number, number, number, number]; w: number[] }[] = [
    // T=1000: Wee = 10000*900/1200, Wmg = 10000*300/1200, D split in thirds.
    {
      comment: 'case 1, neither scarce',
      gmed: [400, 100, 400, 100],
      w: [7500, 3333, 2500, 2500, 3333, 7500, 3333],
    },
    // E scarce, S+D < T/3: Wee=Wed=1, Wmg = 10000*(G-M)/(2G).
    { comment: 'case 3a, E scarce', gmed: [1000, 100, 10, 10], w: [5500, 0, 4500, 0, 0, 10000, 10000] },
    // G scarce, E >= M: Wme = 10000*(E-M)/(2E).
    { comment: 'case 3a, G scarce', gmed: [10, 100, 1000, 10], w: [10000, 10000, 0, 4500, 0, 5500, 0] },
    // R+D < S with G scarcer: all of D to guards.
    { comment: 'case 2a, G scarce', gmed: [10, 1000, 20, 5], w: [10000, 10000, 0, 0, 0, 10000, 0] },
    { comment: 'case 2a, E scarce', gmed: [20, 1000, 10, 5], w: [10000, 0, 0, 0, 0, 10000, 10000] },
  ];
  for (const [i, c] of cases.entries()) {
    it(`(${i}) ${c.comment}`, () => {
      const w = computeBandwidthWeights(relays(...c.gmed));
      expect(pick(w)).toEqual(c.w);
      // C tor's derived weights.
      expect([w.Wgm, w.Wem, w.Weg, w.Wmm, w.Wbd]).toEqual([w.Wgg, w.Wee, w.Wed, BW_WEIGHT_SCALE, w.Wmd]);
      expect(Object.keys(w)).toHaveLength(19);
    });
  }

  it('publishes nothing when a class is empty (all Guard+Exit testnet), like C tor', () => {
    expect(computeBandwidthWeights([{ flags: ['Exit', 'Guard', 'Running'], bandwidth: 100 }])).toEqual({});
    expect(computeBandwidthWeights(relays(0, 1, 1, 1))).toEqual({});
    // Non-Running relays do not count.
    expect(
      computeBandwidthWeights(relays(400, 100, 400, 100).map((r) => ({ ...r, flags: ['Guard'] }))),
    ).toEqual({});
  });

  it('BadExit relays count as non-exits', () => {
    const w1 = computeBandwidthWeights(relays(400, 100, 400, 100));
    const withBad = [
      ...relays(400, 0, 400, 100).slice(0, 4),
      { flags: ['BadExit', 'Exit', 'Running'], bandwidth: 100 },
    ];
    withBad[1] = { flags: ['Running'], bandwidth: 0 };
    // The BadExit relay's 100 lands in M, giving the same totals as relays(400, 100, 400, 100).
    expect(computeBandwidthWeights(withBad)).toEqual(w1);
    expect(w1.Wee).toBe(7500);
  });

  it('whenever weights are published they satisfy the sum and range constraints', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10 ** 9 }), { minLength: 4, maxLength: 4 }),
        ([G, M, E, D]) => {
          const w = computeBandwidthWeights(relays(G!, M!, E!, D!));
          if (Object.keys(w).length === 0) return;
          const s = BW_WEIGHT_SCALE;
          for (const v of pick(w)) {
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(s);
          }
          expect(Math.abs(w.Wgg! + w.Wmg! - s)).toBeLessThanOrEqual(10);
          expect(Math.abs(w.Wee! + w.Wme! - s)).toBeLessThanOrEqual(10);
          expect(Math.abs(w.Wgd! + w.Wmd! + w.Wed! - s)).toBeLessThanOrEqual(10);
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------

describe('consensus signatures (majority of configured authorities)', () => {
  const consensus = (): Consensus =>
    computeConsensus(
      [1, 2, 3].map((a) => vote(a, [voteRelay(10), voteRelay(11, { flags: ['Exit', 'Running', 'Valid'] })])),
      { authorityIds: AUTH, params: { bwweightscale: 10000 } },
    );
  const sign = (c: Consensus, seeds: Uint8Array[]) => seeds.map((s) => signConsensus(c, s));
  const at = { authorityIds: AUTH, nowMs: NOW + 1000 };
  const reasonOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as CryptoError).context.reason;
    }
    return 'accepted';
  };

  it('round-trips and accepts 2 of 3 and 3 of 3 signatures', () => {
    const c = consensus();
    const all = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    const decoded = decodeSignedConsensus(all, 1 << 20);
    expect(decoded.consensus).toEqual(c);
    expect(decoded.digest).toEqual(consensusDigest(c));
    expect(verifyConsensus(decoded, at)).toEqual(c);
    const two = encodeSignedConsensus(c, sign(c, AUTH_SEEDS.slice(1)));
    expect(verifyConsensus(two, at)).toEqual(c);
  });

  it('rejects 1 of 3, a duplicated signer, unknown signers and bad signatures', () => {
    const c = consensus();
    const [s1, s2] = sign(c, AUTH_SEEDS);
    const outsider = signConsensus(c, seedOf(9));
    const forged: ConsensusSignature = { identity: s2!.identity, signature: s1!.signature };
    for (const sigs of [[s1!], [s1!, s1!, s1!], [s1!, outsider], [s1!, forged], []]) {
      const bytes = encodeSignedConsensus(c, sigs);
      expect(() => verifyConsensus(bytes, at)).toThrow(CryptoError);
      expect(reasonOf(() => verifyConsensus(bytes, at))).toBe('not-enough-signatures');
    }
    // Unknown signers are ignored rather than fatal.
    expect(verifyConsensus(encodeSignedConsensus(c, [outsider, s1!, s2!]), at)).toEqual(c);
    // With 4 authorities, 2 signatures are not more than half.
    const four = { ...at, authorityIds: [...AUTH, hexOf(4)] };
    expect(reasonOf(() => verifyConsensus(encodeSignedConsensus(c, [s1!, s2!]), four))).toBe(
      'not-enough-signatures',
    );
  });

  it('tampering with the consensus invalidates the signatures', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    const t = tamper(bytes, (d) => {
      d.consensus.relays[0].bandwidth += 1;
    });
    expect(reasonOf(() => verifyConsensus(t, at))).toBe('not-enough-signatures');
    const t2 = tamper(bytes, (d) => {
      d.consensus.validUntilMs += 3600_000;
    });
    expect(reasonOf(() => verifyConsensus(t2, { ...at, nowMs: c.validUntilMs + 1 }))).toBe(
      'not-enough-signatures',
    );
  });

  it('checks the validity window', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs + 1 }))).toBe('expired');
    expect(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs + 1 })).toThrow(InvalidError);
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validAfterMs - 1 }))).toBe(
      'not-yet-valid',
    );
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs + 1, skewMs: 10 }))).toBe(
      'accepted',
    );
    expect(reasonOf(() => verifyConsensus(bytes, { ...at, nowMs: c.validUntilMs }))).toBe('accepted');
  });

  it('decoder refuses non-canonical or inconsistent documents', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    const mutations: ((d: Doc) => void)[] = [
      (d) => {
        d.consensus.relays.reverse();
      },
      (d) => {
        d.consensus.authorities.reverse();
      },
      (d) => {
        d.consensus.knownFlags.reverse();
      },
      (d) => {
        d.consensus.relays[0].flags.push('Unknown');
      },
      (d) => {
        d.consensus.relays[0].unmeasured = false;
      },
      (d) => {
        d.consensus.freshUntilMs = d.consensus.validUntilMs + 1;
      },
      (d) => {
        d.consensus.bandwidthWeights = { bogus: 1 };
      },
      (d) => {
        d.signatures[0].identity = 'zz';
      },
      (d) => {
        d.extra = true;
      },
    ];
    for (const [i, m] of mutations.entries()) {
      expect(() => decodeSignedConsensus(tamper(bytes, m), 1 << 20), `case ${i}`).toThrow(InvalidError);
    }
    expect(() => decodeSignedConsensus(bytes, bytes.length - 1)).toThrow(/too large/);
  });

  it('round-trips arbitrary consensus documents (property)', () => {
    const flagsArb = fc.uniqueArray(fc.constantFrom('Exit', 'Fast', 'Guard', 'Running', 'Valid'), {
      maxLength: 5,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 10, max: 60 }), flagsArb, fc.nat(10 ** 9), fc.boolean()), {
          maxLength: 6,
        }),
        fc.dictionary(
          fc.stringMatching(/^[a-z_]{1,10}$/).filter((k) => k !== '__proto__'),
          fc.integer({ min: -1000, max: 1000 }),
          { maxKeys: 4 },
        ),
        fc.option(fc.nat(3), { nil: undefined }),
        (rs, params, srv) => {
          const relays = [...new Map(rs.map((r) => [r[0], r])).values()].map(([n, flags, bw, um]) => {
            const r = { ...voteRelay(n), flags: [...flags].sort(), bandwidth: bw } as ReturnType<
              typeof voteRelay
            > & {
              unmeasured?: boolean;
            };
            if (um) r.unmeasured = true;
            return r;
          });
          relays.sort((a, b) => Buffer.compare(a.identity, b.identity));
          const c: Consensus = {
            validAfterMs: NOW,
            freshUntilMs: NOW + 1,
            validUntilMs: NOW + 2,
            votingIntervalSec: 20,
            knownFlags: ['Exit', 'Fast', 'Guard', 'Running', 'Valid'],
            params,
            relays,
            bandwidthWeights: computeBandwidthWeights(relays),
            authorities: [...AUTH].sort(),
          };
          if (srv !== undefined) c.sharedRandCurrent = { reveals: srv, value: new Uint8Array(32).fill(srv) };
          const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS.slice(0, 2)));
          const back = decodeSignedConsensus(bytes, 1 << 22);
          expect(back.consensus).toEqual(c);
          expect(verifyConsensus(back, { ...at, nowMs: NOW + 1 })).toEqual(c);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('hostile input: only typed errors', () => {
    const c = consensus();
    const bytes = encodeSignedConsensus(c, sign(c, AUTH_SEEDS));
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.nat(255), fc.uint8Array({ maxLength: 200 }), (i, v, junk) => {
        const m = new Uint8Array(bytes);
        m[i] = v;
        expectOnlyTypedErrors(() => verifyConsensus(m, at));
        expectOnlyTypedErrors(() => verifyConsensus(junk, at));
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------

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
    expect(flags.get(hexOf(11))).toEqual([
      'Exit',
      'Fast',
      'Guard',
      'HSDir',
      'Running',
      'Stable',
      'V2Dir',
      'Valid',
    ]);
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
    expect(flags.get(hexOf(10))).toEqual([
      'Exit',
      'Fast',
      'Guard',
      'HSDir',
      'Running',
      'Stable',
      'V2Dir',
      'Valid',
    ]);
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
    // All Guard+Exit: no weights published, clients use 10000.
    expect(c.bandwidthWeights).toEqual({});
  });
});
