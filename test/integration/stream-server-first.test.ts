// A target that speaks first and then closes (tor-spec §6.2–6.3), reached
// through the exit over SOCKS5: each of 50 connections, each on a fresh
// circuit (its own SOCKS username, IsolateSOCKSAuth), must read exactly the
// N bytes the server wrote and then EOF, within seconds. In-process network,
// real sockets on 127.0.0.1, so the fast suite covers the path.
// On one event loop every hop reads its cells as they come, so the exit's
// CONNECTED and its DATA + END seldom share a link read at the client: this
// file passed before the fix too. The bug (an END in the same read as
// CONNECTED taken for a refused BEGIN, the data dropped, the SOCKS success
// followed by nothing) shows deterministically in
// test/unit/net/stream-open.test.ts and on a process network in
// test/slow/stream-server-first.test.ts (14 and 5 of 50 failed before it).
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { testLogger } from '../helpers/log.js';
import { patternBody, serverFirstFailures } from '../helpers/server-first.js';
import { startBlobServer, type TestServer } from '../helpers/servers.js';

let network: LocalNetwork;
let client: ShallotClient;
const servers: TestServer[] = [];

beforeAll(async () => {
  network = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    { authorities: 3, relays: 4, exits: 2, votingIntervalSec: 5, tls: true, host: '127.0.0.1', basePort: 0 },
  );
  await network.waitForConsensus(4, 40_000);
  client = new ShallotClient(
    { logger: testLogger('client'), registry: new Registry() },
    { authorities: network.endpoints, socksHost: '127.0.0.1', socksPort: 0, circuits: { prebuild: 0 } },
  );
  await client.start();
  await client.ready(30_000);
}, 90_000);

afterAll(async () => {
  await client?.stop();
  await network?.stop();
  await Promise.all(servers.map((s) => s.close()));
});

describe('server speaks first, then closes', () => {
  for (const size of [1_000, 64 * 1024]) {
    it(`50 fresh-circuit streams each get ${size} bytes then EOF`, async () => {
      const blob = patternBody(size);
      const server = await startBlobServer(blob);
      servers.push(server);
      // 5 at a time: enough overlap to batch cells on the links, few enough circuits at once for 2 cores.
      const failures = await serverFirstFailures({
        socksPort: client.socksPort,
        targetPort: server.port,
        blob,
        label: `in-process-${size}`,
        rounds: 10,
        parallel: 5,
        eofMs: 10_000,
      });
      expect(failures).toEqual([]);
    }, 240_000);
  }
});
