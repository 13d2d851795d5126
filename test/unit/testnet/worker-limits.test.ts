// launch-workers.ts resourceLimitsFor (issue 17): an authority's thread gets
// a smaller young generation than V8's default, a relay worker keeps the
// default (it carries traffic: runtime/heap-flags.ts). Checked on a real
// worker thread: with the authority's limits its new space stays within
// AUTHORITY_YOUNG_GENERATION_MB however much short-lived garbage it makes,
// and without them it grows past it (so the check can fail).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { AUTHORITY_YOUNG_GENERATION_MB } from '../../../services/runtime/heap-flags.js';
import { resourceLimitsFor } from '../../../services/testnet/launch-workers.js';

/** A worker that churns short-lived objects, then reports its new space's size in MiB. */
async function newSpaceAfterChurn(limits: ReturnType<typeof resourceLimitsFor>): Promise<number> {
  const code = `
    const v8 = require('node:v8');
    let keep = [];
    for (let i = 0; i < 3e6; i++) { keep.push({ a: i, b: 'x' + i }); if (keep.length > 200000) keep = []; }
    const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
    require('node:worker_threads').parentPort.postMessage(s.space_size / 2 ** 20);
  `;
  const w = new Worker(code, { eval: true, resourceLimits: limits });
  try {
    return await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  } finally {
    await w.terminate();
  }
}

describe('worker resource limits', () => {
  it('authorities get the smaller young generation; relay workers no limit', () => {
    expect(resourceLimitsFor('authorities')).toEqual({
      maxYoungGenerationSizeMb: AUTHORITY_YOUNG_GENERATION_MB,
    });
    expect(resourceLimitsFor('relays')).toEqual({});
  });

  it("an authority's new space stays within the limit; a relay worker's grows past it", async () => {
    const authority = await newSpaceAfterChurn(resourceLimitsFor('authorities'));
    const relay = await newSpaceAfterChurn(resourceLimitsFor('relays'));
    expect(authority).toBeGreaterThan(0);
    expect(authority).toBeLessThanOrEqual(AUTHORITY_YOUNG_GENERATION_MB);
    expect(relay).toBeGreaterThan(AUTHORITY_YOUNG_GENERATION_MB);
  });
});
