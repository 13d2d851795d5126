// A minimal SOCKS5 client (RFC 1928, hostname addressing) for tests that
// use the client the way an application would.
import net from 'node:net';

export class SocksReplyError extends Error {
  constructor(readonly reply: number) {
    super(`SOCKS reply 0x${reply.toString(16)}`);
  }
}

export async function socksConnect(
  proxyPort: number,
  host: string,
  port: number,
  opts: { username?: string; password?: string; timeoutMs?: number } = {},
): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port: proxyPort });
  s.setNoDelay(true);
  const timer = setTimeout(() => s.destroy(new Error('SOCKS handshake timed out')), opts.timeoutMs ?? 60_000);
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let failed: Error | null = null;
  const onData = (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  };
  const onEnd = (e?: Error) => {
    failed = e ?? new Error('proxy closed the connection');
    wake?.();
  };
  s.on('data', onData);
  s.on('error', onEnd);
  s.on('close', () => onEnd());
  const need = async (n: number): Promise<Buffer> => {
    while (buf.length < n) {
      if (failed) throw failed;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = null;
    }
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    const auth = opts.username !== undefined;
    s.write(Buffer.from([5, 1, auth ? 2 : 0]));
    const choice = await need(2);
    if (auth) {
      const u = Buffer.from(opts.username ?? '');
      const p = Buffer.from(opts.password ?? '');
      s.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
      await need(2);
    } else if (choice[1] !== 0) throw new Error('proxy refused no-auth');
    const h = Buffer.from(host);
    const req = Buffer.concat([
      Buffer.from([5, 1, 0, 3, h.length]),
      h,
      Buffer.from([port >> 8, port & 0xff]),
    ]);
    s.write(req);
    const head = await need(4);
    if (head[1] !== 0) throw new SocksReplyError(head[1] ?? 0xff);
    const atyp = head[3];
    await need(atyp === 1 ? 6 : atyp === 4 ? 18 : (await need(1))[0]! + 2);
  } catch (e) {
    s.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
    s.off('data', onData);
  }
  s.removeAllListeners('error');
  s.removeAllListeners('close');
  if (buf.length > 0) s.unshift(buf);
  return s;
}
