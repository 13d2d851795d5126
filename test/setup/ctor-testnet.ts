/**
 * A private C tor network for tests: Debian's `tor` and `tor-gencert`
 * (installed by test/setup/install-tools.sh), 3 directory authorities plus
 * relays and exits, every process on 127.0.0.1 in a temp dir.
 *
 * Overview: `tor-gencert` makes each authority's v3 identity and signing
 * keys; `tor --list-fingerprint` makes its RSA identity, which gives the
 * `DirAuthority` lines (dir-spec §3.1 nickname, orport, v3ident, address,
 * fingerprint) every torrc then lists. The torrcs follow chutney, Tor's own
 * testnet tool (torrc_templates/common.i, authority.i, relay-non-exit.tmpl,
 * exit-v4.i): TestingTorNetwork, AssumeReachable, forced Guard/Exit/HSDir
 * votes, a 20 s voting interval. Ready means: a consensus fetched from an
 * authority's DirPort verifies against the authorities' key certificates
 * (services/core/ctor) and lists every relay Running and Valid, every exit
 * with Exit, and every node has logged "Bootstrapped 100%" (it has a
 * consensus of its own, so it knows its peers as relays).
 *
 * Design notes: TestingTorNetwork alone allows private addresses and
 * removes the public authorities, so nothing here can reach the real Tor
 * network; the only DirAuthority lines are ours. Exits accept 127.0.0.0/8
 * only, with ExitPolicyRejectPrivate off (chutney's exit-v4.i) since C tor
 * otherwise prepends `reject private:*`. A microdescriptor's exit-policy
 * summary counts only rules on every address (C tor policy_summarize), so
 * such an exit advertises no port and a client choosing its path from
 * microdescriptors (a Shallot client, or C tor's) finds no exit: chutney
 * exit-v4.i's work-around for tor#11264 is to accept some ports
 * everywhere, which `exitPorts` does (`accept *:<port>` for each). Only
 * this network's clients can use that, on a host without outside routes.
 *
 * `startCtorClient` adds a stock C tor client to a running network (chutney
 * client.tmpl: a SocksPort, no ORPort), optionally hosting an onion
 * service (chutney hs-v3.tmpl: HiddenServiceDir, HiddenServicePort).
 *
 * Limitations: IPv4 only; no bridges; voting
 * intervals shorter than 20 s made C tor's first consensus less reliable
 * on a loaded machine.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fromHex } from '../../services/core/bytes.js';
import { verifyMdConsensus } from '../../services/core/ctor/consensus-signatures.js';
import { type KeyCertificate, parseKeyCertificates } from '../../services/core/ctor/key-cert.js';
import { type MdConsensus, parseMdConsensus } from '../../services/core/ctor/md-consensus.js';
import { ephemeralPort } from '../../services/testnet/ports.js';

export interface CtorNode {
  nickname: string;
  role: 'authority' | 'relay' | 'exit';
  orPort: number;
  dirPort: number;
  dir: string;
  /** Hex SHA-1 of the RSA identity key (the legacy id), uppercase as C tor writes it. */
  fingerprint: string;
  pid: number;
}

export interface CtorTestnet {
  dir: string;
  nodes: CtorNode[];
  /** The `DirAuthority` lines every torrc lists, one per line. */
  dirAuthorities: string;
  /** The authorities' v3idents (20 bytes each). */
  v3idents: Uint8Array[];
  /** The verified consensus that made the network ready, and the certificates it verified with. */
  consensus: MdConsensus;
  certificates: KeyCertificate[];
  /** The last lines of each node's notice log (for failure messages). */
  logs(): Promise<string>;
  /** SIGTERM by pid, SIGKILL after 5 s, then the temp dir goes (unless SHALLOT_KEEP_CTOR is set). */
  stop(): Promise<void>;
}

/** The tor binary: $TOR_BIN or `tor` on PATH, when it and tor-gencert run; null when missing. */
export function findTor(): string | null {
  const bin = process.env.TOR_BIN ?? 'tor';
  const tor = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const gencert = spawnSync('tor-gencert', ['--help'], { encoding: 'utf8', timeout: 10_000 });
  return tor.status === 0 && !gencert.error ? bin : null;
}

