// A relay's view of the consensus for the pivot checks: a miss refreshes
// once (a client may hold a newer consensus), refreshes are rate-limited
// and coalesced, and an exit with no consensus fails closed.
import { describe, expect, it } from 'vitest';
import type { Consensus } from '../../../services/core/dir/consensus.js';
import type { ConsensusRelay } from '../../../services/core/dir/relay-entry.js';
import { type ConsensusSource, NetworkView } from '../../../services/relay/network-view.js';
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
  async refreshConsensus(): Promise<void> {
    this.refreshes++;
    await new Promise((r) => setTimeout(r, 5));
    const next = this.queue.shift();
    if (next !== undefined && next !== null) this.consensus = next;
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
    expect(src.refreshes).toBe(1);
    expect(await new NetworkView(new FakeSource([null]), { reentryReject: [] }).checkExtend(t(9001))).toBe(
      'no-consensus',
    );
  });

  it('rate-limits refreshes and coalesces concurrent ones', async () => {
    let now = 0;
    const src = new FakeSource([]);
    src.consensus = consensus([relay(id(2), 9001)]);
    const view = new NetworkView(src, { reentryReject: [], minRefreshMs: 10_000, now: () => now });
    const all = await Promise.all(Array.from({ length: 50 }, () => view.listedAt(id(9))));
    expect(all.every((e) => e === undefined)).toBe(true);
    expect(src.refreshes).toBe(1);
    for (let i = 0; i < 50; i++) await view.listedAt(id(9));
    expect(src.refreshes).toBe(1);
    now = 10_000;
    await view.listedAt(id(9));
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
