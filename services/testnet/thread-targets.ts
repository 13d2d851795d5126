/**
 * Fault targets (fault.ts) for relays that share a process: a relay of the
 * one-process launcher (a RelaySlot on this thread) or of a relay worker
 * thread (the same RelaySlot there, driven over the worker's MessagePort).
 * Their pause is `null`: the injector holds their links through the
 * link-fault table instead, since one thread cannot SIGSTOP one relay.
 *
 * Not in this module: what stop, kill and start do to a relay
 * (relay-slot.ts); the process launcher's targets (fault.ts childTarget).
 */

import type { Worker } from 'node:worker_threads';
import type { FaultTarget } from './fault.js';
import type { LauncherMessage, RelayFaultOp, WorkerMessage } from './node-worker.js';
import type { RelaySlot } from './relay-slot.js';

/** A relay on this thread. */
export function slotTarget(slot: RelaySlot): FaultTarget {
  return {
    name: slot.nickname,
    pause: null,
    // A relay's own stop has no grace to overrun: it closes its circuits and listener and returns.
    stop: () => slot.stop(),
    kill: () => slot.kill(),
    start: async () => void (await slot.start()),
  };
}

let nextId = 1;

/** Asks a relay worker to stop, kill or start one of its relays; resolves when it has. */
function relayFault(worker: Worker, relay: string, op: RelayFaultOp): Promise<void> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerMessage) => {
      if (m.type !== 'relay-fault-done' || m.id !== id) return;
      done();
      if (m.error) reject(new Error(m.error));
      else resolve();
    };
    const onExit = () => {
      done();
      reject(new Error(`the worker running ${relay} has exited`));
    };
    const done = () => {
      worker.off('message', onMessage);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    worker.postMessage({ type: 'relay-fault', id, op, relay } satisfies LauncherMessage);
  });
}

/** A relay in a worker thread. */
export function workerRelayTarget(worker: Worker, relay: string): FaultTarget {
  return {
    name: relay,
    pause: null,
    stop: () => relayFault(worker, relay, 'stop'),
    kill: () => relayFault(worker, relay, 'kill'),
    start: () => relayFault(worker, relay, 'start'),
  };
}
