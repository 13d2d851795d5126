/**
 * Operator configuration, from the environment (the chart sets these).
 *
 *   SHALLOT_IMAGE_REGISTRY       prefix for the images ("" = none; e.g. "ghcr.io/me/")
 *   SHALLOT_IMAGE_TAG            tag for all four images (default "latest")
 *   SHALLOT_RELAY_IMAGE          full image overrides, one per component
 *   SHALLOT_DIRECTORY_IMAGE
 *   SHALLOT_ONION_SERVICE_IMAGE
 *   SHALLOT_CLIENT_IMAGE
 *   SHALLOT_IMAGE_PULL_POLICY    IfNotPresent (default), Always or Never
 *   SHALLOT_WATCH_NAMESPACE      only this namespace (default: all)
 *   SHALLOT_LEADER_ELECTION      "false" to disable (one replica only)
 *   SHALLOT_LEASE_NAMESPACE      where the Lease lives (default: POD_NAMESPACE or "default")
 *   SHALLOT_LEASE_NAME           default "shallot-operator-leader"
 *   POD_NAME                     identity in the Lease (default: hostname)
 *   SHALLOT_OPS_HOST / _PORT     /metrics /healthz /readyz (default 0.0.0.0:8080)
 *   SHALLOT_RESYNC_SECONDS       periodic re-reconcile of everything (default 300)
 *   SHALLOT_WORKERS              parallel reconciles (default 2)
 *   SHALLOT_LOG_LEVEL            debug, info, warn, error, silent
 */
import * as os from 'node:os';
import { OPERATOR_OPS_PORT } from './desired/common.js';

export interface Images {
  relay: string;
  directory: string;
  onionService: string;
  client: string;
  pullPolicy: 'IfNotPresent' | 'Always' | 'Never';
}

export interface OperatorConfig {
  images: Images;
  watchNamespace: string | undefined;
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  opsHost: string;
  opsPort: number;
  resyncMs: number;
  workers: number;
  logLevel: string;
}

export function imagesFromEnv(env: NodeJS.ProcessEnv = process.env): Images {
  const reg = env.SHALLOT_IMAGE_REGISTRY ?? '';
  const tag = env.SHALLOT_IMAGE_TAG || 'latest';
  const img = (name: string, override: string | undefined) => override || `${reg}${name}:${tag}`;
  const pp = env.SHALLOT_IMAGE_PULL_POLICY ?? 'IfNotPresent';
  if (pp !== 'IfNotPresent' && pp !== 'Always' && pp !== 'Never') {
    throw new Error(`SHALLOT_IMAGE_PULL_POLICY must be IfNotPresent, Always or Never, not ${pp}`);
  }
  return {
    relay: img('shallot-relay', env.SHALLOT_RELAY_IMAGE),
    directory: img('shallot-directory', env.SHALLOT_DIRECTORY_IMAGE),
    onionService: img('shallot-onion-service', env.SHALLOT_ONION_SERVICE_IMAGE),
    client: img('shallot-client', env.SHALLOT_CLIENT_IMAGE),
    pullPolicy: pp,
  };
}

function intEnv(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number, max: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new Error(`${name} must be an integer in ${min}..${max}`);
  return n;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  return {
    images: imagesFromEnv(env),
    watchNamespace: env.SHALLOT_WATCH_NAMESPACE || undefined,
    leaderElection: env.SHALLOT_LEADER_ELECTION !== 'false',
    leaseNamespace: env.SHALLOT_LEASE_NAMESPACE || env.POD_NAMESPACE || 'default',
    leaseName: env.SHALLOT_LEASE_NAME || 'shallot-operator-leader',
    identity: env.POD_NAME || os.hostname(),
    opsHost: env.SHALLOT_OPS_HOST || '0.0.0.0',
    opsPort: intEnv(env, 'SHALLOT_OPS_PORT', OPERATOR_OPS_PORT, 0, 65_535),
    resyncMs: intEnv(env, 'SHALLOT_RESYNC_SECONDS', 300, 1, 86_400) * 1000,
    workers: intEnv(env, 'SHALLOT_WORKERS', 2, 1, 64),
    logLevel: env.SHALLOT_LOG_LEVEL || 'info',
  };
}