/** findTor(), or an error saying how to get it: the C tor tests fail without tor, they do not skip. */
export function requireTor(): string {
  const bin = findTor();
  if (!bin)
    throw new Error(
      'tor or tor-gencert is missing: run `bash test/setup/install-tools.sh` (Debian package "tor") or set TOR_BIN',
    );
  return bin;
}

/** SIGTERM each child by pid, SIGKILL after 5 s; resolves once all have exited (or never started). */
export async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null || !c.pid) return resolve();
          const pid = c.pid;
          const kill = setTimeout(() => process.kill(pid, 'SIGKILL'), 5_000);
          c.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          process.kill(pid, 'SIGTERM');
        }),
    ),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** chutney common.i: the options every node shares. */
function commonTorrc(node: { nickname: string; dir: string; orPort: number }): string[] {
  return [
    'TestingTorNetwork 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteExit *',
    'TestingDirAuthVoteHSDir *',
    'TestingDirAuthVoteGuard *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    'RunAsDaemon 0',
    'ShutdownWaitLength 0',
    'SafeLogging 0',
    'ProtocolWarnings 1',
    'SocksPort 0',
    'Address 127.0.0.1',
    'AssumeReachable 1',
    `DataDirectory ${node.dir}`,
    `Nickname ${node.nickname}`,
    `ORPort 127.0.0.1:${node.orPort}`,
    `Log notice file ${path.join(node.dir, 'notice.log')}`,
  ];
}

/** chutney authority.i with the 20 s interval (V3AuthVotingInterval's TestingTorNetwork minimum is 10 s). */
const AUTHORITY_TORRC = [
  'AuthoritativeDirectory 1',
  'V3AuthoritativeDirectory 1',
  'ExitPolicy reject *:*',
  'V3AuthVotingInterval 20',
  'V3AuthVoteDelay 4',
  'V3AuthDistDelay 4',
  'TestingV3AuthInitialVotingInterval 20',
  'TestingV3AuthInitialVoteDelay 4',
  'TestingV3AuthInitialDistDelay 4',
];
const RELAY_TORRC = ['ExitRelay 0', 'ExitPolicy reject *:*'];
function exitTorrc(exitPorts: readonly number[]): string[] {
  return [
    'ExitRelay 1',
    'ExitPolicyRejectPrivate 0',
    'ExitPolicy accept 127.0.0.0/8:*',
    ...exitPorts.map((p) => `ExitPolicy accept *:${p}`),
    'ExitPolicy reject *:*',
  ];
}

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

async function httpText(url: string, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

export interface CtorTestnetOptions {
  bin: string;
  relays?: number;
  exits?: number;
  /** Ports the exits accept on every address, so their microdescriptors advertise them (see the header). */
  exitPorts?: readonly number[];
  readyTimeoutMs?: number;
}

/** A tor that could not bind a port chosen for it (tor's own words: "Address already in use"). */
class PortTakenError extends Error {}

/** How often a network whose tor lost a chosen port to another process is started afresh. */
const PORT_RACE_ATTEMPTS = 3;

/**
 * Ports are chosen free (ephemeralPort) but bound by tor a few seconds later
 * (after tor-gencert): another test's process can take one in between, and
 * tor then exits 1 before it opens its log ("Could not bind ... Address
 * already in use" on its stdout; seen in CI with C tor tests running beside
 * others). Such a start is retried from scratch with new ports; any other
 * failure is final.
 */
export async function startCtorTestnet(opts: CtorTestnetOptions): Promise<CtorTestnet> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCtorTestnetOnce(opts);
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt >= PORT_RACE_ATTEMPTS) throw e;
    }
  }
}

