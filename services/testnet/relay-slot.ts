/**
 * One relay of a network whose relays share a process (the one-process
 * launcher, network.ts, and each relay worker thread, node-worker.ts) as a
 * fault target (fault.ts): stopped cleanly, killed, or started again with
 * the same keys, nickname and port, as `--process-per-node` restarts a node
 * from its arguments.
 *
 * Design notes: the stop, kill and start are a node slot's (node-slot.ts),
 * whose node here is the relay with its onion roles: a kill drops every
 * link of the relay at once, before any DESTROY or END cell could be sent
 * (net/link-faults.ts dropLinksOf: the sockets reset, as the kernel closes
 * a dead process's), and only then frees the relay's state. A stop is the
 * relay's own shutdown (DESTROY with reason HIBERNATING on every circuit,
 * tor-spec §5.4, as C tor's hibernation does). What is the relay's own is
 * here: either way it starts again from its key file, so it keeps its
 * identity and the authorities list it again after their next reachability
 * test; on the port it had, so its descriptor stays the same; with the
 * re-entry ports its exit refuses; and a start that fails is undone by the
 * relay's stop (a listener it opened before the failure closes).
 */

import type { HostPort } from '../core/relay-pivot.js';
import { RelayNode } from '../relay/node.js';
import { attachOnionRoles, type OnionRoles } from '../relay/onion-roles.js';
import { readKeyFile } from '../runtime/key-store.js';
import { NodeSlot, type SlotNode } from './node-slot.js';

type RelayArgs = ConstructorParameters<typeof RelayNode>;

/** A relay with its onion roles, as the node slot holds it. */
interface RelayRun extends SlotNode {
  node: RelayNode;
  roles: OnionRoles | null;
}

export class RelaySlot {
  private readonly slot: NodeSlot<RelayRun>;
  private reentry: HostPort[] = [];
  private started = false;

  constructor(
    private readonly components: RelayArgs[0],
    private readonly opts: RelayArgs[1],
    /** Whether the relay serves the onion-service roles (onion-roles.ts). */
    private readonly onionRoles: boolean,
  ) {
    this.slot = new NodeSlot(opts.nickname, () => this.make());
  }

  get nickname(): string {
    return this.opts.nickname;
  }

  /** The running relay; null while a fault keeps it down. */
  get node(): RelayNode | null {
    return this.slot.node?.node ?? null;
  }

  /** The running relay's onion roles, if it has them. */
  get roles(): OnionRoles | null {
    return this.slot.node?.roles ?? null;
  }

  /** Starts it (again: with the port it had, so its descriptor stays the same). */
  async start(): Promise<RelayNode> {
    return (await this.slot.start()).node;
  }

  /** Adds ports its exit must refuse (kept across restarts). */
  rejectReentry(list: readonly HostPort[]): void {
    this.reentry.push(...list);
    this.node?.rejectReentry(list);
  }

  /** Its clean shutdown. */
  stop(): Promise<void> {
    return this.slot.stop();
  }

  /** Every link drops at once, then the rest of it is freed. */
  kill(): Promise<void> {
    return this.slot.kill();
  }

  /** The relay built afresh, not started. */
  private async make(): Promise<RelayRun> {
    // Again: from the key file, as a process would (its onion keys may have rotated since).
    if (this.started && this.opts.keyFile) this.opts.keys = await readKeyFile(this.opts.keyFile);
    this.started = true;
    const node = new RelayNode(this.components, this.opts);
    const roles = this.onionRoles ? attachOnionRoles(node) : null;
    return {
      node,
      roles,
      start: async () => {
        // Here, not at build: the slot holds the relay from this call on, so rejectReentry reaches it directly.
        node.rejectReentry(this.reentry);
        await node.start();
        this.opts.port = node.relay.port;
      },
      stop: async () => {
        roles?.close();
        await node.stop();
      },
    };
  }
}
