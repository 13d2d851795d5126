// `shallot up` networks for the slow tests and the benches: the README's
// one-process network, and a `--process-per-node` one (every authority,
// relay and the client its own process).
import { ephemeralPort } from '../../services/testnet/ports.js';
import { type RunningNetwork, type UpOptions, up } from '../../services/testnet/up.js';

/** Progress that goes nowhere. */
export const SILENT_PROGRESS = { update: () => {}, line: () => {}, done: () => {} };

/**
 * The README's network in one process: 3 authorities, 6 relays (2 exits), one
 * onion service, 5 s voting, TLS, ntor, free SOCKS and HTTP tunnel ports
 * unless given; anything else as the caller overrides it.
 */
export async function upReadmeNetwork(
  o: Pick<UpOptions, 'dataDir'> & Partial<UpOptions>,
): Promise<RunningNetwork> {
  return up(
    {
      authorities: 3,
      relays: 6,
      exits: 2,
      onionServices: 1,
      instances: 1,
      introPoints: 3,
      votingInterval: 5,
      keyRotation: 0,
      basePort: 0,
      socksPort: o.socksPort ?? (await ephemeralPort()),
      httpTunnelPort: 'httpTunnelPort' in o ? o.httpTunnelPort : await ephemeralPort(),
      processPerNode: false,
      logLevel: 'warn',
      tls: true,
      handshake: 'ntor',
      vanguardsLite: false,
      clientAuth: false,
      bootstrapTimeout: 150,
      ...o,
    },
    SILENT_PROGRESS,
  );
}

/**
 * 3 authorities, 5 s voting, TLS, ntor unless asked, a free SOCKS port, 240 s
 * to bootstrap unless asked; the caller picks the relays (and onion services,
 * default none).
 */
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
        | 'instances'
        | 'introPoints'
        | 'bootstrapTimeout'
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
