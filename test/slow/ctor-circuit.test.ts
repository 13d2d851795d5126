// Issue 19's first must-show: on a C tor network started by the test
// (test/setup/ctor-testnet.ts: 3 authorities, 2 relays, 2 exits of
// Debian's tor), a Shallot client reads the network as a Tor client does
// (client/ctor-dir.ts: the authorities' DirAuthority lines, `.z`
// documents from a DirPort, signatures and microdesc digests checked,
// mapped into Shallot's Consensus with RSA legacy ids), opens raw TLS
// links (net/tls-transport.ts) checking each first hop's Ed25519 and RSA
// identities (tor-spec §4.2), builds 3-hop circuits through C tor relays
// with the unchanged circuit code — ntor with the RSA node id, ntor-v3
// with the Ed25519 id, EXTEND2 carrying the RSA legacy id — and fetches
// 10 MiB from a local HTTP server through a C tor exit, digest checked.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchCtorDirectory } from '../../services/client/ctor-dir.js';
import { toHex } from '../../services/core/bytes.js';
import type { HandshakeName } from '../../services/core/create-handshake.js';
import { parseDirAuthorities } from '../../services/core/ctor/dir-authority.js';
import type { CtorConsensus } from '../../services/core/ctor/to-consensus.js';
import { Channel } from '../../services/net/channel.js';
import { type HopTarget, hopTargetOf } from '../../services/net/hop-target.js';
import { ChannelError } from '../../services/net/link-handshake.js';
import { OriginCircuit } from '../../services/net/origin-circuit.js';
import type { RelayStream } from '../../services/net/stream.js';
import { dialTlsLink } from '../../services/net/tls-transport.js';
import { type CtorTestnet, requireTor, startCtorTestnet } from '../setup/ctor-testnet.js';

const BODY = randomBytes(10 * 1024 * 1024);
let net: CtorTestnet;
let dir: CtorConsensus;
let web: http.Server;
let webPort: number;
const channels: Channel[] = [];

beforeAll(async () => {
  const bin = requireTor();
  web = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
    res.end(BODY);
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
  net = await startCtorTestnet({ bin, relays: 2, exits: 2 });
  dir = await fetchCtorDirectory(parseDirAuthorities(net.dirAuthorities));
}, 300_000);

afterAll(async () => {
  for (const ch of channels) ch.close('test over');
  await net?.stop();
  await new Promise<void>((r) => (web ? web.close(() => r()) : r()));
}, 30_000);

function hop(nickname: string): HopTarget {
  const r = dir.consensus.relays.find((x) => x.nickname === nickname);
  if (!r) throw new Error(`${nickname} is not in the consensus`);
  const legacyId = dir.legacyIds.get(toHex(r.identity));
  if (!legacyId) throw new Error(`${nickname} has no RSA legacy id`);
  return { ...hopTargetOf(r), legacyId };
}

async function circuit(path: string[], handshake: HandshakeName): Promise<OriginCircuit> {
  const [first, ...rest] = path.map(hop);
  const link = await dialTlsLink(first!.address, first!.port);
  const ch = await Channel.initiate(link, {
    keys: null,
    expectedIdentity: first!.identity,
    expectedLegacyId: first!.legacyId!,
  });
  channels.push(ch);
  const circ = await OriginCircuit.create(ch, first!, { handshake });
  for (const h of rest) await circ.extend(h);
  return circ;
}

/** An HTTP/1.0 GET over the stream; the whole response. */
function httpGet(s: RelayStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.write(`GET / HTTP/1.0\r\nHost: 127.0.0.1:${webPort}\r\n\r\n`);
  });
}

describe('a Shallot client on a C tor network', () => {
  it('reads the directory: every C tor relay with its Ed25519 and RSA ids', () => {
    expect(dir.skipped).toEqual([]);
    expect(dir.consensus.relays.map((r) => r.nickname).sort()).toEqual(
      net.nodes.map((n) => n.nickname).sort(),
    );
    for (const n of net.nodes) expect(toHex(hop(n.nickname).legacyId!).toUpperCase()).toBe(n.fingerprint);
  });

  it("checks a C tor relay's RSA identity (CERTS types 2 and 7) against the legacy id dialled", async () => {
    const r = hop('relay3');
    const wrong = r.legacyId!.slice();
    wrong[0]! ^= 1;
    const link = await dialTlsLink(r.address, r.port);
    const err = await Channel.initiate(link, {
      keys: null,
      expectedIdentity: r.identity,
      expectedLegacyId: wrong,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).message).toMatch(/RSA identity/);
  });

  it('fetches 10 MiB through a C tor exit on an ntor circuit, digest checked', async () => {
    const circ = await circuit(['relay3', 'relay4', 'exit5'], 'ntor');
    expect(circ.length).toBe(3);
    const s = await circ.openStream({ host: '127.0.0.1', port: webPort });
    const res = await httpGet(s);
    const head = res.subarray(0, res.indexOf('\r\n\r\n') + 4).toString();
    expect(head).toMatch(/^HTTP\/1\.[01] 200/);
    const body = res.subarray(head.length);
    expect(body.length).toBe(BODY.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(
      createHash('sha256').update(BODY).digest('hex'),
    );
  }, 180_000);

  it('builds an ntor-v3 circuit to the other exit and opens a stream', async () => {
    const circ = await circuit(['relay4', 'relay3', 'exit6'], 'ntor-v3');
    const s = await circ.openStream({ host: '127.0.0.1', port: webPort });
    const res = await httpGet(s);
    expect(res.length).toBeGreaterThan(BODY.length);
  }, 120_000);
});
