// A relay's view of the network over a real consensus cache, wired the way
// a relay wires it (services/relay/node.ts: the publisher hands the cache's
// consensus and on-demand refresh to NetworkView), for the tests of EXTEND2
// targets listed after the relay's last fetch.
import type { ConsensusCache } from '../../services/relay/consensus-cache.js';
import { NetworkView } from '../../services/relay/network-view.js';

export function viewOverCache(cache: ConsensusCache): NetworkView {
  return new NetworkView(
    {
      get consensus() {
        return cache.consensus;
      },
      refreshConsensus: () => cache.refresh(),
    },
    { reentryReject: [] },
  );
}
