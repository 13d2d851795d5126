// `shallot up` with more relays than its process may open files for: the
// real command, under a lowered `ulimit -n` (lowering needs no privilege),
// refuses at once with the figures and what to do, before it makes a data
// dir or starts a node (fd-budget.ts); `--process-per-node`, a table per
// node, is not refused.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'dist/services/testnet/main.js');
let dir = '';

/** Runs `shallot up` with `args` under `ulimit -n <limit>`; its exit code and output, killed after `ms`. */
function upUnderLimit(
  limit: number,
  args: string[],
  ms: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'sh',
      ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, main, 'up', ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGINT'), ms);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe.runIf(process.env.SHALLOT_TEST_ALL && process.platform === 'linux')(
  'shallot up and the open-file limit',
  () => {
    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('refuses 400 relays in one process under ulimit -n 1500, before making anything', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'shallot-fd-'));
      const dataDir = path.join(dir, 'net');
      const r = await upUnderLimit(1500, ['--relays', '400', '--data-dir', dataDir], 60_000);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(
        /400 relays in one process need about 3300 open files idle, and this process may open 1500/,
      );
      expect(r.out).toMatch(/ulimit -n/);
      expect(existsSync(dataDir)).toBe(false);
    });

    it('does not refuse the same network as a process per node (each node has a table of its own)', async () => {
      // Past the budget check up() makes its data dir; one under /dev/null
      // cannot be made, so the run fails there instead of booting 400 processes.
      const r = await upUnderLimit(
        1500,
        ['--relays', '400', '--process-per-node', '--data-dir', '/dev/null/net'],
        60_000,
      );
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/ENOTDIR/);
      expect(r.out).not.toMatch(/open files/);
    });
  },
);
