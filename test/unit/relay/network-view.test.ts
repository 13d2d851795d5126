// A relay's view of the consensus for the pivot checks: a miss refreshes
// once (a client may hold a newer consensus), refreshes are coalesced and
// rate-limited by the shared cache alone (over a real ConsensusCache: a
// relay that joined after the extending relay's last consensus is reached
// at once, right after bootstrap), and an exit with no consensus fails
// closed.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { ConsensusCache, type FetchedConsensus } from '../../../services/relay/consensus-cache.js';
import { type ConsensusSource, NetworkView } from '../../../services/relay/network-view.js';
import { viewOverCache } from '../../helpers/cache-view.js';
import { testConsensus, testRelay } from '../../helpers/fake-consensus.js';

const id = (b: number) => new Uint8Array(32).fill(b);

function relay(identity: Uint8Array, orPort: number): ConsensusRelay {
  return testRelay({ identity, orPort });
}

function consensus(relays: ConsensusRelay[]): Consensus {
  return testConsensus(relays);
}

/** A publisher stand-in: `refreshConsensus` installs the next queued consensus after a tick. */
class FakeSource implements ConsensusSource {
  consensus: Consensus | null = null;
  refreshes = 0;
  constructor(private readonly queue: (Consensus | null)[]) {}
  /** What the source answers: false is a fetch it refused (rate-limited) or never waited for. */
  fetched = true;
  async refreshConsensus(): Promise<boolean> {
    this.refreshes++;
    await new Promise((r) => setTimeout(r, 5));
    const next = this.queue.shift();
    if (next !== undefined && next !== null) this.consensus = next;
    return this.fetched;
  }
}

describe('NetworkView', () => {
  it('refreshes once on an unlisted identity and finds a relay that just joined', async () => {
    const src = new FakeSource([consensus([relay(id(2), 9001), relay(id(3), 9002)])]);
    src.consensus = consensus([relay(id(2), 9001)]);
    const view = new NetworkView(src, { reentryReject: [] });
    expect((await view.listedAt(id(2)))?.orPort).toBe(9001);
    expect(src.refreshes).toBe(0);
    expect((await view.listedAt(id(3)))?.orPort).toBe(9002);
    expect(src.refreshes).toBe(1);
  });

  it('checkExtend: refreshes once when a listed relay moved, then allows it at its new port', async () => {
    const src = new FakeSource([consensus([relay(id(2), 9005)])]);
    src.consensus = consensus([relay(id(2), 9001)]);
    const view = new NetworkView(src, { reentryReject: [] });
    const t = (port: number) => ({ identity: id(2), address: '127.0.0.1', port });
    expect(await view.checkExtend(t(9001))).toBeNull();
    expect(src.refreshes).toBe(0);
    expect(await view.checkExtend(t(9005))).toBeNull();
    expect(src.refreshes).toBe(1);
    expect(await view.checkExtend(t(9001))).toBe('address');
    expect(await view.checkExtend({ ...t(9005), identity: id(3) })).toBe('unlisted');
    // Each miss asked the source (whose shared cache rate-limits for the process).
    expect(src.refreshes).toBe(3);
    expect(await new NetworkView(new FakeSource([null]), { reentryReject: [] }).checkExtend(t(9001))).toBe(
      'no-consensus',
    );
  });

  it('coalesces concurrent refreshes, keeps no limit of its own, and rechecks only after a real fetch', async () => {
    const src = new FakeSource([]);
    src.consensus = consensus([relay(id(2), 9001)]);
    const view = new NetworkView(src, { reentryReject: [] });
    const all = await Promise.all(Array.from({ length: 50 }, () => view.listedAt(id(9))));
    expect(all.every((e) => e === undefined)).toBe(true);
    expect(src.refreshes).toBe(1);
    // A fetch the source refused is not counted as one: the next miss asks again.
    src.fetched = false;
    expect(await view.checkExtend({ identity: id(9), address: '127.0.0.1', port: 9009 })).toBe('unlisted');
    expect(src.refreshes).toBe(2);
    src.fetched = true;
    src.consensus = consensus([relay(id(2), 9001), relay(id(9), 9009)]);
    expect(await view.checkExtend({ identity: id(9), address: '127.0.0.1', port: 9009 })).toBeNull();
    expect(src.refreshes).toBe(2);
  });

  it('answers null with no consensus at all, after trying to fetch one', async () => {
    const src = new FakeSource([null]);
    const view = new NetworkView(src, { reentryReject: [] });
    expect(await view.listedAt(id(2))).toBeNull();
    expect(src.refreshes).toBe(1);
  });

  it("refuses listed relays' ports, the always-list and late additions; fails closed without a consensus", async () => {
    const empty = new NetworkView(new FakeSource([null]), { reentryReject: [] });
    expect(await empty.isReentry('127.0.0.1', 8080)).toBe(true);

    const src = new FakeSource([]);
    src.consensus = consensus([relay(id(2), 9001)]);
    const view = new NetworkView(src, { reentryReject: [{ host: '127.0.0.1', port: 7000 }] });
    expect(await view.isReentry('127.0.0.1', 9001)).toBe(true);
    expect(await view.isReentry('127.0.0.1', 7000)).toBe(true);
    expect(await view.isReentry('127.0.0.1', 8080)).toBe(false);
    view.rejectReentry([{ host: '127.0.0.1', port: 8080 }]);
    expect(await view.isReentry('127.0.0.1', 8080)).toBe(true);
    // A new consensus replaces the relay set.
    src.consensus = consensus([relay(id(3), 9002)]);
    expect(await view.isReentry('127.0.0.1', 9001)).toBe(false);
    expect(await view.isReentry('127.0.0.1', 9002)).toBe(true);
  });
});

