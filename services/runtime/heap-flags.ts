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
