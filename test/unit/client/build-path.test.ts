// Paths around relays that just failed (client/build-path.ts,
// circuit-manager.ts): a layer-2 vanguard that stopped answering or could
// not be reached sits out while another member answers (prop 333's set
// itself is kept), every hop is still one of the set, when the whole set
// is silent it is used anyway, and when the only answering one collides
// with the target there is no path (the caller picks another target). Which EXTEND2 failures blame the next
// hop: DESTROY CONNECTFAILED, or CHANNEL_CLOSED with our own link still up.
import { describe, expect, it } from 'vitest';
import { chooseBuildPath } from '../../../services/client/build-path.js';
import { NetDir } from '../../../services/client/netdir.js';
import { extendRefused } from '../../../services/client/relay-liveness.js';
import { DestroyReason } from '../../../services/core/cells.js';
import { randomBytes } from '../../../services/core/crypto.js';
import { PathError } from '../../../services/core/path.js';
import type { Channel } from '../../../services/net/channel.js';
import { CircuitError } from '../../../services/net/circuit-error.js';
import { fakeRelay, testConsensus } from '../../helpers/fake-consensus.js';

const FLAGS = ['Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid'];
const dir = new NetDir(testConsensus(Array.from({ length: 8 }, (_, i) => fakeRelay(i, FLAGS))));
const [guard, target, a, b, c, d] = dir.relays;

function l2Hops(silent: Set<string>, n = 200): Set<string> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const path = chooseBuildPath({
      dir,
      req: { purpose: 'onion-intro', lastHop: target! },
      guard,
      layer2: [a!, b!, c!, d!],
      silent,
      enforceSubnets: false,
      rng: randomBytes,
    });
    expect(path).toHaveLength(4);
    expect(path[0]?.id).toBe(guard!.id);
    expect(path[3]?.id).toBe(target!.id);
    seen.add(path[1]!.nickname);
    // The middle after the vanguard is never a silent relay either.
    expect(silent.has(path[2]!.id)).toBe(false);
  }
  return seen;
}

describe('chooseBuildPath with layer-2 vanguards', () => {
  it('draws the second hop from the whole set when all answer', () => {
    expect(l2Hops(new Set())).toEqual(new Set([a!.nickname, b!.nickname, c!.nickname, d!.nickname]));
  });

  it('leaves out vanguards that stopped answering while another answers', () => {
    expect(l2Hops(new Set([a!.id, b!.id]))).toEqual(new Set([c!.nickname, d!.nickname]));
  });

  it('uses the set anyway when every member is silent (a path beats none)', () => {
    const all = new Set([a!.id, b!.id, c!.id, d!.id]);
    const path = chooseBuildPath({
      dir,
      req: { purpose: 'onion-rend', lastHop: target!, length: 2 },
      guard,
      layer2: [a!, b!, c!, d!],
      silent: all,
      enforceSubnets: false,
      rng: randomBytes,
    });
    expect(all.has(path[1]!.id)).toBe(true);
  });

  it('no path (not a silent vanguard) when the only answering vanguard is the target', () => {
    // The caller then picks another rendezvous point instead of extending through a dead relay.
    expect(() =>
      chooseBuildPath({
        dir,
        req: { purpose: 'onion-rend', lastHop: d!, length: 2 },
        guard,
        layer2: [a!, b!, c!, d!],
        silent: new Set([a!.id, b!.id, c!.id]),
        enforceSubnets: false,
        rng: randomBytes,
      }),
    ).toThrow(PathError);
  });
});

describe('extendRefused', () => {
  const open = { isOpen: true } as Channel;
  const closed = { isOpen: false } as Channel;
  it('blames the next hop for CONNECTFAILED, and for CHANNEL_CLOSED only while our link is up', () => {
    expect(extendRefused(new CircuitError(DestroyReason.CONNECTFAILED, 'x'), open)).toBe(true);
    expect(extendRefused(new CircuitError(DestroyReason.CHANNEL_CLOSED, 'x'), open)).toBe(true);
    expect(extendRefused(new CircuitError(DestroyReason.CHANNEL_CLOSED, 'x'), closed)).toBe(false);
  });

  it('not for timeouts, protocol errors, other reasons or other errors', () => {
    expect(extendRefused(new CircuitError(DestroyReason.TIMEOUT, 'x', 'timeout'), open)).toBe(false);
    expect(extendRefused(new CircuitError(DestroyReason.CONNECTFAILED, 'x', 'protocol'), open)).toBe(false);
    expect(extendRefused(new CircuitError(DestroyReason.FINISHED, 'x'), open)).toBe(false);
    expect(extendRefused(new Error('x'), open)).toBe(false);
    expect(extendRefused(undefined, open)).toBe(false);
  });
});
