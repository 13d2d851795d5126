// Container images (issue #7): builds every target of the top-level
// Dockerfile with podman exactly as `npm run images` does, on a local base
// image made from this machine's node (no registry here; see
// test/setup/base-image.sh), then runs them the way a cluster would: read-only
// root filesystem, state on a tmpfs at /var/lib/shallot, an authority key
// mounted read-only from a file, a relay on the containers' own network
// getting listed by a directory authority container, /healthz /readyz
// /metrics on published ops ports, and SIGTERM ending each one with exit 0.
// Needs podman, runc and iptables (test/setup/install-tools.sh installs them).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PROCESS_ENV } from '../../services/runtime/heap-flags.js';
import { ephemeralPort } from '../../services/testnet/ports.js';

const exec = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
const env = {
  ...process.env,
  CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? path.join(repo, 'test/setup/containers.conf'),
};
const BASE = 'localhost/node:20-slim';
const TAG = 'test';
const hasOperator = existsSync(path.join(repo, 'operator/main.ts'));
const targets = ['relay', 'directory', 'onion-service', 'client', ...(hasOperator ? ['operator'] : [])];
const prefix = `shallot-it-${process.pid}`;
// One /24 per test process so parallel runs do not collide.
const subnet = `10.90.${20 + (process.pid % 200)}`;
const network = `${prefix}-net`;
let keys: string;
let authority = '';
const started: string[] = [];

async function podman(args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await exec('podman', args, { env, timeout: timeoutMs, maxBuffer: 64 << 20 });
  return stdout;
}

async function script(name: string, args: string[], extraEnv: Record<string, string>, timeoutMs: number) {
  const { stdout } = await exec('bash', [path.join(repo, 'test/setup', name), ...args], {
    env: { ...env, ...extraEnv },
    cwd: repo,
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
  });
  return stdout;
}

type ImageInfo = {
  Size: number;
  Config: {
    User?: string;
    Entrypoint?: string[];
    Env?: string[];
    Volumes?: Record<string, unknown>;
    ExposedPorts?: Record<string, unknown>;
    StopSignal?: string;
  };
};

async function inspect(image: string): Promise<ImageInfo> {
  return (JSON.parse(await podman(['image', 'inspect', image])) as ImageInfo[])[0] as ImageInfo;
}

/** Starts a detached container the way a pod runs: read-only root, state on tmpfs, no init. */
async function start(
  name: string,
  image: string,
  ip: string,
  envs: Record<string, string>,
  extra: string[] = [],
): Promise<number> {
  const opsPort = await ephemeralPort();
  const args = ['run', '-d', '--name', `${prefix}-${name}`, '--read-only', '--no-healthcheck'];
  args.push('--tmpfs', '/var/lib/shallot:rw,U', '--network', network, '--ip', ip);
  args.push('-p', `127.0.0.1:${opsPort}:9100`);
  for (const [k, v] of Object.entries(envs)) args.push('-e', `${k}=${v}`);
  args.push(...extra, `shallot-${image}:${TAG}`);
  await podman(args);
  started.push(`${prefix}-${name}`);
  return opsPort;
}

