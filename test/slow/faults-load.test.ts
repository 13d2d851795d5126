// Faults on demand during `shallot load` (issue 18): a --process-per-node
// network carries a verified load to the exit target while `shallot fault`
// (the built CLI, dist/services/testnet/main.js) pauses, kills, stops and
// restarts exit relays one after another. The report gives, per phase
// (baseline, each fault, the recovery after it), the success ratio, the
// failure reasons and the recovery time (report() below). No body is ever
// corrupted; every fault heals and the network serves again after each. Needs `npm run build` (npm run test:all).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadResult, runLoad } from '../../services/loadgen/loadgen.js';
import type { FaultKind, FaultRecord } from '../../services/testnet/fault.js';
import { callFaultControl } from '../../services/testnet/fault-control.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { upProcessNetwork } from '../helpers/testnet.js';

const cli = path.resolve('dist/services/testnet/main.js');
const FAULT_SEC = 8;
const RECOVERY_SEC = 15;
const PLAN: { kind: FaultKind; target: string }[] = [
  { kind: 'pause', target: 'relay0' },
  { kind: 'kill', target: 'relay1' },
  { kind: 'stop', target: 'relay2' },
  { kind: 'restart', target: 'relay0' },
];

let dataDir: string;
let net: RunningNetwork;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-faults-'));
  net = await upProcessNetwork({ relays: 6, exits: 3, dataDir, logLevel: 'warn' });
}, 300_000);

afterAll(async () => {
  await net?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function shallot(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [cli, ...args, '--data-dir', dataDir], (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pidOf = (name: string): number => {
  const s = JSON.parse(readFileSync(path.join(dataDir, 'state.json'), 'utf8')) as {
    nodes: { name: string; pid: number }[];
  };
  return s.nodes.find((n) => n.name === name)?.pid ?? 0;
};
const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];

interface Phase {
  name: string;
  from: number;
  to: number;
  healMs?: number;
}

/**
 * Requests count in the phase in which they ended (a kill's failures show
 * at once, a pause's hung requests when it heals or they time out).
 * Recovery: heal to the end of the first success after the phase's last
 * failure (0 when none failed after the heal; null when none succeeded).
 */
function report(result: LoadResult, phases: Phase[]) {
  return phases.map((p) => {
    const rs = result.samples.filter((r) => r.endMs >= p.from && r.endMs < p.to);
    const ok = rs.filter((r) => r.ok).length;
    const failures = rs.filter((r) => !r.ok).map((r) => r.reason ?? 'error');
    const row = {
      phase: p.name,
      requests: rs.length,
      successRatio: rs.length ? Number((ok / rs.length).toFixed(3)) : 1,
      failures: [...new Set(failures)].join(' '),
    };
    if (p.healMs === undefined) return { ...row, recoveryMs: null as number | null };
    const heal = p.healMs;
    const lastFail = Math.max(...rs.filter((r) => !r.ok).map((r) => r.endMs), heal);
    const firstOk = rs.find((r) => r.ok && r.endMs > lastFail);
    const recoveryMs = lastFail === heal ? 0 : firstOk ? Math.round(firstOk.endMs - heal) : null;
    return { ...row, recoveryMs };
  });
}

describe('faults during shallot load', () => {
  it('each kind is injected and healed during the load, reported per phase, and no byte is corrupted', async () => {
    const stop = new AbortController();
    const load = runLoad(
      {
        dataDir,
        target: 'web',
        concurrency: 4,
        sizes: [64 * 1024],
        newCircuit: true,
        verify: true,
        timeoutSec: 10,
        durationSec: 900,
        minSuccess: 0,
        keepGoing: true,
        backoffMaxSec: 1,
        progress: 'none',
        metricsPort: null,
      },
      { printTable: false, signal: stop.signal, errors: { write: () => true } },
    );
    await sleep(12_000);
    for (const step of PLAN) {
      const pidBefore = pidOf(step.target);
      const args = ['fault', 'inject', step.kind, step.target];
      if (step.kind !== 'restart') args.push('--duration', String(FAULT_SEC));
      const line = await shallot(args);
      expect(line).toContain(`${step.kind} ${step.target}`);
      if (step.kind === 'pause') {
        expect(procState(pidBefore)).toBe('T');
        const metrics = await (await fetch(`http://${net.state.control}/metrics`)).text();
        expect(metrics).toMatch(/shallot_fault_active\{[^}]*kind="pause",target="relay0"[^}]*\} 1/);
      }
      await sleep(step.kind === 'restart' ? RECOVERY_SEC * 1000 : (FAULT_SEC + RECOVERY_SEC) * 1000);
      // Healed: paused continues (same pid), stopped/killed/restarted run as a new process.
      const pidAfter = pidOf(step.target);
      expect(procState(pidAfter)).not.toBe('T');
      if (step.kind === 'pause') expect(pidAfter).toBe(pidBefore);
      else expect(pidAfter).not.toBe(pidBefore);
    }
    stop.abort();
    const result = await load;
    const records = (await callFaultControl(
      dataDir,
      net.state.control as string,
      'GET',
      '/faults',
    )) as FaultRecord[];
    expect(records.map((r) => r.kind)).toEqual(PLAN.map((p) => p.kind));
    for (const r of records) expect(r.healedAt).toBeDefined();
    const t0 = Date.parse(result.started);
    const at = (iso: string) => Date.parse(iso) - t0;
    const phases: Phase[] = [{ name: 'baseline', from: 0, to: at(records[0]?.startedAt as string) }];
    records.forEach((r, i) => {
      const heal = at(r.healedAt as string);
      const next = records[i + 1];
      phases.push({ name: `${r.kind} ${r.target}`, from: at(r.startedAt), to: heal });
      phases.push({
        name: `after ${r.kind}`,
        from: heal,
        to: next ? at(next.startedAt) : Number.POSITIVE_INFINITY,
        healMs: heal,
      });
    });
    const rows = report(result, phases);
    console.table(rows);
    // No corrupted byte, ever: every body is checked against the target's SHA-256.
    expect(result.failuresByReason.checksum_mismatch ?? 0).toBe(0);
    expect(result.failuresByReason.length_mismatch ?? 0).toBe(0);
    expect(rows[0]?.successRatio).toBeGreaterThan(0.9);
    // After every fault the network serves again within its recovery window.
    for (const row of rows.filter((r) => r.phase.startsWith('after '))) {
      expect(row.requests).toBeGreaterThan(0);
      expect(row.recoveryMs, row.phase).not.toBeNull();
    }
    // And the run ends healthy: its last 10 requests all succeeded.
    expect(result.samples.slice(-10).every((r) => r.ok)).toBe(true);
  }, 400_000);
});
