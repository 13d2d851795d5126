/**
 * A cpuworker thread (C tor cpuworker.c): answers CREATE2 onionskins off
 * the relay's event loop. Receives `{ id, htype, hdata, keys }`, replies
 * `{ id, reply, keys }` or `{ id, error }` for a handshake that fails.
 * See cpuworker.ts for the pool that feeds it.
 */
import { parentPort } from 'node:worker_threads';
import { serverHandshake } from '../core/create-handshake.js';
import { randomBytes } from '../core/crypto.js';
import type { OnionskinRequest } from './cpuworker.js';

parentPort?.on('message', (m: OnionskinRequest & { id: number }) => {
  try {
    const r = serverHandshake(m.htype, randomBytes, m.keys, m.hdata);
    parentPort?.postMessage({ id: m.id, reply: r.reply, keys: r.keys });
  } catch (e) {
    parentPort?.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
