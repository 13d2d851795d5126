/**
 * A process-wide cap on exit sockets, so that no client can take a relay's
 * file descriptors through its exit streams (issue 12: one client held 98 %
 * of them with 20 circuits x 512 streams).
 *
 * C tor's rule, carried over: the usable descriptors are the soft
 * RLIMIT_NOFILE less 32 kept for the process itself (`ConnLimit_`,
 * ULIMIT_BUFFER in restrict.c), and a new socket is refused at that limit
 * (socket.c `tor_open_socket_with_extensions`); its out-of-sockets handler
 * works the process back down to 3/4 of it (`ConnLimit_low_thresh`).
 * Here exit sockets may use 3/4 of `ConnLimit_`: the other quarter stays
 * for links to relays and clients, the directory and the ops port, which
 * a flood of exit streams must never starve.
 *
 * Fairness: the last eighth of the exit sockets goes only to circuits that
 * hold fewer than `LIGHT_CIRCUIT_STREAMS` exit sockets, so a client that
 * piles streams onto its circuits reaches its cap while a browser-like
 * circuit (a handful of streams) still gets through.
 *
 * The cap is per process, as descriptors are: every relay in a process
 * shares `processExitSockets`. `SHALLOT_MAX_EXIT_SOCKETS` sets it outright
 * (C tor's ConnLimit is a torrc option, not a consensus parameter).
 *
 * Limitations: the soft limit is read from /proc/self/limits (Linux);
 * elsewhere C tor's fallback of 1024 descriptors is assumed.
 */
import { readFileSync } from 'node:fs';

/** C tor ULIMIT_BUFFER: descriptors kept beyond ConnLimit_ for the process itself. */
const ULIMIT_BUFFER = 32;
/** Circuits holding fewer exit sockets than this may use the reserve. */
export const LIGHT_CIRCUIT_STREAMS = 8;

export class ExitSockets {
  private open = 0;
  /** Sockets held (or being opened) per circuit. */
  private readonly held = new WeakMap<object, number>();
  /** Sockets only light circuits may take. */
  readonly reserve: number;

  constructor(readonly limit: number) {
    this.reserve = Math.floor(limit / 8);
  }

  get inUse(): number {
    return this.open;
  }

  /**
   * Takes a socket for a new exit stream of `circuit`; false when the cap
   * (or, for a circuit already holding `LIGHT_CIRCUIT_STREAMS`, the cap less
   * the reserve) is reached. Each true needs one `release(circuit)`.
   */
  tryTake(circuit: object): boolean {
    const mine = this.held.get(circuit) ?? 0;
    const cap = mine < LIGHT_CIRCUIT_STREAMS ? this.limit : this.limit - this.reserve;
    if (this.open >= cap) return false;
    this.open += 1;
    this.held.set(circuit, mine + 1);
    return true;
  }

  release(circuit: object): void {
    const mine = this.held.get(circuit) ?? 0;
    if (mine === 0) return;
    this.held.set(circuit, mine - 1);
    this.open -= 1;
  }
}

/** The soft RLIMIT_NOFILE of this process, or 1024 when unknown (C tor's default max_sockets). */
export function fdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // Not Linux: fall through to the default.
  }
  return 1024;
}

/** 3/4 of C tor's ConnLimit_ (descriptors less ULIMIT_BUFFER), at least 1. */
export function exitSocketLimit(descriptors: number): number {
  return Math.max(1, Math.floor(((descriptors - ULIMIT_BUFFER) * 3) / 4));
}

function configuredLimit(): number {
  const env = Number(process.env.SHALLOT_MAX_EXIT_SOCKETS);
  return Number.isInteger(env) && env > 0 ? env : exitSocketLimit(fdLimit());
}

/** The budget every relay in this process draws from. */
export const processExitSockets = new ExitSockets(configuredLimit());
