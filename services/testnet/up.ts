/**
 * `shallot up`: a whole network on 127.0.0.1 with no Kubernetes, in one
 * process (default) or one process per node, with bootstrap progress, a
 * ready summary (SOCKS address, onion addresses, curl line, metrics URLs,
 * Prometheus file_sd file) and a clean stop on Ctrl-C.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ShallotClient } from '../client/client.js';
import { startHttpTunnelServer } from '../client/http-tunnel.js';
import type { ProxyServer } from '../client/proxy-server.js';
import type { HandshakeName } from '../core/create-handshake.js';
import { testnetMinUptime } from '../directory/admission.js';
import { type AuthorityEndpoint, fetchConsensus, formatAuthorityList } from '../directory/dir-client.js';
import { formatParams } from '../directory/params-option.js';
import { createRegistry } from '../metrics/metrics.js';
import { type OpsServer, serveOps } from '../metrics/server.js';
import { LAUNCHER_FD_ENV } from '../net/cli.js';
import { readClientAuthKeys } from '../net/client-auth-files.js';
import { createLogger, type Logger, type LogLevel } from '../net/log.js';
import { type ClientAuthLayout, clientAuthDir, onionIdentityFile, prepareClientAuth } from './client-auth.js';
import { type BootstrapProgress, LocalNetwork } from './network.js';
import { type OnionServicesHandle, startOnionServices } from './onion.js';
import { PortAllocator } from './ports.js';
import {
  lockDataDir,
  type NetworkState,
  type NodeEntry,
  stateFile,
  writeState,
  writeTargets,
} from './state.js';
import { startWebTarget, type WebTarget } from './web.js';

export interface UpOptions {
  authorities: number;
  relays: number;
  exits: number;
  onionServices: number;
  instances: number;
  introPoints: number;
  votingInterval: number;
  dataDir: string;
  keyRotation: number;
  basePort: number;
  socksPort: number;
  /** The client's HTTP CONNECT tunnel port, the next free one if taken (absent: no tunnel). */
  httpTunnelPort?: number;
  processPerNode: boolean;
  logLevel: LogLevel;
  tls: boolean;
  handshake: HandshakeName;
  /** Layer-2 vanguards for the client's and onion services' onion circuits (prop 333). */
  vanguardsLite: boolean;
  /** Onion services admit only the network's client, by client-authorization keys. */
  clientAuth: boolean;
  bootstrapTimeout: number;
  /** Consensus params the authorities vote (the DoS* limits and the like); none: each one's default. */
  consensusParams?: Record<string, number>;
  /** The client's MaxCircuitDirtiness, seconds (default C tor's 600). */
  maxCircuitDirtiness?: number;
}

export interface RunningNetwork {
  state: NetworkState;
  stop(): Promise<void>;
}

/** Where bootstrap progress goes. */
export interface ProgressSink {
  update(p: BootstrapProgress): void;
  line(text: string): void;
  done(): void;
}

/** Writes progress to a terminal line (or plain lines when not a TTY). */
export class Progress implements ProgressSink {
  private last = '';
  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  update(p: BootstrapProgress): void {
    const label = {
      authorities: 'directory authorities started',
      relays: 'relays started',
      descriptors: 'relay descriptors accepted',
      consensus: 'relays listed in the consensus',
    }[p.stage];
    this.line(`bootstrapping: ${label} ${p.done}/${p.total}`);
  }

