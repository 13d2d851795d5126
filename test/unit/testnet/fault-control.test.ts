// The launcher's fault control endpoint (services/testnet/fault-control.ts)
// on a real 127.0.0.1 port: the token file is 0600 and required, malformed,
// truncated and oversized bodies are refused with typed codes, and a fault
// goes in and heals through callFaultControl as `shallot fault` uses it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../../services/metrics/metrics.js';
import { childTarget, FaultInjector } from '../../../services/testnet/fault.js';
import {
  CONTROL_REQUEST_TIMEOUT_MS,
  type ControlServer,
  callFaultControl,
  controlTokenFile,
  MAX_CONTROL_BODY,
  serveFaultControl,
} from '../../../services/testnet/fault-control.js';

let dir: string;
let server: ControlServer;
let injector: FaultInjector;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-fault-control-'));
  const registry = createRegistry();
  const { target } = childTarget(
    'relay0',
    () => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }),
    (c) => children.push(c),
  );
  injector = new FaultInjector({ registry }, new Map([['relay0', target]]));
  server = await serveFaultControl({ dataDir: dir, port: 0, registry, injector });
});

afterAll(async () => {
  injector?.close();
  await server?.close();
  for (const c of children) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** A raw HTTP/1.1 exchange, so bodies can be cut short or lie about their length. */
function raw(request: string): Promise<string> {
  const [host, port] = server.address.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), host, () => s.end(request));
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
    });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

const post = async (body: string, auth = true, extra = '') => {
  const { readFile } = await import('node:fs/promises');
  const token = (await readFile(controlTokenFile(dir), 'utf8')).trim();
  return raw(
    `POST /faults HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth ? `Authorization: Bearer ${token}\r\n` : ''}` +
      `Content-Type: application/json\r\n${extra || `Content-Length: ${Buffer.byteLength(body)}\r\n`}\r\n${body}`,
  );
};

describe('fault control endpoint', () => {
  it('listens on 127.0.0.1 only and keeps its token in a 0600 file', async () => {
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await stat(controlTokenFile(dir))).mode & 0o777).toBe(0o600);
  });

  it('refuses requests without the token or with a wrong one', async () => {
    expect(await post('{}', false)).toMatch(/^HTTP\/1\.1 401/);
    const wrong = await raw(
      `GET /faults HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${'0'.repeat(64)}\r\n\r\n`,
    );
    expect(wrong).toMatch(/^HTTP\/1\.1 401/);
  });

  it('serves /metrics without the token (loopback, read-only)', async () => {
    const text = await (await fetch(`http://${server.address}/metrics`)).text();
    expect(text).toContain('shallot_faults_started_total');
  });

  it('answers /healthz and /readyz without the token, as every node in state.json does', async () => {
    for (const p of ['/healthz', '/readyz'])
      expect((await fetch(`http://${server.address}${p}`)).status).toBe(200);
    expect((await fetch(`http://${server.address}/faults`)).status).toBe(401);
  });

  it('answers malformed, truncated and oversized bodies with 400 or 413', async () => {
    expect(await post('{"kind":')).toMatch(/^HTTP\/1\.1 400[\s\S]*ERR_FAULT_REQUEST/);
    expect(await post('[1,2]')).toMatch(/^HTTP\/1\.1 400/);
    expect(await post('{"kind":"pause","target":"relay0","durationSec":"1"}')).toMatch(/^HTTP\/1\.1 400/);
    // Declares more than it sends, then closes: no answer but no fault either.
    const truncated = await post('{"kind":"pause"', true, 'Content-Length: 200\r\n');
    expect(truncated).not.toMatch(/^HTTP\/1\.1 201/);
    const big = `{"kind":"pause","target":"relay0","durationSec":1,"x":"${'a'.repeat(MAX_CONTROL_BODY)}"}`;
    expect(await post(big)).toMatch(/^HTTP\/1\.1 413/);
    // Chunked, so only the running count can catch it.
    const chunk = 'a'.repeat(MAX_CONTROL_BODY + 10);
    const chunked = await post(
      `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
      true,
      'Transfer-Encoding: chunked\r\n',
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413/);
    expect(injector.list()).toHaveLength(0);
  });

  it('injects, lists and heals through callFaultControl; unknown nodes are 404', async () => {
    const f = await callFaultControl(dir, server.address, 'POST', '/faults', {
      kind: 'pause',
      target: 'relay0',
      durationSec: 60,
    });
    expect(f).toMatchObject({ id: 1, kind: 'pause', target: 'relay0' });
    await expect(
      callFaultControl(dir, server.address, 'POST', '/faults', {
        kind: 'kill',
        target: 'relay0',
        durationSec: 5,
      }),
    ).rejects.toMatchObject({ status: 409, code: 'ERR_FAULT_BUSY' });
    await expect(
      callFaultControl(dir, server.address, 'POST', '/faults', {
        kind: 'kill',
        target: 'nope',
        durationSec: 5,
      }),
    ).rejects.toMatchObject({ status: 404, code: 'ERR_FAULT_TARGET' });
    expect(await callFaultControl(dir, server.address, 'GET', '/faults')).toHaveLength(1);
    const healed = await callFaultControl(dir, server.address, 'DELETE', '/faults/1');
    expect(healed).toMatchObject({ id: 1, healedAt: expect.any(String) });
    await expect(callFaultControl(dir, server.address, 'DELETE', '/faults/1')).rejects.toMatchObject({
      status: 404,
    });
  });

  it('refuses hostile link faults with 400 and link faults where none can be applied with 404', async () => {
    expect(await post('{"kind":"cut","target":"relay0","peer":"relay0","durationSec":5}')).toMatch(
      /^HTTP\/1\.1 400[\s\S]*two different nodes/,
    );
    expect(
      await post('{"kind":"slow","target":"relay0","peer":"client","delayMs":1e9,"durationSec":5}'),
    ).toMatch(/^HTTP\/1\.1 400/);
    // This injector was given no way to send a link table.
    expect(await post('{"kind":"cut","target":"relay0","peer":"client","durationSec":5}')).toMatch(
      /^HTTP\/1\.1 404[\s\S]*no link faults/,
    );
  });

  it('cuts off a request that trickles in or stops mid-body (408, connection closed)', async () => {
    // Its own data dir: a second endpoint writes its own token.
    const slowDir = await mkdtemp(path.join(tmpdir(), 'shallot-fault-slow-'));
    const slow = await serveFaultControl({
      dataDir: slowDir,
      port: 0,
      registry: createRegistry(),
      injector,
      requestTimeoutMs: 300,
    });
    try {
      const [host, port] = slow.address.split(':');
      const token = (await readFile(controlTokenFile(slowDir), 'utf8')).trim();
      const started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        const s = net.connect(Number(port), host, () =>
          s.write(
            `POST /faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\n{"kind":`,
          ),
        );
        let out = '';
        s.on('data', (d) => {
          out += d.toString();
        });
        s.on('close', () => resolve(out));
        s.on('error', reject);
        // Past the default timeout: only a server that ignored every timeout gets here.
        setTimeout(
          () => reject(new Error('the server kept a stalled request open')),
          2 * CONTROL_REQUEST_TIMEOUT_MS,
        ).unref();
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      // Closed before the default (10 s) could have fired: the 300 ms asked for is what ended
      // it. A tighter bound would measure the machine's load, not the option.
      expect(Date.now() - started).toBeLessThan(CONTROL_REQUEST_TIMEOUT_MS);
    } finally {
      await slow.close();
      await rm(slowDir, { recursive: true, force: true });
    }
  });
});
