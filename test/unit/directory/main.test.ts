// The authority process entry: --print-identity creates a 0600 key file
// once and prints the same identity every time; a network model that
// cannot place the authority stops it before it listens, naming why.
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

  it('refuses an unknown --location, and a name the model places nowhere, before listening', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shallot-dirauth-'));
    dirs.push(dir);
    const model = path.join(dir, 'model.json');
    await fs.writeFile(model, JSON.stringify({ locations: ['us', 'eu'], defaultLatencyMs: 40 }));
    const errors: string[] = [];
    vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      errors.push(String(s));
      return true;
    });
    const args = (...more: string[]) => [
      'node',
      'main.js',
      '--key-file',
      path.join(dir, 'keys.json'),
      '--authorities',
      `${'a'.repeat(64)}@127.0.0.1:1`,
      '--port',
      '0',
      '--name',
      'auth0',
      '--network-model',
      model,
      ...more,
    ];
    await expect(main(args('--location', 'mars'))).rejects.toThrow(/exit 1/);
    expect(errors.join('')).toMatch(/network model: location: unknown location "mars"/);
    errors.length = 0;
    // No --location, no "nodes" entry and no "assign": "random": auth0 is in no location.
    await expect(main(args())).rejects.toThrow(/exit 1/);
    expect(errors.join('')).toMatch(/"auth0" is in no location/);
  });
});
