// `shallot up --data-dir D` twice: the second network has the same relay and
// authority identities and the same onion address as the first, and its key
// files are private (0600).
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchConsensus } from '../../services/directory/dir-client.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { type RunningNetwork, type UpOptions, up } from '../../services/testnet/up.js';

const quiet = { update: () => {}, line: () => {}, done: () => {} };
let dataDir = '';

async function once(): Promise<{ onion: string; relays: string[]; authorities: string[] }> {
  const opts: UpOptions = {
    authorities: 3,
    relays: 4,
    exits: 1,
    onionServices: 1,
    instances: 1,
    introPoints: 2,
    votingInterval: 5,
    dataDir,
    keyRotation: 0,
    basePort: 0,
    socksPort: await ephemeralPort(),
    processPerNode: false,
    handshake: 'ntor',
    logLevel: 'warn',
    tls: true,
    bootstrapTimeout: 120,
  };
  let net: RunningNetwork | null = null;
  try {
    net = await up(opts, quiet);
    const { consensus } = await fetchConsensus(net.state.authorities, { nowMs: Date.now(), skewMs: 5_000 });
    return {
      onion: net.state.onionServices[0]?.address ?? '',
      relays: consensus.relays.map((r) => Buffer.from(r.identity).toString('hex')).sort(),
      authorities: net.state.authorities.map((a) => a.identity).sort(),
    };
  } finally {
    await net?.stop();
  }
}

afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('shallot up --data-dir', () => {
  it('reuses every identity and the onion address on a second start', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-datadir-'));
    const first = await once();
    const second = await once();
    expect(first.onion).toMatch(/^[a-z2-7]{56}\.onion$/);
    expect(second).toEqual(first);
    const keyFiles = (await readdir(dataDir, { recursive: true })).filter((e) =>
      /keys\.json$|identity\.key$/.test(e),
    );
    // 3 authorities + 4 relays + 1 onion service.
    expect(keyFiles).toHaveLength(8);
    for (const f of keyFiles) expect((await stat(path.join(dataDir, f))).mode & 0o077).toBe(0);
  }, 300_000);
});
