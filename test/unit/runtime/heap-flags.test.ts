// runtime/heap-flags.ts: node accepts the flags a node process is started
// with (a bad V8 option makes node refuse to start: every node of
// --process-per-node would fail). Worker threads get the same flags through
// v8.setFlagsFromString, which ignores unknown ones silently: this is their check too.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  NODE_PROCESS_ENV,
  NODE_PROCESS_HEAP_FLAGS,
  OLD_SPACE_FLOOR_MB,
} from '../../../services/runtime/heap-flags.js';

/** `NAME=value ...` of NODE_PROCESS_ENV, as env(1) takes them. */
const envAssignments = Object.entries(NODE_PROCESS_ENV)
  .map(([k, v]) => `${k}=${v}`)
  .join(' ');

describe('heap flags', () => {
  it('node starts with the flags given to node processes', () => {
    const r = spawnSync(process.execPath, [...NODE_PROCESS_HEAP_FLAGS, '-e', 'process.stdout.write("up")'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('up');
    expect(NODE_PROCESS_HEAP_FLAGS).toContain(`--initial-old-space-size=${OLD_SPACE_FLOOR_MB}`);
  });

  it('a misspelt V8 flag would make node refuse to start (the check above can fail)', () => {
    const r = spawnSync(process.execPath, ['--initial-old-space-sise=64', '-e', '0'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
  });

  it('the shallot command and npm start give the launcher the same flags and environment', () => {
    const root = new URL('../../../', import.meta.url);
    const shebang = readFileSync(new URL('services/testnet/main.ts', root), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S ${envAssignments} node ${NODE_PROCESS_HEAP_FLAGS.join(' ')}`);
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      scripts: { start: string };
    };
    expect(pkg.scripts.start).toBe(
      `exec env ${envAssignments} node ${NODE_PROCESS_HEAP_FLAGS.join(' ')} dist/services/testnet/main.js up`,
    );
  });

  it("the shebang's line, as env -S runs it, starts node with the environment glibc reads (MALLOC_ARENA_MAX)", () => {
    expect(NODE_PROCESS_ENV.MALLOC_ARENA_MAX).toBe('2');
    const root = new URL('../../../', import.meta.url);
    const shebang = readFileSync(new URL('services/testnet/main.ts', root), 'utf8').split('\n')[0] ?? '';
    const line = /^#!\/usr\/bin\/env -S (.*)$/.exec(shebang)?.[1];
    expect(line).toBeDefined();
    // node must be on PATH for env to find it, as it is for the shallot command.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    };
    delete env.MALLOC_ARENA_MAX;
    const script = `process.stdout.write(JSON.stringify([process.env.MALLOC_ARENA_MAX, process.execArgv.slice(0, ${NODE_PROCESS_HEAP_FLAGS.length})]))`;
    const r = spawnSync('/usr/bin/env', ['-S', `${line} -e '${script}'`], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([NODE_PROCESS_ENV.MALLOC_ARENA_MAX, [...NODE_PROCESS_HEAP_FLAGS]]);
  });
});