describe('NetworkView over the shared ConsensusCache', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reaches a relay listed after its last consensus at once after bootstrap; within the cache window a miss is refused at once', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    let serving: FetchedConsensus = fetched([2, 3]);
    let fetches = 0;
    const cache = new ConsensusCache(
      async () => {
        fetches++;
        return serving;
      },
      { uniform: () => 0.5, minRefreshMs: 5_000 },
    );
    cache.start();
    await cache.ready();
    const view = viewOverCache(cache);
    const t = (b: number) => ({ identity: id(b), address: '127.0.0.1', port: 9000 + b });
    expect(await view.checkExtend(t(2))).toBeNull();
    expect(fetches).toBe(1);
    // Relay 4 joins; a client with the newer consensus extends to it 100 ms after our bootstrap.
    await vi.advanceTimersByTimeAsync(100);
    serving = fetched([2, 3, 4], 1);
    expect(await view.checkExtend(t(4))).toBeNull();
    expect(fetches).toBe(2);
    // Relay 5 joins right after: within the cache's window the miss is refused at once (no fetch,
    // no wait), and the next miss after it fetches and finds it.
    serving = fetched([2, 3, 4, 5], 2);
    expect(await view.checkExtend(t(5))).toBe('unlisted');
    expect(fetches).toBe(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await view.checkExtend(t(5))).toBeNull();
    expect(fetches).toBe(3);
    // Hostile: 150 EXTEND2s naming unknown identities, 50 at once and then one by one: one fetch, all refused.
    await vi.advanceTimersByTimeAsync(5_000);
    const hostile = await Promise.all(Array.from({ length: 50 }, (_, i) => view.checkExtend(t(100 + i))));
    for (let i = 0; i < 100; i++) hostile.push(await view.checkExtend(t(150 + i)));
    expect(new Set(hostile)).toEqual(new Set(['unlisted']));
    expect(fetches).toBe(4);
    cache.stop();
  });
});

/** A consensus listing relays `ids` at 127.0.0.1:9000+id, valid `step` seconds after the clock's start. */
function fetched(ids: number[], step = 0): FetchedConsensus {
  const va = 1_700_000_000_000 + step * 1_000;
  const c = testConsensus(
    ids.map((b) => relay(id(b), 9000 + b)),
    { validAfterMs: va, freshUntilMs: va + 60_000, validUntilMs: va + 180_000 },
  );
  return { consensus: c, raw: new Uint8Array([step]) };
}
