// The C tor test setup's answer to a port race (test/setup/ctor-testnet.ts):
// a port chosen free can be taken by another process before tor binds it,
// and tor then exits 1 before its log is open. Here a real tor meets a port
// held by this process: its stdout says so and lostPortRace sees it (the
// setup then starts the network afresh); a tor that fails for another
// reason is not taken for a race.
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lostPortRace, requireTor, spawnTor } from '../setup/ctor-testnet.js';

let bin: string;
let tmp: string;
let held: Server;

beforeAll(async () => {
  bin = requireTor();
  tmp = await mkdtemp(path.join(tmpdir(), 'shallot-ctor-port-race-'));
  held = createServer();
  held.listen(0, '127.0.0.1');
  await once(held, 'listening');
});

afterAll(async () => {
  held?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Runs tor with `lines` as its torrc in a fresh directory; its exit code and directory. */
async function runTor(name: string, lines: string[]): Promise<{ code: number | null; dir: string }> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { mode: 0o700 });
  await chmod(dir, 0o700);
  const torrc = path.join(dir, 'torrc');
  await writeFile(
    torrc,
    [
      `DataDirectory ${dir}`,
      'SocksPort 0',
      `Log notice file ${path.join(dir, 'notice.log')}`,
      ...lines,
      '',
    ].join('\n'),
  );
  const child = spawnTor(bin, torrc, dir);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, dir };
}

describe('C tor setup: a port taken before tor binds it', () => {
  it('tor exits 1 and lostPortRace reads why from its stdout', async () => {
    const port = (held.address() as { port: number }).port;
    const r = await runTor('taken', [
      `ORPort 127.0.0.1:${port}`,
      'AssumeReachable 1',
      'PublishServerDescriptor 0',
    ]);
    expect(r.code).toBe(1);
    expect(await lostPortRace([r.dir])).toBe(true);
  }, 60_000);

  it('a tor that fails for another reason is not a port race', async () => {
    const r = await runTor('bad-option', ['NoSuchOption 1']);
    expect(r.code).toBe(1);
    expect(await lostPortRace([r.dir])).toBe(false);
  }, 60_000);
});
