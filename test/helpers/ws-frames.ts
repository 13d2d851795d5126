// Hand-made WebSocket frames (RFC 6455 §5.2) that break the protocol in every
// way a parser must survive, and raw endpoints that speak them: a client that
// upgrades a TLS connection to a link listener and then sends garbage, and a
// hostile listener that accepts an upgrade and answers with garbage.
import { createHash } from 'node:crypto';
import * as tls from 'node:tls';
import { ed25519Generate } from '../../services/core/crypto.js';
import { createLinkKeys } from '../../services/net/link-keys.js';

const MASK = Buffer.from([0x11, 0x22, 0x33, 0x44]);

function masked(payload: Buffer): Buffer {
  const out = Buffer.from(payload);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ MASK[i % 4]!;
  return out;
}

/** A frame: first byte (FIN/RSV/opcode), the raw length bytes, and a payload, masked (client) or not (server). */
function frame(b0: number, lenBytes: number[], payload: Buffer, mask: boolean): Buffer {
  return Buffer.concat([
    Buffer.from([b0, (mask ? 0x80 : 0) | lenBytes[0]!, ...lenBytes.slice(1)]),
    mask ? MASK : Buffer.alloc(0),
    mask ? masked(payload) : payload,
  ]);
}

/** Each malformed frame, as the side `mask` says would send it (clients mask, servers do not). */
export function malformedFrames(mask: boolean): { name: string; bytes: Buffer }[] {
  const none = Buffer.alloc(0);
  return [
    {
      name: mask ? 'unmasked client frame' : 'masked server frame',
      bytes: frame(0x82, [2], Buffer.from('ab'), !mask),
    },
    { name: 'RSV1 set without an extension', bytes: frame(0xc2, [0], none, mask) },
    { name: 'reserved data opcode 3', bytes: frame(0x83, [0], none, mask) },
    { name: 'reserved control opcode 0xB', bytes: frame(0x8b, [0], none, mask) },
    { name: 'continuation without a start', bytes: frame(0x80, [0], none, mask) },
    { name: 'oversized control frame', bytes: frame(0x89, [126, 0, 126], Buffer.alloc(126), mask) },
    { name: 'fragmented control frame', bytes: frame(0x09, [0], none, mask) },
    { name: 'invalid UTF-8 text', bytes: frame(0x81, [2], Buffer.from([0xff, 0xfe]), mask) },
    { name: 'bad close code 999', bytes: frame(0x88, [2], Buffer.from([0x03, 0xe7]), mask) },
    { name: 'length 2^63', bytes: frame(0x82, [127, 0x80, 0, 0, 0, 0, 0, 0, 0], none, mask) },
    {
      name: 'length 16 MiB (over the 4 MiB limit)',
      bytes: frame(0x82, [127, 0, 0, 0, 0, 1, 0, 0, 0], none, mask),
    },
    { name: 'four bytes: opcode 3, masked, empty', bytes: Buffer.from([0x83, 0x80, 0, 0]).subarray(0, 4) },
  ];
}

/** Opens TLS to a link listener, upgrades to WebSocket, writes `bytes`, and resolves once the server closes (or after `ms`). */
export function sendRawFrames(port: number, bytes: Buffer, ms = 3_000): Promise<'closed' | 'timeout'> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      s.write(
        'GET /link HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let head = '';
    let upgraded = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, ms);
    s.on('data', (d: Buffer) => {
      if (upgraded) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      if (!head.startsWith('HTTP/1.1 101')) {
        clearTimeout(timer);
        s.destroy();
        reject(new Error(`no upgrade: ${head.split('\r\n')[0]}`));
        return;
      }
      upgraded = true;
      s.write(bytes);
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

export interface HostileListener {
  port: number;
  close(): Promise<void>;
}

/** A TLS listener that accepts any WebSocket upgrade on any path and answers with `bytes`. */
export async function hostileListener(bytes: Buffer): Promise<HostileListener> {
  const { certPem, keyPem } = createLinkKeys(ed25519Generate()).tls;
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: certPem, key: keyPem }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let head = '';
    s.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      s.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
      s.write(bytes);
      head = '';
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const c of sockets) c.destroy();
      }),
  };
}
