// A frozen relay does not stall the network (issue 13): on a process-per-node
// network (3 authorities, 6 relays, 3 exits, one onion service), the relay
// carrying the most circuits is stopped with SIGSTOP for 30 s while 4
// workers (2 exit, 2 onion) fetch through the client's SOCKS port for 45 s.
// Streams that get no CONNECTED within C tor's stream timeout (10 s, then
// 15 s) move to another circuit (onion: a new rendezvous), circuits through a
// first hop that stopped answering take no new streams, builds through a
// silent hop are replaced, and a silent relay is not chosen as rendezvous or
// intro point: >= 95 % of the requests started during the pause succeed.
// Requests whose data was in flight through the relay when it froze stall
// (as in C tor: no timeout once CONNECTED); each request is abandoned after
// 15 s, an application's own timeout, so its worker goes on. The ratio is
// over all requests; onion ones are few (their workers sit out such stalls
// and a rendezvous again after a 10 s stream timeout) and are logged, not
// asserted apart: a frozen relay on the reused rendezvous path can still
// cost an onion request more than 15 s. The relay is resumed with SIGCONT in
// a finally.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../../services/loadgen/http-get.js';
import {
  type AdversarialNet,
  metricSum,
  nodesOf,
  scrapeNodes,
  startAdversarialNet,
  unhealthyNodes,
} from '../helpers/adversarial.js';
import { socksConnect } from '../helpers/socks-client.js';

let a: AdversarialNet;

beforeAll(async () => {
  a = await startAdversarialNet({ relays: 6, exits: 3, onionServices: 1 });
}, 300_000);

afterAll(async () => {
  await a?.stop();
}, 60_000);

interface Outcome {
  onion: boolean;
  startedMs: number;
  ms: number;
  ok: boolean;
  error?: string;
}

/** One GET of 4 KiB through SOCKS, abandoned after 15 s (an application's own timeout), so a worker whose request was in flight through the frozen relay goes on to new ones. */
async function fetchOnce(onion = false): Promise<void> {
  const signal = AbortSignal.timeout(15_000);
  const [host, port] = onion ? [a.onion as string, 80] : [a.web.host, a.web.port];
  const s = await socksConnect(a.socksPort, host, port, { timeoutMs: 15_000 });
  try {
    const r = await httpGet(s, { host, path: '/bytes/4096', signal });
    if (r.bodyBytes !== 4096) throw new Error(`got ${r.bodyBytes} of 4096 bytes`);
  } finally {
    s.destroy();
  }
}

/** `workers` loops fetching until `durationMs` has passed since `t0`; each request records when it started. */
async function load(t0: number, durationMs: number, workers: number): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const worker = async (onion: boolean) => {
    while (performance.now() - t0 < durationMs) {
      const startedMs = performance.now() - t0;
      try {
        await fetchOnce(onion);
        out.push({ onion, startedMs, ok: true, ms: performance.now() - t0 - startedMs });
      } catch (e) {
        out.push({
          onion,
          startedMs,
          ok: false,
          error: (e as Error).message,
          ms: performance.now() - t0 - startedMs,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, i) => worker(i % 2 === 1)));
  return out;
}

describe('one relay paused under load', () => {
  it('keeps >= 95 % of requests succeeding while the busiest relay is stopped for 30 s', async () => {
    // Warm up: circuits built, the build timeout learning.
    await Promise.all(Array.from({ length: 4 }, (_, i) => fetchOnce(i % 2 === 1)));
    const snap = await scrapeNodes(a, 'relay');
    const circuits = new Map<string, number>();
    for (const s of snap.series.values()) {
      if (s.name === 'shallot_relay_circuits_active' && s.labels.relay)
        circuits.set(s.labels.relay, (circuits.get(s.labels.relay) ?? 0) + s.value);
    }
    const relays = nodesOf(a, 'relay');
    const busiest = [...circuits.entries()].sort((x, y) => y[1] - x[1])[0]?.[0];
    const victim = relays.find((n) => n.name === busiest) ?? relays[0];
    if (!victim?.pid) throw new Error('no relay process to pause');

    const t0 = performance.now();
    const loadP = load(t0, 45_000, 4);
    let pausedAt = 0;
    let resumedAt = 0;
    try {
      await new Promise((r) => setTimeout(r, 5_000));
      process.kill(victim.pid, 'SIGSTOP');
      pausedAt = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 30_000));
    } finally {
      process.kill(victim.pid, 'SIGCONT');
      resumedAt = performance.now() - t0;
    }
    const outcomes = await loadP;
    const during = outcomes.filter((o) => o.startedMs >= pausedAt && o.startedMs < resumedAt);
    const ok = during.filter((o) => o.ok).length;
    const failures = during
      .filter((o) => !o.ok)
      .map((o) => `${o.onion ? 'onion' : 'exit'} at ${Math.round(o.startedMs)}: ${o.error}`);
    const onionDuring = during.filter((o) => o.onion);
    console.log(
      `paused ${victim.name} (${circuits.get(victim.name) ?? 0} circuits) from ${Math.round(pausedAt)} to ${Math.round(resumedAt)} ms: ` +
        `${ok}/${during.length} requests started during the pause succeeded (onion ${onionDuring.filter((o) => o.ok).length}/${onionDuring.length}); ${outcomes.length} in all; failures: ${JSON.stringify(failures.slice(0, 5))}`,
    );
    // The slow ones: [onion?, started at, took (ms), error].
    const slow = outcomes.filter((o) => o.ms > 3_000 || !o.ok);
    console.log(
      JSON.stringify(slow.map((o) => [o.onion, Math.round(o.startedMs), Math.round(o.ms), o.error])),
    );
    expect(during.length).toBeGreaterThanOrEqual(20);
    expect(ok / during.length).toBeGreaterThanOrEqual(0.95);
    // Streams did move: the client counted retries after the stream timeout.
    expect(await metricSum(a, 'shallot_client_stream_retries_total', {}, 'client')).toBeGreaterThan(0);
    expect(await unhealthyNodes(a)).toEqual([]);
  }, 150_000);
});
