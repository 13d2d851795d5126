/**
 * The link-fault route on a node's ops endpoint (issue 18, faults on demand
 * on Kubernetes): `PUT /link-faults` with the whole link-fault table
 * (net/link-faults.ts: cuts, slows, paused nodes) as JSON, which the node
 * applies at once. The operator sends the table of its OnionNetwork's
 * NetworkFaults to every relay pod on each reconcile while one is in force,
 * and once more when it heals (operator/reconcile/network-fault.ts), so the
 * route is level-triggered and idempotent as the launcher's pipe is.
 *
 * Security: the route exists only when the node was given a token file
 * (`--fault-token-file`, SHALLOT_FAULT_TOKEN_FILE: the operator's Secret
 * `<net>-fault-token`, mounted read-only); a request must carry
 * `Authorization: Bearer <64 hex>` matching it (constant-time compare).
 * The file is read on each request, so a Secret created or changed after
 * the pod started is taken without a restart (kubelet syncs mounted Secrets),
 * and a missing or unreadable file refuses everything (503): never open.
 * Answers: 200 applied, 400 not a table, 401 token, 405 method, 413 body
 * over MAX_FAULT_TABLE_BODY (connection closed, body unread), 503 no token.
 * Every outcome counts in `shallot_link_fault_tables_total{result}`; a bad
 * table is refused and the one in force stays, the node never stops for it.
 */
import { readFile } from 'node:fs/promises';
import type * as http from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { applyLinkFaults, type LinkFaultTable, parseLinkFaultTable } from '../net/link-faults.js';
import { bearerMatches, readLimitedBody } from './control-request.js';

export const FAULT_TABLE_PATH = '/link-faults';

/** As the launcher's pipe (cli.ts MAX_LAUNCHER_LINE): a table for thousands of nodes fits. */
export const MAX_FAULT_TABLE_BODY = 1 << 20;

export type FaultTableResult = 'applied' | 'malformed' | 'unauthorized' | 'too_large' | 'no_token' | 'method';

const HTTP_STATUS: Record<FaultTableResult, number> = {
  applied: 200,
  malformed: 400,
  unauthorized: 401,
  method: 405,
  too_large: 413,
  no_token: 503,
};

/** A refused table: `result` names why (and the HTTP status it answers with). */
export class FaultTableError extends Error {
  readonly code = 'ERR_FAULT_TABLE';
  constructor(
    readonly result: Exclude<FaultTableResult, 'applied'>,
    message: string,
  ) {
    super(message);
    this.name = 'FaultTableError';
  }
  get status(): number {
    return HTTP_STATUS[this.result];
  }
}

const TOKEN = /^[0-9a-f]{64}$/;

/** The token in `file` (64 hex digits), or null when it is missing or not one. */
export async function readFaultToken(file: string): Promise<Buffer | null> {
  try {
    const t = (await readFile(file, 'utf8')).trim();
    return TOKEN.test(t) ? Buffer.from(t, 'hex') : null;
  } catch {
    return null;
  }
}

export interface FaultRoute {
  /** Handles the request if it is for FAULT_TABLE_PATH; false leaves it to the caller. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean;
}

export function faultTableRoute(opts: {
  tokenFile: string;
  registry: Registry;
  /** applyLinkFaults unless given (tests). */
  apply?: (t: LinkFaultTable) => void;
  maxBody?: number;
}): FaultRoute {
  const apply = opts.apply ?? applyLinkFaults;
  const max = opts.maxBody ?? MAX_FAULT_TABLE_BODY;
  const name = 'shallot_link_fault_tables_total';
  const counter =
    (opts.registry.getSingleMetric(name) as Counter<'result'> | undefined) ??
    new Counter({
      name,
      help: 'Link-fault tables received on the ops endpoint (PUT /link-faults), by result: applied, or why refused.',
      labelNames: ['result'] as const,
      registers: [opts.registry],
    });
  const answer = (res: http.ServerResponse, result: FaultTableResult, body: unknown) => {
    counter.inc({ result });
    const status = HTTP_STATUS[result];
    res
      .writeHead(status, {
        'content-type': 'application/json',
        // A refused body may be left unread: the connection cannot carry another request.
        ...(status === 200 ? {} : { connection: 'close' }),
      })
      .end(`${JSON.stringify(body)}\n`);
  };
  const run = async (req: http.IncomingMessage): Promise<LinkFaultTable> => {
    if (req.method !== 'PUT') throw new FaultTableError('method', 'use PUT');
    const token = await readFaultToken(opts.tokenFile);
    if (!token) throw new FaultTableError('no_token', 'no fault token configured');
    if (!bearerMatches(req.headers.authorization, token))
      throw new FaultTableError('unauthorized', 'missing or wrong token');
    const body = await readLimitedBody(req, max);
    if (body === null) throw new FaultTableError('too_large', `body over ${max} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new FaultTableError('malformed', 'body is not JSON');
    }
    const table = parseLinkFaultTable(json);
    if (!table) throw new FaultTableError('malformed', 'not a link-fault table');
    return table;
  };
  return {
    handle(req, res) {
      if ((req.url ?? '/').split('?')[0] !== FAULT_TABLE_PATH) return false;
      run(req).then(
        (t) => {
          apply(t);
          answer(res, 'applied', { cuts: t.cuts.length, slows: t.slows.length, paused: t.paused.length });
        },
        (e: unknown) => {
          if (res.headersSent) return;
          if (e instanceof FaultTableError) answer(res, e.result, { error: e.message, code: e.code });
          // The request's stream failed (client gone): nothing to answer, nothing applied.
          else res.destroy();
        },
      );
      return true;
    },
  };
}
