/**
 * Network model: named locations, one-way latency (and jitter) between them,
 * and the location of each node, in the spirit of Shadow's network graphs.
 * Shallot's links then delay cells by the model (net/link-delay.ts), so a
 * testnet on one host or in one cluster shows the round trips a real Tor
 * network has (tor-spec §5: a 3-hop circuit costs three round trips to
 * build, each one the sum of the links it crosses both ways).
 *
 * Overview: the model is JSON:
 *   {
 *     "locations": ["us", "eu", "asia"],
 *     "links": [{ "from": "us", "to": "eu", "latencyMs": 40, "jitterMs": 5 }, ...],
 *     "defaultLatencyMs": 50,        // pairs not listed (optional)
 *     "nodes": { "relay1": "eu" },   // explicit placement (optional)
 *     "assign": "random", "seed": 7, // others placed by seeded draw (optional)
 *     "bandwidth": { "relay2": { "rate": 1048576, "burst": 2097152 } }  // BandwidthRate/Burst, bytes (optional)
 *   }
 * Links are symmetric; `from` = `to` is the latency inside one location
 * (0 unless listed or defaulted).
 *
 * Not in this module: applying the delay (net/link-delay.ts), reading files.
 *
 * Design notes: everything wrong with a model is one typed error
 * (NetworkModelError, code ERR_NETWORK_MODEL) naming the field, raised
 * before any node starts, so a bad file never yields a half-delayed network.
 *
 * Limitations: latency is per location pair, not per node pair; no packet
 * loss (links are reliable byte pipes, as TLS over TCP is for Tor).
 */
import { ShallotError } from './errors.js';

export class NetworkModelError extends ShallotError {
  constructor(reason: string, field: string) {
    super('ERR_NETWORK_MODEL', `network model: ${field}: ${reason}`, { field });
  }
}

export interface LinkLatency {
  /** One-way latency, ms. */
  latencyMs: number;
  /** Each cell batch's delay is latencyMs + uniform [-jitterMs, +jitterMs], never below 0. */
  jitterMs: number;
}

export interface NetworkModel {
  locations: readonly string[];
  /** Explicit placement, node name -> location. */
  nodes: ReadonlyMap<string, string>;
  /** Nodes not listed are placed by a seeded draw when true; otherwise they are an error. */
  assignRandom: boolean;
  seed: number;
  /** Key `a|b` with a <= b. */
  links: ReadonlyMap<string, LinkLatency>;
  /** Per-node BandwidthRate (bytes/s) and optional BandwidthBurst (bytes); checked against C tor's rules where applied. */
  bandwidth: ReadonlyMap<string, { rate: number; burst?: number }>;
}

/** Far above any real one-way latency (the Moon is 1.3 s away): a larger number is a unit mistake. */
const MAX_LATENCY_MS = 10_000;
/** A location's name (and what the CRD and the chart's schema allow for one). */
export const LOCATION_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';
const NAME = new RegExp(LOCATION_PATTERN);

const pairKey = (a: string, b: string) => (a <= b ? `${a}|${b}` : `${b}|${a}`);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function ms(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new NetworkModelError('must be a number', field);
  if (v < 0) throw new NetworkModelError(`must not be negative (got ${v})`, field);
  if (v > MAX_LATENCY_MS) throw new NetworkModelError(`must be at most ${MAX_LATENCY_MS} ms`, field);
  return v;
}

