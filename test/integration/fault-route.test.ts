/**
 * The ops endpoint's PUT /link-faults (services/runtime/fault-route.ts) over
 * real HTTP on 127.0.0.1: a good table with the right token is applied;
 * no token file, a wrong or missing token, a wrong method, malformed,
 * truncated, oversized and hostile bodies are refused with their status and
 * counted, the table in force stays, and the server keeps serving.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { applyLinkFaults, currentLinkFaults, EMPTY_LINK_FAULTS } from '../../services/net/link-faults.js';
import { FAULT_TABLE_PATH, MAX_FAULT_TABLE_BODY } from '../../services/runtime/fault-route.js';
import { type OpsServer, serveOps } from '../../services/runtime/ops-server.js';

const TOKEN = 'ab'.repeat(32);
const TABLE = {
  cuts: [['neta0r1', 'neta0r2']],
  slows: [{ a: 'neta0r1', b: 'neta0r3', delayMs: 250 }],
  paused: ['neta0r4'],
};

let dir: string;
let ops: OpsServer;
let registry: Registry;
let noToken: OpsServer;

const url = (s: OpsServer) => `http://127.0.0.1:${s.port}${FAULT_TABLE_PATH}`;
const put = (body: string, token: string | null = TOKEN, method = 'PUT', s = ops) =>
  fetch(url(s), {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(method === 'GET' ? {} : { body }),
  });
const counted = async (result: string) => {
  const line = (await registry.metrics())
    .split('\n')
    .find((l) => l.startsWith(`shallot_link_fault_tables_total{result="${result}"`));
  return Number(line?.split(' ').pop() ?? 0);
};
/** Writes raw bytes and returns what came back before the server closed (or `ms` passed). */
const raw = (bytes: string, ms = 3_000) =>
  new Promise<string>((resolve) => {
    const sock = net.connect(ops.port, '127.0.0.1');
    let got = '';
    const done = () => {
      clearTimeout(t);
      sock.destroy();
      resolve(got);
    };
    const t = setTimeout(done, ms);
    sock.on('data', (d) => {
      got += d.toString();
    });
    sock.on('close', done);
    sock.on('error', done);
    sock.write(bytes);
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'fault-route-'));
  await writeFile(path.join(dir, 'token'), `${TOKEN}\n`);
  registry = new Registry();
  const health = () => ({ ok: true, ready: true });
  ops = await serveOps({
    host: '127.0.0.1',
    port: 0,
    registry,
    health,
    faultTokenFile: path.join(dir, 'token'),
  });
  noToken = await serveOps({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    health,
    faultTokenFile: path.join(dir, 'absent'),
  });
});

afterEach(() => applyLinkFaults(EMPTY_LINK_FAULTS));

afterAll(async () => {
  await ops?.close();
  await noToken?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('PUT /link-faults', () => {
  it('applies a whole table with the right token, and an empty one heals', async () => {
    const res = await put(JSON.stringify(TABLE));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ cuts: 1, slows: 1, paused: 1 });
    const t = currentLinkFaults();
    expect(t.cuts).toEqual([['neta0r1', 'neta0r2']]);
    expect(t.slows).toEqual([{ a: 'neta0r1', b: 'neta0r3', delayMs: 250 }]);
    expect(t.paused).toEqual(['neta0r4']);
    expect(await counted('applied')).toBeGreaterThanOrEqual(1);
    expect((await put(JSON.stringify(EMPTY_LINK_FAULTS))).status).toBe(200);
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
  });

  it('refuses a wrong, missing or malformed token (401) and keeps the table in force', async () => {
    expect((await put(JSON.stringify(TABLE))).status).toBe(200);
    for (const token of ['cd'.repeat(32), null, 'ab'.repeat(31), `${TOKEN}0`, 'AB'.repeat(32)]) {
      const res = await put(JSON.stringify(EMPTY_LINK_FAULTS), token);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe('ERR_FAULT_TABLE');
    }
    expect(currentLinkFaults().paused).toEqual(['neta0r4']);
    expect(await counted('unauthorized')).toBeGreaterThanOrEqual(5);
  });

  it('without a token file the route refuses everything (503): never open', async () => {
    const res = await put(JSON.stringify(TABLE), TOKEN, 'PUT', noToken);
    expect(res.status).toBe(503);
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
  });

  it('refuses other methods (405)', async () => {
    expect((await put('', TOKEN, 'GET')).status).toBe(405);
    expect((await put(JSON.stringify(TABLE), TOKEN, 'POST')).status).toBe(405);
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
  });

  it('refuses malformed and hostile tables (400), applying nothing', async () => {
    const bad = [
      '',
      'not json',
      '{"cuts":[["a","b"]',
      'null',
      '[]',
      '"table"',
      '{}',
      JSON.stringify({ ...TABLE, cuts: [['a']] }),
      JSON.stringify({ ...TABLE, cuts: [['a', 'b', 'c']] }),
      JSON.stringify({ ...TABLE, paused: ['UPPER'] }),
      JSON.stringify({ ...TABLE, paused: ['a'.repeat(64)] }),
      JSON.stringify({ ...TABLE, paused: ['../etc'] }),
      JSON.stringify({ ...TABLE, slows: [{ a: 'a', b: 'b', delayMs: -1 }] }),
      JSON.stringify({ ...TABLE, slows: [{ a: 'a', b: 'b', delayMs: 1e9 }] }),
      JSON.stringify({ ...TABLE, slows: [{ a: 'a', b: 'b', delayMs: '5' }] }),
      JSON.stringify({ ...TABLE, slows: [null] }),
      JSON.stringify({ ...TABLE, paused: Array.from({ length: 5000 }, (_, i) => `n${i}`) }),
      '{"__proto__":{"polluted":1},"cuts":[],"slows":[],"paused":[{}]}',
    ];
    for (const body of bad) {
      const res = await put(body);
      expect(res.status, body.slice(0, 60)).toBe(400);
    }
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await counted('malformed')).toBeGreaterThanOrEqual(bad.length);
  });

  it('refuses an oversized body (413) by its length and while reading a chunked one', async () => {
    const big = JSON.stringify({ cuts: [], slows: [], paused: [], pad: 'x'.repeat(MAX_FAULT_TABLE_BODY) });
    expect((await put(big)).status).toBe(413);
    const chunked = await raw(
      `PUT ${FAULT_TABLE_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${(MAX_FAULT_TABLE_BODY + 10).toString(16)}\r\n${'x'.repeat(MAX_FAULT_TABLE_BODY + 10)}\r\n0\r\n\r\n`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413/);
    expect(await counted('too_large')).toBeGreaterThanOrEqual(2);
  });

  it('a truncated body or garbage request closes its connection; the server lives on', async () => {
    // Content-Length promises more than comes, then the client goes away.
    const sock = net.connect(ops.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.end(
      `PUT ${FAULT_TABLE_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 500\r\n\r\n{"cuts":[`,
    );
    let answer = '';
    sock.on('data', (d) => {
      answer += d.toString();
    });
    await new Promise((r) => sock.once('close', r));
    expect(answer).toMatch(/^$|^HTTP\/1\.1 400/);
    expect(await raw('\x16\x03\x01\x00\xff garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400|^$/);
    expect(await raw(`PUT ${FAULT_TABLE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 4/,
    );
    expect(currentLinkFaults()).toEqual(EMPTY_LINK_FAULTS);
    // Still serving, table and metrics.
    expect((await put(JSON.stringify(TABLE))).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ops.port}/healthz`)).status).toBe(200);
  });
});
