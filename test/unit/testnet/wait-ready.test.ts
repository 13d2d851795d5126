// The process launcher's readiness wait (services/testnet/launch-processes.ts
// waitReady): a node whose process has exited fails the wait at once, with
// the end of its log, instead of being polled until the bootstrap deadline
// (a CI run waited 240 s on a client that died with EADDRINUSE at start).
// Real processes and a real loopback HTTP server.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitReady } from '../../../services/testnet/launch-processes.js';
import { ephemeralPort } from '../../../services/testnet/ports.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-wait-ready-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('waitReady', () => {
  it('fails at once, quoting the log, when the node has exited', async () => {
    const log = path.join(dir, 'client.log');
    await writeFile(log, 'shallot-client: listen EADDRINUSE: address already in use 127.0.0.1:1\n');
    const child = spawn(process.execPath, ['-e', 'process.exit(1)'], { stdio: 'ignore' });
    await once(child, 'exit');
    // Nothing listens there: only the exit can end the wait before the deadline.
    const url = `http://127.0.0.1:${await ephemeralPort()}/readyz`;
    // waitReady checks the exit before the deadline, so the message alone would not tell
    // "at once" from "at the deadline": the time does. The deadline is far beyond the test's
    // own 30 s timeout, and the bound (20 s) is what a wait until it could never meet, while
    // a few polls on a loaded machine stay far inside it.
    const started = performance.now();
    const e = await waitReady(url, Date.now() + 600_000, child, log).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/client exited during bootstrap \(1\): .*EADDRINUSE/);
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('still waits for a live node until its /readyz answers 200', async () => {
    let calls = 0;
    const server = http.createServer((_req, res) => {
      calls++;
      res.writeHead(calls < 3 ? 503 : 200).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const port = (server.address() as { port: number }).port;
      await waitReady(`http://127.0.0.1:${port}/readyz`, Date.now() + 20_000, child, path.join(dir, 'x.log'));
      expect(calls).toBe(3);
    } finally {
      child.kill();
      server.close();
    }
  });

  it('times out on a live node that never becomes ready', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const url = `http://127.0.0.1:${await ephemeralPort()}/readyz`;
      await expect(waitReady(url, Date.now() + 1_000, child, path.join(dir, 'y.log'))).rejects.toThrow(
        /not ready in time/,
      );
    } finally {
      child.kill();
    }
  });
});
