/**
 * One relay of a network whose relays share a process (the one-process
 * launcher, network.ts, and each relay worker thread, node-worker.ts) as a
 * fault target (fault.ts): stopped cleanly, killed, or started again with
 * the same keys, nickname and port, as `--process-per-node` restarts a node
 * from its arguments.
 *
 * Design notes: a kill in one process cannot lose the process, so it does
 * what peers see when a relay's process dies: every link of the relay
 * drops at once, before any DESTROY or END cell could be sent
 * (net/link-faults.ts dropLinksOf: the sockets reset, as the kernel closes
 * a dead process's), and only then is the relay's state freed. A stop is
 * the relay's own shutdown (DESTROY with reason HIBERNATING on every
 * circuit, tor-spec §5.4, as C tor's hibernation does). Either way the
 * relay starts again from its key file, so it keeps its identity and the
 * authorities list it again after their next reachability test.
 */

import type { HostPort } from '../core/relay-pivot.js';
import { dropLinksOf } from '../net/link-faults.js';
import { RelayNode } from '../relay/node.js';
import { attachOnionRoles, type OnionRoles } from '../relay/onion-roles.js';
import { readKeyFile } from '../runtime/key-store.js';

type RelayArgs = ConstructorParameters<typeof RelayNode>;

export class RelaySlot {
  private current: { node: RelayNode; roles: OnionRoles | null } | null = null;
  private reentry: HostPort[] = [];
  private started = false;

  constructor(
    private readonly components: RelayArgs[0],
    private readonly opts: RelayArgs[1],
    /** Whether the relay serves the onion-service roles (onion-roles.ts). */
    private readonly onionRoles: boolean,
  ) {}

  get nickname(): string {
    return this.opts.nickname;
  }

  /** The running relay; null while a fault keeps it down. */
  get node(): RelayNode | null {
    return this.current?.node ?? null;
  }

  /** The running relay's onion roles, if it has them. */
  get roles(): OnionRoles | null {
    return this.current?.roles ?? null;
  }

  /** Starts it (again: with the port it had, so its descriptor stays the same). */
  async start(): Promise<RelayNode> {
    if (this.current) return this.current.node;
    // Again: from the key file, as a process would (its onion keys may have rotated since).
    if (this.started && this.opts.keyFile) this.opts.keys = await readKeyFile(this.opts.keyFile);
    this.started = true;
    const node = new RelayNode(this.components, this.opts);
    const roles = this.onionRoles ? attachOnionRoles(node) : null;
    node.rejectReentry(this.reentry);
    this.current = { node, roles };
    try {
      await node.start();
    } catch (e) {
      this.current = null;
      roles?.close();
      throw e;
    }
    this.opts.port = node.relay.port;
    return node;
  }

  /** Adds ports its exit must refuse (kept across restarts). */
  rejectReentry(list: readonly HostPort[]): void {
    this.reentry.push(...list);
    this.current?.node.rejectReentry(list);
  }

  /** Its clean shutdown. */
  async stop(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = null;
    c.roles?.close();
    await c.node.stop();
  }

  /** Every link drops at once, then the rest of it is freed. */
  async kill(): Promise<void> {
    if (!this.current) return;
    dropLinksOf(this.opts.nickname);
    await this.stop();
  }
}
