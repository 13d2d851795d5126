// The subprotocols a Shallot relay advertises (relay/publisher.ts,
// dir-spec §2.1.1 `proto`, tor-spec §9): ranges as C tor's protover writes
// them, and Relay=4 (ntor-v3), which these relays answer and which a C tor
// client looks for before it uses ntor-v3 with a relay — as C tor relays
// advertise it (test/vectors/ctor/consensus-microdesc.txt).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseMdConsensus } from '../../../services/core/ctor/md-consensus.js';
import { RELAY_PROTOCOLS } from '../../../services/relay/publisher.js';

/** protover "1-3,5" -> [1, 2, 3, 5]; throws on anything C tor's parser refuses. */
function versions(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(part);
    if (!m) throw new Error(`bad protover range "${part}"`);
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (hi < lo || hi > 63) throw new Error(`bad protover range "${part}"`);
    for (let v = lo; v <= hi; v++) out.push(v);
  }
  return out;
}

describe('relay subprotocols', () => {
  it('advertises Relay=2-4: ntor (2), IPv6 extends (3) and ntor-v3 (4), like C tor relays', () => {
    expect(versions(RELAY_PROTOCOLS.Relay!)).toEqual([2, 3, 4]);
    const ctor = parseMdConsensus(
      readFileSync(new URL('../../vectors/ctor/consensus-microdesc.txt', import.meta.url), 'utf8'),
    );
    for (const r of ctor.relays) {
      const relay = /(?:^| )Relay=(\S+)/.exec(r.protocols ?? '')?.[1];
      expect(versions(relay ?? '')).toEqual(expect.arrayContaining([2, 3, 4]));
    }
  });

  it('every advertised range is one C tor can parse', () => {
    for (const [name, spec] of Object.entries(RELAY_PROTOCOLS)) {
      expect(name).toMatch(/^[A-Za-z][A-Za-z0-9-]*$/);
      expect(versions(spec).length).toBeGreaterThan(0);
    }
  });
});
