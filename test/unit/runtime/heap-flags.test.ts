// runtime/heap-flags.ts: node accepts the flags a node process is started
// with (a bad V8 option makes node refuse to start: every node of
// --process-per-node would fail). Worker threads get the same flags through
// v8.setFlagsFromString, which ignores unknown ones silently: this is their check too.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_PROCESS_HEAP_FLAGS, OLD_SPACE_FLOOR_MB } from '../../../services/runtime/heap-flags.js';

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

  it('the shallot command and npm start give the launcher the same flags', () => {
    const root = new URL('../../../', import.meta.url);
    const shebang = readFileSync(new URL('services/testnet/main.ts', root), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_PROCESS_HEAP_FLAGS.join(' ')}`);
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      scripts: { start: string };
    };
    expect(pkg.scripts.start).toBe(
      `exec node ${NODE_PROCESS_HEAP_FLAGS.join(' ')} dist/services/testnet/main.js up`,
    );
  });
});
