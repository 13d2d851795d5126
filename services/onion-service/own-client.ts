/**
 * The options of an onion service's own client, the one that builds its
 * introduction, rendezvous and HSDir circuits (rend-spec-v3 §3, §4): no
 * SOCKS port, no pre-built circuits (every circuit of a service ends at a
 * relay it was told or chose for the purpose), and each new consensus
 * fetched as soon as it is out, since the service's HSDir ring must not lag
 * its clients'. One place for `onion-service/main.ts` (a service process)
 * and `testnet/onion.ts` (services inside `shallot up`).
 */

import type { CircuitManagerOptions } from '../client/circuit-options.js';
import type { ClientOptions } from '../client/client.js';

export function serviceClientOptions(
  network: Pick<ClientOptions, 'authorities' | 'torAuthorities'>,
  circuits: Pick<Partial<CircuitManagerOptions>, 'tls' | 'handshake' | 'vanguardsLite' | 'shaping'>,
): ClientOptions {
  const { shaping, ...rest } = circuits;
  return {
    ...network,
    socksHost: '127.0.0.1',
    socksPort: null,
    refreshPromptly: true,
    circuits: { ...rest, prebuild: 0, ...(shaping ? { shaping } : {}) },
  };
}
