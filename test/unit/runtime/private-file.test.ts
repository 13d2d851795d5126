// The one reader and writer of secret files (runtime/private-file.ts): mode
// 0600 on write, refusal of group/world-readable or oversized files on read,
// atomic replacement, and exclusive creation that several writers agree on.
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShallotError } from '../../../services/core/errors.js';
import { KeyFileError, readPrivateFile, writePrivateFile } from '../../../services/runtime/private-file.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'shallot-private-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

class OtherError extends ShallotError {
  constructor(file: string, message: string) {
    super('ERR_OTHER', `${file}: ${message}`);
  }
}

describe('private files', () => {
  it('writes mode 0600 in a new 0700 directory and reads back the bytes', async () => {
    const file = path.join(dir, 'a', 'b', 'key');
    expect(await writePrivateFile(file, 'secret\n')).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    expect((await readPrivateFile(file)).toString('utf8')).toBe('secret\n');
    // No temporary file is left beside it.
    expect(await readdir(path.dirname(file))).toEqual(['key']);
  });

  it('replaces an existing file atomically; exclusive refuses it and leaves it as it was', async () => {
    const file = path.join(dir, 'key');
    await writePrivateFile(file, new Uint8Array([1, 2, 3]));
    expect(await writePrivateFile(file, new Uint8Array([4]))).toBe(true);
    expect([...(await readPrivateFile(file))]).toEqual([4]);
    expect(await writePrivateFile(file, 'other', { exclusive: true })).toBe(false);
    expect([...(await readFile(file))]).toEqual([4]);
    expect(await readdir(dir)).toEqual(['key']);
  });

  it('exclusive writers started together: exactly one wins, and the file holds its content', async () => {
    const file = path.join(dir, 'identity');
    const won = await Promise.all(
      Array.from({ length: 8 }, (_, i) => writePrivateFile(file, `writer ${i}`, { exclusive: true })),
    );
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(await readFile(file, 'utf8')).toBe(`writer ${won.indexOf(true)}`);
    expect(await readdir(dir)).toEqual(['identity']);
  });

  it('refuses a file group or others can read, with the caller’s error or KeyFileError', async () => {
    const file = path.join(dir, 'key');
    await writeFile(file, 'x', { mode: 0o600 });
    for (const mode of [0o640, 0o604, 0o660, 0o644]) {
      await chmod(file, mode);
      await expect(readPrivateFile(file)).rejects.toThrow(KeyFileError);
      await expect(readPrivateFile(file)).rejects.toThrow(/too open; want 600/);
      await expect(readPrivateFile(file, { error: (f, m) => new OtherError(f, m) })).rejects.toThrow(
        OtherError,
      );
    }
    await chmod(file, 0o400);
    expect((await readPrivateFile(file)).toString()).toBe('x');
  });

  it('refuses a file larger than maxBytes, and passes one at the bound', async () => {
    const file = path.join(dir, 'key');
    await writePrivateFile(file, 'a'.repeat(64));
    expect((await readPrivateFile(file, { maxBytes: 64 })).length).toBe(64);
    await expect(readPrivateFile(file, { maxBytes: 63 })).rejects.toThrow(/larger than 63 bytes/);
  });

  it('a missing file rejects with ENOENT, so callers can create it', async () => {
    await expect(readPrivateFile(path.join(dir, 'none'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a write into a path whose directory is a file fails, leaving nothing behind', async () => {
    await writeFile(path.join(dir, 'plain'), 'x');
    await expect(writePrivateFile(path.join(dir, 'plain', 'key'), 'x')).rejects.toMatchObject({
      code: expect.stringMatching(/^(EEXIST|ENOTDIR)$/),
    });
    expect(await readdir(dir)).toEqual(['plain']);
  });
});
