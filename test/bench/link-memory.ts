/**
 * Resident memory per link (issue 17): opens `--pairs=N` wss links in this
 * one process, each to a listener of its own (as the authorities' held
 * probe channels reach N relays under `shallot up`), passes `--burst=KiB`
 * from each listener to its dialer, waits, and prints the RSS each pair
 * and each listener keep, with JSON to bench-results/link-memory-*.json.
 * A TLS socket keeps the buffers a burst made it allocate (Node's NodeBIO)
 * until it closes: compare `--burst=0` with `--burst=64` (the bandwidth
 * scanner's MEASURE_BYTES, services/directory/reachability.ts). Run it
 * with MALLOC_ARENA_MAX=2 as the shallot command does for its figures.
 * Links only, no link handshake: tor-spec §4's cells ride on top.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ed25519Generate } from '../../services/core/crypto.js';
import { createLinkKeys } from '../../services/net/link-keys.js';
import { dialLink, type LinkConnection, type LinkServer, listenLinks } from '../../services/net/transport.js';
import { benchResultsPath } from './results-file.js';

const args = process.argv.slice(2);
const num = (name: string, fallback: number) => {
  const v = Number(args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3));
  return Number.isFinite(v) && v >= 0 ? v : fallback;
};
const pairs = num('pairs', 300);
const burstBytes = num('burst', 64) * 1024;
/** Bytes per send: a turn's worth of 514-byte cells, as a relay writes a fetch. */
const CHUNK = 514 * 16;

const rssMiB = () => (Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096) / 2 ** 20;
const settle = async () => {
  await new Promise((r) => setTimeout(r, 500));
  (globalThis as { gc?: () => void }).gc?.();
};

async function main(): Promise<void> {
  await settle();
  const r0 = rssMiB();
  const servers: LinkServer[] = [];
  const accepted: LinkConnection[] = [];
  for (let i = 0; i < pairs; i++) {
    const keys = createLinkKeys(ed25519Generate());
    servers.push(await listenLinks({ host: '127.0.0.1', port: 0, tls: keys.tls }, (l) => accepted.push(l)));
  }
  await settle();
  const r1 = rssMiB();
  const dialled: LinkConnection[] = [];
  for (const [i, s] of servers.entries()) {
    const link = await dialLink(s.url);
    dialled.push(link);
    while (accepted.length <= i) await new Promise((r) => setTimeout(r, 1));
    if (burstBytes === 0) continue;
    let got = 0;
    const done = new Promise<void>((res) =>
      link.on('data', (d: Uint8Array) => {
        got += d.length;
        if (got >= burstBytes) res();
      }),
    );
    for (let sent = 0; sent < burstBytes; sent += CHUNK) accepted[i]?.send(new Uint8Array(CHUNK));
    await done;
  }
  await settle();
  const r2 = rssMiB();
  const result = {
    pairs,
    burstKiB: burstBytes / 1024,
    mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null,
    perListenerKiB: ((r1 - r0) * 1024) / pairs,
    perPairKiB: ((r2 - r1) * 1024) / pairs,
    rssMiB: r2,
  };
  console.log(
    `${pairs} links, ${result.burstKiB} KiB through each: ${result.perPairKiB.toFixed(0)} KiB per pair (both TLS ends), ${result.perListenerKiB.toFixed(0)} KiB per listener; RSS ${r2.toFixed(0)} MiB`,
  );
  const file = benchResultsPath('link-memory');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`JSON: ${file}`);
  for (const l of dialled) l.destroy();
  await Promise.all(servers.map((s) => s.close()));
}

await main();
