/**
 * Memory per idle relay-side circuit (issue 12, MaxMemInQueues): opens
 * `--circuits=N` circuits (tor-spec §5.1, CREATE2 ntor) on one wss channel
 * to an in-process relay and prints what each costs the process — JS heap
 * plus external memory after a forced GC, and RSS — minus the client side's
 * share, measured alone first (the same CircIDs registered on the channel
 * with the same handlers, no CREATE2 sent). Run with `node --expose-gc`
 * and MALLOC_ARENA_MAX=2 (as the shallot command runs); JSON goes to
 * bench-results/circuit-memory-*.json. The figure is QueueMemory's
 * CIRCUIT_STATE_BYTES (services/relay/queue-memory.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { LinkMessage } from '../../services/core/cells.js';
import { startClientHandshake } from '../../services/core/create-handshake.js';
import { randomBytes } from '../../services/core/crypto.js';
import { ChannelPool } from '../../services/net/channel-pool.js';
import { hopTarget, linkPeer, startLocalRelay } from '../helpers/relays.js';
import { benchResultsPath } from './results-file.js';

const args = process.argv.slice(2);
const num = (name: string, fallback: number) => {
  const v = Number(args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const N = num('circuits', 5_000);
const BATCH = 200;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const rss = () => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
async function sample(): Promise<{ js: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 200));
    gc?.();
  }
  const m = process.memoryUsage();
  return { js: m.heapUsed + m.external, rss: rss() };
}

async function main(): Promise<void> {
  // No idle-channel timeout during the run: the channel carries only idle circuits.
  const relay = await startLocalRelay('mem', { limits: { idleClientChannelMs: 3_600_000 } });
  const pool = new ChannelPool({ keys: null, tls: true });
  const ch = await pool.get(linkPeer(relay));
  const target = hopTarget(relay);
  const handler = () => ({ onCell: (_m: LinkMessage) => {}, onChannelClosed: () => {} });

  // Client side alone: N CircIDs with handlers, nothing sent.
  const s0 = await sample();
  const ids: number[] = [];
  for (let i = 0; i < N; i++) {
    const id = ch.allocateCircId();
    ch.register(id, handler());
    ids.push(id);
  }
  const s1 = await sample();
  for (const id of ids) ch.unregister(id);
  ids.length = 0;

  let created = 0;
  let refused = 0;
  const open = async (count: number, opened: number[]) => {
    for (let done = 0; done < count; done += BATCH) {
      const n = Math.min(BATCH, count - done);
      await new Promise<void>((res) => {
        let left = n;
        for (let i = 0; i < n; i++) {
          const id = ch.allocateCircId();
          const { htype, hdata } = startClientHandshake('ntor', randomBytes, target);
          ch.register(id, {
            onCell: (m) => {
              if (m.type === 'CREATED2') created++;
              else refused++;
              if (--left === 0) res();
            },
            onChannelClosed: () => {},
          });
          ch.send(id, { type: 'CREATE2', htype, hdata });
          opened.push(id);
        }
      });
    }
  };
  // Warm-up, not counted: starts the relay's cpuworker threads and grows its
  // circuit tables once, so their cost is not charged to the circuits.
  const warm: number[] = [];
  await open(BATCH, warm);
  for (const id of warm) {
    ch.send(id, { type: 'DESTROY', reason: 0 });
    ch.unregister(id);
  }
  created = 0;
  refused = 0;

  // Both sides: N circuits the relay answers with CREATED2, then left idle.
  const s2 = await sample();
  await open(N, []);
  const s3 = await sample();
  const client = { js: (s1.js - s0.js) / N, rss: (s1.rss - s0.rss) / N };
  const both = { js: (s3.js - s2.js) / created, rss: (s3.rss - s2.rss) / created };
  const result = {
    circuits: created,
    refused,
    mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
    clientSideBytes: client,
    bothSidesBytes: both,
    relaySideBytes: { js: both.js - client.js, rss: both.rss - client.rss },
  };
  const kib = (b: number) => (b / 1024).toFixed(2);
  console.log(
    `${created} idle circuits (${refused} refused): relay side ${kib(result.relaySideBytes.js)} KiB JS heap+external, ${kib(result.relaySideBytes.rss)} KiB RSS per circuit (client side ${kib(client.js)} / ${kib(client.rss)} KiB subtracted)`,
  );
  const file = benchResultsPath('circuit-memory');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`JSON: ${file}`);
  pool.closeAll();
  await relay.stop();
}

await main();
// The relay's onionskin workers would keep the process alive.
process.exit(0);
