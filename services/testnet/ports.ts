/**
 * Port allocation for the local launcher: a base port counts up, skipping
 * ports something else already holds on 127.0.0.1; base 0 draws free ports
 * below the kernel's ephemeral range.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { randomBytes } from '../core/crypto.js';
import { uniformInt } from '../core/random.js';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * A free port for something to bind later (briefly bound, then released),
 * drawn below the kernel's ephemeral range (see quietRange).
 */
export async function ephemeralPort(
  host = '127.0.0.1',
  taken: ReadonlySet<number> = new Set(),
): Promise<number> {
  const [lo, hi] = quietRange();
  for (let tries = 0; tries < 1000; tries++) {
    const p = lo + uniformInt(hi - lo + 1, randomBytes);
    if (!taken.has(p) && (await isPortFree(p, host))) return p;
  }
  throw new Error(`no free port in ${lo}-${hi}`);
}

/**
 * Where base 0 draws from: below the kernel's ephemeral range. A port
 * chosen now is bound later by a node process; inside the ephemeral range
 * an outgoing connection (any process's) could take it in between, and the
 * node would exit with EADDRINUSE during bootstrap.
 */
let quiet: [number, number] | undefined;
function quietRange(): [number, number] {
  // Read once: the launcher takes a port per node (thousands at scale).
  quiet ??= readQuietRange();
  return quiet;
}

function readQuietRange(): [number, number] {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (low > 12_000) return [10_000, low - 1];
  } catch {
    // Not Linux: the IANA dynamic range starts at 49152.
  }
  return [20_000, 32_767];
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
      const p = await ephemeralPort(this.host, this.taken);
      this.taken.add(p);
      return p;
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
