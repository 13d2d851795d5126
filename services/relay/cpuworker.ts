/**
 * Where CREATE2 onionskins are answered (C tor cpuworker.c): a pool of
 * worker threads shared by every relay of the process, so the X25519 work
 * of a CREATE2 burst runs beside the event loop instead of on it and links
 * keep moving; `NumCPUs` workers as C tor starts (here: the machine's
 * cores, at most 4).
 *
 * Design notes: a worker that dies fails its jobs (their circuits get
 * DESTROY) and is replaced on the next job. Workers are unref'd, so an idle
 * pool never keeps a process alive. Where no compiled worker script exists
 * (the TypeScript sources run under vitest) or the relay was given a
 * seeded RNG (tests replaying handshakes), jobs run inline, one per
 * event-loop turn, through the same queue (onionskin-queue.ts).
 *
 * Not in this module: queueing, fairness and shedding (onionskin-queue.ts).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type HandshakeServerKeys, serverHandshake } from '../core/create-handshake.js';
import type { Rng } from '../core/crypto.js';
import { InvalidError } from '../core/errors.js';
import type { CircuitKeys } from '../core/ntor.js';

export interface OnionskinRequest {
  htype: number;
  hdata: Uint8Array;
  keys: HandshakeServerKeys;
}

export interface OnionskinAnswer {
  reply: Uint8Array;
  keys: CircuitKeys;
}

/** Answers one onionskin; rejects when the handshake fails (the caller sends DESTROY). */
export type OnionskinExecutor = (req: OnionskinRequest) => Promise<OnionskinAnswer>;

type Pending = { resolve: (a: OnionskinAnswer) => void; reject: (e: Error) => void };

class CpuWorkerPool {
  private readonly workers: { worker: Worker; pending: Map<number, Pending> }[] = [];
  private nextId = 0;
  private turn = 0;

  constructor(
    private readonly script: URL,
    readonly size: number,
  ) {}

  run(req: OnionskinRequest): Promise<OnionskinAnswer> {
    const w = this.pick();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      w.worker.postMessage({ id, ...req });
    });
  }

  private pick() {
    if (this.workers.length < this.size) return this.spawn();
    this.turn = (this.turn + 1) % this.workers.length;
    return this.workers[this.turn]!;
  }

  private spawn() {
    const worker = new Worker(this.script);
    const entry = { worker, pending: new Map<number, Pending>() };
    worker.unref();
    worker.on('message', (m: { id: number; error?: string } & Partial<OnionskinAnswer>) => {
      const p = entry.pending.get(m.id);
      entry.pending.delete(m.id);
      if (!p) return;
      if (m.error !== undefined || !m.reply || !m.keys)
        p.reject(new InvalidError('CREATE2', m.error ?? 'no reply'));
      else p.resolve({ reply: m.reply, keys: m.keys });
    });
    const fail = (why: string) => {
      const i = this.workers.indexOf(entry);
      if (i >= 0) this.workers.splice(i, 1);
      for (const p of entry.pending.values()) p.reject(new Error(`cpuworker ${why}`));
      entry.pending.clear();
    };
    worker.on('error', (e) => fail(`failed: ${e.message}`));
    worker.on('exit', (code) => fail(`exited (${code})`));
    this.workers.push(entry);
    return entry;
  }
}

const SCRIPT = new URL('./cpuworker-main.js', import.meta.url);
let shared: CpuWorkerPool | null = null;

/** The process's cpuworker pool, or null where jobs must run inline (see header). */
function sharedPool(): CpuWorkerPool | null {
  if (!shared && existsSync(fileURLToPath(SCRIPT))) {
    shared = new CpuWorkerPool(SCRIPT, Math.max(1, Math.min(availableParallelism(), 4)));
  }
  return shared;
}

/** Runs one handshake on this event loop, a turn later, so a burst still yields to I/O between onionskins. */
function inlineExecutor(rng: Rng): OnionskinExecutor {
  return (req) =>
    new Promise((resolve, reject) =>
      setImmediate(() => {
        try {
          resolve(serverHandshake(req.htype, rng, req.keys, req.hdata));
        } catch (e) {
          reject(e);
        }
      }),
    );
}

/** The executor a relay uses: the shared worker pool when it can, inline otherwise. */
export function onionskinExecutor(
  rng: Rng,
  inline: boolean,
): { execute: OnionskinExecutor; concurrency: number } {
  const pool = inline ? null : sharedPool();
  if (!pool) return { execute: inlineExecutor(rng), concurrency: 1 };
  return { execute: (req) => pool.run(req), concurrency: pool.size * 2 };
}
