// `shallot up --data-dir D --client-auth` twice: the second network has the
// same relay and authority identities, onion address and client-authorization
// keys as the first, its key files are private (0600), and each time the
// network's client reaches the onion service with its key while a client
// without one gets SOCKS 0xF4.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { SocksReply } from '../../services/core/socks5.js';
import { fetchConsensus } from '../../services/net/dir-client.js';
import { ephemeralPort } from '../../services/testnet/ports.js';
import { type RunningNetwork, type UpOptions, up } from '../../services/testnet/up.js';
import { testLogger } from '../helpers/log.js';
import { readAll } from '../helpers/servers.js';
import { SocksReplyError, socksConnect } from '../helpers/socks-client.js';

const quiet = { update: () => {}, line: () => {}, done: () => {} };
let dataDir = '';

async function once(): Promise<{
  onion: string;
  relays: string[];
  authorities: string[];
  clientKey: string;
}> {
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
    clientAuth: true,
    vanguardsLite: false,
    logLevel: 'warn',
    tls: true,
    bootstrapTimeout: 120,
  };
  let net: RunningNetwork | null = null;
  try {
    net = await up(opts, quiet);
    const { consensus } = await fetchConsensus(net.state.authorities, { nowMs: Date.now(), skewMs: 5_000 });
    const onion = net.state.onionServices[0]?.address ?? '';
    const s = await socksConnect(Number(net.state.socks.split(':')[1]), onion, 80, { timeoutMs: 60_000 });
    s.write(`GET /bytes/5000 HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
    expect((await readAll(s)).toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
    const stranger = new ShallotClient(
      { logger: testLogger('stranger'), registry: new Registry() },
      { authorities: net.state.authorities, socksHost: '127.0.0.1', socksPort: 0, circuits: { prebuild: 0 } },
    );
    try {
      await stranger.start();
      await stranger.ready(30_000);
      const refused = await socksConnect(stranger.socksPort, onion, 80, { timeoutMs: 60_000 }).catch(
        (e) => e,
      );
      expect(refused).toBeInstanceOf(SocksReplyError);
      expect((refused as SocksReplyError).reply).toBe(SocksReply.ONION_MISSING_CLIENT_AUTH);
    } finally {
      await stranger.stop();
    }
    const privateKey = path.join(dataDir, 'client', 'onion-auth', 'client-onion0.auth_private');
    expect((await stat(privateKey)).mode & 0o077).toBe(0);
    return {
      clientKey: await readFile(privateKey, 'utf8'),
      onion,
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
  it('reuses every identity, the onion address and the client-auth keys on a second start', async () => {
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
