/**
 * Onion connect under the network model (issue 18): 3 authorities and 6
 * relays in one process, an onion service with its built-in backend, and
 * SOCKS clients, every relay, client and service link at 50 ms one way
 * (net/link-delay.ts). Timed from the SOCKS request to the CONNECT reply,
 * against what rend-spec-v3's round trips predict. With open channels
 * and 3-hop circuits (no vanguards-lite; tor-spec §5: a build costs
 * 2·50 + 4·50 + 6·50 = 600 ms):
 * - descriptor (rend-spec-v3 §2.2.6): a circuit to the HSDir (600),
 *   BEGIN_DIR → CONNECTED over 3 links (300), the GET and its answer (300):
 *   1200 ms;
 * - introduction (§3.2): the rendezvous circuit (600) plus
 *   ESTABLISH_RENDEZVOUS → RENDEZVOUS_ESTABLISHED (300), the intro circuit
 *   built meanwhile; INTRODUCE1 leaves at 900 ms;
 * - rendezvous (§3.3, §4): INTRODUCE1 reaches the intro point (150), which
 *   relays INTRODUCE2 to the service over its 3-hop intro circuit (150);
 *   the service builds to the rendezvous point (600) and sends RENDEZVOUS1
 *   (150), which reaches the client as RENDEZVOUS2 (150): 2100 ms after
 *   the introduction started;
 * - BEGIN → CONNECTED across the joined circuit's 6 links: 600 ms.
 * First connect 1200 + 2100 + 600 = 3900 ms; a fresh client also opens
 * its channel to its guard (one link-handshake round trip, +100 ms:
 * 4000 ms), and every other channel opened on the way adds 100 ms more
 * (a warm-up connect opens most relay-to-relay channels first). A warm
 * connect (descriptor cached, new isolation: a new rendezvous) skips the
 * descriptor: 2700 ms. The rows also give each phase's mean
 * (shallot_onion_connect_phase_seconds) beside its expected figure: the
 * descriptor 1300 ms for a fresh client (its guard channel included), then
 * introduction 1200, rendezvous 900 and stream 600 ms (means over every
 * measured connect).
 */
import { Registry } from 'prom-client';
import { ShallotClient } from '../../services/client/client.js';
import { randomBytes } from '../../services/core/crypto.js';
import { parseNetworkModel } from '../../services/core/network-model.js';
import { OnionService } from '../../services/onion-service/service.js';
import { silentLogger } from '../../services/runtime/log.js';
import { linkShaping } from '../../services/runtime/shaping-options.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { published } from '../helpers/onion-published.js';
import { type BenchResult, fromLatencies } from './harness.js';
import { firstAndWarmConnects, timedOnionConnect } from './onion-connect.js';

const MODEL = parseNetworkModel({ locations: ['everywhere'], defaultLatencyMs: 50, assign: 'random' });
const FIRST_MS = 4000;
const WARM_MS = 2700;

const row = (
  name: string,
  times: number[],
  expectedMs: number,
  phases: Record<string, number> = {},
): BenchResult => {
  const r = fromLatencies(name, 'conn', times);
  const sorted = [...times].sort((a, b) => a - b);
  r.extra = {
    expectedMs,
    measuredMedianMs: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    ...phases,
  };
  return r;
};

/** Expected mean of each connect phase (client/onion.ts), ms: see the header. */
const PHASES_EXPECTED: Record<string, number> = { introduction: 1200, rendezvous: 900, stream: 600 };

/** Mean of each shallot_onion_connect_phase_seconds phase over these registries, ms. */
async function phaseMeans(registries: Registry[]): Promise<Record<string, number>> {
  const sum = new Map<string, number>();
  const count = new Map<string, number>();
  for (const reg of registries) {
    const m = (await reg.getMetricsAsJSON()).find((x) => x.name === 'shallot_onion_connect_phase_seconds');
    for (const v of (m?.values ?? []) as {
      labels: Record<string, string>;
      value: number;
      metricName?: string;
    }[]) {
      const phase = v.labels.phase ?? '';
      if (v.metricName?.endsWith('_sum')) sum.set(phase, (sum.get(phase) ?? 0) + v.value);
      if (v.metricName?.endsWith('_count')) count.set(phase, (count.get(phase) ?? 0) + v.value);
    }
  }
  const out: Record<string, number> = {};
  for (const [phase, s] of sum) {
    const n = count.get(phase) ?? 0;
    if (n > 0) out[`${phase}Ms`] = Math.round((s * 1000) / n);
  }
  return out;
}

export async function onionModelBenches(o: {
  clients: number;
  warmPerClient: number;
}): Promise<BenchResult[]> {
  const registry = new Registry();
  const net = await LocalNetwork.start(
    { logger: silentLogger, registry },
    {
      authorities: 3,
      relays: 6,
      exits: 1,
      votingIntervalSec: 5,
      tls: true,
      host: '127.0.0.1',
      basePort: 0,
      shaping: (nickname) => linkShaping(nickname, MODEL, null),
    },
  );
  const clients: ShallotClient[] = [];
  const measured: Registry[] = [];
  const newClient = async (socks: boolean, registry = new Registry()) => {
    const c = new ShallotClient(
      { logger: silentLogger, registry },
      {
        authorities: net.endpoints,
        socksHost: '127.0.0.1',
        socksPort: socks ? 0 : null,
        circuits: { prebuild: 0, shaping: linkShaping('client', MODEL, null) },
      },
    );
    clients.push(c);
    await c.start();
    await c.ready(60_000);
    return c;
  };
  let service: OnionService | null = null;
  let first: number[] = [];
  let warm: number[] = [];
  try {
    await net.waitForConsensus(6, 120_000);
    const svcClient = await newClient(false);
    service = new OnionService(
      { logger: silentLogger, registry, client: svcClient },
      {
        name: 'web',
        instance: 'a',
        identitySeed: randomBytes(32),
        backend: { type: 'builtin' },
        numIntroPoints: 3,
      },
    );
    const isPublished = published(service, 120_000);
    await service.start();
    await isPublished;
    const onion = service.onionAddress;
    // Warm-up: opens most relay-to-relay channels, so the rows below open only the client's own.
    const warmup = await newClient(true);
    await timedOnionConnect(warmup.socksPort, onion, 'warmup', true);
    // Each connect then one small GET, proving the stream carries bytes.
    ({ first, warm } = await firstAndWarmConnects({ ...o, probe: true }, onion, async () => {
      const registry = new Registry();
      measured.push(registry);
      const client = await newClient(true, registry);
      return { socksPort: client.socksPort, stop: () => client.stop() };
    }));
  } finally {
    await service?.stop().catch(() => {});
    for (const c of clients) await c.stop().catch(() => {});
    await net.stop();
  }
  // Phases over every measured connect (the descriptor phase: first connects only).
  const phases = await phaseMeans(measured);
  const expected = Object.fromEntries(Object.entries(PHASES_EXPECTED).map(([k, v]) => [`${k}ExpectedMs`, v]));
  return [
    row('onion first connect, 50 ms links (fresh client)', first, FIRST_MS, {
      descriptorExpectedMs: 1300,
      ...(phases.descriptorMs !== undefined ? { descriptorMs: phases.descriptorMs } : {}),
    }),
    row('onion warm connect, 50 ms links (cached descriptor, new rendezvous)', warm, WARM_MS, {
      ...expected,
      ...Object.fromEntries(Object.entries(phases).filter(([k]) => k !== 'descriptorMs')),
    }),
  ];
}
