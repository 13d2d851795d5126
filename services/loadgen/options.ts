/**
 * `shallot load` options: defaults, parsing of user-written values
 * (sizes like `50k`, targets like `xyz.onion` or `127.0.0.1:8080`) and
 * validation. Anything wrong here is a LoadConfigError, which the command
 * turns into exit code 2 before any traffic is sent.
 */
import { DEFAULT_BACKOFF_MAX_SEC } from './backoff.js';
import { normalizeMetricsUrl } from './scrape.js';

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

export interface LoadOptions {
  /** Where requests go: `<56 chars>.onion[:port]` or `host:port` (through an exit). */
  target: string;
  /** The Shallot client's SOCKS5 listener, host:port. */
  socks: string;
  /** The `shallot up` data directory options were filled from, if any. */
  dataDir: string | null;
  concurrency: number;
  /** Requests started per second at most; null for as fast as `concurrency` allows. */
  rate: number | null;
  /** Stop starting requests after this long; null for no limit (then `count` bounds the run). */
  durationSec: number | null;
  /** Requests to make; null when only `durationSec` bounds the run. */
  count: number | null;
  /** Payload sizes in bytes, used round-robin (request i asks for sizes[i % n]). */
  sizes: number[];
  /** A fresh SOCKS username per request (own circuit each) instead of one per run. */
  newCircuit: boolean;
  /** Per request, from opening the SOCKS connection to the last body byte. */
  timeoutSec: number;
  mode: 'http';
  /** Check each body against GET /sha256/<n> (fetched once per size). */
  verify: boolean;
  /** The client's /metrics URL (circuit-build histogram, rendezvous choices). */
  clientMetrics: string | null;
  /** Relays' /metrics URLs (rendezvous and introduction counters). */
  relayMetrics: string[];
  /** Prometheus file_sd JSON listing more /metrics targets (`shallot up` writes one). */
  targetsFile: string | null;
  out: string | null;
  html: string | null;
  metricsHost: string;
  metricsPort: number | null;
  /** Keep serving /metrics this long after the run so a scraper sees the final values. */
  metricsLingerSec: number;
  /** Below this success ratio the command exits 1 (0 never fails). */
  minSuccess: number;
  /** Run the whole count even once the ratio can no longer reach minSuccess. */
  keepGoing: boolean;
  /** Cap of the pause after consecutive failures (backoff.ts); 0 disables backoff. */
  backoffMaxSec: number;
  progress: ProgressMode;
  progressIntervalSec: number;
}

type Num = number | string;

/** What callers may pass: every field optional except the target; numbers may be strings (CLI). */
export interface LoadInput {
  /** See LoadOptions.target; with `dataDir` also `onion`, `onion:<i>` or `web`. */
  target?: string;
  /** A `shallot up` data directory: unset options come from its state.json (network-state.ts). */
  dataDir?: string | null;
  /** A file of torrc DirAuthority lines: run on that C tor network through a client started for the run (tor-network.ts). */
  torAuthorities?: string | null;
  socks?: string;
  concurrency?: Num;
  rate?: Num | null;
  durationSec?: Num | null;
  /** CLI alias of durationSec. */
  duration?: Num | null;
  count?: Num | null;
  sizes?: Num | readonly Num[];
  /** CLI alias of sizes (comma-separated list allowed). */
  size?: Num | readonly Num[];
  newCircuit?: boolean;
  timeoutSec?: Num;
  /** CLI alias of timeoutSec. */
  timeout?: Num;
  mode?: string;
  verify?: boolean;
  clientMetrics?: string | null;
  relayMetrics?: string | readonly string[];
  targetsFile?: string | null;
  out?: string | null;
  html?: string | null;
  metricsHost?: string;
  metricsPort?: Num | null;
  metricsLingerSec?: Num;
  metricsLinger?: Num;
  minSuccess?: Num | null;
  keepGoing?: boolean;
  backoffMaxSec?: Num;
  /** CLI alias of backoffMaxSec. */
  backoffMax?: Num;
  progress?: string;
  progressIntervalSec?: Num;
  progressInterval?: Num;
}

