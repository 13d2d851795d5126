// A client's layer-2 vanguard set (client/layer2-vanguards.ts, prop 333):
// four relays of the consensus, the same ones while they live and stay
// listed, one replaced when it leaves, and each change logged once.
import { describe, expect, it } from 'vitest';
import { Layer2Vanguards } from '../../../services/client/layer2-vanguards.js';
import { NetDir } from '../../../services/client/netdir.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { fakeRelay, testConsensus } from '../../helpers/fake-consensus.js';
import { seededRng } from '../../helpers/seeded-rng.js';

const FLAGS = ['Fast', 'Running', 'Stable', 'Valid'];
const relays = Array.from({ length: 10 }, (_, i) => fakeRelay(i + 1, FLAGS));

describe('Layer2Vanguards', () => {
  it('keeps four listed relays, replaces one that leaves, and logs each change', () => {
    const logged: unknown[] = [];
    const v = new Layer2Vanguards({
      now: () => 0,
      rng: seededRng(3),
      logger: { ...silentLogger, info: (_msg, fields) => void logged.push(fields) },
    });
    expect(v.ids).toEqual([]);
    const dir = new NetDir(testConsensus(relays));
    const first = v.relays(dir);
    expect(first).toHaveLength(4);
    expect(first.map((r) => r.id)).toEqual(v.ids);
    expect(v.relays(dir).map((r) => r.id)).toEqual(v.ids);
    expect(logged).toHaveLength(1);
    const gone = first[0]!.id;
    const without = new NetDir(testConsensus(relays.filter((r) => dir.get(gone)?.nickname !== r.nickname)));
    const next = v.relays(without);
    expect(next).toHaveLength(4);
    expect(v.ids).not.toContain(gone);
    expect(v.ids.filter((id) => first.some((r) => r.id === id))).toHaveLength(3);
    expect(logged).toHaveLength(2);
  });
});
