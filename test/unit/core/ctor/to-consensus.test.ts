// The C tor testnet's microdesc consensus and microdescriptors
// (test/vectors/ctor/) mapped into Shallot's Consensus: ids, keys, flags,
// bandwidth, exit policy from the summary, family, header, and a valid
// Shallot document (it survives Shallot's own encode/decode checks).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toBase64, toHex } from '../../../../services/core/bytes.js';
import { verifyMdConsensus } from '../../../../services/core/ctor/consensus-signatures.js';
import { parseKeyCertificates } from '../../../../services/core/ctor/key-cert.js';
import { parseMdConsensus } from '../../../../services/core/ctor/md-consensus.js';
import { parseMicrodescs } from '../../../../services/core/ctor/microdesc.js';
import { consensusFromCtor, policyFromSummary } from '../../../../services/core/ctor/to-consensus.js';
import { decodeSignedConsensus, encodeSignedConsensus } from '../../../../services/core/dir/consensus.js';
import { exitPolicyAllows } from '../../../../services/core/exit-policy.js';
import { inSameFamily } from '../../../../services/core/path.js';

const vector = (f: string) => readFileSync(new URL(`../../../vectors/ctor/${f}`, import.meta.url), 'utf8');
const MD_CONSENSUS = parseMdConsensus(vector('consensus-microdesc.txt'));
const MDS = parseMicrodescs(vector('microdescs.txt'));
const CERTS = parseKeyCertificates(vector('key-certificates.txt'));

describe('consensusFromCtor', () => {
  verifyMdConsensus(
    MD_CONSENSUS,
    CERTS,
    CERTS.map((k) => k.fingerprint),
    MD_CONSENSUS.validAfterMs,
  );
  const { consensus, legacyIds, skipped } = consensusFromCtor(MD_CONSENSUS, MDS);
  const byName = (n: string) => consensus.relays.find((r) => r.nickname === n)!;

  it('maps every relay, sorted by Ed25519 id, with its RSA legacy id beside', () => {
    expect(skipped).toEqual([]);
    expect(consensus.relays).toHaveLength(5);
    const ids = consensus.relays.map((r) => toHex(r.identity));
    expect(ids).toEqual([...ids].sort());
    const r0 = byName('relay0');
    expect(toHex(legacyIds.get(toHex(r0.identity))!).toUpperCase()).toBe(
      '14055DB36CA9B0EEFEDC5A6AE708A47C58D58798',
    );
    const md = MDS.find((m) => toHex(m.ed25519Id!) === toHex(r0.identity))!;
    expect(r0.ntorOnionKey).toEqual(md.ntorOnionKey);
    expect(r0.descriptorDigest).toEqual(md.digest);
    expect([r0.address, r0.orPort, r0.dirPort]).toEqual(['127.0.0.1', 47110, undefined]);
    expect(byName('auth0').dirPort).toBe(47200);
  });

  it('flags sorted within known-flags, bandwidth in bytes/s, unmeasured kept', () => {
    const a2 = byName('auth2');
    expect(a2.flags).toEqual([
      'Authority',
      'Exit',
      'Fast',
      'Guard',
      'HSDir',
      'Running',
      'Stable',
      'V2Dir',
      'Valid',
    ]);
    const w = MD_CONSENSUS.relays.find((r) => r.nickname === 'auth2')!.bandwidth!;
    expect(a2.bandwidth).toBe(w * 1000);
    expect(a2.unmeasured).toBe(true);
  });

  it('exit policy from the p summary', () => {
    const p = byName('relay0').exitPolicy;
    expect(exitPolicyAllows(p, '198.51.100.1', 443)).toBe(true);
    expect(exitPolicyAllows(p, '198.51.100.1', 25)).toBe(false);
    expect(policyFromSummary(undefined).rules).toEqual([{ action: 'reject', addr: '*', ports: [1, 65535] }]);
    const accept = policyFromSummary({ action: 'accept', ranges: [[80, 80]] });
    expect([exitPolicyAllows(accept, '192.0.2.1', 80), exitPolicyAllows(accept, '192.0.2.1', 81)]).toEqual([
      true,
      false,
    ]);
  });

  it('relay0 and relay1 are one family (MyFamily and FamilyId), the authorities none', () => {
    expect(inSameFamily(byName('relay0'), byName('relay1'))).toBe(true);
    expect(byName('relay0').family).toEqual([toHex(byName('relay1').identity)]);
    expect(byName('auth0').family).toEqual([]);
    // family-ids alone make the pair mutual too.
    const idsOnly = MDS.map((m) => ({ ...m, family: [] }));
    const c2 = consensusFromCtor(MD_CONSENSUS, idsOnly).consensus;
    const n = (x: string) => c2.relays.find((r) => r.nickname === x)!;
    expect(inSameFamily(n('relay0'), n('relay1'))).toBe(true);
  });

  it('header: times, voting interval, params, shared random, weights', () => {
    expect(consensus.votingIntervalSec).toBe(20);
    expect(consensus.validAfterMs).toBe(MD_CONSENSUS.validAfterMs);
    expect(consensus.params.circwindow).toBe(1000);
    expect(toBase64(consensus.sharedRandCurrent!.value)).toBe(
      toBase64(MD_CONSENSUS.sharedRandCurrent!.value),
    );
    expect(consensus.bandwidthWeights.Wgg).toBe(MD_CONSENSUS.bandwidthWeights.Wgg);
    expect(consensus.authorities).toEqual([]);
  });

  it("is a valid Shallot consensus: Shallot's codec takes it back unchanged", () => {
    const bytes = encodeSignedConsensus(consensus, []);
    expect(decodeSignedConsensus(bytes, 1 << 20).consensus).toEqual(consensus);
  });

  it('reports relays without a microdescriptor or Ed25519 id', () => {
    const withoutFirst = MDS.slice(1);
    const noEd = MDS.map((m, i) => {
      if (i !== 1) return m;
      const { ed25519Id: _, ...rest } = m;
      return rest;
    });
    expect(consensusFromCtor(MD_CONSENSUS, withoutFirst).skipped.map((s) => s.reason)).toEqual([
      'no microdescriptor',
    ]);
    const r = consensusFromCtor(MD_CONSENSUS, noEd);
    expect(r.skipped.map((s) => s.reason)).toEqual(['no ed25519 id']);
    expect(r.consensus.relays).toHaveLength(4);
  });
});
