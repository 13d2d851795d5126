// A `shallot up --process-per-node` network for the slow tests and the
// process bench: every authority, relay and the client its own process.
import { ephemeralPort } from '../../services/testnet/ports.js';
import { type RunningNetwork, type UpOptions, up } from '../../services/testnet/up.js';

/** Progress that goes nowhere. */
export const SILENT_PROGRESS = { update: () => {}, line: () => {}, done: () => {} };

/** 3 authorities, 5 s voting, TLS, ntor unless asked, a free SOCKS port; the caller picks the relays (and onion services, default none). */
export async function upProcessNetwork(
  o: Pick<UpOptions, 'relays' | 'exits' | 'dataDir' | 'logLevel'> &
    Partial<
      Pick<
        UpOptions,
        | 'onionServices'
        | 'handshake'
        | 'clientAuth'
        | 'vanguardsLite'
        | 'maxCircuitDirtiness'
        | 'consensusParams'
        | 'httpTunnelPort'
      >
    >,
): Promise<RunningNetwork> {
  return up(
    {
      authorities: 3,
      onionServices: 0,
      instances: 1,
      introPoints: 3,
      votingInterval: 5,
      keyRotation: 0,
      basePort: 0,
      socksPort: await ephemeralPort(),
      processPerNode: true,
      tls: true,
      handshake: 'ntor',
      clientAuth: false,
      vanguardsLite: false,
      bootstrapTimeout: 240,
      ...o,
    },
    SILENT_PROGRESS,
  );
}

/** The client's SOCKS port from the network state ("host:port"). */
export const socksPortOf = (net: RunningNetwork): number => Number(net.state.socks.split(':')[1]);
