// `shallot up` run as users run it (a child process: the CLI from dist/ or
// npx) for the slow suites: ports that race no other suite, the launcher's
// output, its ready summary and state.json, and curl through its SOCKS port.
import { type ChildProcess, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ephemeralPort } from '../../services/testnet/ports.js';
import type { NetworkState } from '../../services/testnet/state.js';

const run = promisify(execFile);

/**
 * `shallot up` arguments for a small network in `dataDir`: the relays and
 * exits asked for, 5 s voting, and `--base-port 0` with free SOCKS and HTTP
 * tunnel ports, since other suites on this machine take README's 7100 up,
 * 9050 and 9080.
 */
export async function smallUpArgs(dataDir: string, relays: number, exits: number): Promise<string[]> {
  return [
    '--data-dir',
    dataDir,
    '--relays',
    String(relays),
    '--exits',
    String(exits),
    '--voting-interval',
    '5',
    '--base-port',
    '0',
    '--socks-port',
    String(await ephemeralPort()),
    '--http-tunnel-port',
    String(await ephemeralPort()),
  ];
}

/** Everything the child prints on stdout and stderr, as it arrives. */
export function collectOutput(child: ChildProcess): { text: string } {
  const out = { text: '' };
  const add = (d: Buffer) => {
    out.text += d.toString();
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return out;
}

/**
 * Waits for the launcher's ready summary ("Press Ctrl-C to stop."), then reads
 * its state.json; rejects, with the output, when it exits first or is not up
 * within `timeoutMs`.
 */
export async function waitUpReady(
  child: ChildProcess,
  out: { text: string },
  dataDir: string,
  timeoutMs: number,
): Promise<NetworkState> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not up in time:\n${out.text}`)), timeoutMs);
    child.stdout?.on('data', () => {
      if (out.text.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`shallot up exited (${code}):\n${out.text}`));
    });
  });
  return JSON.parse(await readFile(path.join(dataDir, 'state.json'), 'utf8')) as NetworkState;
}

/** curl through a SOCKS5 proxy (hostnames resolved by the exit); the body, or a rejection on any failure. */
export async function curlSocks(socks: string, url: string): Promise<Buffer> {
  const { stdout } = await run(
    'curl',
    ['-sS', '--fail', '--max-time', '60', '--socks5-hostname', socks, url],
    {
      encoding: 'buffer',
      maxBuffer: 64 << 20,
    },
  );
  return stdout;
}

/** Hex SHA-256, as the built-in backend's /sha256/<n> states it. */
export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
