/**
 * Filling `shallot load` options from the network `shallot up` is running:
 * its data directory's state.json names the SOCKS address, the web target,
 * the onion addresses, every node's /metrics and the Prometheus targets
 * file, so `shallot load onion` needs no other option.
 *
 * Design notes: the file is read as plain JSON with only the fields used
 * here checked, rather than importing services/testnet (which depends on
 * every service, loadgen included); its format is `NetworkState` in
 * services/testnet/state.ts. Options given explicitly always win.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { processAlive } from '../runtime/cli.js';
import { LoadConfigError, type LoadInput } from './options.js';

interface StateNode {
  name?: unknown;
  role?: unknown;
  metrics?: unknown;
}

/** The parts of `shallot up`'s state.json the load generator uses. */
export interface UpState {
  socks: string;
  web: string | null;
  onionAddresses: string[];
  /** Onion services by name (the `service` label of their metrics) with their instance counts. */
  onionServices: { name: string; address: string; instances: number }[];
  /** one-process or process-per-node; null in state files without it. */
  mode: string | null;
  /** Relay processes the network started (null: one process, nodes not listed). */
  relays: number | null;
  targetsFile: string | null;
  clientMetrics: string | null;
  /** The launcher's pid (null in state files without one). */
  pid: number | null;
}

export function parseUpState(text: string, source: string): UpState {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new LoadConfigError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || typeof doc.socks !== 'string')
    throw new LoadConfigError(`${source}: not a shallot up state file (no "socks")`);
  const nodes = Array.isArray(doc.nodes) ? (doc.nodes as StateNode[]) : [];
  const withMetrics = (role: string) =>
    nodes.find((n) => n && n.role === role && typeof n.metrics === 'string')?.metrics as string | undefined;
  // One-process networks serve every node's metrics (client included) from the launcher.
  const clientMetrics = withMetrics('client') ?? withMetrics('launcher') ?? null;
  const services = Array.isArray(doc.onionServices)
    ? (doc.onionServices as { name?: unknown; address?: unknown; instances?: unknown }[])
    : [];
  return {
    socks: doc.socks,
    web: typeof doc.web === 'string' ? doc.web : null,
    onionAddresses: services.flatMap((s) => (typeof s?.address === 'string' ? [s.address] : [])),
    onionServices: services.flatMap((s) =>
      typeof s?.address === 'string' && typeof s.name === 'string'
        ? [{ name: s.name, address: s.address, instances: typeof s.instances === 'number' ? s.instances : 1 }]
        : [],
    ),
    mode: typeof doc.mode === 'string' ? doc.mode : null,
    relays: nodes.some((n) => n && n.role === 'relay')
      ? nodes.filter((n) => n && n.role === 'relay').length
      : null,
    targetsFile: typeof doc.targetsFile === 'string' ? doc.targetsFile : null,
    clientMetrics,
    pid: typeof doc.pid === 'number' ? doc.pid : null,
  };
}

export async function readUpState(dataDir: string): Promise<UpState> {
  const file = path.join(dataDir, 'state.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new LoadConfigError(
      `no running network in ${dataDir} (${file} not found; start one with shallot up)`,
    );
  }
  const s = parseUpState(text, file);
  if (s.pid !== null && !processAlive(s.pid))
    throw new LoadConfigError(
      `no running network in ${dataDir}: the network that wrote ${file} (pid ${s.pid}) has stopped`,
    );
  return s;
}

/**
 * `input` with unset options taken from the network: SOCKS address,
 * targets file (unless relay metrics were given), client metrics, and the
 * target, where `onion` (or `onion:<i>`) names the i-th onion service,
 * `web` the launcher's web target, and no target means the first onion
 * service (or the web target without one).
 */
export function applyUpState(input: LoadInput, s: UpState): LoadInput {
  const out: LoadInput = { ...input };
  out.socks ??= s.socks;
  if (
    out.targetsFile == null &&
    (out.relayMetrics === undefined || out.relayMetrics.length === 0) &&
    s.targetsFile
  )
    out.targetsFile = s.targetsFile;
  if (out.clientMetrics == null && s.clientMetrics) out.clientMetrics = s.clientMetrics;
  const t = out.target?.trim();
  const onion = t === undefined || t === '' ? null : /^onion(?::(\d+))?$/.exec(t);
  if (t === undefined || t === '') {
    const first = s.onionAddresses[0] ?? s.web;
    if (!first) throw new LoadConfigError('the network has no onion service or web target; give a target');
    out.target = first;
  } else if (onion) {
    const i = Number(onion[1] ?? 0);
    const addr = s.onionAddresses[i];
    if (!addr)
      throw new LoadConfigError(`the network has ${s.onionAddresses.length} onion service(s); no onion:${i}`);
    out.target = addr;
  } else if (t === 'web') {
    if (!s.web) throw new LoadConfigError('the network has no web target');
    out.target = s.web;
  }
  return out;
}
