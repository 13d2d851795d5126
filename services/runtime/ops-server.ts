/**
 * The ops endpoint every process serves: `/metrics` (Prometheus text from
 * prom-client), `/healthz` (liveness and a short status as JSON) and
 * `/readyz` (200 only once the node is usable: e.g. a relay listed in a
 * consensus, an onion service with a published descriptor); and, when
 * given a fault token file, `PUT /link-faults` (fault-route.ts).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { faultTableRoute } from './fault-route.js';
import type { Logger } from './log.js';

export interface HealthReport {
  ok: boolean;
  ready: boolean;
  [detail: string]: unknown;
}

export interface OpsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function serveOps(opts: {
  host: string;
  port: number;
  registry: Registry;
  health: () => HealthReport;
  /** Serves PUT /link-faults guarded by the token in this file (none: no such route). */
  faultTokenFile?: string;
}): Promise<OpsServer> {
  const faults = opts.faultTokenFile
    ? faultTableRoute({ tokenFile: opts.faultTokenFile, registry: opts.registry })
    : null;
  // With the fault route, a request not whole within 10 s is cut off (Node's default is 5 min).
  const timeouts = faults
    ? { requestTimeout: 10_000, headersTimeout: 10_000, connectionsCheckingInterval: 1_000 }
    : {};
  const server = http.createServer(timeouts, (req, res) => {
    if (faults?.handle(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const h = opts.health();
      const good = path === '/healthz' ? h.ok : h.ok && h.ready;
      res.writeHead(good ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h)}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${opts.host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A service's ops endpoint as its --ops-host/--ops-port ask: none without a
 * port; otherwise served, and its URL logged.
 */
export async function serveOpsIfAsked(
  logger: Logger,
  opts: {
    host: string;
    port?: number;
    registry: Registry;
    health: () => HealthReport;
    faultTokenFile?: string;
  },
): Promise<OpsServer | null> {
  if (opts.port === undefined) return null;
  const ops = await serveOps({
    host: opts.host,
    port: opts.port,
    registry: opts.registry,
    health: opts.health,
    ...(opts.faultTokenFile ? { faultTokenFile: opts.faultTokenFile } : {}),
  });
  logger.info('ops endpoint', { url: ops.url });
  return ops;
}
