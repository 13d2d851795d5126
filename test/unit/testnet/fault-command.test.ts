// `shallot fault` (services/testnet/fault-command.ts) against a state.json
// and a real control endpoint on 127.0.0.1: inject (the default subcommand)
// pauses a real child and prints the fault, list and heal follow; cut and
// slow send a link fault with its peer and delay; a network without a
// control endpoint (an older launcher) is refused with a clear message.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRegistry } from '../../../services/metrics/metrics.js';
import { childTarget, FaultInjector } from '../../../services/testnet/fault.js';
import { type ControlServer, serveFaultControl } from '../../../services/testnet/fault-control.js';
import { program } from '../../../services/testnet/main.js';
import { type NetworkState, writeState } from '../../../services/testnet/state.js';

let dir: string;
let server: ControlServer;
let injector: FaultInjector;
let child: ChildProcess | null = null;

const state = (control?: string): NetworkState => ({
  version: 1,
  startedAt: new Date().toISOString(),
  pid: process.pid,
  mode: control ? 'process-per-node' : 'one-process',
  authorities: [],
  socks: '127.0.0.1:9050',
  onionServices: [],
  nodes: [],
  targetsFile: path.join(dir, 'prometheus-targets.json'),
  ...(control ? { control } : {}),
});

async function run(...args: string[]): Promise<string> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  try {
    await program()
      .exitOverride()
      .configureOutput({ writeErr: () => {} })
      .parseAsync(['node', 'shallot', 'fault', ...args, '--data-dir', dir]);
  } finally {
    spy.mockRestore();
  }
  return out.join('');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-fault-cmd-'));
  const registry = createRegistry();
  const { target } = childTarget(
    'relay1',
    () => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }),
    (c) => {
      child = c;
    },
  );
  injector = new FaultInjector(
    { registry, links: () => {}, linkNodes: ['relay1', 'relay2'] },
    new Map([['relay1', target]]),
  );
  server = await serveFaultControl({ dataDir: dir, port: 0, registry, injector });
});

afterAll(async () => {
  injector?.close();
  await server?.close();
  child?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('shallot fault', () => {
  it('injects (default subcommand), lists and heals', async () => {
    await writeState(dir, state(server.address));
    expect(await run('pause', 'relay1', '--duration', '60')).toMatch(/^#1 pause relay1 for 60s/);
    expect(await run('list')).toMatch(/^#1 pause relay1/);
    expect(await run('heal', '1')).toMatch(/^#1 pause relay1 .*, healed /);
    expect(await run('inject', 'restart', 'relay1')).toMatch(/^#2 restart relay1, healed /);
  });

  it('cuts and slows a link between two named nodes; a slow link needs --delay', async () => {
    await writeState(dir, state(server.address));
    expect(await run('cut', 'relay1', 'relay2', '--duration', '60')).toMatch(/^#3 cut relay1 relay2 for 60s/);
    await expect(run('slow', 'relay2', 'relay1', '--delay', '300')).rejects.toThrow(/already has a fault/);
    await run('heal', '3');
    expect(await run('slow', 'relay2', 'relay1', '--delay', '300')).toMatch(
      /^#4 slow relay2 relay1 \+300ms for 30s/,
    );
    // Commander reports a missing or out-of-range option on stderr and exits.
    const errors: string[] = [];
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      errors.push(String(s));
      return true;
    });
    try {
      await expect(run('slow', 'relay1', 'relay2')).rejects.toThrow(/exit 1/);
      await expect(run('slow', 'relay1', 'relay2', '--delay', '0')).rejects.toThrow(/exit 1/);
    } finally {
      exit.mockRestore();
      err.mockRestore();
    }
    expect(errors.join('')).toMatch(/--delay <ms>' not specified[\s\S]*delay/);
    await expect(run('cut', 'relay1', 'auth0')).rejects.toThrow(/no node auth0 with faultable links/);
  });

  it('refuses a network without a control endpoint (an older launcher), saying to start it again', async () => {
    await writeState(dir, state());
    await expect(run('kill', 'relay1')).rejects.toThrow(
      /one-process mode\) has no fault-control endpoint.*start it again/,
    );
  });
});