/** Parses and validates a model (JSON text or an already parsed value, e.g. from a CRD). */
export function parseNetworkModel(input: string | unknown): NetworkModel {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (e) {
      throw new NetworkModelError(`not JSON (${(e as Error).message})`, '(file)');
    }
  }
  if (!isRecord(raw)) throw new NetworkModelError('must be an object', '(top level)');
  const known = new Set([
    'locations',
    'links',
    'defaultLatencyMs',
    'defaultJitterMs',
    'nodes',
    'assign',
    'seed',
    'bandwidth',
  ]);
  for (const k of Object.keys(raw)) if (!known.has(k)) throw new NetworkModelError('unknown field', k);

  const locs = raw.locations;
  if (!Array.isArray(locs) || locs.length === 0)
    throw new NetworkModelError('must be a non-empty list of names', 'locations');
  const locations: string[] = [];
  for (const [i, l] of locs.entries()) {
    if (typeof l !== 'string' || !NAME.test(l))
      throw new NetworkModelError('not a valid name', `locations[${i}]`);
    if (locations.includes(l)) throw new NetworkModelError(`duplicate location "${l}"`, `locations[${i}]`);
    locations.push(l);
  }
  const knownLocation = (l: unknown, field: string): string => {
    if (typeof l !== 'string' || !locations.includes(l))
      throw new NetworkModelError(`unknown location ${JSON.stringify(l)}`, field);
    return l;
  };

  const links = new Map<string, LinkLatency>();
  const rawLinks = raw.links ?? [];
  if (!Array.isArray(rawLinks)) throw new NetworkModelError('must be a list', 'links');
  for (const [i, l] of rawLinks.entries()) {
    const f = `links[${i}]`;
    if (!isRecord(l)) throw new NetworkModelError('must be an object', f);
    const a = knownLocation(l.from, `${f}.from`);
    const b = knownLocation(l.to, `${f}.to`);
    const latencyMs = ms(l.latencyMs, `${f}.latencyMs`);
    const jitterMs = l.jitterMs === undefined ? 0 : ms(l.jitterMs, `${f}.jitterMs`);
    if (links.has(pairKey(a, b))) throw new NetworkModelError(`${a} <-> ${b} given twice`, f);
    links.set(pairKey(a, b), { latencyMs, jitterMs });
  }
  const hasDefault = raw.defaultLatencyMs !== undefined;
  const dflt: LinkLatency = {
    latencyMs: hasDefault ? ms(raw.defaultLatencyMs, 'defaultLatencyMs') : 0,
    jitterMs: raw.defaultJitterMs === undefined ? 0 : ms(raw.defaultJitterMs, 'defaultJitterMs'),
  };
  for (const a of locations)
    for (const b of locations) {
      if (links.has(pairKey(a, b))) continue;
      // A location to itself defaults to 0 ms; two different ones need a number.
      if (a !== b && !hasDefault)
        throw new NetworkModelError(`no latency between "${a}" and "${b}" and no defaultLatencyMs`, 'links');
      links.set(pairKey(a, b), a === b && !hasDefault ? { latencyMs: 0, jitterMs: 0 } : dflt);
    }

  const nodes = new Map<string, string>();
  if (raw.nodes !== undefined) {
    if (!isRecord(raw.nodes))
      throw new NetworkModelError('must be an object of node name to location', 'nodes');
    for (const [n, l] of Object.entries(raw.nodes)) nodes.set(n, knownLocation(l, `nodes.${n}`));
  }
  if (raw.assign !== undefined && raw.assign !== 'random' && raw.assign !== 'explicit')
    throw new NetworkModelError('must be "random" or "explicit"', 'assign');
  const seed = raw.seed ?? 1;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
    throw new NetworkModelError('must be a non-negative integer', 'seed');
  const bandwidth = new Map<string, { rate: number; burst?: number }>();
  if (raw.bandwidth !== undefined) {
    if (!isRecord(raw.bandwidth))
      throw new NetworkModelError('must be an object of node name to limits', 'bandwidth');
    for (const [n, b] of Object.entries(raw.bandwidth)) {
      const f = `bandwidth.${n}`;
      if (!isRecord(b)) throw new NetworkModelError('must be { "rate": bytes/s, "burst"?: bytes }', f);
      const int = (v: unknown, k: string) => {
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
          throw new NetworkModelError('must be a positive integer', `${f}.${k}`);
        return v;
      };
      bandwidth.set(n, {
        rate: int(b.rate, 'rate'),
        ...(b.burst !== undefined ? { burst: int(b.burst, 'burst') } : {}),
      });
    }
  }
  return { locations, nodes, assignRandom: raw.assign === 'random', seed, links, bandwidth };
}

/**
 * FNV-1a of seed and name, then murmur3's finalizer (FNV's low bits alone
 * barely move with the seed): a placement that depends on neither node
 * order nor node count.
 */
function seededIndex(seed: number, name: string, n: number): number {
  let h = 0x811c9dc5;
  for (const c of `${seed}:${name}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) % n;
}

/** One node's location: explicit first, then the seeded draw; a node in no location is an error. */
export function locationOf(model: NetworkModel, name: string): string {
  const explicit = model.nodes.get(name);
  if (explicit) return explicit;
  if (model.assignRandom)
    return model.locations[seededIndex(model.seed, name, model.locations.length)] as string;
  throw new NetworkModelError(
    `node "${name}" is in no location (list it or set "assign": "random")`,
    'nodes',
  );
}

/** The location of each node of a whole network; a node the model names that the network lacks is an error too. */
export function placeNodes(model: NetworkModel, names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of names) out.set(name, locationOf(model, name));
  for (const n of model.nodes.keys())
    if (!names.includes(n)) throw new NetworkModelError(`node "${n}" is not in this network`, `nodes.${n}`);
  return out;
}

/** One-way latency between two locations (both known: the model covers every pair). */
export function latencyBetween(model: NetworkModel, a: string, b: string): LinkLatency {
  const l = model.links.get(pairKey(a, b));
  if (!l) throw new NetworkModelError(`unknown location pair ${a} <-> ${b}`, 'links');
  return l;
}

/** One draw of a link's delay: latency plus uniform jitter in [-j, +j], never negative. `u` in [0, 1). */
export function drawDelay(l: LinkLatency, u: number): number {
  return Math.max(0, l.latencyMs + (2 * u - 1) * l.jitterMs);
}

/**
 * The locations of a path's hops, in order, joined by ">" ("eu>eu>asia"),
 * for metrics by location; a hop the model cannot place (a relay it does
 * not list, in a model without random assignment) is "unknown".
 */
export function pathLocations(model: NetworkModel, names: readonly string[]): string {
  return names
    .map((n) => {
      try {
        return locationOf(model, n);
      } catch {
        return 'unknown';
      }
    })
    .join('>');
}
