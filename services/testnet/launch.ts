/**
 * What a `shallot up` launcher takes and gives back: the network's options
 * and the running network's state and stop. Every launcher
 * (launch-in-process.ts and launch-workers.ts through launcher-thread.ts,
 * launch-processes.ts) shares `clientAuthFor` and the shaping options.
 */

import type { HandshakeName } from '../core/create-handshake.js';
import { placeNodes } from '../core/network-model.js';
import type { LinkShaping } from '../net/link-delay.js';
import type { LogLevel } from '../runtime/log.js';
import {
  bandwidthLimit,
  linkShaping,
  loadNetworkModel,
  namedShaping,
  onionShaping,
} from '../runtime/shaping-options.js';
import { type ClientAuthLayout, prepareClientAuth } from './client-auth.js';
import type { NetworkState } from './state.js';

/**
 * `shallot up`'s voting interval when none is given: 10 s, and 1 s per 50
 * relays past 500 (20 s at 1,000, 40 s at 2,000). The authorities' work
 * per round (their votes built, checked and exchanged, the consensus
 * computed, signed and verified by every reader: npm run bench's directory
 * section) grows with the relays, and it runs once per interval; a longer
 * interval keeps it a bounded share of a core and gives the vote and
 * distribution delays (a fifth of the interval each) and the peer
 * timeouts sized from them room for documents of a megabyte (issue 17: at
 * 1,000 relays and 10 s the three authorities' rounds overran their 2 s
 * delays on a loaded 2-core host). C tor's public network votes hourly.
 */
export function defaultVotingInterval(relays: number): number {
  return Math.max(10, Math.ceil(relays / 50));
}

/**
 * `shallot up`'s bootstrap deadline when none is given: 180 s, and 0.6 s
 * more per relay past 500 (relays start one after another in each worker
 * and the authorities test each before listing it).
 */
export function defaultBootstrapTimeout(relays: number): number {
  return Math.max(180, Math.ceil(180 + (relays - 500) * 0.6));
}

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
  /** Worker threads (launch-workers.ts): each authority in one of its own, relays dealt over N - 1 more; absent or 1: one thread (launch-in-process.ts). */
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
  /** Network model file (core/network-model.ts): latency between relays' and the client's locations. */
  networkModel?: string;
  /** Every relay's BandwidthRate, bytes/s (the model's per-node entries win). */
  bandwidthRate?: number;
  /** Every relay's BandwidthBurst, bytes (default: the rate). */
  bandwidthBurst?: number;
}

export type ShapingOptions = Pick<UpOptions, 'networkModel' | 'bandwidthRate' | 'bandwidthBurst'>;

/**
 * Checks the network model and bandwidth options against this network before
 * anything starts: every authority (`auth0`...), relay, onion service and
 * the client in a location, every node the model names present, every rate
 * as C tor allows (NetworkModelError, BandwidthOptionError).
 */
export function checkShaping(
  o: ShapingOptions & Pick<UpOptions, 'authorities' | 'relays' | 'onionServices'>,
): void {
  const model = o.networkModel ? loadNetworkModel(o.networkModel) : null;
  const limit = bandwidthLimit(o.bandwidthRate, o.bandwidthBurst);
  const relays = Array.from({ length: o.relays }, (_, i) => `relay${i}`);
  const auths = Array.from({ length: o.authorities }, (_, i) => `auth${i}`);
  const onions = Array.from({ length: o.onionServices }, (_, s) => onionModelName(s));
  if (model) placeNodes(model, [...auths, ...relays, 'client', ...onions]);
  for (const n of [...auths, ...relays, 'client']) linkShaping(n, model, isRelayName(n) ? limit : null);
}

/** Only relays take BandwidthRate (a relay option in C tor; Shallot's authorities relay no traffic). */
const isRelayName = (node: string) => /^relay[0-9]+$/.test(node);

/**
 * An onion service's name in the network model: `onion<s>`, the service
 * name state.json and the metrics use. All its instances share the
 * service's location (one operator's machines, as Onionbalance backends
 * usually are).
 */
export function onionModelName(service: number): string {
  return `onion${service}`;
}

/**
 * One onion-service instance's shaping: its links are named `onion<s>-<i>`,
 * the node name `shallot fault` and state.json use, and sit in the
 * service's location (explicit or the seeded draw), so its intro,
 * rendezvous and HSDir circuits cross the model's latency as relays' do.
 * No bandwidth limit: BandwidthRate is a relay option in C tor.
 */
export function onionShapingFor(o: ShapingOptions, service: number, instance: number): LinkShaping {
  const model = o.networkModel ? loadNetworkModel(o.networkModel) : null;
  const node = `${onionModelName(service)}-${instance}`;
  return onionShaping(onionModelName(service), node, model) ?? namedShaping(node);
}

/**
 * One node's shaping under these options (already checked by checkShaping):
 * a relay (`relayN`), an authority (`authN`: its reachability probes) or
 * the client; without a model or a limit, just its name, for link faults.
 */
export function shapingFor(o: ShapingOptions, node: string): LinkShaping {
  const model = o.networkModel ? loadNetworkModel(o.networkModel) : null;
  const limit = isRelayName(node) ? bandwidthLimit(o.bandwidthRate, o.bandwidthBurst) : null;
  return linkShaping(node, model, limit) ?? namedShaping(node);
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
