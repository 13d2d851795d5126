/**
 * The launcher's control endpoint for faults on demand (issue 18), and the
 * client side that `shallot fault` uses.
 *
 * Overview: `shallot up` (every mode) listens on 127.0.0.1 only (never
 * another address: a fault endpoint open to other hosts would let them stop
 * the network) and writes a random 32-byte token to `<data-dir>/control.token`
 * (mode 0600, in the 0700 data dir), so only the user who started the
 * network can inject faults. Requests carry `Authorization: Bearer <token>`:
 *   POST   /faults       {"kind","target","durationSec"[,"peer","delayMs"]} -> 201 FaultRecord
 *   GET    /faults                                        -> 200 FaultRecord[]
 *   DELETE /faults/<id>                                   -> 200 FaultRecord (healed)
 *   GET    /metrics      (no token: loopback, read-only; Prometheus scrapes it)
 *   GET    /healthz, /readyz  (no token: the launcher answers health probes as every node does)
 * Errors answer `{"error","code"}` with 400 (bad request), 401 (token), 404
 * (node or fault), 409 (node busy), 413 (body over 4 KiB); a request not
 * whole within 10 s gets 408 and its connection closes.
 *
 * Not in this module: what a fault does (fault.ts).
 */

import { readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { randomBytes } from '../core/crypto.js';
import { bearerMatches, readLimitedBody } from '../runtime/control-request.js';
import {
  FaultError,
  type FaultInjector,
  type FaultRecord,
  type FaultRequest,
  parseFaultRequest,
} from './fault.js';

/** A request body is one small JSON object; anything longer is refused unread. */
export const MAX_CONTROL_BODY = 4096;

/**
 * A whole request (headers and body) must arrive within this long: a client
 * that trickles bytes or stops mid-body is cut off (Node's default is 5 min).
 */
export const CONTROL_REQUEST_TIMEOUT_MS = 10_000;

export const controlTokenFile = (dataDir: string): string => path.join(dataDir, 'control.token');

export interface ControlServer {
  /** "127.0.0.1:port" */
  readonly address: string;
  close(): Promise<void>;
}

const STATUS: Record<FaultError['code'], number> = {
  ERR_FAULT_REQUEST: 400,
  ERR_FAULT_TARGET: 404,
  ERR_FAULT_UNKNOWN: 404,
  ERR_FAULT_BUSY: 409,
};

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res
    .writeHead(status, {
      'content-type': 'application/json',
      // An oversized body is left unread: the connection cannot carry another request.
      ...(status === 413 ? { connection: 'close' } : {}),
    })
    .end(`${JSON.stringify(body)}\n`);
}

export async function serveFaultControl(opts: {
  dataDir: string;
  port: number;
  registry: Registry;
  injector: FaultInjector;
  /** CONTROL_REQUEST_TIMEOUT_MS unless given (tests). */
  requestTimeoutMs?: number;
}): Promise<ControlServer> {
  const token = Buffer.from(randomBytes(32));
  await writeFile(controlTokenFile(opts.dataDir), `${token.toString('hex')}\n`, { mode: 0o600 });
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && url === '/metrics') {
      res.writeHead(200, { 'content-type': opts.registry.contentType }).end(await opts.registry.metrics());
      return;
    }
    // The launcher is a node in state.json like the others: health probes answer as theirs do.
    if (req.method === 'GET' && (url === '/healthz' || url === '/readyz')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (!bearerMatches(req.headers.authorization, token))
      return send(res, 401, { error: 'missing or wrong token', code: 'ERR_FAULT_AUTH' });
    if (req.method === 'GET' && url === '/faults') return send(res, 200, opts.injector.list());
    if (req.method === 'POST' && url === '/faults') {
      const body = await readLimitedBody(req, MAX_CONTROL_BODY);
      if (body === null) return send(res, 413, { error: 'body too large', code: 'ERR_FAULT_REQUEST' });
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        return send(res, 400, { error: 'body is not JSON', code: 'ERR_FAULT_REQUEST' });
      }
      return send(res, 201, await opts.injector.inject(parseFaultRequest(json)));
    }
    const del = /^\/faults\/([0-9]{1,9})$/.exec(url);
    if (req.method === 'DELETE' && del?.[1]) return send(res, 200, await opts.injector.heal(Number(del[1])));
    send(res, 404, {
      error: 'try POST /faults, GET /faults, DELETE /faults/<id>',
      code: 'ERR_FAULT_REQUEST',
    });
  };
  const timeout = opts.requestTimeoutMs ?? CONTROL_REQUEST_TIMEOUT_MS;
  const server = http.createServer(
    // Node checks the timeouts on an interval: check often enough for them to mean something.
    {
      requestTimeout: timeout,
      headersTimeout: timeout,
      connectionsCheckingInterval: Math.min(1_000, timeout),
    },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (res.headersSent) return;
        if (e instanceof FaultError) send(res, STATUS[e.code], { error: e.message, code: e.code });
        else send(res, 500, { error: (e as Error).message, code: 'ERR_FAULT_INTERNAL' });
      });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export class FaultControlError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'FaultControlError';
  }
}

/** Calls a running launcher's control endpoint (address from state.json, token from the data dir). */
export async function callFaultControl(
  dataDir: string,
  address: string,
  method: 'GET' | 'POST' | 'DELETE',
  route: string,
  body?: FaultRequest,
): Promise<FaultRecord | FaultRecord[]> {
  const token = (await readFile(controlTokenFile(dataDir), 'utf8')).trim();
  const res = await fetch(`http://${address}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
    // A stop or kill waits for the node to exit (up to the node's own 10 s grace).
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await res.json()) as { error?: string; code?: string };
  if (!res.ok)
    throw new FaultControlError(res.status, json.code ?? 'ERR_FAULT', json.error ?? res.statusText);
  return json as FaultRecord | FaultRecord[];
}
