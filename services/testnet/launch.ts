/**
 * What a `shallot up` launcher takes and gives back: the network's options
 * and the running network's state and stop. Both launchers
 * (launch-in-process.ts, launch-processes.ts) share `clientAuthFor`.
 */

import type { HandshakeName } from '../core/create-handshake.js';
import type { LogLevel } from '../net/log.js';
import { type ClientAuthLayout, prepareClientAuth } from './client-auth.js';
import type { NetworkState } from './state.js';

export interface UpOptions {
  authorities: number;
  relays: number;
  exits: number;
  onionServices: number;
  instances: number;
  introPoints: number;
  votingInterval: number;
  dataDir: string;
  keyRotation: number;
  basePort: number;
  socksPort: number;
  /** The client's HTTP CONNECT tunnel port, the next free one if taken (absent: no tunnel). */
  httpTunnelPort?: number;
  processPerNode: boolean;
  /** Worker threads (launch-workers.ts): authorities in one, relays dealt over the rest; absent or 1: one thread (launch-in-process.ts). */
  workers?: number;
  logLevel: LogLevel;
  tls: boolean;
  handshake: HandshakeName;
  /** Layer-2 vanguards for the client's and onion services' onion circuits (prop 333). */
  vanguardsLite: boolean;
  /** Onion services admit only the network's client, by client-authorization keys. */
  clientAuth: boolean;
  bootstrapTimeout: number;
  /** Consensus params the authorities vote (the DoS* limits and the like); none: each one's default. */
  consensusParams?: Record<string, number>;
  /** The client's MaxCircuitDirtiness, seconds (default C tor's 600). */
  maxCircuitDirtiness?: number;
}

export interface RunningNetwork {
  state: NetworkState;
  stop(): Promise<void>;
}

/** Client-authorization keys for `--client-auth` (none without onion services). */
export function clientAuthFor(o: UpOptions): Promise<ClientAuthLayout | null> {
  return o.clientAuth && o.onionServices > 0
    ? prepareClientAuth(o.dataDir, o.onionServices)
    : Promise.resolve(null);
}
