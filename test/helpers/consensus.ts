// Waits for what a test needs from a client's consensus: the first consensus
// after a network starts may predate the authorities' uptime thresholds, so
// it can list relays without Guard, Stable or HSDir yet.
import type { ShallotClient } from '../../services/client/client.js';

/** Waits until the client's consensus gives at least `relays` relays every one of `flags`. */
export async function flagsListed(
  c: ShallotClient,
  flags: string[],
  relays: number,
  ms = 40_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = c.dir?.relays.filter((r) => flags.every((f) => r.flags.includes(f))).length ?? 0;
    if (n >= relays) return;
    if (Date.now() > deadline)
      throw new Error(`${n} of ${relays} relays have ${flags.join(',')} after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
