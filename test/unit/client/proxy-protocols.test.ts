// SOCKS4/4a on the SOCKS port and the HTTP CONNECT tunnel on loopback
// sockets, with a stub connector: what each protocol writes for success,
// for each connector failure and for hostile input (always an answer then
// a close, or a silent close when the client left mid-request), which
// isolation key each request carries, and the per-protocol counters.
import * as net from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectError, type ConnectRequest } from '../../../services/client/connect.js';
import { startHttpTunnelServer } from '../../../services/client/http-tunnel.js';
import { startSocksServer } from '../../../services/client/socks-server.js';
import { encodeSocks4Request } from '../../../services/client/socks4.js';
import { EndReason } from '../../../services/core/relay-cell.js';
import { StreamRefusedError } from '../../../services/net/circuit-error.js';
import { startEchoServer } from '../../helpers/servers.js';
import { socksConnect } from '../../helpers/socks-client.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

/** Both listeners on one registry; the connector echoes, or throws `fail[host]`. */
async function start(fail: Record<string, Error> = {}) {
  const echo = await startEchoServer();
  const registry = new Registry();
  const seen: ConnectRequest[] = [];
  const connect = async (req: ConnectRequest) => {
    seen.push(req);
    const failure = fail[req.host];
    if (failure) throw failure;
    const s = net.connect({ host: '127.0.0.1', port: echo.port });
    await new Promise((resolve) => s.once('connect', resolve));
    return s;
  };
  const socks = await startSocksServer({ host: '127.0.0.1', port: 0 }, connect, { registry });
  const http = await startHttpTunnelServer({ host: '127.0.0.1', port: 0, handshakeTimeoutMs: 500 }, connect, {
    registry,
  });
  cleanup.push(
    () => socks.close(),
    () => http.close(),
    () => echo.close(),
  );
  const count = async (protocol: string, result: string) => {
    const m = await registry.getSingleMetric('shallot_client_proxy_requests_total')?.get();
    return m?.values.find((v) => v.labels.protocol === protocol && v.labels.result === result)?.value ?? 0;
  };
  return { socks: socks.port, http: http.port, seen, count };
}

/** Writes `bytes`, then collects everything the proxy sends until it closes (or `stopAfter` bytes). */
function exchange(port: number, bytes: Uint8Array | string, stopAfter = Number.POSITIVE_INFINITY) {
  return new Promise<{ data: Buffer; closed: boolean }>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (Buffer.concat(chunks).length >= stopAfter) {
        resolve({ data: Buffer.concat(chunks), closed: false });
        s.destroy();
      }
    });
    s.on('close', () => resolve({ data: Buffer.concat(chunks), closed: true }));
    s.write(bytes);
  });
}

describe('SOCKS4 and SOCKS4a on the SOCKS port', () => {
  it('grants with 90 (version byte 0) and splices, including bytes sent with the request', async () => {
    const p = await start();
    const req = encodeSocks4Request({ command: 1, host: 'echo.example', port: 7, userid: 'alice' });
    const { data } = await exchange(p.socks, Buffer.concat([req, Buffer.from('ping')]), 12);
    expect(data.subarray(0, 8).toString('hex')).toBe('005a000000000000');
    expect(data.subarray(8).toString()).toBe('ping');
    expect(p.seen[0]).toMatchObject({ host: 'echo.example', port: 7, addressType: 'domain' });
    expect(await p.count('socks4a', 'success')).toBe(1);
  });

  it('answers every connector failure 91 and closes', async () => {
    const fail = {
      'a.example': new StreamRefusedError(EndReason.EXITPOLICY),
      'b.example': new ConnectError('desc_not_found', 'stub'),
    };
    const p = await start(fail);
    for (const host of Object.keys(fail)) {
      const r = await exchange(p.socks, encodeSocks4Request({ command: 1, host, port: 80 }));
      expect(r).toEqual({ data: Buffer.from('005b000000000000', 'hex'), closed: true });
    }
    expect(await p.count('socks4a', 'not_allowed')).toBe(1);
    expect(await p.count('socks4a', 'onion_desc_not_found')).toBe(1);
  });

  it('answers malformed and oversized requests 91 before closing, as C tor; nothing reaches the connector', async () => {
    const p = await start();
    const reject = Buffer.from('005b000000000000', 'hex');
    for (const bad of [
      Buffer.from('04010000 7f000001 00'.replaceAll(' ', ''), 'hex'), // port 0
      Buffer.from('04020050 7f000001 00'.replaceAll(' ', ''), 'hex'), // BIND
      Buffer.from('04010050 00000001 00 00'.replaceAll(' ', ''), 'hex'), // empty 4a hostname
      Buffer.concat([Buffer.from('0401005000000001', 'hex'), Buffer.alloc(600, 0x61)]), // no NUL in 512 bytes
    ])
      expect(await exchange(p.socks, bad)).toEqual({ data: reject, closed: true });
    expect(p.seen).toHaveLength(0);
    expect(await p.count('socks4', 'malformed')).toBe(4);
  });

  it('closes silently when the client leaves mid-request, and on an unknown version byte', async () => {
    const p = await start();
    const half = await new Promise<Buffer>((resolve) => {
      const s = net.connect(p.socks, '127.0.0.1');
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('close', () => resolve(Buffer.concat(got)));
      s.end(Buffer.from('0401005000000001616263', 'hex'));
    });
    expect(half).toHaveLength(0);
    expect(await exchange(p.socks, Buffer.from('06010050', 'hex'))).toEqual({
      data: Buffer.alloc(0),
      closed: true,
    });
  });

  it('answers an HTTP request with C tor\'s "Tor is not an HTTP Proxy" page, pointing to the tunnel', async () => {
    const p = await start();
    for (const req of ['GET http://a.example/ HTTP/1.1\r\n\r\n', 'CONNECT a.example:443 HTTP/1.1\r\n\r\n']) {
      const r = await exchange(p.socks, req);
      expect(r.closed).toBe(true);
      expect(r.data.toString('latin1')).toMatch(/^HTTP\/1\.0 501 Tor is not an HTTP Proxy\r\n/);
      expect(r.data.toString('latin1')).toContain('use the HTTPTunnelPort');
    }
    expect(p.seen).toHaveLength(0);
    expect(await p.count('not_socks', 'malformed')).toBe(2);
  });

  it('isolates by user id as C tor IsolateSOCKSAuth: SOCKS4 "alice" is SOCKS5 user "alice" with no password', async () => {
    const p = await start();
    await exchange(
      p.socks,
      encodeSocks4Request({ command: 1, host: '127.0.0.1', port: 7, userid: 'alice' }),
      8,
    );
    await exchange(p.socks, encodeSocks4Request({ command: 1, host: '127.0.0.1', port: 7 }), 8);
    for (const [username, password] of [
      ['alice', ''],
      ['', ''],
    ] as const)
      (await socksConnect(p.socks, '127.0.0.1', 7, { username, password, timeoutMs: 5_000 })).destroy();
    // SOCKS5 "alice"/"" shares with SOCKS4 "alice"; empty credentials are none, as in C tor.
    expect(p.seen.map((r) => r.isolationKey)).toEqual([
      'user:5:alice:',
      'anonymous',
      'user:5:alice:',
      'anonymous',
    ]);
  });
});

