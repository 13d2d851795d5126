/**
 * A verified C tor microdesc consensus and its microdescriptors, mapped
 * into Shallot's consensus model (core/dir/consensus.ts), so that path
 * selection, the HSDir ring and time periods run unchanged on a C tor
 * network.
 *
 * Overview: `consensusFromCtor(c, mds)` joins each router status entry
 * (dir-spec §3.4.1, §3.9.2) to the microdescriptor its `m` line names
 * (dir-spec §3.3) and writes one ConsensusRelay:
 * - identity: the microdescriptor's `id ed25519`; ntorOnionKey:
 *   `ntor-onion-key`; address, orPort, dirPort (if not 0): the `r` line;
 * - flags: the `s` line, only those in known-flags (C tor ignores others);
 * - bandwidth: `w Bandwidth=` in kilobytes/s times 1000 (C tor's
 *   bandwidth_kb is bytes/1000), `Unmeasured=1` kept;
 * - exitPolicy: the `p` summary (dir-spec §3.8.2) as rules on `*`; no `p`
 *   is reject-all (dir-spec §3.3);
 * - family: the Ed25519 ids of the other listed relays that this one names
 *   by `$RSA` fingerprint in `family`, or that share a `family-ids` entry
 *   (proposal 321: a shared family key is mutual by construction); path.ts
 *   then keeps only mutual pairs;
 * - descriptorDigest: the microdescriptor digest.
 * The header takes valid-after/fresh-until/valid-until, the voting
 * interval (fresh-until − valid-after, dir-spec §3.4.1), known-flags,
 * params, shared random values and bandwidth weights as they are.
 * `legacyIds` maps each relay's hex Ed25519 id to its RSA identity digest,
 * which EXTEND2 link specifiers and the ntor handshake need for C tor
 * relays.
 *
 * Deviations: Shallot names authorities by Ed25519 id and a C tor
 * consensus by RSA v3ident, so `authorities` is empty (the v3idents stay
 * in the MdConsensus's `dir-source` list). A relay without a microdescriptor or
 * without `id ed25519` is left out (reported in `skipped`), since
 * Shallot's circuits need the Ed25519 id.
 *
 * Not in this module: verification (consensus-signatures.ts, which must
 * run first), fetching, IPv6 (`p6`, `a` lines are not mapped).
 */

import { compareBytes, toBase64, toHex } from '../bytes.js';
import type { Consensus } from '../dir/consensus.js';
import type { ConsensusRelay } from '../dir/relay-entry.js';
import type { ExitPolicy } from '../exit-policy.js';
import type { MdConsensus, MdRouterStatus } from './md-consensus.js';
import type { Microdesc, PortSummary } from './microdesc.js';

/** A router status entry with its microdescriptor, which has an Ed25519 id. */
type Joined = { rs: MdRouterStatus; md: Microdesc & { ed25519Id: Uint8Array } };

export interface CtorConsensus {
  consensus: Consensus;
  /** Hex Ed25519 id → RSA identity digest (20 bytes). */
  legacyIds: Map<string, Uint8Array>;
  skipped: { nickname: string; reason: 'no microdescriptor' | 'no ed25519 id' }[];
}

/** Joins a (verified) microdesc consensus to its microdescriptors. */
export function consensusFromCtor(c: MdConsensus, mds: readonly Microdesc[]): CtorConsensus {
  const byDigest = new Map(mds.map((m) => [toBase64(m.digest), m]));
  const known = new Set(c.knownFlags);
  const joined: Joined[] = [];
  const skipped: CtorConsensus['skipped'] = [];
  for (const rs of c.relays) {
    const md = byDigest.get(toBase64(rs.microdescDigest));
    if (!md) skipped.push({ nickname: rs.nickname, reason: 'no microdescriptor' });
    else if (!md.ed25519Id) skipped.push({ nickname: rs.nickname, reason: 'no ed25519 id' });
    else joined.push({ rs, md: { ...md, ed25519Id: md.ed25519Id } });
  }
  const edByRsa = new Map(joined.map((j) => [toHex(j.rs.rsaId), toHex(j.md.ed25519Id)]));

  const relays: ConsensusRelay[] = joined.map(({ rs, md }) => {
    const r: ConsensusRelay = {
      nickname: rs.nickname,
      identity: md.ed25519Id,
      ntorOnionKey: md.ntorOnionKey,
      address: rs.ip,
      orPort: rs.orPort,
      publishedMs: rs.publishedMs,
      flags: [...new Set(rs.flags.filter((f) => known.has(f)))].sort(),
      exitPolicy: policyFromSummary(md.policy),
      family: familyOf(md, joined, edByRsa),
      descriptorDigest: md.digest,
      bandwidth: (rs.bandwidth ?? 0) * 1000,
    };
    if (rs.dirPort !== 0) r.dirPort = rs.dirPort;
    if (rs.unmeasured) r.unmeasured = true;
    return r;
  });
  relays.sort((a, b) => compareBytes(a.identity, b.identity));

  const consensus: Consensus = {
    validAfterMs: c.validAfterMs,
    freshUntilMs: c.freshUntilMs,
    validUntilMs: c.validUntilMs,
    votingIntervalSec: (c.freshUntilMs - c.validAfterMs) / 1000,
    knownFlags: [...c.knownFlags].sort(),
    params: { ...c.params },
    relays,
    bandwidthWeights: { ...c.bandwidthWeights },
    authorities: [],
  };
  if (c.sharedRandCurrent) consensus.sharedRandCurrent = { ...c.sharedRandCurrent };
  if (c.sharedRandPrevious) consensus.sharedRandPrevious = { ...c.sharedRandPrevious };
  return {
    consensus,
    legacyIds: new Map(joined.map((j) => [toHex(j.md.ed25519Id), j.rs.rsaId])),
    skipped,
  };
}

/** dir-spec §3.8.2: the listed ports take the action, every other port the opposite. */
export function policyFromSummary(s: PortSummary | undefined): ExitPolicy {
  if (!s) return { rules: [{ action: 'reject', addr: '*', ports: [1, 65535] }] };
  const other = s.action === 'accept' ? 'reject' : 'accept';
  return {
    rules: [
      ...s.ranges.map(([lo, hi]) => ({ action: s.action, addr: '*', ports: [lo, hi] as [number, number] })),
      { action: other, addr: '*', ports: [1, 65535] },
    ],
  };
}

/** `family` entries are `$HEX`, `$HEX=nick`, `$HEX~nick` or bare nicknames (dir-spec §2.1.1); only fingerprints are matched. */
function familyOf(md: Joined['md'], all: readonly Joined[], edByRsa: ReadonlyMap<string, string>): string[] {
  const self = toHex(md.ed25519Id);
  const out = new Set<string>();
  for (const f of md.family) {
    const m = /^\$([0-9A-Fa-f]{40})(?:[=~].*)?$/.exec(f);
    const ed = m ? edByRsa.get(m[1]!.toLowerCase()) : undefined;
    if (ed) out.add(ed);
  }
  if (md.familyIds.length > 0) {
    const mine = new Set(md.familyIds);
    for (const o of all) if (o.md.familyIds.some((id) => mine.has(id))) out.add(toHex(o.md.ed25519Id));
  }
  out.delete(self);
  return [...out].sort();
}
