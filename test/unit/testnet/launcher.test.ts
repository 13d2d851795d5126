// The launcher's bookkeeping: `--socks-port` falls to the next free port
// above a taken one; state.json from a stopped network is not "running";
// `shallot up` locks its data dir and refuses one whose network (or nodes of a
// crashed one) still runs; the load generator refuses a stale state file too.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readUpState } from '../../../services/loadgen/network-state.js';
import { PortAllocator } from '../../../services/testnet/ports.js';
import {
  lockDataDir,
  NoNetworkError,
  readState,
  stateFile,
  targetsFile,
} from '../../../services/testnet/state.js';
import { startWebTarget } from '../../../services/testnet/web.js';
import { upReadmeNetwork } from '../../helpers/testnet.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-launcher-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that existed and has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid as number;

const writeStateWithPid = (pid: number, nodePids: number[] = []) =>
  writeFile(
    stateFile(dir),
    JSON.stringify({
      version: 1,
      pid,
      startedAt: new Date().toISOString(),
      mode: 'one-process',
      authorities: [],
      socks: '127.0.0.1:9050',
      web: null,
      onionServices: [],
      nodes: nodePids.map((p, i) => ({ name: `relay${i}`, role: 'relay', metrics: null, pid: p })),
      targetsFile: '',
    }),
  );

describe('launcher bookkeeping', () => {
  it('a taken preferred port gives the next free one above it, not one from the base range', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const held = (holder.address() as net.AddressInfo).port;
    try {
      const ports = new PortAllocator(20000);
      const got = await ports.take(held);
      expect(got).toBeGreaterThan(held);
      expect(got).toBeLessThanOrEqual(held + 100);
    } finally {
      holder.close();
    }
  });

  it('base 0 draws distinct free ports below the kernel ephemeral range (outgoing connections cannot take them)', async () => {
    const low = Number(
      (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/)[0],
    );
    const ports = new PortAllocator(0);
    const got: number[] = [];
    for (let i = 0; i < 50; i++) got.push(await ports.take());
    expect(new Set(got).size).toBe(50);
    for (const p of got) {
      expect(p).toBeGreaterThanOrEqual(10_000);
      expect(p).toBeLessThan(low);
    }
  });

  it('state.json of a network whose launcher has exited means no running network', async () => {
    await writeStateWithPid(deadPid());
    await expect(readState(dir)).rejects.toThrow(NoNetworkError);
    await expect(readState(dir)).rejects.toThrow(/has stopped/);
    await expect(readUpState(dir)).rejects.toThrow(/has stopped/);
    await writeStateWithPid(process.pid);
    expect((await readState(dir)).pid).toBe(process.pid);
  });

  it('one up.lock per data dir, from before bootstrap until stop; a dead holder is taken over', async () => {
    const release = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toThrow(/already running or starting \(pid \d+\)/);
    await release();
    const again = await lockDataDir(dir);
    await again();
    await writeFile(path.join(dir, 'up.lock'), `${deadPid()}\n`);
    await (await lockDataDir(dir))();
  });

  it('refuses while nodes of a crashed launcher are still alive', async () => {
    await writeStateWithPid(deadPid(), [process.pid]);
    await expect(lockDataDir(dir)).rejects.toThrow(/still running \(pids \d+\)/);
    await writeStateWithPid(deadPid(), [deadPid()]);
    await (await lockDataDir(dir))();
  });

  it('shallot up refuses a data dir whose network is still running', async () => {
    await writeStateWithPid(process.ppid);
    await expect(
      upReadmeNetwork({
        authorities: 1,
        relays: 3,
        exits: 1,
        onionServices: 0,
        introPoints: 1,
        dataDir: dir,
        socksPort: 0,
        httpTunnelPort: undefined,
        bootstrapTimeout: 30,
      }),
    ).rejects.toThrow(/already running or starting \(pid \d+\)/);
  });
});

describe('state.json paths', () => {
  it('names the Prometheus targets file by an absolute path, whatever --data-dir was', () => {
    const f = targetsFile('.shallot');
    expect(path.isAbsolute(f)).toBe(true);
    expect(f).toBe(path.join(process.cwd(), '.shallot', 'prometheus-targets.json'));
  });
});

describe('the exit target', () => {
  it('says on its / page that it is the exit target, not an onion service', async () => {
    const web = await startWebTarget('127.0.0.1', 0);
    try {
      const text = await (await fetch(`http://127.0.0.1:${web.port}/`)).text();
      expect(text).toMatch(/^Shallot exit target/);
      expect(text).not.toContain('onion service (built-in backend)');
    } finally {
      await web.close();
    }
  });
});
