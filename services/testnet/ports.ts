/**
 * Port allocation for the local launcher: a base port counts up, skipping
 * ports something else already holds on 127.0.0.1; port 0 asks the kernel.
 */
import net from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A free port chosen by the kernel (briefly bound, then released). */
export function ephemeralPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export class PortAllocator {
  private next: number;
  private readonly taken = new Set<number>();

  /** `base` 0 means "any free port". */
  constructor(
    private readonly base: number,
    private readonly host = '127.0.0.1',
  ) {
    this.next = base;
  }

  /**
   * The next free port from the base; with `preferred`, that port or the
   * next free one above it (up to 100 further), as `--socks-port` promises.
   */
  async take(preferred?: number): Promise<number> {
    if (preferred !== undefined && preferred > 0) {
      for (let p = preferred; p <= Math.min(65535, preferred + 100); p++) {
        if (!this.taken.has(p) && (await isPortFree(p, this.host))) {
          this.taken.add(p);
          return p;
        }
      }
    }
    if (this.base === 0) {
      for (;;) {
        const p = await ephemeralPort(this.host);
        if (!this.taken.has(p)) {
          this.taken.add(p);
          return p;
        }
      }
    }
    while (this.next < 65535) {
      const p = this.next++;
      if (!this.taken.has(p) && (await isPortFree(p, this.host))) {
        this.taken.add(p);
        return p;
      }
    }
    throw new Error(`no free port at or above ${this.base}`);
  }
}
