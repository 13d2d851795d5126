/**
 * The open-file budget of a network whose relays share one process
 * (`shallot up` in its default worker mode, or `--workers 1`): every
 * relay's listener and both ends of every link between nodes of the
 * process are descriptors of one table, bounded by RLIMIT_NOFILE (Node
 * raises its soft limit to the hard one at start). Past it, dials and
 * accepts fail with EMFILE and the network degrades at once. C tor checks
 * the same at start, per process: below its ConnLimit it refuses to run
 * ("Please change your ulimit -n", set_max_file_descriptors), and past
 * its socket budget it refuses new connections (its out-of-sockets
 * handler, which would close idle OR connections, is off by default,
 * DisableOOSCheck 1); so here a network that cannot idle within the limit
 * is refused and one that load could fill is warned of.
 * `--process-per-node` gives every node a table of its own, so it is not
 * judged here.
 *
 * The figures are measured (issue 17, README "At scale"): 6.6 descriptors
 * per relay idle (its listener and both ends of the three channels its
 * authorities hold to it), and a 2,000-relay network under sustained load
 * with a new circuit per request filled a 20,000 table (10 per relay:
 * channels between relays idle out only after an hour, as C tor's).
 */

import { readFileSync } from 'node:fs';

/** Descriptors per relay of an idle network, rounded up from the 6.6 measured. */
export const IDLE_FDS_PER_RELAY = 7;
/** Descriptors per relay under sustained load (measured at 2,000 relays). */
export const LOADED_FDS_PER_RELAY = 10;
/** The rest of the process: authorities' listeners and HTTP, client, exit target, services, logs. */
export const BASE_FDS = 500;

export type FdBudget =
  | { verdict: 'ok' }
  | { verdict: 'warn'; message: string }
  | { verdict: 'refuse'; message: string };

/** The soft "Max open files" of a /proc/<pid>/limits text; null when absent or unlimited. */
export function parseOpenFileLimit(limits: string): number | null {
  const m = /^Max open files\s+(\d+)\s/m.exec(limits);
  return m ? Number(m[1]) : null;
}

/** This process's open-file limit, or null where /proc cannot say (not Linux). */
export function openFileLimit(): number | null {
  try {
    return parseOpenFileLimit(readFileSync('/proc/self/limits', 'latin1'));
  } catch {
    return null;
  }
}

/**
 * Refuses a network whose relays cannot even idle within `limit`, warns
 * when sustained load would fill it; `limit` null (unknown) passes.
 */
export function judgeFdBudget(relays: number, limit: number | null): FdBudget {
  if (limit === null) return { verdict: 'ok' };
  const idle = relays * IDLE_FDS_PER_RELAY + BASE_FDS;
  const loaded = relays * LOADED_FDS_PER_RELAY + BASE_FDS;
  const raise = 'raise it (ulimit -n, up to the hard limit; LimitNOFILE= under systemd) or run fewer relays';
  if (idle > limit) {
    return {
      verdict: 'refuse',
      message: `${relays} relays in one process need about ${idle} open files idle, and this process may open ${limit}: ${raise}`,
    };
  }
  if (loaded > limit) {
    return {
      verdict: 'warn',
      message: `warning: ${relays} relays in one process need about ${idle} open files idle and up to ${loaded} under sustained load, and this process may open ${limit}; past it new links fail (EMFILE): ${raise}`,
    };
  }
  return { verdict: 'ok' };
}
