// relay/channel-guard.ts idle timeouts, as C tor's
// channelpadding_get_channel_idle_timeout: a client's channel after 180 s
// plus up to half again, a listed relay's after 3/4 of nf_conntimeout_relays
// plus up to half of it (45-75 min by default), the param read from the
// consensus within C tor's bounds (60 s to a week).
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Channel } from '../../../services/net/channel.js';
import type { Link } from '../../../services/net/transport.js';
import {
  ChannelGuard,
  clientIdleLimit,
  relayIdleBaseMs,
  relayIdleLimit,
} from '../../../services/relay/channel-guard.js';
import { clientDosParams } from '../../../services/relay/client-dos.js';

describe('idle limits', () => {
  it("a client's: the base plus up to half of it", () => {
    expect(clientIdleLimit(180_000, 0)).toBe(180_000);
    expect(clientIdleLimit(180_000, 0.5)).toBe(225_000);
    expect(clientIdleLimit(180_000, 0.999999)).toBe(269_999);
  });

  it("a listed relay's: 3/4 of the base plus up to half of it (45-75 min for an hour)", () => {
    expect(relayIdleLimit(3_600_000, 0)).toBe(2_700_000);
    expect(relayIdleLimit(3_600_000, 0.5)).toBe(3_600_000);
    expect(relayIdleLimit(3_600_000, 0.999999)).toBe(4_499_998);
  });

  it('the relay base: nf_conntimeout_relays from the consensus within 60 s to a week, else the configured one', () => {
    expect(relayIdleBaseMs({}, 3_600_000)).toBe(3_600_000);
    expect(relayIdleBaseMs({ nf_conntimeout_relays: 300 }, 3_600_000)).toBe(300_000);
    expect(relayIdleBaseMs({ nf_conntimeout_relays: 1 }, 3_600_000)).toBe(60_000);
    expect(relayIdleBaseMs({ nf_conntimeout_relays: 10 ** 9 }, 3_600_000)).toBe(7 * 24 * 3_600_000);
    expect(relayIdleBaseMs({ nf_conntimeout_relays: 1.5 }, 3_600_000)).toBe(3_600_000);
  });
});

/** A link and its channel with no circuits, as the guard sees them. */
function idleChannel(identity: Uint8Array) {
  const link = Object.assign(new EventEmitter(), { remoteAddress: '10.0.0.7' }) as unknown as Link;
  const closed: string[] = [];
  const emitter = new EventEmitter();
  const ch = Object.assign(emitter, {
    link,
    peerIdentity: identity,
    partialCellSince: null,
    circuitCount: 0,
    close: (why: string) => {
      closed.push(why);
      emitter.emit('closed');
    },
  }) as unknown as Channel;
  return { link, ch, closed };
}

describe('ChannelGuard idle sweep', () => {
  it("closes a listed relay's idle channel after the consensus's nf_conntimeout_relays (jittered), a client's after its own", async () => {
    let now = 0;
    let params: Record<string, number> = { nf_conntimeout_relays: 120 };
    const refused: string[] = [];
    const guard = new ChannelGuard({
      ownAddress: '10.0.0.1',
      params: () => clientDosParams(params),
      isListedRelay: async (id) => id[0] === 1,
      idleClientMs: 180_000,
      idleRelayMs: () => relayIdleBaseMs(params, 3_600_000),
      partialCellMs: 30_000,
      refused: (d) => refused.push(d),
      now: () => now,
      uniform: () => 0.5,
    });
    const relay = idleChannel(new Uint8Array([1]));
    const client = idleChannel(new Uint8Array([2]));
    for (const c of [relay, client]) {
      expect(guard.accept(c.link)).toBe(true);
      guard.adopt(c.ch);
    }
    await new Promise((r) => setImmediate(r)); // isListedRelay answered
    // A later consensus changing the param does not move a limit already set.
    params = { nf_conntimeout_relays: 3_600 };
    guard.sweep(); // both idle from t = 0
    // Relay: 3/4 x 120 s + 0.5 x 60 s = 120 s. Client: 180 s + 0.5 x 90 s = 225 s.
    now = 120_000;
    guard.sweep();
    expect(relay.closed).toEqual([]);
    now = 120_001;
    guard.sweep();
    expect(relay.closed).toEqual(['idle: no circuits']);
    expect(client.closed).toEqual([]);
    now = 225_001;
    guard.sweep();
    expect(client.closed).toEqual(['idle: no circuits']);
    expect(refused).toEqual(['idle_channel', 'idle_channel']);
  });
});
