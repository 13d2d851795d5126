// An onion service's place in the network model (issue 18), end to end
// through `shallot up`: two onion services on one network, onion0 beside
// everything (0 ms) and onion1 in a location 100 ms one way from every
// other, and the SOCKS client's connect phases
// (shallot_onion_connect_phase_seconds) to each compared with what the
// round trips over the service's one far link predict (rend-spec-v3 §3.3,
// §4; tor-spec §5):
// - rendezvous (INTRODUCE_ACK → RENDEZVOUS2): INTRODUCE2 reaches the
//   service (+100 ms), it builds 3 hops to the rendezvous point, each hop's
//   round trip crossing its link both ways (+3·200), and RENDEZVOUS1 leaves
//   over it (+100): 800 ms more for onion1;
// - stream (BEGIN → CONNECTED): one crossing each way, 200 ms more;
// - introduction (until INTRODUCE_ACK from the intro point): the service
//   takes no part, so about the same.
// Differences of means over interleaved connects, with a generous band:
// the machine is shared, so no absolute speed is asserted. Thread mode and
// --process-per-node (where the model reaches the service's own process by
// --network-model). Needs `npx tsc -p tsconfig.json` (dist/).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetworkState } from '../../services/testnet/state.js';
import { socksConnect } from '../helpers/socks-client.js';
import { collectOutput, smallUpArgs, waitUpReady } from '../helpers/up-cli.js';

const repo = path.resolve(import.meta.dirname, '../..');
const RELAYS = 6;
const FAR_MS = 100;
/** Connects per service, interleaved so the machine's load falls on both alike. */
const CONNECTS = 5;
const PHASES = ['introduction', 'rendezvous', 'stream'] as const;

const model = {
  locations: ['here', 'far'],
  links: [{ from: 'here', to: 'far', latencyMs: FAR_MS }],
  nodes: {
    ...Object.fromEntries(Array.from({ length: RELAYS }, (_, i) => [`relay${i}`, 'here'])),
    client: 'here',
    auth0: 'here',
    auth1: 'here',
    auth2: 'here',
    onion0: 'here',
    onion1: 'far',
  },
};

/** Sum and count of each phase in one /metrics text (all label sets summed). */
function phaseTotals(text: string): Map<string, { sum: number; count: number }> {
  const out = new Map<string, { sum: number; count: number }>();
  const re = /^shallot_onion_connect_phase_seconds_(sum|count)\{([^}]*)\} (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const phase = /phase="([^"]+)"/.exec(m[2] ?? '')?.[1];
    if (!phase) continue;
    const t = out.get(phase) ?? { sum: 0, count: 0 };
    t[m[1] as 'sum' | 'count'] += Number(m[3]);
    out.set(phase, t);
  }
  return out;
}

describe.each([
  ['threads', []],
  ['--process-per-node', ['--process-per-node']],
])('shallot up (%s): onion services placed by the network model', (_mode, flags) => {
  let dataDir: string;
  let child: ChildProcess;
  let state: NetworkState;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-onionplace-'));
    const modelFile = path.join(dataDir, 'model.json');
    await writeFile(modelFile, JSON.stringify(model));
    child = spawn(
      process.execPath,
      [
        path.join(repo, 'dist/services/testnet/main.js'),
        'up',
        ...flags,
        ...(await smallUpArgs(path.join(dataDir, 'net'), RELAYS, 2)),
        '--onion-services',
        '2',
        '--network-model',
        modelFile,
      ],
      { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = collectOutput(child);
    state = await waitUpReady(child, out, path.join(dataDir, 'net'), 240_000);
  }, 250_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('the far service adds its link round trips to rendezvous and stream, not to introduction', async () => {
    // The SOCKS client's metrics: the launcher's in thread mode, its own process's otherwise.
    const node =
      state.nodes.find((n) => n.role === 'client') ?? state.nodes.find((n) => n.role === 'launcher');
    expect(node?.metrics).toBeTruthy();
    const totals = async () => phaseTotals(await (await fetch(`http://${node?.metrics}/metrics`)).text());
    const socksPort = Number(state.socks.split(':')[1]);
    const onions = state.onionServices.map((s) => s.address);
    expect(onions).toHaveLength(2);

    const connect = async (address: string, isolation: string) => {
      // A new SOCKS username is a new isolation key: a new rendezvous each time (client/onion.ts).
      const s = await socksConnect(socksPort, address, 80, { username: isolation, timeoutMs: 60_000 });
      s.destroy();
    };
    // Warm-up: descriptors fetched, channels opened; these phases are not measured.
    for (const [i, a] of onions.entries()) await connect(a, `warm${i}`);

    const sums = [new Map<string, number>(), new Map<string, number>()];
    for (let k = 0; k < CONNECTS; k++)
      for (const [i, a] of onions.entries()) {
        const before = await totals();
        await connect(a, `m${k}-${i}`);
        const after = await totals();
        for (const p of PHASES) {
          const n = (after.get(p)?.count ?? 0) - (before.get(p)?.count ?? 0);
          expect(n, `one ${p} phase per connect`).toBe(1);
          const d = (after.get(p)?.sum ?? 0) - (before.get(p)?.sum ?? 0);
          sums[i]?.set(p, (sums[i]?.get(p) ?? 0) + d);
        }
      }
    const meanMs = (i: number, p: string) => ((sums[i]?.get(p) ?? 0) * 1000) / CONNECTS;
    const diff = Object.fromEntries(PHASES.map((p) => [p, meanMs(1, p) - meanMs(0, p)]));
    console.log(
      'onion placement, mean ms near / far:',
      Object.fromEntries(PHASES.map((p) => [p, [Math.round(meanMs(0, p)), Math.round(meanMs(1, p))]])),
    );
    // Predicted: rendezvous +800 ms, stream +200 ms, introduction +0.
    expect(diff.rendezvous).toBeGreaterThan(0.6 * 8 * FAR_MS);
    expect(diff.rendezvous).toBeLessThan(3 * 8 * FAR_MS);
    expect(diff.stream).toBeGreaterThan(0.6 * 2 * FAR_MS);
    expect(diff.stream).toBeLessThan(3 * 2 * FAR_MS + 4 * FAR_MS);
    expect(Math.abs(diff.introduction ?? 0)).toBeLessThan(4 * FAR_MS);
  }, 180_000);
});
