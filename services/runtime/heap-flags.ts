/**
 * V8 heap settings for the isolates that carry relay traffic (issue 16).
 *
 * Why: a relay's live heap is small (about 14 MB for ten relays in one
 * worker) while a download allocates ~80 MB/s of short-lived objects. V8
 * sets the old generation's limit just above the live size after each full
 * collection and starts incremental marking whenever the space left is
 * smaller than the young generation's capacity (8-16 MB while busy), so with
 * default flags the relay worker ran a full Mark-Compact every ~80 ms of a
 * download (35-55 in 4-5 s; `node dist/test/bench/profile.js --trace-gc`
 * shows them started by "task"/"allocation limit" with 15 MB of slack, not
 * by external memory pressure): 18-25 % of the thread. A floor under the
 * old generation's limit (`--initial-old-space-size`: "allow V8 to skip
 * full GCs below that threshold") removes them; a full collection still
 * runs once the old generation passes it. It reserves nothing: an idle node
 * never grows toward it, a busy one holds at most that much garbage.
 *
 * Where: relay worker threads (launch-workers.ts), node processes of
 * --process-per-node (launch-processes.ts), and the launcher's own thread
 * (client, exit target, onion services) through its command line: the
 * `shallot` command's shebang (`env -S`) and `npm start`.
 *
 * Not a Tor behaviour: C tor has no collector.
 */
import v8 from 'node:v8';

/**
 * glibc's malloc arenas for the `shallot` command (issue 17). By default
 * glibc gives each thread that allocates an arena of its own, up to 8 per
 * core, and memory freed in one arena serves only allocations from it: with
 * an authority thread each, a relay worker, libuv's and V8's helper threads,
 * the TLS sockets' and OpenSSL's native buffers were spread over a dozen
 * arenas and the freed parts stayed resident (`/proc/<pid>/smaps`: 367 MiB
 * in arena mappings at 300 relays). Two arenas: 1,243 to 1,049 MiB at 500
 * relays (one run each), 677 to 606 MiB at 300. glibc reads it once, before
 * the first allocation, so it is set in the environment node starts with:
 * the shebang (`env -S`), `npm start` and the container images' ENV
 * (Dockerfile); nodes started by the launcher inherit it. Other C
 * libraries ignore it.
 */
export const NODE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * The young generation of an authority's thread (Worker resourceLimits,
 * MB; V8's default lets it grow to 32 MiB of semi-spaces). An authority
 * carries no relay traffic, only votes, descriptors and its probes: a
 * smaller nursery costs a few more scavenges per vote and saves 16 MiB per
 * authority, committed for good once a vote grew it.
 */
export const AUTHORITY_YOUNG_GENERATION_MB = 16;

/** The old generation's limit never drops below this (MB). */
export const OLD_SPACE_FLOOR_MB = 64;

/** Flags for a node process of its own (`--process-per-node`): placed before the script. */
export const NODE_PROCESS_HEAP_FLAGS: readonly string[] = [`--initial-old-space-size=${OLD_SPACE_FLOOR_MB}`];

/**
 * Applies the floor to isolates created from now on in this process (worker
 * threads read V8's heap flags when their isolate is made; Worker's
 * resourceLimits has no initial or minimum size). The calling thread's own
 * heap is configured already and keeps its limits.
 */
export function floorWorkerOldSpace(): void {
  // The same flags as a node process's, so the test that node accepts them covers both.
  v8.setFlagsFromString(NODE_PROCESS_HEAP_FLAGS.join(' '));
}
