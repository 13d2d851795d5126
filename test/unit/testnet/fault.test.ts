// Faults on demand (services/testnet/fault.ts): request checks, and each
// kind applied to a real child process (an idle node stand-in) and healed:
// pause is SIGSTOP (state T in /proc) then SIGCONT, stop/kill end the
// process and start a new one, restart does both at once; the
// shallot_fault_active series goes 1 then 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../../services/metrics/metrics.js';
import type { LinkFaultTable } from '../../../services/net/link-faults.js';
import {
  childTarget,
  FaultError,
  FaultInjector,
  type FaultTarget,
  parseFaultRequest,
} from '../../../services/testnet/fault.js';

describe('parseFaultRequest', () => {
  it('accepts each kind', () => {
    expect(parseFaultRequest({ kind: 'pause', target: 'relay3', durationSec: 30 })).toEqual({
      kind: 'pause',
      target: 'relay3',
      durationSec: 30,
    });
    expect(parseFaultRequest({ kind: 'restart', target: 'auth0' })).toEqual({
      kind: 'restart',
      target: 'auth0',
      durationSec: 0,
    });
    expect(parseFaultRequest({ kind: 'cut', target: 'relay1', peer: 'client', durationSec: 5 })).toEqual({
      kind: 'cut',
      target: 'relay1',
      peer: 'client',
      durationSec: 5,
    });
    expect(
      parseFaultRequest({ kind: 'slow', target: 'relay1', peer: 'relay2', delayMs: 250, durationSec: 5 }),
    ).toEqual({ kind: 'slow', target: 'relay1', peer: 'relay2', delayMs: 250, durationSec: 5 });
  });

  const bad: [string, unknown][] = [
    ['null', null],
    ['an array', []],
    ['a string', 'pause'],
    ['an unknown kind', { kind: 'explode', target: 'relay1', durationSec: 5 }],
    ['a cut without a peer', { kind: 'cut', target: 'relay1', durationSec: 5 }],
    ['a cut of a node to itself', { kind: 'cut', target: 'relay1', peer: 'relay1', durationSec: 5 }],
    ['a cut with a delay', { kind: 'cut', target: 'relay1', peer: 'relay2', delayMs: 5, durationSec: 5 }],
    ['a slow link without a delay', { kind: 'slow', target: 'relay1', peer: 'relay2', durationSec: 5 }],
    ['a slow link of 0 ms', { kind: 'slow', target: 'relay1', peer: 'relay2', delayMs: 0, durationSec: 5 }],
    [
      'a slow link over 10 s',
      { kind: 'slow', target: 'relay1', peer: 'relay2', delayMs: 10_001, durationSec: 5 },
    ],
    ['a fractional delay', { kind: 'slow', target: 'relay1', peer: 'relay2', delayMs: 1.5, durationSec: 5 }],
    ['a peer with a slash', { kind: 'cut', target: 'relay1', peer: '../x', durationSec: 5 }],
    ['a node fault with a peer', { kind: 'pause', target: 'relay1', peer: 'relay2', durationSec: 5 }],
    ['a cut without a duration', { kind: 'cut', target: 'relay1', peer: 'relay2' }],
    ['no target', { kind: 'pause', durationSec: 5 }],
    ['a target with a slash', { kind: 'pause', target: '../x', durationSec: 5 }],
    ['an oversized target', { kind: 'pause', target: 'r'.repeat(64), durationSec: 5 }],
    ['no duration', { kind: 'kill', target: 'relay1' }],
    ['zero duration', { kind: 'stop', target: 'relay1', durationSec: 0 }],
    ['a negative duration', { kind: 'stop', target: 'relay1', durationSec: -1 }],
    ['a fractional duration', { kind: 'stop', target: 'relay1', durationSec: 1.5 }],
    ['a duration over an hour', { kind: 'stop', target: 'relay1', durationSec: 3601 }],
    ['a string duration', { kind: 'stop', target: 'relay1', durationSec: '5' }],
    ['restart with a duration', { kind: 'restart', target: 'relay1', durationSec: 5 }],
    ['an unknown field', { kind: 'pause', target: 'relay1', durationSec: 5, signal: 'SIGKILL' }],
  ];
  for (const [what, v] of bad)
    it(`refuses ${what}`, () => {
      expect(() => parseFaultRequest(v)).toThrow(FaultError);
    });
});