/** Runs tor on `torrc` with its stdout and stderr in `<dir>/stdout.log` (what it says before its log is open). */
export function spawnTor(bin: string, torrc: string, dir: string): ChildProcess {
  const out = openSync(path.join(dir, 'stdout.log'), 'w');
  try {
    return spawn(bin, ['-f', torrc], { stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
}

/** Whether a tor of `dirs` exited for a port another process held. */
export async function lostPortRace(dirs: readonly string[]): Promise<boolean> {
  for (const d of dirs) {
    const out = await readFile(path.join(d, 'stdout.log'), 'utf8').catch(() => '');
    if (/Could not bind to .*Address already in use/.test(out)) return true;
  }
  return false;
}

async function startCtorTestnetOnce(opts: CtorTestnetOptions): Promise<CtorTestnet> {
  const dir = await mkdtemp(path.join(tmpdir(), 'shallot-ctor-'));
  const children: ChildProcess[] = [];
  const nodes: CtorNode[] = [];
  const stop = async () => {
    await stopChildren(children);
    if (!process.env.SHALLOT_KEEP_CTOR) await rm(dir, { recursive: true, force: true });
  };
  const logs = async () => {
    const parts: string[] = [];
    for (const n of nodes) {
      // A tor that failed before opening its log said why on its stdout.
      const text =
        (await readFile(path.join(n.dir, 'notice.log'), 'utf8').catch(() => '')) ||
        (await readFile(path.join(n.dir, 'stdout.log'), 'utf8').catch(() => ''));
      parts.push(`--- ${n.nickname}\n${text.split('\n').slice(-15).join('\n')}`);
    }
    return parts.join('\n');
  };
  try {
    const roles: CtorNode['role'][] = [
      ...Array<CtorNode['role']>(3).fill('authority'),
      ...Array<CtorNode['role']>(opts.relays ?? 3).fill('relay'),
      ...Array<CtorNode['role']>(opts.exits ?? 2).fill('exit'),
    ];
    for (const [i, role] of roles.entries()) {
      const nickname = `${role === 'authority' ? 'auth' : role}${i}`;
      const nodeDir = path.join(dir, nickname);
      await mkdir(nodeDir, { recursive: true, mode: 0o700 });
      nodes.push({
        nickname,
        role,
        orPort: await ephemeralPort(),
        dirPort: await ephemeralPort(),
        dir: nodeDir,
        fingerprint: '',
        pid: 0,
      });
    }
    const authorities = nodes.filter((n) => n.role === 'authority');
    const lines: string[] = [];
    const v3idents: Uint8Array[] = [];
    for (const a of authorities) {
      const keys = path.join(a.dir, 'keys');
      await mkdir(keys, { mode: 0o700 });
      // tor-gencert reads the (empty) passphrase from fd 0; certificates valid 12 months.
      run(
        'tor-gencert',
        [
          '--create-identity-key',
          '-m',
          '12',
          '-a',
          `127.0.0.1:${a.dirPort}`,
          '-i',
          'authority_identity_key',
          '-s',
          'authority_signing_key',
          '-c',
          'authority_certificate',
          '--passphrase-fd',
          '0',
        ],
        { cwd: keys, input: '\n' },
      );
      const cert = await readFile(path.join(keys, 'authority_certificate'), 'utf8');
      const v3 = /^fingerprint ([0-9A-F]{40})$/m.exec(cert)?.[1];
      if (!v3) throw new Error(`no fingerprint in ${a.nickname}'s authority_certificate`);
      // The RSA identity key appears on first run; a placeholder authority keeps tor from
      // falling back to the public ones while it lists the fingerprint.
      const tmp = path.join(a.dir, 'torrc.fingerprint');
      await writeFile(tmp, `${commonTorrc(a).join('\n')}\n`);
      run(opts.bin, [
        '--list-fingerprint',
        '-f',
        tmp,
        '--DirAuthority',
        `x orport=1 no-v2 v3ident=${'0'.repeat(40)} 127.0.0.1:1 ${'0'.repeat(40)}`,
      ]);
      a.fingerprint = (await readFile(path.join(a.dir, 'fingerprint'), 'utf8')).trim().split(' ')[1] ?? '';
      lines.push(
        `DirAuthority ${a.nickname} orport=${a.orPort} no-v2 v3ident=${v3} 127.0.0.1:${a.dirPort} ${a.fingerprint}`,
      );
      v3idents.push(fromHex(v3));
    }
    for (const n of nodes) {
      const torrc = [
        ...commonTorrc(n),
        ...lines,
        `DirPort 127.0.0.1:${n.dirPort}`,
        `ContactInfo ${n.nickname}@test.test`,
        ...(n.role === 'authority'
          ? AUTHORITY_TORRC
          : n.role === 'exit'
            ? exitTorrc(opts.exitPorts ?? [])
            : RELAY_TORRC),
      ];
      const file = path.join(n.dir, 'torrc');
      await writeFile(file, `${torrc.join('\n')}\n`);
      const child = spawnTor(opts.bin, file, n.dir);
      children.push(child);
      n.pid = child.pid ?? 0;
    }
    const ready = await waitReady(nodes, v3idents, opts.readyTimeoutMs ?? 240_000, children);
    // A relay writes its fingerprint file when it starts; by now every one has.
    for (const n of nodes) {
      n.fingerprint ||= (await readFile(path.join(n.dir, 'fingerprint'), 'utf8')).trim().split(' ')[1] ?? '';
    }
    return { dir, nodes, dirAuthorities: lines.join('\n'), v3idents, ...ready, logs, stop };
  } catch (e) {
    const tail = await logs();
    const raced = await lostPortRace(nodes.map((n) => n.dir));
    await stop();
    const message = `C tor testnet did not start: ${(e as Error).message}\n${tail}`;
    throw raced ? new PortTakenError(message) : new Error(message);
  }
}

/** Polls an authority's DirPort until its consensus verifies and lists every relay as ready. */
async function waitReady(
  nodes: CtorNode[],
  v3idents: Uint8Array[],
  timeoutMs: number,
  children: ChildProcess[],
): Promise<{ consensus: MdConsensus; certificates: KeyCertificate[] }> {
  const deadline = Date.now() + timeoutMs;
  const auth = nodes.find((n) => n.role === 'authority')!;
  const base = `http://127.0.0.1:${auth.dirPort}`;
  let why = 'no consensus yet';
  while (Date.now() < deadline) {
    const dead = children.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead >= 0)
      throw new Error(
        `${nodes[dead]!.nickname} exited (${children[dead]!.exitCode ?? children[dead]!.signalCode})`,
      );
    // dir-spec §4.2 (key certificates) and §5.1 (the consensus a client fetches).
    const certsText = await httpText(`${base}/tor/keys/all`, 5_000);
    const text = await httpText(`${base}/tor/status-vote/current/consensus-microdesc`, 5_000);
    if (certsText && text) {
      try {
        const certificates = parseKeyCertificates(certsText);
        const consensus = parseMdConsensus(text);
        verifyMdConsensus(consensus, certificates, v3idents, Date.now());
        const missing = nodes
          .filter((n) => n.role !== 'authority')
          .filter((n) => {
            const rs = consensus.relays.find((r) => r.nickname === n.nickname);
            const need = n.role === 'exit' ? ['Running', 'Valid', 'Exit'] : ['Running', 'Valid'];
            return !rs || need.some((f) => !rs.flags.includes(f));
          });
        if (missing.length > 0) {
          why = `not yet ready in the consensus: ${missing.map((n) => n.nickname).join(', ')}`;
        } else {
          // A relay without a consensus of its own treats its peers as unknown: an exit then
          // refuses streams from the middle ("open a stream from unknown relay", C tor
          // connection_exit_begin_conn). Bootstrapped 100% means it has one.
          const behind: string[] = [];
          for (const n of nodes) {
            const log = await readFile(path.join(n.dir, 'notice.log'), 'utf8').catch(() => '');
            if (!log.includes('Bootstrapped 100%')) behind.push(n.nickname);
          }
          if (behind.length === 0) return { consensus, certificates };
          why = `not yet bootstrapped: ${behind.join(', ')}`;
        }
      } catch (e) {
        why = (e as Error).message;
      }
    }
    await sleep(2_000);
  }
  throw new Error(`not ready after ${timeoutMs} ms: ${why}`);
}

/**
 * Runs a standalone `tor` just long enough to load (or create) the onion
 * service keys in `hsDir` and write its `hostname` file, and returns that
 * hostname line. C tor does this at startup, before it bootstraps; the one
 * DirAuthority is a placeholder on port 1, so it contacts nothing.
 */
export async function ctorHostname(bin: string, hsDir: string, timeoutMs = 30_000): Promise<string> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shallot-ctor-hs-'));
  const hostname = path.join(hsDir, 'hostname');
  const torrc = path.join(dataDir, 'torrc');
  await writeFile(
    torrc,
    [
      `DataDirectory ${dataDir}`,
      'SocksPort 0',
      'TestingTorNetwork 1',
      `DirAuthority x orport=1 no-v2 v3ident=${'0'.repeat(40)} 127.0.0.1:1 ${'0'.repeat(40)}`,
      `HiddenServiceDir ${hsDir}`,
      'HiddenServicePort 80 127.0.0.1:1',
      `Log notice file ${path.join(dataDir, 'notice.log')}`,
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['-f', torrc], { stdio: 'ignore' });
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      const text = await readFile(hostname, 'utf8').catch(() => '');
      if (text.endsWith('\n')) return text;
      await sleep(200);
    }
    const log = await readFile(path.join(dataDir, 'notice.log'), 'utf8').catch(() => '');
    throw new Error(
      `tor wrote no ${hostname} (exit ${child.exitCode}):\n${log.split('\n').slice(-10).join('\n')}`,
    );
  } finally {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  }
}

