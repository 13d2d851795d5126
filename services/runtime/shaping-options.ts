/**
 * What the relay, client and launcher CLIs share for link shaping: the
 * network model file, this node's location in it, and a relay's
 * BandwidthRate/BandwidthBurst checked as C tor checks them (config.c
 * options_validate_relay_bandwidth) before building a LinkShaping.
 *
 * Not in this module: parsing the model (core/network-model.ts), applying
 * it (link-delay.ts).
 */
import { readFileSync } from 'node:fs';
import { ShallotError } from '../core/errors.js';
import {
  locationOf,
  type NetworkModel,
  NetworkModelError,
  parseNetworkModel,
} from '../core/network-model.js';
import { BandwidthLimiter, type LinkShaping } from '../net/link-delay.js';

/** C tor ROUTER_REQUIRED_MIN_BANDWIDTH: a relay's BandwidthRate must be at least 75 KiB/s. */
export const MIN_RELAY_BANDWIDTH_RATE = 75 * 1024;

export class BandwidthOptionError extends ShallotError {
  constructor(reason: string) {
    super('ERR_BANDWIDTH_OPTION', `bandwidth: ${reason}`);
  }
}

/** Reads and validates a model file; every failure is a NetworkModelError. */
export function loadNetworkModel(file: string): NetworkModel {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new NetworkModelError(
      `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      file,
    );
  }
  return parseNetworkModel(text);
}

/**
 * The model from a file or inline JSON (SHALLOT_NETWORK_MODEL_JSON, as the
 * operator passes an OnionNetwork's spec.networkModel), or null for none.
 */
export function networkModelFrom(file: string | undefined, json: string | undefined): NetworkModel | null {
  if (file && json) throw new NetworkModelError('give a file or inline JSON, not both', '(options)');
  if (file) return loadNetworkModel(file);
  return json ? parseNetworkModel(json) : null;
}

export interface BandwidthLimit {
  /** Bytes/s. */
  rate: number;
  /** Bytes; C tor: RelayBandwidthBurst defaults to RelayBandwidthRate. */
  burst: number;
}

/** C tor's rules: rate at least 75 KiB/s, burst defaults to the rate and may not be below it. */
export function bandwidthLimit(rate: number | undefined, burst: number | undefined): BandwidthLimit | null {
  if (rate === undefined) {
    if (burst !== undefined) throw new BandwidthOptionError('a burst needs a rate');
    return null;
  }
  if (rate < MIN_RELAY_BANDWIDTH_RATE)
    throw new BandwidthOptionError(
      `rate ${rate} B/s is below the relay minimum ${MIN_RELAY_BANDWIDTH_RATE} (C tor)`,
    );
  const b = burst ?? rate;
  if (b < rate) throw new BandwidthOptionError(`burst ${b} must be at least the rate ${rate} (C tor)`);
  return { rate, burst: b };
}

/**
 * A node's shaping, or null when it has neither a model nor a limit. The
 * model's own entry for the node (`bandwidth`) wins over `networkLimit`,
 * the network-wide flag.
 */
export function linkShaping(
  node: string,
  model: NetworkModel | null,
  networkLimit: BandwidthLimit | null,
  location?: string,
): LinkShaping | null {
  const own = model?.bandwidth.get(node);
  const limit = own ? bandwidthLimit(own.rate, own.burst) : networkLimit;
  if (!model && !limit) return null;
  if (location !== undefined && model && !model.locations.includes(location))
    throw new NetworkModelError(`unknown location "${location}"`, 'location');
  return {
    node,
    model,
    location: model ? (location ?? locationOf(model, node)) : null,
    limiter: limit ? new BandwidthLimiter(limit.rate, limit.burst) : null,
  };
}

/**
 * An onion-service instance's shaping under a model, or null without one:
 * its links are named `linkNode` (what link faults look for) and sit in
 * `location`, else where the model places the service's name `service`
 * (explicitly or by the seeded draw), so every instance of a service shares
 * its place. No bandwidth limit: BandwidthRate is a relay option in C tor.
 */
export function onionShaping(
  service: string,
  linkNode: string,
  model: NetworkModel | null,
  location?: string,
): LinkShaping | null {
  if (!model) return null;
  return linkShaping(linkNode, model, null, location ?? locationOf(model, service));
}

/**
 * A node's links with no latency and no limit, named all the same: the
 * launchers give every relay and the client a name so link faults
 * (link-faults.ts: cut, slow, pause) can find the links between two nodes.
 */
export function namedShaping(node: string): LinkShaping {
  return { node, model: null, location: null, limiter: null };
}
