// Relays rotate their onion keys in place (services/relay/key-watch.ts) on a
// local network with an onion service (3 authorities, 6 relays, 5 s voting):
// the service's intro circuits survive, its descriptor follows the intro
// relays' new keys ("onion-key ntor", rend-spec-v3 §2.5.2.2), and a client
// reaches the service after the old keys are gone (the grace period over).
// Before, the descriptor kept each intro point's key from when it was
// chosen, so introductions failed once the relays dropped the old keys.
import { createHash } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShallotClient } from '../../services/client/client.js';
import { toHex } from '../../services/core/bytes.js';
import { randomBytes } from '../../services/core/crypto.js';
import { linkTarget } from '../../services/core/link-specifiers.js';
import { generateOnionKey } from '../../services/core/node-keys.js';
import { builtinSha256 } from '../../services/onion-service/builtin-http.js';
import { OnionService } from '../../services/onion-service/service.js';
import { LocalNetwork } from '../../services/testnet/network.js';
import { fetchDescriptor } from '../helpers/hs-fetch.js';
import { testLogger } from '../helpers/log.js';
import { readAll } from '../helpers/servers.js';
import { socksConnect } from '../helpers/socks-client.js';

const RELAYS = 6;
let net: LocalNetwork;
let service: OnionService;
const clients: ShallotClient[] = [];

async function client(name: string, socks: boolean): Promise<ShallotClient> {
  const c = new ShallotClient(
    { logger: testLogger(name), registry: new Registry() },
    {
      authorities: net.endpoints,
      socksHost: '127.0.0.1',
      socksPort: socks ? 0 : null,
      circuits: { prebuild: 0 },
    },
  );
  clients.push(c);
  await c.start();
  await c.ready(30_000);
  return c;
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms (last error: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function getBytes(c: ShallotClient, onion: string, n: number): Promise<string> {
  const s = await socksConnect(c.socksPort, onion, 80, { timeoutMs: 60_000 });
  s.write(`GET /bytes/${n} HTTP/1.1\r\nHost: ${onion}\r\nConnection: close\r\n\r\n`);
  const all = await readAll(s);
  return createHash('sha256')
    .update(all.subarray(all.indexOf('\r\n\r\n') + 4))
    .digest('hex');
}

beforeAll(async () => {
  net = await LocalNetwork.start(
    { logger: testLogger('net'), registry: new Registry() },
    {
      authorities: 3,
      relays: RELAYS,
      exits: 2,
      votingIntervalSec: 5,
      tls: true,
      host: '127.0.0.1',
      basePort: 0,
    },
  );
  await net.waitForConsensus(RELAYS, 40_000);
  service = new OnionService(
    { logger: testLogger('hs'), registry: new Registry(), client: await client('hs', false) },
    {
      name: 'web',
      identitySeed: randomBytes(32),
      backend: { type: 'builtin' },
      republishMs: [600_000, 600_000],
    },
  );
  await service.start();
}, 120_000);

afterAll(async () => {
  await service?.stop();
  for (const c of clients) await c.stop();
  await net?.stop();
});

describe('onion-key rotation under an onion service', () => {
  it('moves the descriptor to the intro relays’ new keys; a client reaches the service once the old keys are gone', async () => {
    const onion = service.onionAddress;
    const user = await client('user', true);
    const before = await until('a descriptor with intro points', 90_000, async () => {
      const d = await fetchDescriptor(user, onion);
      return d.introPoints.length > 0 ? d : undefined;
    });
    expect(await getBytes(user, onion, 1000)).toBe(builtinSha256(1000));

    // Every relay replaces its onion key and drops the old one at once: the
    // grace period is over before anyone saw the new key, the harshest case.
    for (const node of net.relays) {
      const r = node.relay;
      await node.reloadKeys({
        identitySeed: r.identitySeed,
        identity: r.identity,
        identityCreatedAt: 0,
        onionKeys: [generateOnionKey()],
      });
    }
    const keyOf = (ed: Uint8Array | undefined) =>
      toHex(
        net.relays.find((n) => ed && toHex(n.relay.identity) === toHex(ed))?.relay.ntorKey ??
          new Uint8Array(),
      );

    // The service republishes on the next consensus (republishMs is 10 minutes: only the key change can trigger it).
    const after = await until('a descriptor naming every intro relay’s new key', 90_000, async () => {
      const d = await fetchDescriptor(user, onion);
      const fresh = d.introPoints.every(
        (ip) => toHex(ip.onionKey) === keyOf(linkTarget(ip.linkSpecifiers).ed25519),
      );
      return fresh && d.introPoints.length > 0 ? d : undefined;
    });
    // The same intro points (auth keys): their circuits lived through the rotation.
    expect(after.introPoints.map((ip) => toHex(ip.authKey)).sort()).toEqual(
      before.introPoints.map((ip) => toHex(ip.authKey)).sort(),
    );

    // A client that never saw the old descriptor introduces with the new keys.
    const fresh = await client('fresh', true);
    await until('a client listing the new keys', 30_000, async () =>
      fresh.dir?.relays.every((r) => toHex(r.ntorKey) === keyOf(r.identity)) ? true : undefined,
    );
    expect(await getBytes(fresh, onion, 1000)).toBe(builtinSha256(1000));
  }, 240_000);
});
