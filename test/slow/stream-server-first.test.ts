// The server-speaks-first stream of test/integration/stream-server-first.test.ts
// on a `shallot up --process-per-node` network (3 authorities, 4 relays, 2
// exits), where it was found: over separate processes the exit's CONNECTED,
// DATA and END often reach the client in one link read, before the SOCKS
// proxy has spliced the stream. 50 connections, each on a fresh circuit (its
// own SOCKS username), must each read exactly the N bytes the target wrote
// (tor-spec §6.2) and then EOF from its END (tor-spec §6.3).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNetwork } from '../../services/testnet/up.js';
import { patternBody, serverFirstFailures } from '../helpers/server-first.js';
import { startBlobServer, type TestServer } from '../helpers/servers.js';
import { socksPortOf, upProcessNetwork } from '../helpers/testnet.js';

let dataDir: string;
let network: RunningNetwork;
const servers: TestServer[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-server-first-'));
  network = await upProcessNetwork({ relays: 4, exits: 2, dataDir, logLevel: 'warn' });
}, 300_000);

afterAll(async () => {
  await network?.stop();
  await Promise.all(servers.map((s) => s.close()));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('server speaks first, then closes, across processes', () => {
  for (const size of [1_000, 64 * 1024]) {
    it(`50 fresh-circuit streams each get ${size} bytes then EOF`, async () => {
      const blob = patternBody(size);
      const server = await startBlobServer(blob);
      servers.push(server);
      const failures = await serverFirstFailures({
        socksPort: socksPortOf(network),
        targetPort: server.port,
        blob,
        label: `processes-${size}`,
        rounds: 10,
        parallel: 5,
        eofMs: 10_000,
      });
      expect(failures).toEqual([]);
    }, 300_000);
  }
});
