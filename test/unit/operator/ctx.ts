/** A ReconcileContext over FakeKube with a settable clock and a seeded RNG. */
import { Registry } from 'prom-client';
import { imagesFromEnv } from '../../../operator/config.js';
import { MemoryRecorder } from '../../../operator/events.js';
import { silentLogger } from '../../../operator/log.js';
import type { ReconcileContext } from '../../../operator/reconcile/context.js';
import { metricsFor } from '../../../services/metrics/metrics.js';
import { FakeKube } from './fake-kube.js';

/** Deterministic bytes: a counter run through a simple mix (keys only need to differ). */
export function seededRng(seed = 1) {
  let s = seed >>> 0;
  return (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = s >>> 24;
    }
    return out;
  };
}

export function testContext(start = Date.parse('2025-06-01T00:00:00Z')) {
  const kube = new FakeKube();
  const registry = new Registry();
  const recorder = new MemoryRecorder();
  const clock = { now: start };
  const scrapes: Record<string, string> = {};
  const ctx: ReconcileContext = {
    kube,
    images: imagesFromEnv({ SHALLOT_IMAGE_TAG: 'test' }),
    metrics: metricsFor(registry).operator,
    recorder,
    log: silentLogger,
    now: () => clock.now,
    rng: seededRng(7),
    scrape: async (url) => {
      const body = scrapes[url];
      if (body === undefined) throw new Error(`no scrape for ${url}`);
      return body;
    },
  };
  return { ctx, kube, registry, recorder, clock, scrapes };
}