export const DEFAULTS = {
  socks: '127.0.0.1:9050',
  concurrency: 4,
  count: 100,
  sizes: [50 * 1024],
  timeoutSec: 60,
  metricsHost: '127.0.0.1',
  progressIntervalSec: 5,
  onionPort: 80,
  /**
   * A run fails (exit 1) below this success ratio. 0.99, not 1: a healthy
   * testnet on a busy host still loses the odd request to a circuit-build
   * timeout, and a load tool that fails on one lost request in a thousand
   * gets switched off; anything systematically broken (a dead target, a
   * stream limit, a stall) loses far more than 1 %. The acceptance bar for
   * Shallot itself (issue 13's soak: 99.9 %) is passed explicitly.
   */
  minSuccess: 0.99,
  backoffMaxSec: DEFAULT_BACKOFF_MAX_SEC,
} as const;

export const MAX_SIZE = 1 << 30;

export class LoadConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadConfigError';
  }
}

export interface Target {
  host: string;
  port: number;
  onion: boolean;
}

const ONION_V3 = /^(?:[a-z0-9-]+\.)*[a-z2-7]{56}\.onion$/;
const HOSTNAME = /^[A-Za-z0-9._-]{1,253}$/;

/** `xyz.onion[:port]` (port 80 by default) or `host:port`; an `http://` prefix and `/` suffix are allowed. */
export function parseTarget(s: string): Target {
  const t = s
    .trim()
    .replace(/^http:\/\//i, '')
    .replace(/\/$/, '');
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(t);
  if (!m) throw new LoadConfigError(`target ${JSON.stringify(s)}: want host:port or <address>.onion[:port]`);
  const host = m[1]!.toLowerCase();
  const onion = host.endsWith('.onion');
  if (onion && !ONION_V3.test(host))
    throw new LoadConfigError(`target ${JSON.stringify(s)}: not a v3 onion address (56 base32 characters)`);
  if (!onion && !HOSTNAME.test(host)) throw new LoadConfigError(`target ${JSON.stringify(s)}: bad host`);
  if (m[2] === undefined && !onion)
    throw new LoadConfigError(`target ${JSON.stringify(s)}: a port is required for exit targets`);
  const port = m[2] === undefined ? DEFAULTS.onionPort : Number(m[2]);
  if (port < 1 || port > 65535) throw new LoadConfigError(`target ${JSON.stringify(s)}: port out of range`);
  return { host, port, onion };
}

/** `host:port` of the SOCKS listener. */
export function parseHostPort(s: string, what: string): { host: string; port: number } {
  const m = /^([A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new LoadConfigError(`${what} ${JSON.stringify(s)}: want host:port`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** A byte count: `51200`, `50k`, `1MiB`, `5M` (binary units). */
export function parseSize(v: Num): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(v).trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new LoadConfigError(`size ${JSON.stringify(v)}: want e.g. 51200, 50k, 1MiB`);
  const n = Math.round(Number(m[1]) * unit);
  if (n < 0 || n > MAX_SIZE) throw new LoadConfigError(`size ${JSON.stringify(v)}: must be 0..1GiB`);
  return n;
}

const TIME_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, min: 60, h: 3600 };

/** A length of time in seconds: a plain number is seconds; "20s", "1.5m", "2h", "500ms" as people write them. */
function seconds(v: Num | null | undefined, what: string, min: number, max: number): number | null {
  if (typeof v !== 'string') return num(v, what, min, max);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/i.exec(v);
  const unit = TIME_UNITS[(m?.[2] ?? 's').toLowerCase()];
  if (!m || unit === undefined)
    throw new LoadConfigError(`${what} ${JSON.stringify(v)}: want e.g. 60, 20s, 5m, 1h`);
  return num(Number(m[1]) * unit, what, min, max);
}

function num(v: Num | null | undefined, what: string, min: number, max: number, int = false): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v.trim());
  if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n)))
    throw new LoadConfigError(
      `${what} ${JSON.stringify(v)}: want ${int ? 'an integer' : 'a number'} in ${min}..${max}`,
    );
  return n;
}

