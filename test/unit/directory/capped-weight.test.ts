// A relay's BandwidthRate reaches the consensus weight (issue 18): its
// descriptor advertises min(bandwidth, rate) (relay/node.ts
// advertisedBandwidth, C tor router_get_advertised_bandwidth) and the
// authority's next votes weight it below uncapped relays, both on the claim
// (first vote) and once the scanner has measured it (next vote), where every
// relay measured as fast since the scanner's 64 KiB fit in any burst.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../services/core/bytes.js';
import { signRelayDescriptor } from '../../../services/core/dir/descriptor.js';
import type { VoteRelay } from '../../../services/core/dir/relay-entry.js';
import { DescriptorStore } from '../../../services/directory/descriptors.js';
import { type ProbeResult, ReachabilityTester } from '../../../services/directory/reachability.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { advertisedBandwidth } from '../../../services/relay/node.js';
import { silentLogger } from '../../../services/runtime/log.js';
import { bandwidthLimit, linkShaping } from '../../../services/runtime/shaping-options.js';
import { descriptor, hexOf, NOW, seedOf } from '../../helpers/dir-documents.js';

/** Every relay up and measured at 20 MB/s: loopback, where all relays look alike to the scanner. */
class LoopbackTester extends ReachabilityTester {
  override async probe(): Promise<ProbeResult> {
    return 'up';
  }
  override async measure(): Promise<number | undefined> {
    return 20_000_000;
  }
}

const MiB = 1024 * 1024;

describe('a capped relay in the votes', () => {
  it('weighs less than uncapped ones on the claim and after measurement', async () => {
    const store = new DescriptorStore({
      log: silentLogger,
      metrics: metricsFor(new Registry()).directory,
      name: 'a1',
      now: () => NOW,
      opts: { votingIntervalSec: 5, testnet: true },
      intervalMs: 5_000,
      authorityAddresses: new Set(),
    });
    store.open(new LoopbackTester({ timeoutMs: 1_000, concurrency: 4 }));
    const capped = linkShaping('relay3', null, bandwidthLimit(MiB, undefined));
    for (const n of [1, 2, 3]) {
      const bw = advertisedBandwidth({ bandwidth: 5_000_000, shaping: n === 3 ? capped : null });
      // Distinct addresses: AuthDirMaxServersPerAddr (2) would drop one on a shared one.
      store.accept(signRelayDescriptor(descriptor(n, { bandwidth: bw, address: `127.0.0.${n}` }), seedOf(n)));
    }
    const weight = (rs: VoteRelay[], n: number) => {
      const r = rs.find((x) => toHex(x.identity) === hexOf(n));
      return r?.measuredBandwidth ?? r?.bandwidth;
    };
    await new Promise((r) => setTimeout(r, 50));
    const first = (await store.voteRelays(1_000))?.relays ?? [];
    expect(weight(first, 3)).toBe(MiB);
    expect(weight(first, 1)).toBe(5_000_000);
    await new Promise((r) => setTimeout(r, 50));
    const next = (await store.voteRelays(1_000))?.relays ?? [];
    const m = (n: number) => next.find((x) => toHex(x.identity) === hexOf(n))?.measuredBandwidth;
    expect(m(1)).toBe(5_000_000);
    expect(m(2)).toBe(5_000_000);
    expect(m(3)).toBe(MiB);
    store.close();
  });
});