export interface CtorClient {
  socksPort: number;
  /** The onion service's "<56 chars>.onion" when one was asked for. */
  onion: string | null;
  pid: number;
  logs(): Promise<string>;
  /** SIGTERM by pid, SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/**
 * A stock C tor client on `net` (chutney client.tmpl), with a SocksPort
 * and, given `onionService`, a v3 onion service forwarding virtual port
 * `virtualPort` to `target` (HiddenServiceDir is `onionService.dir`; a key
 * already there is used, as C tor does). Resolves once it has bootstrapped.
 */
export interface CtorClientOptions {
  nickname: string;
  onionService?: { dir: string; virtualPort: number; target: string };
  /** Relays (fingerprints) it must never use, in any position (C tor ExcludeNodes). */
  excludeNodes?: string[];
  readyTimeoutMs?: number;
}

export async function startCtorClient(
  bin: string,
  net: Pick<CtorTestnet, 'dir' | 'dirAuthorities'>,
  opts: CtorClientOptions,
): Promise<CtorClient> {
  // Its SocksPort can be lost to another process as a testnet's ports can (startCtorTestnet).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCtorClientOnce(bin, net, opts);
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt >= PORT_RACE_ATTEMPTS) throw e;
    }
  }
}

async function startCtorClientOnce(
  bin: string,
  net: Pick<CtorTestnet, 'dir' | 'dirAuthorities'>,
  opts: CtorClientOptions,
): Promise<CtorClient> {
  const dir = path.join(net.dir, opts.nickname);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socksPort = await ephemeralPort();
  const log = path.join(dir, 'notice.log');
  const hs = opts.onionService;
  const torrc = [
    'TestingTorNetwork 1',
    'PathsNeededToBuildCircuits 0.67',
    'RunAsDaemon 0',
    'ShutdownWaitLength 0',
    'SafeLogging 0',
    `DataDirectory ${dir}`,
    `SocksPort 127.0.0.1:${socksPort}`,
    `Log notice file ${log}`,
    // For a failing test's post-mortem (kept with SHALLOT_KEEP_CTOR): why a circuit or onion connect failed.
    `Log info file ${path.join(dir, 'info.log')}`,
    ...net.dirAuthorities.split('\n'),
    ...(hs ? [`HiddenServiceDir ${hs.dir}`, `HiddenServicePort ${hs.virtualPort} ${hs.target}`] : []),
    ...(opts.excludeNodes?.length ? [`ExcludeNodes ${opts.excludeNodes.map((f) => `$${f}`).join(',')}`] : []),
  ];
  const file = path.join(dir, 'torrc');
  await writeFile(file, `${torrc.join('\n')}\n`);
  const child = spawnTor(bin, file, dir);
  const pid = child.pid ?? 0;
  const logs = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-25).join('\n');
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null || !pid) return resolve();
      const kill = setTimeout(() => process.kill(pid, 'SIGKILL'), 5_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      process.kill(pid, 'SIGTERM');
    });
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
    for (;;) {
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode})`);
      const text = await readFile(log, 'utf8').catch(() => '');
      if (text.includes('Bootstrapped 100%')) break;
      if (Date.now() > deadline) throw new Error('no "Bootstrapped 100%"');
      await sleep(500);
    }
    const onion = hs ? (await readFile(path.join(hs.dir, 'hostname'), 'utf8')).trim() : null;
    return { socksPort, onion, pid, logs, stop };
  } catch (e) {
    const tail = (await logs()) || (await readFile(path.join(dir, 'stdout.log'), 'utf8').catch(() => ''));
    const raced = await lostPortRace([dir]);
    await stop();
    const message = `C tor client ${opts.nickname} did not start: ${(e as Error).message}\n${tail}`;
    throw raced ? new PortTakenError(message) : new Error(message);
  }
}