  line(text: string): void {
    if (text === this.last) return;
    this.last = text;
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${text}`);
    else this.out.write(`${text}\n`);
  }

  done(): void {
    if (this.out.isTTY && this.last) this.out.write('\n');
    this.last = '';
  }
}

function fileLogger(dataDir: string, level: LogLevel): { logger: Logger; stream: WriteStream; file: string } {
  const file = path.join(dataDir, 'shallot.log');
  const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
  return { logger: createLogger('shallot', level, (l) => stream.write(`${l}\n`)), stream, file };
}

export async function up(o: UpOptions, progress: ProgressSink = new Progress()): Promise<RunningNetwork> {
  if (o.exits > o.relays) throw new Error('--exits cannot exceed --relays');
  if (o.relays < 3) throw new Error('--relays must be at least 3 (a circuit has three hops)');
  if (o.authorities < 1) throw new Error('--authorities must be at least 1');
  // Before any key is read or made: the first authority takes a second or
  // more, and a silent start reads as a hang (issue 20 asks for a line within 2 s).
  progress.line(
    `bootstrapping: starting ${o.authorities} authorities, ${o.relays} relays, ${o.onionServices} onion service(s) from ${path.resolve(o.dataDir)}`,
  );
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  // Two networks on one data dir would share keys and overwrite each other's state.json.
  const release = await lockDataDir(o.dataDir);
  let net: RunningNetwork;
  try {
    net = await (o.processPerNode ? upProcesses(o, progress) : upInProcess(o, progress));
  } catch (e) {
    await release();
    throw e;
  }
  return {
    state: net.state,
    async stop() {
      try {
        await net.stop();
      } finally {
        // A stopped network leaves no state.json behind for status or load to mistake for a running one.
        await rm(stateFile(o.dataDir), { force: true });
        await release();
      }
    },
  };
}

async function upInProcess(o: UpOptions, progress: ProgressSink): Promise<RunningNetwork> {
  const { logger, stream, file: logFile } = fileLogger(o.dataDir, o.logLevel);
  // node/role label the metrics themselves; network comes from the file_sd targets.
  const registry = createRegistry({ node: 'shallot', role: 'launcher' });
  const ports = new PortAllocator(o.basePort);
  let net: LocalNetwork | null = null;
  let client: ShallotClient | null = null;
  let tunnel: ProxyServer | null = null;
  let web: WebTarget | null = null;
  let ops: OpsServer | null = null;
  let onion: OnionServicesHandle | null = null;
  const stop = async () => {
    await onion?.stop();
    await tunnel?.close();
    await client?.stop();
    await net?.stop();
    await web?.close();
    await ops?.close();
    await new Promise<void>((r) => stream.end(r));
  };
  try {
    net = await LocalNetwork.start(
      { logger, registry },
      {
        authorities: o.authorities,
        relays: o.relays,
        exits: o.exits,
        votingIntervalSec: o.votingInterval,
        tls: o.tls,
        host: '127.0.0.1',
        basePort: o.basePort,
        dataDir: o.dataDir,
        keyRotationMs: o.keyRotation * 60_000,
        onionRoles: true,
        handshake: o.handshake,
        params: o.consensusParams ?? {},
      },
      (p) => progress.update(p),
    );
    await net.waitForConsensus(o.relays, o.bootstrapTimeout * 1000, (p) => progress.update(p));
    ops = await serveOps({
      host: '127.0.0.1',
      port: await net.ports.take(),
      registry,
      health: () => ({ ok: true, ready: client?.dir !== null }),
    });
    const auth = await clientAuthFor(o);
    client = new ShallotClient(
      { logger: logger.child('client'), registry },
      {
        authorities: net.endpoints,
        socksHost: '127.0.0.1',
        socksPort: await net.ports.take(o.socksPort),
        ...(auth ? { clientAuthKeys: await readClientAuthKeys(auth.clientDir) } : {}),
        circuits: {
          tls: o.tls,
          dataDir: o.dataDir,
          handshake: o.handshake,
          vanguardsLite: o.vanguardsLite,
          ...(o.maxCircuitDirtiness ? { maxDirtinessMs: o.maxCircuitDirtiness * 1000 } : {}),
        },
      },
    );
    await client.start();
    const running = client;
    if (o.httpTunnelPort !== undefined)
      tunnel = await startHttpTunnelServer(
        { host: '127.0.0.1', port: await net.ports.take(o.httpTunnelPort) },
        (req) => running.connect(req),
        { registry },
      );
    // Exits refuse streams back into the network (core/relay-pivot.ts).
    net.rejectReentry([
      { host: '127.0.0.1', port: ops.port },
      { host: '127.0.0.1', port: client.socksPort },
      ...(tunnel ? [{ host: '127.0.0.1', port: tunnel.port }] : []),
    ]);
    progress.line('bootstrapping: client fetching the consensus');
    await client.ready(o.bootstrapTimeout * 1000);
    web = await startWebTarget('127.0.0.1', await net.ports.take());
    onion = await startOnionServices(
      { logger, registry },
      {
        count: o.onionServices,
        instances: o.instances,
        introPoints: o.introPoints,
        dataDir: o.dataDir,
        authorities: net.endpoints,
        tls: o.tls,
        handshake: o.handshake,
        vanguardsLite: o.vanguardsLite,
        ...(auth ? { authorizedClientsDirs: auth.serviceDirs } : {}),
      },
      (text) => progress.line(text),
    );
    progress.done();
    const nodes: NodeEntry[] = [
      { name: 'shallot', role: 'launcher', metrics: `127.0.0.1:${ops.port}`, pid: process.pid },
    ];
    const state: NetworkState = {
      version: 1,
      startedAt: new Date().toISOString(),
      pid: process.pid,
      mode: 'one-process',
      authorities: net.endpoints,
      socks: `127.0.0.1:${client.socksPort}`,
      ...(tunnel ? { httpTunnel: tunnel.address } : {}),
      web: `127.0.0.1:${web.port}`,
      onionServices: onion.services,
      nodes,
      targetsFile: await writeTargets(o.dataDir, nodes, 'local'),
    };
    await writeState(o.dataDir, state);
    logger.info('network ready', { log: logFile });
    void ports;
    return { state, stop };
  } catch (e) {
    progress.done();
    await stop();
    throw e;
  }
}

const self = fileURLToPath(import.meta.url);
// Children run compiled entries: from dist/ normally, and from the build
// output when this module itself runs from source (tests).
const servicesDir = self.endsWith('.ts')
  ? path.resolve(path.dirname(self), '../../dist/services')
  : path.resolve(path.dirname(self), '..');
const entry = (service: string) => path.join(servicesDir, service, 'main.js');

/** The authorities' flag thresholds for `shallot up` (admission.ts testnetMinUptime). */
function testnetUptimeArgs(votingIntervalSec: number): string[] {
  const t = testnetMinUptime(votingIntervalSec);
  return [
    '--stable-min-uptime',
    String(t.stable),
    '--guard-min-uptime',
    String(t.guard),
    '--hsdir-min-uptime',
    String(t.hsdir),
  ];
}

async function upProcesses(o: UpOptions, progress: ProgressSink): Promise<RunningNetwork> {
  const ports = new PortAllocator(o.basePort);
  const children: ChildProcess[] = [];
  const nodes: NodeEntry[] = [];
  const logs = path.join(o.dataDir, 'logs');
  await mkdir(logs, { recursive: true, mode: 0o700 });
  const common = ['--log-level', o.logLevel, ...(o.tls ? [] : ['--no-tls'])];
  // Only the nodes that build circuits take --handshake; relays answer both.
  const building = [...common, '--handshake', o.handshake, ...(o.vanguardsLite ? ['--vanguards-lite'] : [])];
  const launch = (
    name: string,
    role: NodeEntry['role'],
    script: string,
    args: string[],
    metricsPort: number,
  ) => {
    const out = createWriteStream(path.join(logs, `${name}.log`), { flags: 'a', mode: 0o600 });
    // fd 3 is a pipe only the launcher holds open: when the launcher dies by
    // any signal, kill -9 included, the kernel closes it and the node stops
    // itself (net/cli.ts watchLauncher).
    const child = spawn(process.execPath, [script, ...args, '--ops-port', String(metricsPort)], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, [LAUNCHER_FD_ENV]: '3' },
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    children.push(child);
    nodes.push({ name, role, metrics: `127.0.0.1:${metricsPort}`, pid: child.pid });
    return child;
  };
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 8_000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  };
  try {
    const endpoints: AuthorityEndpoint[] = [];
    for (let i = 0; i < o.authorities; i++) {
      const keyFile = path.join(o.dataDir, `authority${i}`, 'keys.json');
      const id = execFileSync(process.execPath, [
        entry('directory'),
        '--key-file',
        keyFile,
        '--print-identity',
      ])
        .toString()
        .trim();
      endpoints.push({ identity: id, url: `http://127.0.0.1:${await ports.take()}` });
    }
    const auths = formatAuthorityList(endpoints);
    for (let i = 0; i < o.authorities; i++) {
      const keyFile = path.join(o.dataDir, `authority${i}`, 'keys.json');
      const port = new URL(endpoints[i]?.url ?? '').port;
      launch(
        `auth${i}`,
        'authority',
        entry('directory'),
        [
          '--key-file',
          keyFile,
          '--port',
          port,
          '--authorities',
          auths,
          '--voting-interval',
          String(o.votingInterval),
          '--name',
          `auth${i}`,
          // Every relay here shares 127.0.0.1: no per-address cap, as C tor's
          // TestingTorNetwork (AuthDirMaxServersPerAddr 0); forged descriptors are
          // kept out by the reachability handshake (identity checked) instead.
          '--max-servers-per-addr',
          '0',
          ...testnetUptimeArgs(o.votingInterval),
          // The bandwidth scanner's circuits use the network's handshake.
          '--handshake',
          o.handshake,
          ...(o.consensusParams && Object.keys(o.consensusParams).length > 0
            ? ['--params', formatParams(o.consensusParams)]
            : []),
          '--log-level',
          o.logLevel,
        ],
        await ports.take(),
      );
      progress.update({ stage: 'authorities', done: i + 1, total: o.authorities });
    }
    // Exits refuse streams back into the network (C tor's re-entry rule,
    // core/relay-pivot.ts). The consensus names relays' and authorities'
    // ports; every ops port and the SOCKS port it cannot name, so they are
    // allocated before any relay starts and handed to the exits.
    const relayPorts: { or: number; ops: number }[] = [];
    for (let i = 0; i < o.relays; i++) relayPorts.push({ or: await ports.take(), ops: await ports.take() });
    const socksPort = await ports.take(o.socksPort);
    const tunnelPort = o.httpTunnelPort === undefined ? null : await ports.take(o.httpTunnelPort);
    const clientOps = await ports.take();
    const onionOps: number[] = [];
    for (let i = 0; i < o.onionServices * o.instances; i++) onionOps.push(await ports.take());
    const reentryReject = [
      ...nodes.flatMap((n) => (n.metrics ? [n.metrics] : [])),
      ...[
        ...relayPorts.map((p) => p.ops),
        socksPort,
        ...(tunnelPort ? [tunnelPort] : []),
        clientOps,
        ...onionOps,
      ].map((p) => `127.0.0.1:${p}`),
    ].join(',');
    for (const [i, p] of relayPorts.entries()) {
      launch(
        `relay${i}`,
        'relay',
        entry('relay'),
        [
          '--key-file',
          path.join(o.dataDir, `relay${i}`, 'keys.json'),
          '--nickname',
          `relay${i}`,
          '--key-rotation',
          String(o.keyRotation),
          '--port',
          String(p.or),
          '--authorities',
          auths,
          ...(i < o.exits ? ['--exit', '--reentry-reject', reentryReject] : []),
          ...common,
        ],
        p.ops,
      );
      progress.update({ stage: 'relays', done: i + 1, total: o.relays });
    }
    const deadline = Date.now() + o.bootstrapTimeout * 1000;
    for (;;) {
      const listed = await fetchConsensus(endpoints, { nowMs: Date.now(), timeoutMs: 2_000 }).then(
        (r) => r.consensus.relays.length,
        () => 0,
      );
      progress.update({ stage: 'consensus', done: listed, total: o.relays });
      if (listed >= o.relays) break;
      if (Date.now() > deadline)
        throw new Error(`consensus lists ${listed} of ${o.relays} relays; see ${logs}`);
      if (children.some((c) => c.exitCode !== null))
        throw new Error(`a node exited during bootstrap; see ${logs}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const auth = await clientAuthFor(o);
    launch(
      'client',
      'client',
      entry('client'),
      [
        '--authorities',
        auths,
        '--socks-port',
        String(socksPort),
        ...(tunnelPort ? ['--http-tunnel-port', String(tunnelPort)] : []),
        '--data-dir',
        path.join(o.dataDir, 'client'),
        ...(auth ? ['--onion-auth-dir', auth.clientDir] : []),
        ...(o.maxCircuitDirtiness ? ['--max-circuit-dirtiness', String(o.maxCircuitDirtiness)] : []),
        ...building,
      ],
      clientOps,
    );
    progress.line('bootstrapping: client fetching the consensus');
    await waitReady(`http://127.0.0.1:${clientOps}/readyz`, deadline);
    const web = await startWebTarget('127.0.0.1', await ports.take());
    const services: NetworkState['onionServices'] = [];
    for (let s = 0; s < o.onionServices; s++) {
      const keyFile = onionIdentityFile(o.dataDir, s);
      for (let inst = 0; inst < o.instances; inst++) {
        const opsPort = onionOps[s * o.instances + inst] ?? 0;
        const child = launch(
          `onion${s}-${inst}`,
          'onion-service',
          entry('onion-service'),
          [
            '--key-file',
            keyFile,
            '--authorities',
            auths,
            '--backend',
            'builtin',
            // The same service name as in one-process mode, for metric labels and logs.
            '--name',
            `onion${s}`,
            '--instance',
            String(inst),
            '--intro-points',
            String(o.introPoints),
            ...(auth ? ['--authorized-clients-dir', auth.serviceDirs[s] as string] : []),
            ...building,
          ],
          opsPort,
        );
        const address = await firstLine(child, /([a-z2-7]{56}\.onion)/, o.bootstrapTimeout * 1000);
        progress.line(
          `bootstrapping: onion service onion${s} instance ${inst + 1}/${o.instances} publishing`,
        );
        // Ready once its descriptor is on the HSDirs.
        await waitReady(`http://127.0.0.1:${opsPort}/readyz`, deadline);
        if (inst === 0) services.push({ name: `onion${s}`, address, instances: o.instances });
      }
    }
    progress.done();
    const state: NetworkState = {
      version: 1,
      startedAt: new Date().toISOString(),
      pid: process.pid,
      mode: 'process-per-node',
      authorities: endpoints,
      socks: `127.0.0.1:${socksPort}`,
      ...(tunnelPort ? { httpTunnel: `127.0.0.1:${tunnelPort}` } : {}),
      web: `127.0.0.1:${web.port}`,
      onionServices: services,
      nodes,
      targetsFile: await writeTargets(o.dataDir, nodes, 'local'),
    };
    await writeState(o.dataDir, state);
    return {
      state,
      stop: async () => {
        await stop();
        await web.close();
      },
    };
  } catch (e) {
    progress.done();
    await stop();
    throw e;
  }
}

/** Polls a /readyz URL until it answers 200 or the deadline passes. */
async function waitReady(url: string, deadline: number): Promise<void> {
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} not ready in time`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Resolves with the first match of `re` in the child's stdout. */
function firstLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error('onion service did not print its address in time')),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', () => reject(new Error('onion service exited during start')));
  });
}

/** Client-authorization keys for `--client-auth` (none without onion services). */
function clientAuthFor(o: UpOptions): Promise<ClientAuthLayout | null> {
  return o.clientAuth && o.onionServices > 0
    ? prepareClientAuth(o.dataDir, o.onionServices)
    : Promise.resolve(null);
}

/** The summary printed once the network is usable. */
export function readySummary(s: NetworkState, o: UpOptions): string {
  const lines = [
    '',
    `Shallot testnet is up: ${o.authorities} authorities, ${o.relays} relays (${o.exits} exits), ${s.onionServices.length} onion service(s).`,
    '',
    `  SOCKS5 proxy     ${s.socks}${s.socks.endsWith(`:${o.socksPort}`) ? '' : `  (port ${o.socksPort} was taken)`}`,
  ];
  if (s.httpTunnel)
    lines.push(
      `  HTTP tunnel      ${s.httpTunnel}  (HTTP CONNECT)${o.httpTunnelPort && !s.httpTunnel.endsWith(`:${o.httpTunnelPort}`) ? `  (port ${o.httpTunnelPort} was taken)` : ''}`,
    );
  for (const svc of s.onionServices)
    lines.push(`  Onion service    http://${svc.address}/  (${svc.instances} instance(s), built-in backend)`);
  if (o.clientAuth && s.onionServices.length > 0)
    lines.push(`  Client auth      on: the SOCKS client above holds the keys (${clientAuthDir(o.dataDir)})`);
  lines.push(`  Exit target      http://${s.web}/  (a local web server reached through exits)`);
  lines.push('');
  const first = s.onionServices[0];
  if (first)
    lines.push(`  Try:  curl --socks5-hostname ${s.socks} http://${first.address}/bytes/1048576 | sha256sum`);
  lines.push(`        curl --socks5-hostname ${s.socks} http://${s.web}/bytes/1048576 | sha256sum`);
  if (first && s.httpTunnel)
    lines.push(`        curl -p -x http://${s.httpTunnel} http://${first.address}/bytes/1048576 | sha256sum`);
  lines.push(`        (compare with: curl -s http://${s.web}/sha256/1048576)`);
  lines.push('');
  lines.push('  Metrics:');
  for (const n of s.nodes) if (n.metrics) lines.push(`    http://${n.metrics}/metrics  (${n.name})`);
  lines.push(`  Prometheus file_sd targets: ${s.targetsFile}`);
  lines.push(
    `  Status: npx shallot status --data-dir ${o.dataDir}        Logs: ${o.dataDir}/${s.mode === 'one-process' ? 'shallot.log' : 'logs/'}`,
  );
  lines.push('');
  lines.push('Press Ctrl-C to stop.');
  return lines.join('\n');
}
