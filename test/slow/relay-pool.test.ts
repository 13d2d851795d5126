// A relay pool process (services/relay/pool.ts, `--pool`): one
// `node dist/services/relay/main.js` running two relays, joined to a
// process-per-node testnet (3 authorities, 3 relays). Shows: each pooled
// relay prints its identity, creates its own key file, listens on its own
// ORPort, passes the authorities' reachability test and is listed Running
// in the consensus at 127.0.0.1 and its own port (dir-spec §3.4.1), with the
// exit role the pool gave it. Needs dist/ (npx tsc -p tsconfig.json).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../services/core/bytes.js';
import { fetchConsensus, formatAuthorityList } from '../../services/net/dir-client.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { upProcessNetwork } from '../helpers/testnet.js';
import { eventually } from '../setup/kube-env.js';

let net: RunningNetwork;
let dir: string;
let pool: ChildProcess | null = null;
const out: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'shallot-pool-'));
  net = await upProcessNetwork({ relays: 3, exits: 1, dataDir: path.join(dir, 'net'), logLevel: 'warn' });
}, 300_000);

afterAll(async () => {
  if (pool && pool.exitCode === null) {
    const exited = new Promise((r) => pool?.once('exit', r));
    pool.kill('SIGTERM');
    await exited;
  }
  await net?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('relay pool process', () => {
  it('runs two relays, each listed Running at its own ORPort with its own keys and exit role', async () => {
    const ports = [await ephemeralPort(), await ephemeralPort()];
    const spec = [
      { nickname: 'poolA', port: ports[0], keyFile: path.join(dir, 'a.json'), exit: true },
      { nickname: 'poolB', port: ports[1], keyFile: path.join(dir, 'b.json') },
    ];
    const authorities = formatAuthorityList(net.state.authorities);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHALLOT_')));
    pool = spawn(
      process.execPath,
      [
        'dist/services/relay/main.js',
        '--pool',
        JSON.stringify(spec),
        '--authorities',
        authorities,
        '--host',
        '127.0.0.1',
        '--nickname',
        'pool',
        '--log-level',
        'warn',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    pool.stdout?.on('data', (b: Buffer) => out.push(b.toString()));
    pool.stderr?.on('data', (b: Buffer) => out.push(b.toString()));
    const ids = await eventually(
      'two identities printed',
      async () => {
        const lines: string[] = out.join('').match(/^[0-9a-f]{64}$/gm) ?? [];
        return lines.length >= 2 ? lines : null;
      },
      { timeoutMs: 30_000, intervalMs: 200, context: () => out.join('') },
    );
    expect(new Set(ids).size).toBe(2);
    expect(existsSync(spec[0]!.keyFile) && existsSync(spec[1]!.keyFile)).toBe(true);

    const listed = await eventually(
      'both pooled relays Running in the consensus',
      async () => {
        const { consensus } = await fetchConsensus(net.state.authorities, { nowMs: Date.now() });
        const mine = consensus.relays.filter((r) => ids.includes(toHex(r.identity)));
        return mine.length === 2 && mine.every((r) => r.flags.includes('Running')) ? mine : null;
      },
      { timeoutMs: 120_000, intervalMs: 1000, context: () => out.join('').slice(-2000) },
    );
    const byNick = Object.fromEntries(listed.map((r) => [r.nickname, r]));
    expect(byNick.poolA).toMatchObject({ address: '127.0.0.1', orPort: ports[0] });
    expect(byNick.poolB).toMatchObject({ address: '127.0.0.1', orPort: ports[1] });
    expect(toHex(byNick.poolA!.identity)).toBe(ids[0]);
    // poolA exits to the testnet policy; poolB rejects everything.
    expect(byNick.poolA!.flags).toContain('Exit');
    expect(byNick.poolB!.flags).not.toContain('Exit');
  }, 180_000);
});
