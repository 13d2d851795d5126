// The authority process entry: --print-identity creates a 0600 key file
// once and prints the same identity every time.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../services/directory/main.js';

describe('directory main', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
  });

  it('--print-identity creates the key file with mode 0600 and is stable', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shallot-dirauth-'));
    dirs.push(dir);
    const keyFile = path.join(dir, 'keys', 'auth.json');
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
    await main(['node', 'main.js', '--key-file', keyFile, '--print-identity']);
    await main(['node', 'main.js', '--key-file', keyFile, '--print-identity']);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^[0-9a-f]{64}\n$/);
    expect(out[1]).toBe(out[0]);
    expect((await fs.stat(keyFile)).mode & 0o777).toBe(0o600);
  });
});
