/**
 * `shallot up --process-per-node`: each authority, relay, the client and
 * each onion-service instance is a child process running its own entry
 * point (dist/services/<service>/main.js), logging to
 * `<data-dir>/logs/<node>.log`. A child holds a pipe from the launcher on
 * fd 3 and stops itself when it closes, so no node outlives the launcher.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { testnetMinUptime } from '../directory/admission.js';
import { createRegistry } from '../metrics/metrics.js';
import { type AuthorityEndpoint, fetchConsensus, formatAuthorityList } from '../net/dir-client.js';
import type { LinkFaultTable } from '../net/link-faults.js';
import { LAUNCHER_FD_ENV } from '../runtime/cli.js';
import { NODE_PROCESS_HEAP_FLAGS } from '../runtime/heap-flags.js';
import { formatParams } from '../runtime/params-option.js';
import { onionIdentityFile } from './client-auth.js';
import { childTarget, FaultInjector, type FaultTarget } from './fault.js';
import { type ControlServer, serveFaultControl } from './fault-control.js';
import { clientAuthFor, type RunningNetwork, type UpOptions } from './launch.js';
import { PortAllocator } from './ports.js';
import type { ProgressSink } from './progress.js';
import { type NetworkState, type NodeEntry, writeState, writeTargets } from './state.js';
import { startWebTarget } from './web.js';

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

export async function upProcesses(o: UpOptions, progress: ProgressSink): Promise<RunningNetwork> {
  const ports = new PortAllocator(o.basePort);
  const children: ChildProcess[] = [];
  const nodes: NodeEntry[] = [];
  const faultTargets = new Map<string, FaultTarget>();
  let state: NetworkState | null = null;
  // The launcher's own metrics (faults in force), on its control endpoint.
  const registry = createRegistry({ node: 'shallot', role: 'launcher' });
  // Link faults reach every node as one JSON line down its launcher pipe (runtime/cli.ts watchLauncher).
  const sendLinks = (c: ChildProcess, table: LinkFaultTable) => {
    const pipe = c.stdio[3] as Writable | null | undefined;
    if (pipe?.writable && c.exitCode === null) pipe.write(`${JSON.stringify({ linkFaults: table })}\n`);
  };
  const injector = new FaultInjector(
    {
      registry,
      links: (t) => {
        for (const c of children) sendLinks(c, t);
      },
      // The nodes that name themselves on their links (relays and the client).
      linkNodes: [...Array.from({ length: o.relays }, (_, i) => `relay${i}`), 'client'],
    },
    faultTargets,
  );
  let control: ControlServer | null = null;
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
    const node: NodeEntry = { name, role, metrics: `127.0.0.1:${metricsPort}` };
    nodes.push(node);
    // Started again by the same function when a fault heals (fault.ts).
    const { target, child } = childTarget(
      name,
      () => {
        // fd 3 is a pipe only the launcher holds open: when the launcher dies by
        // any signal, kill -9 included, the kernel closes it and the node stops
        // itself (runtime/cli.ts watchLauncher).
        // The heap flags spare a busy node a full collection every ~80 ms (runtime/heap-flags.ts).
        const c = spawn(
          process.execPath,
          [...NODE_PROCESS_HEAP_FLAGS, script, ...args, '--ops-port', String(metricsPort)],
          {
            stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
            env: { ...process.env, [LAUNCHER_FD_ENV]: '3' },
          },
        );
        // A write to the pipe of a node that just died fails (EPIPE): that node needs no table.
        (c.stdio[3] as Writable | null)?.on('error', () => {});
        c.stdout?.pipe(out, { end: false });
        c.stderr?.pipe(out, { end: false });
        return c;
      },
      (c) => {
        children.push(c);
        // A node started again learns the faults in force at once.
        sendLinks(c, injector.linkTable());
        node.pid = c.pid;
        // state.json names the node's current pid once the network runs.
        if (state) void writeState(o.dataDir, state).catch(() => {});
      },
    );
    faultTargets.set(name, target);
    return child;
  };
  const stop = async () => {
    await control?.close();
    injector.close();
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
          // Placed in the model as auth<i> (launch.ts checkShaping), as in the thread modes.
          ...(o.networkModel ? ['--network-model', path.resolve(o.networkModel)] : []),
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
    // The fault-control endpoint too: token-guarded, but no circuit should reach it.
    const controlPort = await ports.take();
    const onionOps: number[] = [];
    for (let i = 0; i < o.onionServices * o.instances; i++) onionOps.push(await ports.take());
    const reentryReject = [
      ...nodes.flatMap((n) => (n.metrics ? [n.metrics] : [])),
      ...[
        ...relayPorts.map((p) => p.ops),
        socksPort,
        ...(tunnelPort ? [tunnelPort] : []),
        clientOps,
        controlPort,
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
          ...(o.networkModel ? ['--network-model', path.resolve(o.networkModel)] : []),
          ...(o.bandwidthRate ? ['--bandwidth-rate', String(o.bandwidthRate)] : []),
          ...(o.bandwidthBurst ? ['--bandwidth-burst', String(o.bandwidthBurst)] : []),
          ...common,
        ],
        p.ops,
      );
      progress.update({ stage: 'relays', done: i + 1, total: o.relays });
    }
    const deadline = Date.now() + o.bootstrapTimeout * 1000;
    for (;;) {
      // Every relay listed with Guard (so Running, Fast, Stable), as the other
      // launchers wait (launch-workers.ts, network.ts): the first consensus
      // after boot lists relays before the authorities found them reachable
      // or up long enough, and a client handed that one has no path yet.
      const listed = await fetchConsensus(endpoints, { nowMs: Date.now(), timeoutMs: 2_000 }).then(
        (r) => r.consensus.relays.filter((x) => x.flags.includes('Guard')).length,
        () => 0,
      );
      progress.update({ stage: 'consensus', done: listed, total: o.relays });
      if (listed >= o.relays) break;
      if (Date.now() > deadline)
        throw new Error(`consensus lists ${listed} of ${o.relays} relays with Guard; see ${logs}`);
      if (children.some((c) => c.exitCode !== null))
        throw new Error(`a node exited during bootstrap; see ${logs}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const auth = await clientAuthFor(o);
    const client = launch(
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
        ...(o.networkModel ? ['--network-model', path.resolve(o.networkModel)] : []),
        ...building,
      ],
      clientOps,
    );
    progress.line('bootstrapping: client fetching the consensus');
    await waitReady(`http://127.0.0.1:${clientOps}/readyz`, deadline, client, path.join(logs, 'client.log'));
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
            // Placed in the model under its service name, as in one-process mode (launch.ts onionShapingFor).
            ...(o.networkModel ? ['--network-model', path.resolve(o.networkModel)] : []),
            ...building,
          ],
          opsPort,
        );
        const address = await firstLine(child, /([a-z2-7]{56}\.onion)/, o.bootstrapTimeout * 1000);
        progress.line(
          `bootstrapping: onion service onion${s} instance ${inst + 1}/${o.instances} publishing`,
        );
        // Ready once its descriptor is on the HSDirs.
        await waitReady(
          `http://127.0.0.1:${opsPort}/readyz`,
          deadline,
          child,
          path.join(logs, `onion${s}-${inst}.log`),
        );
        if (inst === 0) services.push({ name: `onion${s}`, address, instances: o.instances });
      }
    }
    progress.done();
    control = await serveFaultControl({ dataDir: o.dataDir, port: controlPort, registry, injector });
    // Listed for its metrics (faults in force); no pid: state.pid is the
    // launcher, nodes[].pid are the processes it started (orphan checks read them).
    nodes.push({ name: 'launcher', role: 'launcher', metrics: control.address });
    state = {
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
      control: control.address,
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

/**
 * Polls a /readyz URL until it answers 200 or the deadline passes; fails at
 * once, with the end of its log, if the node's process has exited (a CI run
 * waited out the whole bootstrap timeout on a client that had died at once
 * with EADDRINUSE on its SOCKS port).
 */
export async function waitReady(
  url: string,
  deadline: number,
  child: ChildProcess,
  log: string,
): Promise<void> {
  for (;;) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      const tail = await readFile(log, 'utf8').then(
        (t) => t.trim().split('\n').slice(-2).join(' | '),
        () => '',
      );
      throw new Error(
        `${path.basename(log, '.log')} exited during bootstrap (${child.exitCode ?? child.signalCode}): ${tail}; see ${log}`,
      );
    }
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
