// Microdescriptors (dir-spec §3.3) from a C tor 0.4.9 testnet
// (test/vectors/ctor/microdescs.txt): fields, digests matching the
// consensus `m` lines, port summaries, hostile input.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toBase64, toHex } from '../../../../services/core/bytes.js';
import { parseMicrodescs, summaryAllowsPort } from '../../../../services/core/ctor/microdesc.js';
import { InvalidError } from '../../../../services/core/errors.js';
import { mutateLine } from '../../../helpers/line-mutations.js';
import { expectOnlyTypedErrors } from '../../../helpers/typed-errors.js';

const vector = (f: string) => readFileSync(new URL(`../../../vectors/ctor/${f}`, import.meta.url), 'utf8');
const MDS = vector('microdescs.txt');
const CONSENSUS = vector('consensus-microdesc.txt');
const FIRST = MDS.slice(0, MDS.indexOf('\nonion-key') + 1);

describe('C tor microdescriptors', () => {
  const mds = parseMicrodescs(MDS);

  it("digests are exactly the consensus's m lines", () => {
    const m = [...CONSENSUS.matchAll(/^m (\S+)$/gm)].map((x) => x[1]).sort();
    expect(mds.map((d) => toBase64(d.digest, false)).sort()).toEqual(m);
  });

  it('reads ntor key, ed25519 id, family, family-ids and the port summary', () => {
    const fam = mds.filter((d) => d.family.length > 0);
    expect(fam).toHaveLength(2);
    expect(fam[0]!.family).toEqual([
      '$14055DB36CA9B0EEFEDC5A6AE708A47C58D58798',
      '$C3BCCBE41573CB892ECFEB8FFF0A45739B1DDB61',
    ]);
    expect(fam[0]!.familyIds).toEqual(['ed25519:iflzhguh4cIjNBafIQy+NNQ6o3rmhlFjua8s5CbcbOA']);
    const first = mds[0]!;
    expect(toBase64(first.ntorOnionKey, false)).toBe('2PJ8yd4pHKSy6BsUU5C8+7ck6ifqNfqykCsk8TTVtxk');
    expect(toHex(first.ed25519Id!)).toBe(
      toHex(Buffer.from('AIMkrDac7gypi3lzRTMIH4FrYotgfgSRVDyYJvXaPXk', 'base64')),
    );
    expect(first.policy?.action).toBe('reject');
    expect(first.policy?.ranges.slice(0, 3)).toEqual([
      [25, 25],
      [119, 119],
      [135, 139],
    ]);
    expect(summaryAllowsPort(first.policy!, 80)).toBe(true);
    expect(summaryAllowsPort(first.policy!, 137)).toBe(false);
    expect(first.policy6).toBeUndefined();
    expect(first.addresses).toEqual([]);
  });

  it('takes p6, a, id rsa1024, unknown keywords and an onion-key without TAP key (proposal 350)', () => {
    const text = `onion-key\nntor-onion-key 2PJ8yd4pHKSy6BsUU5C8+7ck6ifqNfqykCsk8TTVtxk=\na [::1]:9001\nfuture x\np6 accept 80,443\nid rsa1024 ${toBase64(new Uint8Array(20), false)}\n`;
    const [md] = parseMicrodescs(text);
    expect(md!.policy6).toEqual({
      action: 'accept',
      ranges: [
        [80, 80],
        [443, 443],
      ],
    });
    expect(summaryAllowsPort(md!.policy6!, 22)).toBe(false);
    expect(md!.addresses).toEqual(['[::1]:9001']);
    expect(md!.rsaId).toEqual(new Uint8Array(20));
  });

  it('refuses malformed documents with InvalidError', () => {
    // Each case below changes one thing in a microdescriptor that parses.
    expect(parseMicrodescs(FIRST)).toHaveLength(1);
    const cases: [string, string][] = [
      ['no ntor key', FIRST.replace(/^ntor-onion-key .*\n/m, '')],
      ['two ntor keys', FIRST.replace(/^(ntor-onion-key .*\n)/m, '$1$1')],
      ['short ntor key', FIRST.replace(/^ntor-onion-key .*$/m, 'ntor-onion-key AAAA')],
      ['two ed ids', FIRST.replace(/^(id ed25519 .*\n)/m, '$1$1')],
      ['starts elsewhere', `p accept 80\n${FIRST}`],
      ['port 0', FIRST.replace(/^p .*$/m, 'p accept 0-80')],
      ['port range backwards', FIRST.replace(/^p .*$/m, 'p accept 90-80')],
      ['ranges out of order', FIRST.replace(/^p .*$/m, 'p accept 80,25')],
      ['port too big', FIRST.replace(/^p .*$/m, 'p accept 65536')],
      ['bad action', FIRST.replace(/^p .*$/m, 'p allow 80')],
      ['two families', FIRST.replace(/^(p .*\n)/m, 'family a\nfamily b\n$1')],
      ['oversized', `onion-key\nfamily ${'a'.repeat(70_000)}\n`],
    ];
    for (const [name, text] of cases) expect(() => parseMicrodescs(text), name).toThrow(InvalidError);
  });
});

describe('hostile microdescriptors', () => {
  it('random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => expectOnlyTypedErrors(() => parseMicrodescs(s))),
      { numRuns: 300 },
    );
  });

  it('line-level mutations and every truncation', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 3 }), (i, how) =>
        expectOnlyTypedErrors(() => parseMicrodescs(mutateLine(MDS, i, how))),
      ),
      { numRuns: 200 },
    );
    for (let n = 0; n < MDS.length; n += 5) expectOnlyTypedErrors(() => parseMicrodescs(MDS.slice(0, n)));
  });

  it('a flood of annotation lines is one linear pass (a backtracking scan would not finish)', () => {
    const flood = `${'@a\n'.repeat(600_000)}x\n`;
    expect(() => parseMicrodescs(flood, { annotations: 'allow' })).toThrow(InvalidError);
    const before = `${'@a\n'.repeat(600_000)}${FIRST}`;
    expect(parseMicrodescs(before, { annotations: 'allow' })).toHaveLength(1);
  });

  it('an oversized answer is refused before parsing', () => {
    expect(() => parseMicrodescs('x\n'.repeat(3_000_000))).toThrow(/too long/);
  });
});
