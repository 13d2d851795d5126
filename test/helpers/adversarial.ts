// The harness every adversarial suite (test/slow/adversarial-*.test.ts)
// shares: a real `shallot up --process-per-node` network, honest fetches
// through its SOCKS port (exit and onion), a liveness check of every node
// process (pid alive and /healthz answering), and metric sums scraped from
// the nodes. An attack test runs its attack, then asserts that no process
// died or stopped answering, that honest fetches kept succeeding (>= 19/20)
// during and after, and that the defence's metric counted the refusals.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { httpGet } from '../../services/loadgen/http-get.js';
import { type Snapshot, scrape, sumOf } from '../../services/loadgen/scrape.js';
import type { NodeEntry } from '../../services/testnet/state.js';
import type { RunningNetwork, UpOptions } from '../../services/testnet/up.js';
import { socksConnect } from './socks-client.js';
import { socksPortOf, upProcessNetwork } from './testnet.js';

export interface AdversarialNet {
  net: RunningNetwork;
  /** The exit target's "host:port" (the built-in HTTP backend on 127.0.0.1). */
  web: { host: string; port: number };
  onion: string | null;
  socksPort: number;
  stop(): Promise<void>;
}

/** A process-per-node network: 3 authorities, `relays` relays (default 6, 3 exits), one onion service unless asked. */
export async function startAdversarialNet(
  o: Partial<Pick<UpOptions, 'relays' | 'exits' | 'onionServices' | 'handshake'>> = {},
): Promise<AdversarialNet> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-adv-'));
  const net = await upProcessNetwork({
    relays: o.relays ?? 6,
    exits: o.exits ?? 3,
    onionServices: o.onionServices ?? 1,
    dataDir,
    logLevel: 'warn',
    ...(o.handshake ? { handshake: o.handshake } : {}),
  });
  const [host, port] = (net.state.web ?? '').split(':');
  return {
    net,
    web: { host: host ?? '127.0.0.1', port: Number(port) },
    onion: net.state.onionServices[0]?.address ?? null,
    socksPort: socksPortOf(net),
    stop: async () => {
      await net.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface FetchTally {
  ok: number;
  total: number;
  failures: string[];
}

/** One honest GET of `size` bytes through the network's SOCKS port; resolves true when the body arrived whole. */
async function fetchOnce(a: AdversarialNet, host: string, port: number, size: number, timeoutMs: number) {
  const signal = AbortSignal.timeout(timeoutMs);
  const s = await socksConnect(a.socksPort, host, port, { timeoutMs });
  try {
    const r = await httpGet(s, { host, path: `/bytes/${size}`, signal });
    if (r.bodyBytes !== size) throw new Error(`got ${r.bodyBytes} of ${size} bytes`);
  } finally {
    s.destroy();
  }
}

/**
 * `n` honest fetches, alternating exit and onion target when the network has
 * an onion service, `concurrency` at a time. Each gets `timeoutMs`.
 */
export async function honestFetches(
  a: AdversarialNet,
  n = 20,
  o: { size?: number; timeoutMs?: number; concurrency?: number; onion?: boolean } = {},
): Promise<FetchTally> {
  const tally: FetchTally = { ok: 0, total: n, failures: [] };
  const useOnion = (o.onion ?? true) && a.onion !== null;
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const onion = useOnion && i % 2 === 1;
      const [host, port] = onion ? [a.onion as string, 80] : [a.web.host, a.web.port];
      try {
        await fetchOnce(a, host, port, o.size ?? 4096, o.timeoutMs ?? 30_000);
        tally.ok++;
      } catch (e) {
        tally.failures.push(`${onion ? 'onion' : 'exit'}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 2 }, worker));
  return tally;
}

export interface NodeHealth {
  name: string;
  role: NodeEntry['role'];
  alive: boolean;
  healthy: boolean;
}

/** Every node process: is its pid alive and does its /healthz answer 200 within 3 s? */
export async function nodeHealth(a: AdversarialNet): Promise<NodeHealth[]> {
  return Promise.all(
    a.net.state.nodes
      .filter((n) => n.pid !== undefined)
      .map(async (n) => {
        let alive = true;
        try {
          process.kill(n.pid as number, 0);
        } catch {
          alive = false;
        }
        const healthy = await fetch(`http://${n.metrics}/healthz`, { signal: AbortSignal.timeout(3_000) })
          .then((r) => r.ok)
          .catch(() => false);
        return { name: n.name, role: n.role, alive, healthy };
      }),
  );
}

/** The nodes that died or stopped answering (empty when all is well). */
export async function unhealthyNodes(a: AdversarialNet): Promise<NodeHealth[]> {
  return (await nodeHealth(a)).filter((h) => !h.alive || !h.healthy);
}

/** Scrapes the nodes of `role` (all nodes when omitted). */
export function scrapeNodes(a: AdversarialNet, role?: NodeEntry['role']): Promise<Snapshot> {
  const urls = a.net.state.nodes
    .filter((n) => n.metrics && (role === undefined || n.role === role))
    .map((n) => `http://${n.metrics}/metrics`);
  return scrape(urls);
}

/** Sum of a metric over the nodes of `role`, filtered by labels. */
export async function metricSum(
  a: AdversarialNet,
  name: string,
  where: Record<string, string> = {},
  role?: NodeEntry['role'],
): Promise<number> {
  return sumOf(await scrapeNodes(a, role), name, where);
}

/** The node entries of one role. */
export const nodesOf = (a: AdversarialNet, role: NodeEntry['role']): NodeEntry[] =>
  a.net.state.nodes.filter((n) => n.role === role);