async function get(port: number, p: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

/** Polls until `p` answers 200 (containers take a moment to start node). */
async function until200(port: number, p: string, timeoutMs: number, name: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const r = await get(port, p);
      if (r.status === 200) return r.body;
      last = `${r.status} ${r.body}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const logs = await exec('podman', ['logs', `${prefix}-${name}`], { env, timeout: 10_000 }).then(
    (r) => r.stdout + r.stderr,
    (e: unknown) => String(e),
  );
  throw new Error(`${name} ${p}: ${last}\nlogs:\n${logs}`);
}

async function stopExitCode(name: string): Promise<{ code: number; ms: number }> {
  const t0 = Date.now();
  await podman(['stop', '-t', '10', `${prefix}-${name}`], 30_000);
  const ms = Date.now() - t0;
  const code = Number(
    (await podman(['inspect', '--format', '{{.State.ExitCode}}', `${prefix}-${name}`])).trim(),
  );
  return { code, ms };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return pid !== process.pid;
  } catch {
    return false;
  }
}

/** Containers and networks of earlier runs that were killed before afterAll. */
async function removeLeftovers(): Promise<void> {
  const dead = (names: string[]) =>
    names.filter((n) => {
      const m = /^shallot-it-(\d+)-/.exec(n);
      return m && !alive(Number(m[1]));
    });
  const containers = dead((await podman(['ps', '-a', '--format', '{{.Names}}'])).split('\n'));
  if (containers.length > 0) await podman(['rm', '-f', '-t', '0', ...containers]).catch(() => '');
  const networks = dead((await podman(['network', 'ls', '--format', '{{.Name}}'])).split('\n'));
  networks.push(network);
  for (const n of networks) await podman(['network', 'rm', '-f', n]).catch(() => '');
}

beforeAll(async () => {
  await script('base-image.sh', [BASE], {}, 120_000);
  const out = await script(
    'images.sh',
    [],
    { BASE_IMAGE: BASE, CONTAINER_ENGINE: 'podman', SHALLOT_IMAGE_TAG: TAG },
    480_000,
  );
  // The sizes table (and how long each target took) for the test log.
  process.stdout.write(
    `${out
      .split('\n')
      .filter((l) => /built in|MB$/.test(l))
      .join('\n')}\n`,
  );
  keys = await mkdtemp(path.join(tmpdir(), 'shallot-images-'));
  await removeLeftovers();
  await podman(['network', 'create', '--subnet', `${subnet}.0/24`, network]);
}, 600_000);

afterAll(async () => {
  if (started.length > 0) await podman(['rm', '-f', '-t', '0', ...started]).catch(() => '');
  await podman(['network', 'rm', '-f', network]).catch(() => '');
  if (keys) await rm(keys, { recursive: true, force: true });
}, 60_000);

describe('container images', () => {
  it('every target: uid 1000, state volume, ops port 9100, exec-form node entry, small over the base', async () => {
    const base = await inspect(BASE);
    for (const t of targets) {
      const img = await inspect(`shallot-${t}:${TAG}`);
      const c = img.Config;
      expect(c.User, t).toBe('1000:1000');
      expect(Object.keys(c.Volumes ?? {}), t).toEqual(['/var/lib/shallot']);
      expect(Object.keys(c.ExposedPorts ?? {}), t).toContain('9100/tcp');
      expect(c.Env, t).toContain('SHALLOT_OPS_PORT=9100');
      // node's environment as the `shallot` command gives it (malloc arenas, issue 17).
      for (const [k, v] of Object.entries(NODE_PROCESS_ENV)) expect(c.Env, t).toContain(`${k}=${v}`);
      expect(c.Entrypoint?.[0], t).toBe('node');
      expect(c.Entrypoint?.[1], t).toMatch(/^\/app\/dist\/.*main\.js$/);
      expect(c.StopSignal, t).toBe('SIGTERM');
      const added = (img.Size - base.Size) / 1e6;
      process.stdout.write(
        `  shallot-${t}:${TAG} ${(img.Size / 1e6).toFixed(0)} MB (+${added.toFixed(1)} MB on the base)\n`,
      );
      // Dev dependencies (typescript, vitest, biome: >100 MB) must be pruned;
      // the service images also leave out the operator's Kubernetes client.
      expect(added, t).toBeLessThan(t === 'operator' ? 100 : 30);
    }
    expect((await inspect(`shallot-relay:${TAG}`)).Config.ExposedPorts).toHaveProperty('9001/tcp');
    expect((await inspect(`shallot-directory:${TAG}`)).Config.ExposedPorts).toHaveProperty('7000/tcp');
    expect((await inspect(`shallot-client:${TAG}`)).Config.ExposedPorts).toHaveProperty('9050/tcp');
  });

  it('a directory authority and a relay on a container network: key from a read-only file, relay listed, probes, metrics, read-only root', async () => {
    // The authority's key is made by the image itself (--print-identity) and
    // then mounted read-only, as a Kubernetes Secret would be.
    const identity = (
      await podman([
        'run',
        '--rm',
        '--read-only',
        '--no-healthcheck',
        '-v',
        `${keys}:/keys:U`,
        '-e',
        'SHALLOT_KEY_FILE=/keys/authority.key',
        `shallot-directory:${TAG}`,
        '--print-identity',
      ])
    ).trim();
    expect(identity).toMatch(/^[0-9a-f]{64}$/);
    authority = `${identity}@${subnet}.10:7000`;
    const dirOps = await start(
      'dir',
      'directory',
      `${subnet}.10`,
      {
        SHALLOT_KEY_FILE: '/run/secrets/shallot/authority.key',
        SHALLOT_AUTHORITIES: authority,
        SHALLOT_VOTING_INTERVAL: '5',
        SHALLOT_NAME: 'auth0',
      },
      ['-v', `${path.join(keys, 'authority.key')}:/run/secrets/shallot/authority.key:ro`],
    );
    const relayOps = await start('relay', 'relay', `${subnet}.11`, {
      SHALLOT_HOST: `${subnet}.11`,
      SHALLOT_NICKNAME: 'imagerelay',
      SHALLOT_AUTHORITIES: authority,
    });

    const dirHealth = JSON.parse(await until200(dirOps, '/healthz', 30_000, 'dir')) as { identity?: string };
    expect(dirHealth.identity).toBe(identity);
    await until200(relayOps, '/healthz', 30_000, 'relay');
    // Listed in a consensus: the relay reached the authority over the
    // container network and published a descriptor it accepted.
    expect(JSON.parse(await until200(relayOps, '/readyz', 60_000, 'relay'))).toMatchObject({ listed: true });
    const dirHealthAfter = JSON.parse((await get(dirOps, '/healthz')).body) as { consensusRelays?: number };
    expect(dirHealthAfter.consensusRelays ?? 0).toBeGreaterThanOrEqual(1);

    const relayMetrics = await get(relayOps, '/metrics');
    expect(relayMetrics.status).toBe(200);
    expect(relayMetrics.body).toMatch(/^# TYPE \w+ \w+/m);
    expect(relayMetrics.body).toContain('role="relay"');
    const dirMetrics = await get(dirOps, '/metrics');
    expect(dirMetrics.body).toContain('role="authority"');

    // The root filesystem is read-only; the state volume is writable and
    // holds the relay's generated key.
    const probe = await podman([
      'exec',
      `${prefix}-relay`,
      'node',
      '-e',
      `const fs = require('fs');
       let root = 'writable';
       try { fs.writeFileSync('/app/probe', 'x'); } catch (e) { root = e.code; }
       const init = fs.readFileSync('/proc/1/cmdline', 'utf8').split('\\0').slice(0, 2);
       console.log(JSON.stringify({ root, uid: process.getuid(), init,
         key: fs.existsSync(process.env.SHALLOT_KEY_FILE) }));`,
    ]);
    // node itself is PID 1 (no shell, no init), so SIGTERM reaches it.
    expect(JSON.parse(probe)).toEqual({
      root: 'EROFS',
      uid: 1000,
      init: ['node', '/app/dist/services/relay/main.js'],
      key: true,
    });
  }, 120_000);

  it('client and onion-service images start read-only and answer /healthz', async () => {
    expect(authority).not.toBe('');
    const clientOps = await start('client', 'client', `${subnet}.20`, { SHALLOT_AUTHORITIES: authority });
    const hsOps = await start('hs', 'onion-service', `${subnet}.21`, {
      SHALLOT_AUTHORITIES: authority,
      SHALLOT_NAME: 'imagehs',
      SHALLOT_INTRO_POINTS: '1',
    });
    await until200(clientOps, '/healthz', 30_000, 'client');
    await until200(hsOps, '/healthz', 30_000, 'hs');
    expect((await get(clientOps, '/metrics')).body).toContain('role="client"');
    // The onion address goes to stdout first thing, as outside the image.
    const logs = await podman(['logs', `${prefix}-hs`]);
    expect(logs).toMatch(/^[a-z2-7]{56}\.onion$/m);
  }, 90_000);

  // operator/ landed separately; its image is built and checked once it exists.
  it.runIf(hasOperator)(
    'the operator image starts read-only and serves /healthz and /metrics (no cluster needed)',
    async () => {
      // With no API server it campaigns for the Lease (failing, logged) and
      // still answers its probes, as a pod waiting for the API would.
      const ops = await start('operator', 'operator', `${subnet}.30`, {});
      await until200(ops, '/healthz', 30_000, 'operator');
      expect((await get(ops, '/metrics')).body).toMatch(/^# TYPE \w+ \w+/m);
    },
    60_000,
  );

  it('the client image also runs the load generator', async () => {
    const out = await podman([
      'run',
      '--rm',
      '--read-only',
      '--no-healthcheck',
      '--entrypoint',
      'node',
      `shallot-client:${TAG}`,
      '/app/dist/services/loadgen/main.js',
      'load',
      '--help',
    ]);
    expect(out).toContain('--concurrency');
  });

  it('SIGTERM stops every running service cleanly (exit 0, before the 10 s kill of podman stop)', async () => {
    expect(started.length).toBeGreaterThanOrEqual(2);
    for (const name of started.map((s) => s.slice(prefix.length + 1))) {
      const { code, ms } = await stopExitCode(name);
      console.log(`podman stop ${name}: exit ${code} after ${ms} ms`);
      // A process still running at the 10 s timeout is killed (exit 137): 0 means it ended on its
      // own, on SIGTERM, within the grace period, however long podman itself took on a busy machine.
      expect({ name, code }).toEqual({ name, code: 0 });
    }
  }, 120_000);
});
