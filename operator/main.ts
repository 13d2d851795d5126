/**
 * The operator process:
 *
 *   node dist/operator/main.js        (config from the environment: config.ts)
 *
 * Authenticates in-cluster with its ServiceAccount token (or $KUBECONFIG
 * outside a cluster), serves /metrics /healthz /readyz, campaigns for the
 * Lease, and runs the controller only while it leads. Losing the Lease
 * stops the controller and exits (the pod restarts and campaigns again),
 * as controller-runtime does: a former leader never keeps acting.
 */
import { pathToFileURL } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { createRegistry, metricsFor } from '../services/metrics/metrics.js';
import { type OpsServer, serveOps } from '../services/runtime/ops-server.js';
import { configFromEnv, type OperatorConfig } from './config.js';
import { Controller } from './controller.js';
import { KubeEventRecorder } from './events.js';
import { HttpKube, type Kube } from './kube/client.js';
import { LeaderElector } from './leader.js';
import { createLogger, isLogLevel, type Logger } from './log.js';

export interface OperatorOptions {
  config: OperatorConfig;
  kube: Kube;
  log: Logger;
  registry?: Registry;
  /** Lease timings (tests shorten them). */
  lease?: { durationMs: number; renewDeadlineMs: number; retryMs: number };
  baseBackoffMs?: number;
  scrape?: (url: string) => Promise<string>;
  /** Called when leadership is lost (main exits the process). */
  onLostLeadership?: () => void;
}

async function fetchText(url: string): Promise<string> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), 2000);
  try {
    const r = await fetch(url, { signal: ac.signal });
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return await r.text();
  } finally {
    clearTimeout(t);
  }
}

export class Operator {
  readonly controller: Controller;
  readonly registry: Registry;
  private elector: LeaderElector | null = null;
  private ops: OpsServer | null = null;
  private leading = false;
  private healthy = true;

  constructor(private readonly o: OperatorOptions) {
    this.registry = o.registry ?? createRegistry({ role: 'operator' });
    const metrics = metricsFor(this.registry).operator;
    this.controller = new Controller(
      {
        kube: o.kube,
        images: o.config.images,
        metrics,
        faultMetrics: metricsFor(this.registry).faults,
        recorder: new KubeEventRecorder(o.kube, o.log),
        log: o.log,
        now: Date.now,
        scrape: o.scrape ?? fetchText,
      },
      {
        watchNamespace: o.config.watchNamespace,
        resyncMs: o.config.resyncMs,
        workers: o.config.workers,
        ...(o.baseBackoffMs !== undefined ? { baseBackoffMs: o.baseBackoffMs } : {}),
      },
    );
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get opsUrl(): string | null {
    return this.ops ? this.ops.url.replace(/\/metrics$/, '') : null;
  }

  async start(): Promise<void> {
    const { config, log } = this.o;
    this.ops = await serveOps({
      host: config.opsHost,
      port: config.opsPort,
      registry: this.registry,
      health: () => ({
        ok: this.healthy,
        // A standby is ready (it is doing its job: waiting); a leader once its caches are filled.
        ready: this.healthy && (!this.leading || this.controller.hasSynced),
        leader: this.leading,
      }),
    });
    log.info('ops endpoint', { url: this.ops.url });
    if (!config.leaderElection) {
      this.leading = true;
      await this.controller.start();
      return;
    }
    this.elector = new LeaderElector(this.o.kube, {
      namespace: config.leaseNamespace,
      name: config.leaseName,
      identity: config.identity,
      ...(this.o.lease
        ? {
            leaseDurationMs: this.o.lease.durationMs,
            renewDeadlineMs: this.o.lease.renewDeadlineMs,
            retryMs: this.o.lease.retryMs,
          }
        : {}),
      onStartedLeading: () => {
        this.leading = true;
        log.info('leading', { identity: config.identity });
        this.controller.start().catch((e: unknown) => {
          log.error('controller failed to start', { error: (e as Error).message });
          this.healthy = false;
        });
      },
      onStoppedLeading: () => {
        this.leading = false;
        log.warn('lost leadership', { identity: config.identity });
        void this.controller.stop();
        this.o.onLostLeadership?.();
      },
      onError: (e) => log.warn('leader election', { error: (e as Error).message }),
    });
    this.elector.start();
  }

  async stop(): Promise<void> {
    await this.elector?.stop();
    this.leading = false;
    await this.controller.stop();
    await this.ops?.close();
  }
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = configFromEnv(env);
  const log = createLogger(isLogLevel(config.logLevel) ? config.logLevel : 'info');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const op = new Operator({
    config,
    kube: new HttpKube(kc),
    log,
    onLostLeadership: () => {
      // Exit so the pod restarts and campaigns again; never keep acting without the Lease.
      setTimeout(() => process.exit(1), 100).unref();
    },
  });
  await op.start();
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    op.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
