/**
 * Fault targets (fault.ts) for nodes that share a process: a relay, an
 * authority or an onion-service instance on this thread (a RelaySlot or a
 * NodeSlot), or a relay or authority of a worker thread (the same slot
 * there, driven over the worker's MessagePort). Their pause is `null`: the
 * injector holds their links (and an authority's DirPort) through the
 * link-fault table instead, since one thread cannot SIGSTOP one node.
 *
 * Not in this module: what stop, kill and start do to a node
 * (relay-slot.ts, node-slot.ts); the process launcher's targets (fault.ts
 * childTarget).
 */

import type { Worker } from 'node:worker_threads';
import type { FaultTarget } from './fault.js';
import type { LauncherMessage, NodeFaultOp, WorkerMessage } from './node-worker.js';

/** What both slots (relay-slot.ts, node-slot.ts) offer a fault. */
export interface FaultSlot {
  readonly nickname: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<unknown>;
}

/** A node on this thread. */
export function slotTarget(slot: FaultSlot): FaultTarget {
  return {
    name: slot.nickname,
    pause: null,
    // A node's own stop here has no grace to overrun: it closes its circuits or server and returns.
    stop: () => slot.stop(),
    kill: () => slot.kill(),
    start: async () => void (await slot.start()),
  };
}

let nextId = 1;

/** Asks a worker to stop, kill or start one of its nodes; resolves when it has. */
function nodeFault(worker: Worker, node: string, op: NodeFaultOp): Promise<void> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerMessage) => {
      if (m.type !== 'node-fault-done' || m.id !== id) return;
      done();
      if (m.error) reject(new Error(m.error));
      else resolve();
    };
    const onExit = () => {
      done();
      reject(new Error(`the worker running ${node} has exited`));
    };
    const done = () => {
      worker.off('message', onMessage);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    worker.postMessage({ type: 'node-fault', id, op, node } satisfies LauncherMessage);
  });
}

/** A relay or an authority in a worker thread. */
export function workerNodeTarget(worker: Worker, node: string): FaultTarget {
  return {
    name: node,
    pause: null,
    stop: () => nodeFault(worker, node, 'stop'),
    kill: () => nodeFault(worker, node, 'kill'),
    start: () => nodeFault(worker, node, 'start'),
  };
}