function list(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  const parts = typeof v === 'string' ? [v] : [...v];
  return parts
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

function metricsUrl(s: string): string {
  try {
    return normalizeMetricsUrl(s);
  } catch (e) {
    throw new LoadConfigError((e as Error).message);
  }
}

/** Applies defaults and checks every value; throws LoadConfigError. */
export function resolveLoadOptions(i: LoadInput): LoadOptions {
  if (!i.target) throw new LoadConfigError('a target is required (host:port or <address>.onion[:port])');
  parseTarget(i.target);
  const socks = i.socks ?? process.env.SHALLOT_SOCKS ?? DEFAULTS.socks;
  parseHostPort(socks, 'SOCKS address');
  const durationSec = seconds(i.durationSec ?? i.duration, 'duration', 0.001, 7 * 24 * 3600);
  let count = num(i.count, 'count', 1, 10_000_000, true);
  if (count === null && durationSec === null) count = DEFAULTS.count;
  const rawSizes = i.sizes ?? i.size;
  const sizes =
    rawSizes === undefined
      ? [...DEFAULTS.sizes]
      : (typeof rawSizes === 'object' ? [...rawSizes] : [rawSizes])
          .flatMap((s) => String(s).split(','))
          .filter((s) => s.trim() !== '')
          .map(parseSize);
  if (sizes.length === 0) throw new LoadConfigError('at least one payload size is required');
  const mode = i.mode ?? 'http';
  if (mode !== 'http') throw new LoadConfigError(`mode ${JSON.stringify(mode)}: only "http" is supported`);
  const progress = (i.progress ?? 'auto') as ProgressMode;
  if (!['auto', 'bar', 'lines', 'none'].includes(progress))
    throw new LoadConfigError(`progress ${JSON.stringify(i.progress)}: want auto, bar, lines or none`);
  return {
    target: i.target,
    socks,
    dataDir: i.dataDir || null,
    concurrency: num(i.concurrency, 'concurrency', 1, 4096, true) ?? DEFAULTS.concurrency,
    rate: num(i.rate, 'rate', 0.001, 100_000),
    durationSec,
    count,
    sizes,
    newCircuit: i.newCircuit ?? false,
    timeoutSec: seconds(i.timeoutSec ?? i.timeout, 'timeout', 0.001, 24 * 3600) ?? DEFAULTS.timeoutSec,
    mode: 'http',
    verify: i.verify ?? true,
    clientMetrics: i.clientMetrics ? metricsUrl(i.clientMetrics) : null,
    relayMetrics: list(i.relayMetrics).map(metricsUrl),
    targetsFile: i.targetsFile || null,
    out: i.out || null,
    html: i.html || null,
    metricsHost: i.metricsHost ?? DEFAULTS.metricsHost,
    metricsPort: num(i.metricsPort, 'metrics port', 0, 65535, true),
    metricsLingerSec: num(i.metricsLingerSec ?? i.metricsLinger, 'metrics linger', 0, 3600) ?? 0,
    minSuccess: num(i.minSuccess, 'min success', 0, 1) ?? DEFAULTS.minSuccess,
    keepGoing: i.keepGoing ?? false,
    backoffMaxSec: num(i.backoffMaxSec ?? i.backoffMax, 'backoff max', 0, 3600) ?? DEFAULTS.backoffMaxSec,
    progress,
    progressIntervalSec:
      num(i.progressIntervalSec ?? i.progressInterval, 'progress interval', 0.1, 3600) ??
      DEFAULTS.progressIntervalSec,
  };
}