const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];

/**
 * Waits for `cond` (a signal's effect, a heal's restart) rather than a fixed time:
 * a loaded machine may take longer than any sleep to schedule the child or the timer.
 */
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const spawned: ChildProcess[] = [];
afterEach(() => {
  for (const c of spawned.splice(0)) {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
  }
});

function idleNode(name: string): { target: FaultTarget; pids: number[] } {
  const pids: number[] = [];
  const { target } = childTarget(
    name,
    () => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }),
    (c) => {
      spawned.push(c);
      pids.push(c.pid as number);
    },
  );
  return { target, pids };
}

async function activeSeries(registry: ReturnType<typeof createRegistry>): Promise<string> {
  return (await registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith('shallot_fault_active{'))
    .join('\n');
}

describe('FaultInjector on real processes', () => {
  it('pause stops the process (state T) and heals by SIGCONT after the duration', async () => {
    const registry = createRegistry();
    const node = idleNode('relay1');
    const inj = new FaultInjector({ registry }, new Map([['relay1', node.target]]));
    const pid = node.pids[0] as number;
    const injected = performance.now();
    const f = await inj.inject({ kind: 'pause', target: 'relay1', durationSec: 1 });
    await until('the SIGSTOP to take effect', () => procState(pid) === 'T');
    expect(await activeSeries(registry)).toContain('kind="pause",target="relay1"} 1');
    await expect(inj.inject({ kind: 'kill', target: 'relay1', durationSec: 1 })).rejects.toMatchObject({
      code: 'ERR_FAULT_BUSY',
    });
    await until('the heal', () => inj.list()[0]?.healedAt !== undefined);
    // Healed after its duration, not before (a lower bound: load only makes it later).
    expect(performance.now() - injected).toBeGreaterThanOrEqual(995);
    await until('the SIGCONT to take effect', () => procState(pid) !== 'T');
    expect(f.id).toBe(1);
    expect(await activeSeries(registry)).toContain('kind="pause",target="relay1"} 0');
    expect(await registry.metrics()).toContain('shallot_faults_started_total{kind="pause"} 1');
  });

  it('kill and stop end the process and start a new one when they heal; restart at once', async () => {
    const registry = createRegistry();
    const node = idleNode('auth0');
    const inj = new FaultInjector({ registry }, new Map([['auth0', node.target]]));
    await inj.inject({ kind: 'kill', target: 'auth0', durationSec: 60 });
    expect(spawned[0]?.signalCode).toBe('SIGKILL');
    expect(node.pids).toHaveLength(1);
    // Healed early, as `shallot fault heal` does.
    await inj.heal(1);
    expect(node.pids).toHaveLength(2);
    await inj.inject({ kind: 'stop', target: 'auth0', durationSec: 1 });
    expect(spawned[1]?.signalCode).toBe('SIGTERM');
    expect(node.pids).toHaveLength(2);
    await until('the stopped node to start again', () => node.pids.length === 3);
    const r = await inj.inject({ kind: 'restart', target: 'auth0', durationSec: 0 });
    expect(r.healedAt).toBeDefined();
    expect(node.pids).toHaveLength(4);
    expect(spawned[3]?.exitCode ?? null).toBeNull();
    expect(spawned[3]?.signalCode ?? null).toBeNull();
  });

  it('stop kills a node that ignores SIGTERM once its grace is over', async () => {
    const pids: number[] = [];
    const { target } = childTarget(
      'relay3',
      () =>
        spawn(
          process.execPath,
          ['-e', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"],
          { stdio: ['ignore', 'pipe', 'ignore'] },
        ),
      (c) => {
        spawned.push(c);
        pids.push(c.pid as number);
      },
    );
    const inj = new FaultInjector(
      { registry: createRegistry(), stopGraceMs: 300 },
      new Map([['relay3', target]]),
    );
    // Once the child has installed its handler (it says so), or SIGTERM's default would end it.
    await new Promise((r) => spawned.at(-1)?.stdout?.once('data', r));
    await inj.inject({ kind: 'stop', target: 'relay3', durationSec: 60 });
    expect(spawned.at(-1)?.signalCode).toBe('SIGKILL');
    inj.close();
  });

  it('refuses an unknown node and an unknown fault id; close lets a paused node continue', async () => {
    const node = idleNode('relay2');
    const inj = new FaultInjector({ registry: createRegistry() }, new Map([['relay2', node.target]]));
    await expect(inj.inject({ kind: 'pause', target: 'relay9', durationSec: 1 })).rejects.toMatchObject({
      code: 'ERR_FAULT_TARGET',
    });
    await expect(inj.heal(7)).rejects.toMatchObject({ code: 'ERR_FAULT_UNKNOWN' });
    await inj.inject({ kind: 'pause', target: 'relay2', durationSec: 600 });
    await until('the SIGSTOP to take effect', () => procState(node.pids[0] as number) === 'T');
    inj.close();
    await until('the SIGCONT to take effect', () => procState(node.pids[0] as number) !== 'T');
  });
});

describe('FaultInjector: link faults and relays sharing a process', () => {
  /** A relay of the one-process launcher, as far as the injector sees it: it records what it was asked. */
  function sharedRelay(name: string, calls: string[]): FaultTarget {
    return {
      name,
      pause: null,
      stop: async () => void calls.push(`stop ${name}`),
      kill: async () => void calls.push(`kill ${name}`),
      start: async () => void calls.push(`start ${name}`),
    };
  }

  it('sends the whole table after each change; busy per link; heal and close clear it', async () => {
    const registry = createRegistry();
    const tables: LinkFaultTable[] = [];
    const calls: string[] = [];
    const inj = new FaultInjector(
      { registry, links: (t) => tables.push(t), linkNodes: ['relay1', 'relay2', 'client'] },
      new Map([['relay1', sharedRelay('relay1', calls)]]),
    );
    const cut = await inj.inject({ kind: 'cut', target: 'relay2', peer: 'relay1', durationSec: 60 });
    expect(tables.at(-1)).toEqual({ cuts: [['relay2', 'relay1']], slows: [], paused: [] });
    await expect(
      inj.inject({ kind: 'slow', target: 'relay1', peer: 'relay2', delayMs: 50, durationSec: 5 }),
    ).rejects.toMatchObject({ code: 'ERR_FAULT_BUSY' });
    await inj.inject({ kind: 'slow', target: 'client', peer: 'relay1', delayMs: 200, durationSec: 60 });
    await inj.inject({ kind: 'pause', target: 'relay1', durationSec: 60 });
    expect(tables.at(-1)).toEqual({
      cuts: [['relay2', 'relay1']],
      slows: [{ a: 'client', b: 'relay1', delayMs: 200 }],
      paused: ['relay1'],
    });
    expect(await activeSeries(registry)).toContain('kind="cut",target="relay1~relay2"} 1');
    expect(await activeSeries(registry)).toContain('kind="slow",target="client~relay1"} 1');
    await inj.heal(cut.id);
    expect(tables.at(-1)?.cuts).toEqual([]);
    expect(await activeSeries(registry)).toContain('kind="cut",target="relay1~relay2"} 0');
    await expect(
      inj.inject({ kind: 'cut', target: 'relay1', peer: 'auth0', durationSec: 5 }),
    ).rejects.toMatchObject({ code: 'ERR_FAULT_TARGET' });
    inj.close();
    expect(tables.at(-1)).toEqual({ cuts: [], slows: [], paused: [] });
    expect(calls).toEqual([]);
  });

  it('stops, kills and restarts a shared relay through its target; other nodes are refused by name', async () => {
    const calls: string[] = [];
    const inj = new FaultInjector(
      { registry: createRegistry(), links: () => {} },
      new Map([['relay1', sharedRelay('relay1', calls)]]),
    );
    const k = await inj.inject({ kind: 'kill', target: 'relay1', durationSec: 60 });
    await inj.heal(k.id);
    await inj.inject({ kind: 'restart', target: 'relay1', durationSec: 0 });
    expect(calls).toEqual(['kill relay1', 'start relay1', 'stop relay1', 'start relay1']);
    await expect(inj.inject({ kind: 'stop', target: 'auth0', durationSec: 5 })).rejects.toThrow(
      /stop applies to relay1 here, not auth0/,
    );
  });

  it('refuses link faults where no table can be sent', async () => {
    const inj = new FaultInjector({ registry: createRegistry() }, new Map());
    await expect(
      inj.inject({ kind: 'cut', target: 'relay1', peer: 'relay2', durationSec: 5 }),
    ).rejects.toMatchObject({ code: 'ERR_FAULT_TARGET' });
  });
});
