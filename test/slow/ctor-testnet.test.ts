// The C tor testnet launcher (test/setup/ctor-testnet.ts; issue 19): 3
// authorities, 2 relays and 2 exits of Debian's tor on 127.0.0.1. Ready
// means a consensus verified with core/ctor lists them all; here the
// microdescriptors fetched from an authority's DirPort (dir-spec §5.2,
// `/tor/micro/d/<digests>`) match the consensus digests, the mapping into
// Shallot's Consensus carries each relay's Ed25519 id and RSA legacy id
// (the fingerprint tor wrote), and stop() ends every process by pid.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64, toHex } from '../../services/core/bytes.js';
import { parseMicrodescs } from '../../services/core/ctor/microdesc.js';
import { consensusFromCtor } from '../../services/core/ctor/to-consensus.js';
import { processAlive } from '../../services/runtime/cli.js';
import { type CtorTestnet, requireTor, startCtorTestnet } from '../setup/ctor-testnet.js';

let net: CtorTestnet;

beforeAll(async () => {
  const bin = requireTor();
  net = await startCtorTestnet({ bin, relays: 2, exits: 2 });
}, 300_000);

afterAll(async () => {
  await net?.stop();
}, 30_000);

describe('C tor testnet launcher', () => {
  it('serves a verified consensus whose microdescriptors map into a Shallot consensus', async () => {
    const auth = net.nodes.find((n) => n.role === 'authority')!;
    const rs = net.consensus.relays;
    // Authorities relay too; every node is listed.
    expect(rs.map((r) => r.nickname).sort()).toEqual(net.nodes.map((n) => n.nickname).sort());
    const digests = rs.map((r) => toBase64(r.microdescDigest).replace(/=+$/, '')).join('-');
    const res = await fetch(`http://127.0.0.1:${auth.dirPort}/tor/micro/d/${digests}`);
    expect(res.status).toBe(200);
    const mds = parseMicrodescs(await res.text());
    expect(mds.map((m) => toBase64(m.digest)).sort()).toEqual(
      rs.map((r) => toBase64(r.microdescDigest)).sort(),
    );
    const mapped = consensusFromCtor(net.consensus, mds);
    expect(mapped.skipped).toEqual([]);
    expect(mapped.consensus.relays).toHaveLength(net.nodes.length);
    const legacy = [...mapped.legacyIds.values()].map((id) => toHex(id).toUpperCase()).sort();
    expect(legacy).toEqual(net.nodes.map((n) => n.fingerprint).sort());
    for (const n of net.nodes.filter((x) => x.role === 'exit')) {
      expect(rs.find((r) => r.nickname === n.nickname)?.flags).toContain('Exit');
    }
  });

  it('stops every tor process by pid', async () => {
    const pids = net.nodes.map((n) => n.pid);
    expect(pids.every(processAlive)).toBe(true);
    await net.stop();
    expect(pids.filter(processAlive)).toEqual([]);
  }, 30_000);
});