describe('HTTP CONNECT tunnel port', () => {
  it('answers "HTTP/1.0 200 OK" and splices, with bytes after the head going into the stream', async () => {
    const p = await start();
    const head = 'CONNECT echo.example:7 HTTP/1.1\r\nHost: echo.example:7\r\n\r\n';
    const { data } = await exchange(p.http, `${head}ping`, 23);
    expect(data.toString()).toBe('HTTP/1.0 200 OK\r\n\r\nping');
    expect(await p.count('http_connect', 'success')).toBe(1);
  });

  it("answers each connector failure with C tor's status line", async () => {
    const fail = {
      'refused.example': new StreamRefusedError(EndReason.CONNECTREFUSED),
      'policy.example': new ConnectError('exit_policy', 'stub'),
      'gone.example': new ConnectError('desc_not_found', 'stub'),
      'slow.example': new ConnectError('timeout', 'stub'),
      'broken.example': new Error('stub'),
    };
    const p = await start(fail);
    const got: string[] = [];
    for (const host of Object.keys(fail)) {
      const r = await exchange(p.http, `CONNECT ${host}:80 HTTP/1.1\r\n\r\n`);
      expect(r.closed).toBe(true);
      got.push(r.data.toString());
    }
    expect(got).toEqual([
      'HTTP/1.0 403 Forbidden (connection refused)\r\n\r\n',
      'HTTP/1.0 403 Forbidden (exit policy)\r\n\r\n',
      'HTTP/1.0 404 Not Found (resolve failed)\r\n\r\n',
      'HTTP/1.0 504 Gateway Timeout\r\n\r\n',
      'HTTP/1.0 500 Internal Server Error\r\n\r\n',
    ]);
    expect(await p.count('http_connect', 'ttl_expired')).toBe(1);
  });

  it('answers 405 to other methods, 400 to garbage and oversized heads, 414 to long hosts; then closes', async () => {
    const p = await start();
    const cases: [string, string][] = [
      [
        'GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n',
        'HTTP/1.0 405 Method Not Allowed\r\n\r\n',
      ],
      ['\x16\x03\x01\x02\x00\r\n\r\n', 'HTTP/1.0 400 Bad Request\r\n\r\n'],
      [`CONNECT a.example:80 HTTP/1.1\r\nX: ${'x'.repeat(9000)}`, 'HTTP/1.0 400 Bad Request\r\n\r\n'],
      [`CONNECT ${'a'.repeat(300)}:80 HTTP/1.1\r\n\r\n`, 'HTTP/1.0 414 Request-URI Too Long\r\n\r\n'],
    ];
    for (const [send, want] of cases)
      expect(await exchange(p.http, send)).toEqual({ data: Buffer.from(want), closed: true });
    expect(p.seen).toHaveLength(0);
    expect(await p.count('http_connect', 'malformed')).toBe(4);
  });

  it('closes a head that never ends at the handshake timeout, unanswered', async () => {
    const p = await start();
    const started = performance.now();
    const s = net.connect(p.http, '127.0.0.1');
    s.write('CONNECT a.example:80 HTTP/1.1\r\n');
    const got = await new Promise<number>((resolve) => {
      let n = 0;
      s.on('data', (d: Buffer) => {
        n += d.length;
      });
      s.on('close', () => resolve(n));
    });
    expect(got).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('isolates by Proxy-Authorization and X-Tor-Stream-Isolation, apart from the SOCKS port', async () => {
    const p = await start();
    const send = (extra: string) => exchange(p.http, `CONNECT 127.0.0.1:7 HTTP/1.1\r\n${extra}\r\n`, 19);
    await send('Proxy-Authorization: Basic YTpi\r\n');
    await send('X-Tor-Stream-Isolation: 2\r\n');
    await send('');
    await send('Proxy-Authorization:\r\n');
    expect(p.seen.map((r) => r.isolationKey)).toEqual([
      'http-tunnel:user:10:Basic YTpi:',
      'http-tunnel:user:0::2',
      'http-tunnel:anonymous',
      'http-tunnel:anonymous',
    ]);
  });
});
