// The start command README's first screen names (issue 20): its lines are
// npm scripts that exist, `npm start` runs the very file the `shallot` bin
// names, the Node version README states is the one package.json requires,
// and `prepare` skips the build only where npm exec runs it (`npx shallot`
// linking the checkout into its cache) with dist/ present — everywhere else
// (npm ci, npm install) it builds. test/slow/first-five-minutes runs them.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_PROCESS_ENV, NODE_PROCESS_HEAP_FLAGS } from '../../../services/runtime/heap-flags.js';

const repo = path.resolve(import.meta.dirname, '../../..');
const pkg = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')) as {
  engines: { node: string };
  bin: Record<string, string>;
  scripts: Record<string, string>;
};
const readme = await readFile(path.join(repo, 'README.md'), 'utf8');

/** The first ```sh block's commands, comments stripped. */
const firstScreen = (/```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '')
  .split('\n')
  .map((l) => l.replace(/#.*$/, '').trim())
  .filter(Boolean);

/** prepare's test before `|| npm run build`: exit 0 means skip the build. */
function prepareSkips(env: Record<string, string>, cwd: string): boolean {
  const check = pkg.scripts.prepare?.split(' || ')[0] ?? '';
  expect(check).toMatch(/^node -e /);
  const r = spawnSync('sh', ['-c', check], { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
  return r.status === 0;
}

describe('the start command', () => {
  it("README's first screen is npm ci, npm start and scripts that exist", () => {
    expect(firstScreen[0]).toBe('npm ci');
    expect(firstScreen[1]).toBe('npm start');
    for (const line of firstScreen) {
      const script = /^npm (?:run (\S+)|(start))$/.exec(line);
      if (line === 'npm ci') continue;
      expect(script, line).not.toBeNull();
      expect(pkg.scripts[script?.[1] ?? script?.[2] ?? ''], line).toBeDefined();
    }
  });

  it('npm start execs node on the shallot bin (exec: npm passes signals to it, not to a shell), with its heap flags', () => {
    // env(1) execs node in turn: still one process, which gets the signals.
    const env = Object.entries(NODE_PROCESS_ENV).map(([k, v]) => `${k}=${v}`);
    expect(pkg.scripts.start).toBe(
      `exec env ${env.join(' ')} node ${NODE_PROCESS_HEAP_FLAGS.join(' ')} ${pkg.bin.shallot} up`,
    );
  });

  it("README's Node version is package.json's engines minimum", () => {
    const min = /^>=\s*(\d+\.\d+)/.exec(pkg.engines.node)?.[1];
    expect(min).toBeDefined();
    expect(readme).toContain(`needs only Node ${min} or newer`);
  });

  it('prepare skips the build under npm exec with dist/ built, and builds otherwise', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'shallot-prepare-'));
    try {
      // No dist/: even npm exec builds.
      expect(prepareSkips({ npm_command: 'exec' }, dir)).toBe(false);
      await mkdir(path.join(dir, path.dirname(pkg.bin.shallot ?? '')), { recursive: true });
      await writeFile(path.join(dir, pkg.bin.shallot ?? ''), '');
      expect(prepareSkips({ npm_command: 'exec' }, dir)).toBe(true);
      expect(prepareSkips({ npm_command: 'ci' }, dir)).toBe(false);
      expect(prepareSkips({ npm_command: 'install' }, dir)).toBe(false);
      expect(prepareSkips({}, dir)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
