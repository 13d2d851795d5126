// NetDir on a C tor network (services/client/netdir.ts): each relay carries
// the RSA legacy id the mapped consensus gave it (core/ctor/to-consensus.ts
// legacyIds) — what the channel pool checks and EXTEND2 names — and none on
// a Shallot network; a relay whose exit policy accepts nothing is no exit,
// whatever its flags (a testnet votes Exit for every relay), as C tor's
// node_exit_policy_rejects_all.
import { describe, expect, it } from 'vitest';
import { NetDir } from '../../../services/client/netdir.js';
import { toHex } from '../../../services/core/bytes.js';
import { policyFromSummary } from '../../../services/core/ctor/to-consensus.js';
import { canExit } from '../../../services/core/path.js';
import { fakeConsensus, fakeRelay } from '../../helpers/fake-consensus.js';

const FLAGS = ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'Valid'];

describe('NetDir from a C tor consensus', () => {
  const open = {
    ...fakeRelay(1, FLAGS),
    exitPolicy: policyFromSummary({ action: 'accept', ranges: [[80, 80]] }),
  };
  const closed = { ...fakeRelay(2, FLAGS), exitPolicy: policyFromSummary(undefined) };
  const consensus = fakeConsensus([open, closed]);
  const legacy = new Map([
    [toHex(open.identity), new Uint8Array(20).fill(0xaa)],
    [toHex(closed.identity), new Uint8Array(20).fill(0xbb)],
  ]);

  it('gives each relay the RSA legacy id the mapping listed', () => {
    const dir = new NetDir(consensus, legacy);
    expect(dir.get(toHex(open.identity))!.legacyId).toEqual(new Uint8Array(20).fill(0xaa));
    expect(dir.get(toHex(closed.identity))!.legacyId).toEqual(new Uint8Array(20).fill(0xbb));
    for (const r of new NetDir(consensus).relays) expect(r.legacyId).toBeUndefined();
  });

  it('a relay voted Exit whose policy accepts nothing is never an exit', () => {
    const dir = new NetDir(consensus, legacy);
    const [o, c] = [dir.get(toHex(open.identity))!, dir.get(toHex(closed.identity))!];
    expect([canExit(o), canExit(o, 80), canExit(o, 443)]).toEqual([true, true, false]);
    expect([canExit(c), canExit(c, 80)]).toEqual([false, false]);
  });
});
